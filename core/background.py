"""Training in the background: one run at a time, in its own process, that outlives the page.

The dashboard starts a run with `start_training`; a worker process (`python -m
core.background RUN_DIR RUNS_DIR`) trains and writes `progress.json` (a TrainingStatus) into
the run folder. Any page, after any reload, finds the run through the lock file and reads its
status; `cancel_training` asks the worker to stop after the current batch, and only the visitor
who started the run (its owner) may ask.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from core.paths import PROJECT_ROOT, RUNS_DIR
from core.records import CANCELLED, FAILED, INTERRUPTED, ResumeState, TrainingStatus
from core.runs import new_run_dir, pid_alive, write_json
from core.training.config import TrainConfig

if TYPE_CHECKING:
    from core.training import EpochProgress

LOCK_FILE = ".training.lock"
REQUEST_FILE = "request.json"
PROGRESS_FILE = "progress.json"
CANCEL_FILE = "cancel"
LOG_FILE = "worker.log"


class TrainingBusyError(RuntimeError):
    """Another run is already training."""

    def __init__(self, message: str = "a training run is already in progress; wait for it or cancel it"):
        super().__init__(message)


@dataclass
class TrainingRequest:
    """What the page asked the worker to train (request.json)."""

    config: dict  # TrainConfig's fields
    data: str
    init_model: str | None = None
    photos: str | None = None
    votes: str | None = None  # FER+ votes to train on (core.votes); None: the dataset's labels
    scratch: list[str] = field(default_factory=list)  # uploads staged for this run: deleted once the run ends

    @classmethod
    def from_json(cls, data: dict) -> TrainingRequest:
        return cls(**{k: data.get(k) for k in ("config", "data", "init_model", "photos", "votes")},
                   scratch=list(data.get("scratch") or []))


@dataclass
class RunningTraining:
    """The run that trains now: its folder, its worker, whose it is and its status."""

    run_dir: Path
    pid: int
    owner: str | None
    status: TrainingStatus

    def owned_by(self, visitor: str | None) -> bool:
        """Whether `visitor` may cancel it: its owner, or anyone for a run nobody owns (started from a terminal)."""
        return self.owner is None or self.owner == visitor


def current_training(runs_dir: Path | None = None) -> RunningTraining | None:
    """The run that is training now, or None. Clears a stale lock (its worker died)."""
    lock = (runs_dir or RUNS_DIR) / LOCK_FILE
    try:
        holder = json.loads(lock.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        holder = {"pid": -1}
    if holder.get("pid", -1) <= 0 or not pid_alive(holder["pid"]):
        lock.unlink(missing_ok=True)  # the worker died (killed, crashed, machine restarted)
        return None
    run_dir = Path(holder["run_dir"])
    return RunningTraining(run_dir, holder["pid"], holder.get("owner"), read_status(run_dir, alive=True))


def start_training(config: TrainConfig, data_source: str, runs_dir: Path | None = None,
                   init_model: Path | None = None, photos: Path | None = None, votes: Path | None = None,
                   owner: str | None = None, scratch: list[Path] | None = None) -> Path:
    """Start a background run and return its folder; raises TrainingBusyError if one is running.

    init_model, photos: train()'s model to start from and labelled photos to learn beside the data.
    votes: FER+ votes to attach to the data. owner: the visitor who may cancel it (None: anyone).
    scratch: files staged for this run only; they are deleted when it ends, or now if it cannot start.
    """
    runs_dir = runs_dir or RUNS_DIR
    runs_dir.mkdir(parents=True, exist_ok=True)
    current_training(runs_dir)  # clears a stale lock first
    lock = runs_dir / LOCK_FILE
    try:
        if not _claim(lock, {"pid": os.getpid(), "run_dir": "", "owner": owner}):
            raise TrainingBusyError()
        try:
            run_dir = new_run_dir(config.architecture, runs_dir)
            request = TrainingRequest(config.to_json(), str(data_source), str(init_model) if init_model else None,
                                      str(photos) if photos else None, str(votes) if votes else None,
                                      [str(path) for path in scratch or []])
            write_json(run_dir / REQUEST_FILE, request.__dict__)
            write_json(run_dir / PROGRESS_FILE, TrainingStatus("starting", config.epochs).to_json())
            with open(run_dir / LOG_FILE, "ab") as log:
                worker = subprocess.Popen(
                    [sys.executable, "-m", "core.background", str(run_dir), str(runs_dir)],
                    cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                    start_new_session=True,  # the run survives the server that started it
                )
            write_json(lock, {"pid": worker.pid, "run_dir": str(run_dir), "owner": owner})
        except BaseException:
            lock.unlink(missing_ok=True)
            raise
    except BaseException:
        remove_scratch(scratch or [])
        raise
    return run_dir


def remove_scratch(paths: list) -> None:
    for path in map(Path, paths):
        shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)


def _claim(lock: Path, holder: dict) -> bool:
    """Create `lock` already holding `holder`; False if it exists.

    The content is written first and the lock appears with it in one step (a hard link, which
    fails if the name is taken): of two tabs pressing Train together exactly one wins, and the
    other never reads an empty lock, which it would take for a dead run's and remove.
    """
    partial = lock.with_name(f".{lock.name}.{os.getpid()}.{threading.get_ident()}")
    partial.write_text(json.dumps(holder))
    try:
        os.link(partial, lock)
        return True
    except FileExistsError:
        return False
    finally:
        partial.unlink(missing_ok=True)


def cancel_training(runs_dir: Path | None = None, visitor: str | None = None) -> bool:
    """Ask the running worker to stop after its current batch. False when nothing is training, or when
    `visitor` (a page's session) is not the one who started it; None is the operator (a terminal)."""
    running = current_training(runs_dir)
    if running is None or (visitor is not None and not running.owned_by(visitor)):
        return False
    (running.run_dir / CANCEL_FILE).touch()
    return True


def read_status(run_dir: Path, alive: bool | None = None) -> TrainingStatus:
    """The run's progress.json. A status that says the run is under way while no worker runs it (alive
    False, or None: ask the lock) reads "interrupted": the worker was killed or crashed."""
    try:
        status = TrainingStatus.from_json(json.loads((Path(run_dir) / PROGRESS_FILE).read_text()))
    except (OSError, ValueError, TypeError):
        status = TrainingStatus("unknown")
    if status.in_flight:
        if alive is None:
            running = current_training(Path(run_dir).parent)
            alive = running is not None and running.run_dir == Path(run_dir)
        if not alive:
            status.status = INTERRUPTED
            status.error = ("the training process stopped before the run ended (killed or crashed); the best "
                            f"epoch so far is kept; continue it with: python scripts/train.py --resume {run_dir}")
    return status


def wait_for(run_dir: Path, timeout_s: float, runs_dir: Path | None = None) -> TrainingStatus:
    """Block until the run's worker is gone (or the timeout passes); return its last status."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        running = current_training(runs_dir)
        if running is None or running.run_dir != Path(run_dir):
            break
        time.sleep(0.5)
    return read_status(run_dir)


# -- the worker process -------------------------------------------------------------------------


class _CancelledBeforeTraining(Exception):
    """Cancel pressed while the data was still being read: the run stops before Keras is even loaded."""


def _stop_if_cancelled(run_dir: Path) -> None:
    if cancel_requested(run_dir):
        raise _CancelledBeforeTraining


def cancel_requested(run_dir: Path) -> bool:
    """Whether Cancel was pressed for the run (it stops after its current batch, or its data's current file)."""
    return (Path(run_dir) / CANCEL_FILE).exists()


def _work(run_dir: Path, runs_dir: Path) -> int:
    from core.data import load_dataset
    from core.runs import STATE_FILE
    from core.votes import attach_found_votes

    request = TrainingRequest.from_json(json.loads((run_dir / REQUEST_FILE).read_text()))
    config = TrainConfig.from_json(request.config)
    status = TrainingStatus("loading data", config.epochs)
    last_write = [0.0]

    def report(**changes) -> None:
        for name, value in changes.items():
            setattr(status, name, value)
        write_json(run_dir / PROGRESS_FILE, status.to_json())
        last_write[0] = time.monotonic()

    def on_progress(progress: EpochProgress) -> None:
        # Batches are reported at most every second; epoch ends always.
        if progress.batch is not None and time.monotonic() - last_write[0] < 1.0:
            return
        report(status="training", epoch=progress.epoch, batch=progress.batch, batches=progress.batches,
               logs=progress.logs, elapsed_s=progress.elapsed_s, eta_s=progress.eta_s, history=progress.history)

    def reading(what: str):
        def progress(done: int, total: int) -> None:
            _stop_if_cancelled(run_dir)  # a cancel while the data is read stops it, not the first batch
            report(loaded=done, total=total, reading=what)
        return progress

    report()
    try:
        dataset = load_dataset(request.data, progress=reading("dataset"))
        if request.votes:
            attach_found_votes(dataset, request.votes)
        photos = load_dataset(request.photos, progress=reading("photos")) if request.photos else None
        remove_scratch(request.scratch)  # read into memory (and the dataset cache): the uploads are not needed
        _stop_if_cancelled(run_dir)
        from core.training import train  # Keras: after the data, so that bad data is said seconds sooner

        init_model = Path(request.init_model) if request.init_model else None
        metadata = train(config, dataset, run_dir, on_progress=on_progress, should_stop=functools.partial(cancel_requested, run_dir),
                         init_model=init_model, photos=photos)
        state = run_dir / STATE_FILE
        report(status=metadata.status, metrics=metadata.metrics or None,
               history=ResumeState.from_json(json.loads(state.read_text())).history if state.exists() else [])
        return 0
    except _CancelledBeforeTraining:
        report(status=CANCELLED)
        return 0
    except Exception as error:  # the page shows it; the log keeps the traceback
        report(status=FAILED, error=f"{type(error).__name__}: {error}")
        raise
    finally:
        remove_scratch(request.scratch)
        lock = runs_dir / LOCK_FILE
        try:
            if json.loads(lock.read_text()).get("pid") == os.getpid():
                lock.unlink()
        except (OSError, ValueError):
            pass


if __name__ == "__main__":
    sys.exit(_work(Path(sys.argv[1]), Path(sys.argv[2])))
