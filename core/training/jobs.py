"""What the Train page and the scripts share around a run: the datasets on offer, uploads staged only for
the run that uses them, the runs table, and the checks before a run becomes the model everyone uses.

No Keras and no Streamlit here: the page calls these and draws what they return.
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
import time
import uuid
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from core.paths import CACHE_DIR, DATA_DIR
from core.records import FINISHED, RunMetadata
from core.runs import safe_name
from core.training.config import TrainConfig

OPERATOR_VARIABLE = "EMOVOICE_OPERATOR"
STAGING_PREFIX = "train-"
# Another visitor's uploads may be being saved this very moment, before their run claims the lock: only staged
# folders left untouched this long are a dead worker's.
ORPHANED_AFTER_S = 600
UPLOAD_KINDS = {".zip": "a .zip of class folders", ".csv": "fer2013.csv or a FER+ votes csv"}


# -- data on offer -------------------------------------------------------------------------------


def datasets_in(folder: Path = DATA_DIR) -> list[str]:
    """Names in `folder` that look like a dataset (a .zip, a .csv, a folder), for the path box to suggest."""
    if not folder.is_dir():
        return []
    found = [p for p in sorted(folder.iterdir()) if p.suffix.lower() in (".zip", ".csv") or p.is_dir()]
    return [p.name for p in found if not p.name.startswith(".") and not p.is_symlink()]


def face_counts(report) -> Counter:
    """Faces per emotion over every split of a core.data.BuildReport (a photos zip of train/ and test/
    trains all of them)."""
    counts = Counter()
    for split_counts in report.counts.values():
        counts.update(split_counts)
    return counts


# -- uploads -------------------------------------------------------------------------------------


@dataclass
class Upload:
    """A file a visitor chose in an uploader: its own name and its bytes (held in memory, not on disk)."""

    name: str
    data: bytes


def check_upload(upload: Upload, kinds: tuple[str, ...]) -> None:
    """Refuse a file that cannot be what it claims, by the name the visitor gave it, before anything is saved."""
    from core.data import MAX_UPLOAD_BYTES, DatasetError

    suffix = Path(upload.name).suffix.lower()
    if suffix not in kinds:
        raise DatasetError(f"{upload.name}: upload " + " or ".join(UPLOAD_KINDS[kind] for kind in kinds))
    if len(upload.data) > MAX_UPLOAD_BYTES:
        raise DatasetError(f"{upload.name} is {len(upload.data) / 2**20:.0f} MB; the limit is {MAX_UPLOAD_BYTES // 2**20} MB")
    if suffix == ".zip" and not zipfile.is_zipfile(io.BytesIO(upload.data)):
        raise DatasetError(f"{upload.name} is not a readable zip archive")


def preview_upload(upload: Upload):
    """The faces a dataset upload holds (core.data.BuildReport), read from a scratch copy that is deleted
    before this returns, on every path: nothing is kept for a file that may never be trained on."""
    from core.data import load_dataset

    check_upload(upload, (".zip", ".csv"))
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="emovoice-preview-", dir=CACHE_DIR) as scratch:
        path = Path(scratch) / (safe_name(Path(upload.name).stem) + Path(upload.name).suffix.lower())
        path.write_bytes(upload.data)
        return load_dataset(path, cache_dir=Path(scratch) / "cache").report


def stage_uploads(uploads: dict[str, Upload], root: Path | None = None) -> tuple[Path, dict[str, Path]]:
    """Save the uploads one run uses into a fresh folder of their own; returns it and each upload's path.

    Called when Train is pressed, never before. The run's worker deletes the folder once it has read them
    (core.background, `scratch`); a failed save deletes what it wrote. Together the uploads are capped at
    core.data's upload limit, so one visitor holds at most that much, and only while their run starts.
    """
    from core.data import MAX_UPLOAD_BYTES, DatasetError

    total = sum(len(upload.data) for upload in uploads.values())
    if total > MAX_UPLOAD_BYTES:
        raise DatasetError(f"the uploads come to {total / 2**20:.0f} MB; one run may upload at most "
                           f"{MAX_UPLOAD_BYTES // 2**20} MB")
    root = root or CACHE_DIR / "uploads"
    root.mkdir(parents=True, exist_ok=True)
    folder = root / f"{STAGING_PREFIX}{uuid.uuid4().hex[:12]}"
    folder.mkdir()
    try:
        paths = {}
        for role, upload in uploads.items():
            check_upload(upload, tuple(UPLOAD_KINDS))
            path = folder / f"{role}-{safe_name(Path(upload.name).stem)}{Path(upload.name).suffix.lower()}"
            path.write_bytes(upload.data)
            paths[role] = path
        return folder, paths
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)  # a full disk leaves no partial file behind
        raise


def start_run(config: TrainConfig, data: Path | Upload, votes: Path | Upload | None = None, photos: Upload | None = None,
              init_model: Path | None = None, owner: str | None = None) -> Path:
    """Start a background run on paths or uploads (the Train page's Train button); returns its folder.

    Uploads are saved only now, when a run uses them, and the worker deletes them once read; nothing is
    saved when a run is already going (TrainingBusyError)."""
    from core.background import TrainingBusyError, current_training, start_training

    if current_training() is not None:  # start_training checks too, but only after the uploads were saved
        raise TrainingBusyError()
    remove_orphaned_staging()  # nothing is starting or training: staged files left by a killed worker go
    uploads = {role: item for role, item in (("data", data), ("votes", votes), ("photos", photos)) if isinstance(item, Upload)}
    scratch, staged = stage_uploads(uploads) if uploads else (None, {})
    return start_training(config, str(staged.get("data", data)), init_model=init_model, photos=staged.get("photos"),
                          votes=staged.get("votes", votes), owner=owner, scratch=[scratch] if scratch else [])


def remove_orphaned_staging(root: Path | None = None, now: float | None = None) -> None:
    """Delete staged uploads that no run will read (their worker died before deleting them): those untouched
    for ORPHANED_AFTER_S. Call it only while no run is training."""
    root = root or CACHE_DIR / "uploads"
    now = time.time() if now is None else now
    for folder in root.glob(f"{STAGING_PREFIX}*") if root.is_dir() else []:
        try:
            if now - folder.stat().st_mtime > ORPHANED_AFTER_S:
                shutil.rmtree(folder, ignore_errors=True)
        except OSError:
            pass  # gone already: another visitor's clean-up


# -- runs ----------------------------------------------------------------------------------------


@dataclass
class RunRow:
    """One run as the runs table shows it; missing values are "–", as the page's metrics show them."""

    active: bool
    run: str
    status: str
    architecture: str
    emotions: int
    epochs: str
    validation: str
    test: str
    test_5: str
    minutes: str
    data: str

    COLUMNS = {"active": "active", "run": "run", "status": "status", "architecture": "architecture",
               "emotions": "emotions", "epochs": "epochs", "validation": "validation acc.", "test": "test acc.",
               "test_5": "5-emotion test acc.", "minutes": "minutes", "data": "data"}


def percent(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def run_rows(runs: list[RunMetadata], active: Path) -> list[RunRow]:
    active = Path(active).resolve()
    return [RunRow(
        active=Path(run.path).resolve() == active,
        run=run.name,
        status=run.status,
        architecture=run.architecture,
        emotions=len(run.classes),
        epochs="–" if run.epochs_trained is None else str(run.epochs_trained),
        validation=percent(run.accuracy("validation")),
        test=percent(run.accuracy("test")),
        test_5=percent(run.accuracy("test", five_emotions=True)),
        minutes="–" if run.training_seconds is None else f"{run.training_seconds / 60:.1f}",
        data=Path(run.dataset.source).name or "–",
    ) for run in runs]


# How far above chance a run must score on its own validation faces before it is made active unwarned.
NEAR_CHANCE = 1.5


def activation_warning(run: RunMetadata, shipped: RunMetadata | None) -> str | None:
    """Why making `run` the active model may be a mistake, or None: a run that did not finish, has no
    validation score, scores near chance or below the shipped model on its own validation faces."""
    if run.status != FINISHED:
        return f"`{run.name}` is {run.status}: its model is the best epoch before it stopped."
    accuracy, chance = run.accuracy("validation"), 1 / len(run.classes)
    if accuracy is None:
        return f"`{run.name}` has no validation score: nobody knows how well it reads faces."
    if accuracy < NEAR_CHANCE * chance:
        return (f"`{run.name}` reads {accuracy:.0%} of its validation faces right, near chance "
                f"({chance:.0%} for {len(run.classes)} emotions): it would mostly guess.")
    shipped_accuracy = shipped.accuracy("validation") if shipped else None
    if shipped_accuracy is not None and accuracy < shipped_accuracy:
        return (f"`{run.name}` reads {accuracy:.0%} of its validation faces right; the shipped model "
                f"{shipped_accuracy:.0%} of its own.")
    return None


LOCAL_ADDRESSES = ("localhost", "127.0.0.1", "::1")


def is_operator(environ: dict | None = None, server_address: str | None = None) -> bool:
    """Whether this server's visitors may change the model everyone uses (make a run active).

    The person who starts the server decides: with EMOVOICE_OPERATOR=1 every visitor may, and so may
    everyone on a server bound to this machine only (`--server.address localhost`: its visitors are the
    operator). A shared server started without either still trains; its operator changes the active model
    from a terminal (scripts/train.py --activate).
    """
    environ = environ if environ is not None else os.environ
    return environ.get(OPERATOR_VARIABLE, "").lower() in ("1", "true", "yes") or server_address in LOCAL_ADDRESSES
