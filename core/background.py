"""Training in the background: one run at a time, in its own process, that outlives the page.

The dashboard starts a run with `start_training`; a worker process (`python -m
core.background RUN_DIR`) trains and writes `progress.json` into the run folder.
Any page, after any reload, finds the run through the lock file and reads its
progress; `cancel_training` asks the worker to stop after the current batch.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import asdict
from pathlib import Path

from core.paths import PROJECT_ROOT, RUNS_DIR
from core.runs import new_run_dir, write_json
from core.training import Cancelled, Progress, TrainConfig, train

LOCK_FILE = ".training.lock"
REQUEST_FILE = "request.json"
PROGRESS_FILE = "progress.json"
CANCEL_FILE = "cancel"
LOG_FILE = "worker.log"


class TrainingBusyError(RuntimeError):
    """Another run is already training."""


def _pid_alive(pid: int) -> bool:
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


def current_training(runs_dir: Path | None = None) -> dict | None:
    """The run that is training now, {"run_dir", "pid", "progress"}, or None. Clears a stale lock."""
    lock = (runs_dir or RUNS_DIR) / LOCK_FILE
    try:
        holder = json.loads(lock.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        holder = {"pid": -1}
    if holder.get("pid", -1) <= 0 or not _pid_alive(holder["pid"]):
        lock.unlink(missing_ok=True)  # the worker died (killed, crashed, machine restarted)
        return None
    run_dir = Path(holder["run_dir"])
    return {"run_dir": run_dir, "pid": holder["pid"], "progress": read_progress(run_dir)}


def start_training(config: TrainConfig, data_source: str, runs_dir: Path | None = None,
                   init_model: Path | None = None, photos: Path | None = None) -> Path:
    """Start a background run and return its folder; raises TrainingBusyError if one is running.

    init_model and photos are train()'s: a model to start from, labelled photos to learn beside the data.
    """
    runs_dir = runs_dir or RUNS_DIR
    runs_dir.mkdir(parents=True, exist_ok=True)
    current_training(runs_dir)  # clears a stale lock first
    lock = runs_dir / LOCK_FILE
    if not _claim(lock, {"pid": os.getpid(), "run_dir": ""}):
        raise TrainingBusyError("a training run is already in progress; wait for it or cancel it")
    try:
        run_dir = new_run_dir(config.architecture, runs_dir)
        write_json(run_dir / REQUEST_FILE, {"config": asdict(config), "data": str(data_source),
                                            "init_model": str(init_model) if init_model else None,
                                            "photos": str(photos) if photos else None})
        write_json(run_dir / PROGRESS_FILE, {"status": "starting", "epochs": config.epochs, "history": []})
        with open(run_dir / LOG_FILE, "ab") as log:
            worker = subprocess.Popen(
                [sys.executable, "-m", "core.background", str(run_dir), str(runs_dir)],
                cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,  # the run survives the server that started it
            )
        write_json(lock, {"pid": worker.pid, "run_dir": str(run_dir)})
    except BaseException:
        lock.unlink(missing_ok=True)
        raise
    return run_dir


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


def cancel_training(runs_dir: Path | None = None) -> bool:
    """Ask the running worker to stop after its current batch. False when nothing is training."""
    running = current_training(runs_dir)
    if running is None:
        return False
    (running["run_dir"] / CANCEL_FILE).touch()
    return True


def read_progress(run_dir: Path) -> dict:
    try:
        return json.loads((Path(run_dir) / PROGRESS_FILE).read_text())
    except (OSError, ValueError):
        return {"status": "unknown", "history": []}


def wait_for(run_dir: Path, timeout_s: float, runs_dir: Path | None = None) -> dict:
    """Block until the run's worker is gone (or the timeout passes); return its last progress."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        running = current_training(runs_dir)
        if running is None or running["run_dir"] != Path(run_dir):
            break
        time.sleep(0.5)
    return read_progress(run_dir)


# -- the worker process -------------------------------------------------------------------------


def _work(run_dir: Path, runs_dir: Path) -> int:
    from core.data import load_dataset

    request = json.loads((run_dir / REQUEST_FILE).read_text())
    config = TrainConfig(**request["config"])
    state = {"status": "loading data", "epochs": config.epochs, "history": []}
    last_write = [0.0]

    def report(**changes) -> None:
        state.update(changes)
        write_json(run_dir / PROGRESS_FILE, state)
        last_write[0] = time.monotonic()

    def on_progress(progress: Progress) -> None:
        # Batches are reported at most every second; epoch ends always.
        if progress.batch is not None and time.monotonic() - last_write[0] < 1.0:
            return
        report(status="training", epoch=progress.epoch, batch=progress.batch, batches=progress.batches,
               logs=progress.logs, elapsed_s=progress.elapsed_s, eta_s=progress.eta_s, history=progress.history)

    report()
    try:
        dataset = load_dataset(request["data"], progress=lambda done, total: report(loaded=done, total=total))
        photos = load_dataset(request["photos"], progress=lambda done, total: report(
            loaded=done, total=total, reading="photos")) if request.get("photos") else None
        init_model = Path(request["init_model"]) if request.get("init_model") else None
        metadata = train(config, dataset, run_dir, on_progress=on_progress, should_stop=(run_dir / CANCEL_FILE).exists,
                         init_model=init_model, photos=photos)
        report(status=metadata["status"], metrics=metadata.get("metrics"),
               history=json.loads((run_dir / "state.json").read_text())["history"] if (run_dir / "state.json").exists() else [])
        return 0
    except Cancelled:
        report(status="cancelled")
        return 0
    except Exception as error:  # the page shows it; the log keeps the traceback
        report(status="failed", error=f"{type(error).__name__}: {error}")
        raise
    finally:
        lock = runs_dir / LOCK_FILE
        try:
            if json.loads(lock.read_text()).get("pid") == os.getpid():
                lock.unlink()
        except (OSError, ValueError):
            pass


if __name__ == "__main__":
    sys.exit(_work(Path(sys.argv[1]), Path(sys.argv[2])))
