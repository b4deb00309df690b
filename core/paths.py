"""Where emovoice keeps things. Every location is named here and nowhere else."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# Shipped with the repository.
SHIPPED_MODEL_DIR = PROJECT_ROOT / "models" / "emovoice-vgg"
SEED_MODEL_DIR = PROJECT_ROOT / "models" / "seed"
VOICES_DIR = PROJECT_ROOT / "voices"
SAMPLES_DIR = PROJECT_ROOT / "samples"
RECIPES_DIR = PROJECT_ROOT / "recipes"  # one plain file per named training run (core.training.config)
FACE_DETECTOR = PROJECT_ROOT / "models" / "detector" / "centerface.onnx"  # CenterFace, MIT (see its ATTRIBUTION.md)

# Made on the user's machine (git-ignored); each can be moved with an environment variable.
RUNS_DIR = Path(os.environ.get("EMOVOICE_RUNS", PROJECT_ROOT / "runs"))
CACHE_DIR = Path(os.environ.get("EMOVOICE_CACHE", Path.home() / ".cache" / "emovoice"))
DATA_DIR = PROJECT_ROOT / "data"


def data_roots() -> list[Path]:
    """Folders the dashboard may read datasets from: the project's data/ folder, plus
    any listed in EMOVOICE_DATA_ROOTS (separated by the OS path separator)."""
    extra = [Path(p).expanduser() for p in os.environ.get("EMOVOICE_DATA_ROOTS", "").split(os.pathsep) if p]
    return [root.resolve() for root in (DATA_DIR, *extra)]
