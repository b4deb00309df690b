"""Run folders: atomic saves, metadata, the active model, and loading a model (the one place).

A run folder holds `model.keras` (the best epoch), `metadata.json` (core.records.RunMetadata:
classes in output order, input size, architecture, recipe, dataset fingerprint, metrics),
`history.csv`, and for --resume `checkpoint.keras` and `state.json`. Every file is written to a temporary name beside it and moved into
place, so a crash or a kill never leaves a half-written model where one is loaded.
"""

from __future__ import annotations

import json
import os
import re
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

from core.emotions import EMOTIONS
from core.paths import PROJECT_ROOT, RUNS_DIR, SHIPPED_MODEL_DIR
from core.records import INTERRUPTED, TTA_MODES, RunMetadata

MODEL_FILE = "model.keras"
METADATA_FILE = "metadata.json"
HISTORY_FILE = "history.csv"
ACTIVE_FILE = "active.json"
CHECKPOINT_FILE = "checkpoint.keras"  # the last epoch with the optimizer's state, for --resume
STATE_FILE = "state.json"  # where the checkpoint stands (core.records.ResumeState)


class ModelError(ValueError):
    """A model that cannot be used, with a message fit to show the user."""


# -- atomic writes ------------------------------------------------------------------------------


def _partial_path(path: Path) -> Path:
    # Keras insists on the .keras suffix, so the temporary name keeps the real suffix last.
    return path.with_name(f".{path.stem}.{os.getpid()}.partial{path.suffix}")


def pid_alive(pid: int) -> bool:
    """Whether process `pid` still runs (a zombie child counts as gone)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a finished child that nobody waited for is a zombie: dead for our purposes
        return os.waitpid(pid, os.WNOHANG) == (0, 0)
    except ChildProcessError:
        return True


def remove_orphaned_partials(path: Path) -> None:
    """Delete the temporary files that killed writers of `path` left beside it (their pid is gone)."""
    for partial in path.parent.glob(f".{path.stem}.*.partial{path.suffix}"):
        pid = partial.name[len(path.stem) + 2 :].split(".", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not pid_alive(int(pid)):
            partial.unlink(missing_ok=True)


def write_atomic(path: Path, write) -> None:
    """Call `write(temporary_path)`, then move the result onto `path` in one step."""
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_orphaned_partials(path)
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


# The resume state inside a checkpoint file: the weights and the epoch they are at, saved as one.
_CHECKPOINT_STATE = "emovoice_state.json"


def save_checkpoint(model, path: Path, state: dict) -> None:
    """The model with its optimizer and the resume state of the epoch it holds (core.records.ResumeState), in
    one file written atomically: saved as two files, a kill between them left the weights an epoch ahead."""
    def write(tmp: Path) -> None:
        model.save(tmp)
        with zipfile.ZipFile(tmp, "a") as archive:  # a .keras file is a zip; Keras reads only its own entries
            archive.writestr(_CHECKPOINT_STATE, json.dumps(state, default=_jsonable))

    write_atomic(path, write)


def checkpoint_state(path: Path) -> dict | None:
    """The resume state saved inside a checkpoint; None for one saved before checkpoints held it."""
    try:
        with zipfile.ZipFile(path) as archive:
            return json.loads(archive.read(_CHECKPOINT_STATE))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return None


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
    except (OSError, ValueError) as error:  # ValueError: not JSON, or not UTF-8 text
        raise ModelError(f"{path} is damaged ({error})") from None
    if not isinstance(metadata, dict):
        raise ModelError(f"{path} is damaged (it holds {type(metadata).__name__}, not a model's description)")
    classes = metadata.get("classes")
    if not isinstance(classes, list) or not classes or any(c not in EMOTIONS for c in classes):
        raise ModelError(f"{path} does not name the model's emotions (classes: {classes!r})")
    return metadata


def parse_run(fields: dict, model_dir: Path) -> RunMetadata:
    """A model folder's metadata fields (read_metadata) as a record; ModelError where a field is missing or
    of the wrong kind, as a hand-edited file may have it."""
    try:
        metadata = RunMetadata.from_json(fields, path=Path(model_dir))
    except (TypeError, ValueError, KeyError, AttributeError) as error:
        raise ModelError(f"{Path(model_dir) / METADATA_FILE} is damaged ({error})") from None
    if metadata.tta not in TTA_MODES:
        raise ModelError(f"{Path(model_dir) / METADATA_FILE} is damaged (test-time views {metadata.tta!r}: "
                         f"one of {', '.join(TTA_MODES)})")
    return metadata


def read_run(model_dir: Path) -> RunMetadata:
    """A model folder's metadata as a record (old folders' too); ModelError when it is missing or damaged.

    A run whose metadata says "training" while the process that trained it is gone reads "interrupted".
    """
    metadata = parse_run(read_metadata(model_dir), model_dir)
    if metadata.status == "training" and not _still_training(metadata):
        metadata.status = INTERRUPTED
    return metadata


def start_model_path(initialised_from: str) -> Path:
    """The model a run started from. Runs record it absolute; older ones as typed, relative to where
    train.py ran (the project folder, as the README runs it)."""
    path = Path(initialised_from)
    return path if path.is_absolute() or path.exists() else PROJECT_ROOT / path


def write_run(metadata: RunMetadata, model_dir: Path | None = None) -> None:
    write_json(Path(model_dir or metadata.path) / METADATA_FILE, metadata.to_json())


# A run written before runs recorded their worker's pid is taken for alive while its files keep changing.
_QUIET_SECONDS_OF_A_DEAD_RUN = 2 * 3600


def _still_training(metadata: RunMetadata) -> bool:
    if metadata.worker_pid is not None:
        return pid_alive(metadata.worker_pid)
    folder = Path(metadata.path)
    stamps = [p.stat().st_mtime for p in folder.iterdir() if p.is_file()] if folder.is_dir() else []
    return bool(stamps) and time.time() - max(stamps) < _QUIET_SECONDS_OF_A_DEAD_RUN


def list_runs(runs_dir: Path | None = None) -> list[RunMetadata]:
    """Metadata of every run with a saved model (newest first), named by its folder."""
    runs_dir = runs_dir or RUNS_DIR
    runs = []
    for folder in sorted(runs_dir.glob("*"), reverse=True) if runs_dir.is_dir() else []:
        if (folder / MODEL_FILE).is_file():
            try:
                run = read_run(folder)
            except (ModelError, TypeError, ValueError):
                continue  # a damaged run is left out of the list, not fatal
            run.name = folder.name
            runs.append(run)
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
    from core.tf_quiet import keras

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
    if model_dir.resolve().parent != Path(runs_dir).resolve():  # the active run is named inside runs_dir
        raise ModelError(f"{model_dir} is not in {runs_dir}: only a run there can be the active model")
    load_model(model_dir)  # refuse to activate a model that would not load
    write_json(runs_dir / ACTIVE_FILE, {"run": model_dir.name})
