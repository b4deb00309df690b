"""A run sized to a time budget: its first epoch is trained and timed, and its epochs (with the learning-rate
schedule over them) cut to what fits (scripts/train.py --minutes)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from core.training.config import TrainConfig
from core.training.fit import EpochProgress, train


def sized_to_budget(config: TrainConfig, minutes: float, dataset, run_dir: Path, init_model: Path | None = None,
                    photos=None, on_progress: Callable[[EpochProgress], None] | None = None) -> tuple[TrainConfig, float]:
    """Train the first epoch and time it; return the config with the epochs that fit in `minutes` in all (at
    least the one done, at most config.epochs), and the first epoch's seconds. Resume the run from that
    epoch's checkpoint with the returned config."""
    started, first_epoch_ended = time.monotonic(), []

    def timed(report: EpochProgress) -> None:
        if report.batch is None and not first_epoch_ended:
            first_epoch_ended.append(time.monotonic())
        if on_progress:
            on_progress(report)

    # Stopped at the second epoch's first batch: the first is saved and resumable. Start-up counts in its time.
    train(config, dataset, run_dir, on_progress=timed, should_stop=lambda: bool(first_epoch_ended),
          init_model=init_model, photos=photos)
    first_epoch_s = (first_epoch_ended or [time.monotonic()])[0] - started
    return replace(config, epochs=max(1, min(config.epochs, int(minutes * 60 // first_epoch_s)))), first_epoch_s
