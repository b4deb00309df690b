"""Validation accuracy per epoch across every training run of the shipped recipe.

    python benchmarks/training_curve.py                              # the table and the figure
    python benchmarks/training_curve.py --append RUN_DIR --stage 4   # log a finished run

benchmarks/training_log.csv holds one row per epoch: the stage (one run, warm-started from an
earlier stage's best epoch), the epoch within it and in all (counted on from the model it started
from, so two runs from one model branch there), the learning rate and the accuracies (per-epoch
validation, without test-time augmentation). --append adds a run's history.csv.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
LOG = ROOT / "benchmarks" / "training_log.csv"
FIGURE = ROOT / "docs" / "figures" / "training_curve.png"
COLUMNS = ["stage", "epoch", "total_epoch", "lr", "accuracy", "val_accuracy", "stage_cpu_hours"]


def append(run_dir: Path, stage: str, cpu_hours: float | None) -> None:
    history = pd.read_csv(run_dir / "history.csv")
    metadata = json.loads((run_dir / "metadata.json").read_text())
    log = pd.read_csv(LOG) if LOG.exists() else pd.DataFrame(columns=COLUMNS)
    if stage in set(log["stage"].astype(str)):
        raise SystemExit(f"error: stage {stage} is already in {LOG}")
    # A run starts where the model it was warm-started from stopped: two runs from the same model branch there.
    start = metadata["lineage"]["epochs"] if "lineage" in metadata else int(log["total_epoch"].max()) if len(log) else 0
    if cpu_hours is None:
        cpu_hours = round(metadata["training_cpu_seconds"] / 3600, 2)  # the training process's own CPU time
    rows = history.assign(stage=stage, total_epoch=history["epoch"] + start, stage_cpu_hours=cpu_hours)[COLUMNS]
    partial = LOG.with_suffix(".partial")
    pd.concat([log, rows]).to_csv(partial, index=False)
    partial.replace(LOG)


def report() -> None:
    log = pd.read_csv(LOG, dtype={"stage": str})
    stages = log.groupby("stage", sort=False).agg(
        epochs=("epoch", "max"), total_epochs=("total_epoch", "max"), peak_lr=("lr", "max"),
        best_val=("val_accuracy", "max"), last_val=("val_accuracy", "last"), cpu_hours=("stage_cpu_hours", "first"))
    stages["total_cpu_hours"] = stages["cpu_hours"].cumsum()
    print("| stage | epochs | total epochs | peak learning rate | validation, last epoch | best | CPU-hours | CPU-hours spent so far |")
    print("|---|---|---|---|---|---|---|---|")
    for stage, row in stages.iterrows():
        print(f"| {stage} | {int(row.epochs)} | {int(row.total_epochs)} | {row.peak_lr:.3g} | {row.last_val:.1%} | {row.best_val:.1%} "
              f"| {row.cpu_hours:.1f} | {row.total_cpu_hours:.1f} |")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 3.2), dpi=110)
    for stage, rows in log.groupby("stage", sort=False):
        axis.plot(rows["total_epoch"], rows["val_accuracy"], label=f"stage {stage}")
    axis.set_xlabel("epochs, all stages")
    axis.set_ylabel("validation accuracy")
    axis.grid(alpha=0.3)
    axis.legend()
    figure.tight_layout()
    figure.savefig(FIGURE)
    print(f"\nfigure: {FIGURE.relative_to(ROOT)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--append", type=Path, metavar="RUN_DIR", help="add this run's history.csv as a new stage")
    parser.add_argument("--stage", help="the new stage's name (with --append)")
    parser.add_argument("--cpu-hours", type=float, help="CPU-hours the run took (default: from its metadata.json)")
    args = parser.parse_args()
    if args.append:
        if args.stage is None:
            parser.error("--append needs --stage")
        append(args.append, args.stage, args.cpu_hours)
    report()
    return 0


if __name__ == "__main__":
    sys.exit(main())
