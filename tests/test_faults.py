"""Kills, full disks and races lose nothing that was saved, and leave nothing half-written to load.

The kills need real processes (a SIGKILL cannot be sent to a function), so they are subprocesses, and slow.
"""

from __future__ import annotations

import errno
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from core.background import TrainingBusyError, cancel_training, current_training, start_training, wait_for
from core.runs import MODEL_FILE, list_runs, load_model, save_model
from core.paths import SHIPPED_MODEL_DIR
from core.training import recipe
from support.photos import PROJECT_ROOT as ROOT
from support.scripts import run_main


@pytest.mark.slow
def test_sigkill_during_training_and_saves_never_breaks_a_model(sample_zip, tmp_path):
    """Kill scripts/train.py at 3 random moments of its training (a save happens every epoch), one in each
    third of the 4 s after its first save, so that early, middle and late moments of an epoch are all tried."""
    runs = tmp_path / "runs"
    runs.mkdir()
    rng = random.Random(7)
    for third in range(3):
        process = subprocess.Popen(
            [sys.executable, "scripts/train.py", "--data", str(sample_zip), "--arch", "seed", "--epochs", "200",
             "--batch-size", "16", "--runs-dir", str(runs), "--quiet"],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        before = set(runs.iterdir())
        while process.poll() is None and not any((run / "state.json").exists() for run in set(runs.iterdir()) - before):
            time.sleep(0.05)  # until the first epoch is saved: start-up has nothing to lose
        time.sleep(rng.uniform(third * 4 / 3, (third + 1) * 4 / 3))
        process.kill()
        process.wait()
        for run in set(runs.iterdir()) - before:  # the killed run (earlier ones are not written again)
            if (run / MODEL_FILE).exists():
                load_model(run)  # whatever sits at model.keras is a whole model
    assert all(load_model(run.path) for run in list_runs(runs))
    assert load_model(SHIPPED_MODEL_DIR)
    assert any((run / MODEL_FILE).exists() for run in runs.iterdir()), "no kill came late enough to save an epoch"
    # and a new run trains beside the killed ones
    assert run_main("train", "--data", sample_zip, "--arch", "seed", "--epochs", "1", "--runs-dir", runs, "--quiet") == 0


class FullDisk:
    """A model whose save writes half a file and then finds the disk full."""

    def save(self, path):
        Path(path).write_bytes(b"PK\x03\x04 half a model")
        raise OSError(errno.ENOSPC, "No space left on device")


def test_full_disk_during_save_keeps_the_previous_model(tmp_path):
    target = tmp_path / "run" / MODEL_FILE
    target.parent.mkdir()
    target.write_bytes(b"the previous, complete model")
    with pytest.raises(OSError, match="No space left"):
        save_model(FullDisk(), target)
    assert target.read_bytes() == b"the previous, complete model"
    assert [p.name for p in target.parent.iterdir()] == [MODEL_FILE]


def test_tabs_pressing_train_together_start_one_run_and_its_killed_worker_frees_the_lock(sample_zip, tmp_path):
    outcomes = []
    barrier = threading.Barrier(6)

    def press_train():
        barrier.wait()
        try:
            outcomes.append(start_training(recipe("seed", epochs=100, batch_size=16), str(sample_zip), tmp_path))
        except TrainingBusyError as error:
            outcomes.append(error)

    threads = [threading.Thread(target=press_train) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    started = [o for o in outcomes if isinstance(o, Path)]
    assert len(started) == 1 and sum(isinstance(o, TrainingBusyError) for o in outcomes) == 5
    running = current_training(tmp_path)
    assert running.run_dir == started[0]

    os.kill(running.pid, signal.SIGKILL)  # the worker dies without a word: the lock must not outlive it
    deadline = time.monotonic() + 10
    while current_training(tmp_path) is not None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert current_training(tmp_path) is None  # a new run may start
    second = start_training(recipe("seed", epochs=1, batch_size=32), str(sample_zip), tmp_path)
    assert second != started[0]
    assert wait_for(second, 240, tmp_path).status == "finished"
    assert current_training(tmp_path) is None


def test_cancel_pressed_while_the_data_is_read_stops_the_run_before_training(sample_zip, tmp_path):
    """The worker checks for Cancel as it reads the data, and once more before it loads Keras: a run cancelled
    that early never trains (no metadata.json: train() never began) and frees the lock at once."""
    run_dir = start_training(recipe("seed", epochs=100, batch_size=16), str(sample_zip), tmp_path)
    assert cancel_training(tmp_path)  # the worker is still starting Python
    status = wait_for(run_dir, 60, tmp_path)
    assert status.status == "cancelled", status
    assert not (run_dir / "metadata.json").exists() and current_training(tmp_path) is None
