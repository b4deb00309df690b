"""Run folders: atomic saves, metadata, the active model, and loading a model (the one place).

A run folder holds `model.keras` (the best epoch), `metadata.json` (classes in output
order, input size, architecture, recipe, dataset fingerprint, metrics) and
`history.csv`. Every file is written to a temporary name beside it and moved into
place, so a crash or a kill never leaves a half-written model where one is loaded.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from core.emotions import EMOTIONS
from core.paths import RUNS_DIR, SHIPPED_MODEL_DIR

MODEL_FILE = "model.keras"
METADATA_FILE = "metadata.json"
HISTORY_FILE = "history.csv"
ACTIVE_FILE = "active.json"


class ModelError(ValueError):
    """A model that cannot be used, with a message fit to show the user."""


# -- atomic writes ------------------------------------------------------------------------------


def _partial_path(path: Path) -> Path:
    # Keras insists on the .keras suffix, so the temporary name keeps the real suffix last.
    return path.with_name(f".{path.stem}.{os.getpid()}.partial{path.suffix}")


def write_atomic(path: Path, write) -> None:
    """Call `write(temporary_path)`, then move the result onto `path` in one step."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = _partial_path(path)
    try:
        write(partial)
        with open(partial, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def write_json(path: Path, data: dict) -> None:
    write_atomic(path, lambda tmp: tmp.write_text(json.dumps(data, indent=2, default=_jsonable)))


def write_text(path: Path, text: str) -> None:
    write_atomic(path, lambda tmp: tmp.write_text(text))


def save_model(model, path: Path) -> None:
    write_atomic(path, lambda tmp: model.save(tmp))


def _jsonable(value):
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


# -- run folders --------------------------------------------------------------------------------


def safe_name(name: str) -> str:
    """A run name that can only ever be one plain folder name."""
    cleaned = re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-")[:60]
    return cleaned or "run"


def new_run_dir(architecture: str, runs_dir: Path | None = None) -> Path:
    runs_dir = runs_dir or RUNS_DIR
    stamp = time.strftime("%Y%m%d-%H%M%S")
    run_dir = runs_dir / safe_name(f"{stamp}-{architecture}")
    suffix = 1
    while run_dir.exists():
        suffix += 1
        run_dir = runs_dir / safe_name(f"{stamp}-{architecture}-{suffix}")
    run_dir.mkdir(parents=True)
    return run_dir


def read_metadata(model_dir: Path) -> dict:
    path = Path(model_dir) / METADATA_FILE
    try:
        metadata = json.loads(path.read_text())
    except FileNotFoundError:
        raise ModelError(f"{model_dir} has no {METADATA_FILE}: it is not a trained emovoice model") from None
    except (OSError, json.JSONDecodeError) as error:
        raise ModelError(f"{path} is damaged ({error})") from None
    classes = metadata.get("classes")
    if not isinstance(classes, list) or not classes or any(c not in EMOTIONS for c in classes):
        raise ModelError(f"{path} does not name the model's emotions (classes: {classes!r})")
    return metadata


def list_runs(runs_dir: Path | None = None) -> list[dict]:
    """Metadata of every finished run (newest first), each with its folder under the key 'path'."""
    runs_dir = runs_dir or RUNS_DIR
    runs = []
    for folder in sorted(runs_dir.glob("*"), reverse=True) if runs_dir.is_dir() else []:
        if (folder / MODEL_FILE).is_file():
            try:
                runs.append({**read_metadata(folder), "name": folder.name, "path": str(folder)})
            except ModelError:
                continue  # a damaged run is left out of the list, not fatal
    return runs


# -- loading ------------------------------------------------------------------------------------


@dataclass
class LoadedModel:
    model: object  # keras.Model
    metadata: dict
    path: Path

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(self.metadata["classes"])


def load_model(model_dir: str | os.PathLike) -> LoadedModel:
    """Load a model folder (or a .keras file with metadata.json beside it), checking it matches its metadata."""
    path = Path(model_dir)
    folder, model_file = (path.parent, path) if path.suffix == ".keras" else (path, path / MODEL_FILE)
    metadata = read_metadata(folder)
    if not model_file.is_file():
        raise ModelError(f"{folder} has no {MODEL_FILE}")
    import keras

    try:
        # safe_mode refuses models that would run arbitrary Python code (lambda layers).
        model = keras.saving.load_model(model_file, compile=False, safe_mode=True)
    except Exception as error:  # Keras raises many kinds for a damaged zip
        raise ModelError(f"{model_file} could not be loaded; the file is damaged or not a Keras model ({type(error).__name__})") from None
    outputs = model.output_shape[-1]
    if outputs != len(metadata["classes"]):
        raise ModelError(f"{model_file} outputs {outputs} scores but its metadata names {len(metadata['classes'])} emotions")
    return LoadedModel(model, metadata, folder)


# -- the active model ---------------------------------------------------------------------------


def active_model_dir(runs_dir: Path | None = None) -> Path:
    """The model the product uses: the run chosen with set_active, else the shipped model."""
    runs_dir = runs_dir or RUNS_DIR
    try:
        chosen = runs_dir / safe_name(json.loads((runs_dir / ACTIVE_FILE).read_text())["run"])
    except (OSError, ValueError, KeyError, TypeError):
        return SHIPPED_MODEL_DIR
    return chosen if (chosen / MODEL_FILE).is_file() else SHIPPED_MODEL_DIR


def set_active(model_dir: Path | None, runs_dir: Path | None = None) -> None:
    """Make a run folder the active model; None (or the shipped model) goes back to the shipped one."""
    runs_dir = runs_dir or RUNS_DIR
    if model_dir is None or Path(model_dir).resolve() == SHIPPED_MODEL_DIR.resolve():
        (runs_dir / ACTIVE_FILE).unlink(missing_ok=True)
        return
    model_dir = Path(model_dir)
    load_model(model_dir)  # refuse to activate a model that would not load
    write_json(runs_dir / ACTIVE_FILE, {"run": model_dir.name})
