"""Validation accuracy per epoch across training runs, and against the CPU-hours spent on them.

    python benchmarks/training_curve.py                              # the table and the figure
    python benchmarks/training_curve.py --append RUN_DIR --stage 4   # log a finished run
    python benchmarks/training_curve.py --log benchmarks/training_log_ferplus.csv --per-epoch   # FER+ votes, original pixels
    python benchmarks/training_curve.py --log my_log.csv --figure my_curve.png                 # any log, any figure

benchmarks/training_log.csv is the equalised FER2013 copy used until 2026-12-06, validated on FER2013's labels;
benchmarks/training_log_ferplus.csv is FER2013's original pixels trained on FER+ votes, validated against the
taggers' majority. Each log draws its own figure (docs/figures/training_curve[_ferplus].png): validation per
epoch, and against the CPU-hours spent so far with the best so far (has more training stopped paying?).

benchmarks/training_log.csv holds one row per epoch: the stage (one run, warm-started from an
earlier stage's best epoch), the epoch within it and in all (counted on from the model it started
from, so two runs from one model branch there), the learning rate and the accuracies (per-epoch
validation, without test-time augmentation). --append adds a run's history.csv.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.runs import read_run, write_text  # noqa: E402
LOG = ROOT / "benchmarks" / "training_log.csv"
FIGURE = ROOT / "docs" / "figures" / "training_curve.png"
COLUMNS = ["stage", "epoch", "total_epoch", "lr", "accuracy", "val_accuracy", "stage_cpu_hours"]


def append(run_dir: Path, stage: str, cpu_hours: float | None, log_file: Path = LOG) -> None:
    history = pd.read_csv(run_dir / "history.csv")
    metadata = read_run(run_dir)
    log = pd.read_csv(log_file) if log_file.exists() else pd.DataFrame(columns=COLUMNS)
    if stage in set(log["stage"].astype(str)):
        raise SystemExit(f"error: stage {stage} is already in {log_file}")
    # A run starts where the model it was warm-started from stopped: two runs from the same model branch there.
    start = metadata.lineage.epochs if metadata.lineage else int(log["total_epoch"].max()) if len(log) else 0
    if cpu_hours is None:
        cpu_hours = round(metadata.training_cpu_seconds / 3600, 2)  # the training process's own CPU time
    rows = history.assign(stage=stage, total_epoch=history["epoch"] + start, stage_cpu_hours=cpu_hours)[COLUMNS]
    write_text(log_file, pd.concat([log, rows]).to_csv(index=False))


def budget(log: pd.DataFrame) -> pd.Series:
    """CPU-hours spent by the end of each row's epoch, every stage in the log's order, each stage's hours
    spread evenly over its epochs: accuracy against budget."""
    stage_hours = log.groupby("stage", sort=False)["stage_cpu_hours"].first()
    before = stage_hours.cumsum() - stage_hours
    epochs = log.groupby("stage", sort=False)["epoch"].transform("max")
    return log["stage"].map(before) + log["stage_cpu_hours"] * log["epoch"] / epochs


def figure_for(log_file: Path) -> Path:
    """docs/figures/training_curve.png for the first log, training_curve_ferplus.png for training_log_ferplus.csv."""
    return FIGURE if log_file == LOG else FIGURE.with_name(f"training_curve_{log_file.stem.removeprefix('training_log_')}.png")


def report(log_file: Path = LOG, per_epoch: bool = False, figure_file: Path | None = None) -> None:
    log = pd.read_csv(log_file, dtype={"stage": str})
    stages = log.groupby("stage", sort=False).agg(
        epochs=("epoch", "max"), total_epochs=("total_epoch", "max"), peak_lr=("lr", "max"),
        best_val=("val_accuracy", "max"), last_val=("val_accuracy", "last"), cpu_hours=("stage_cpu_hours", "first"))
    stages["total_cpu_hours"] = stages["cpu_hours"].cumsum()
    print("| stage | epochs | total epochs | peak learning rate | validation, last epoch | best | CPU-hours | CPU-hours spent so far |")
    print("|---|---|---|---|---|---|---|---|")
    for stage, row in stages.iterrows():
        print(f"| {stage} | {int(row.epochs)} | {int(row.total_epochs)} | {row.peak_lr:.3g} | {row.last_val:.1%} | {row.best_val:.1%} "
              f"| {row.cpu_hours:.1f} | {row.total_cpu_hours:.1f} |")
    spent = budget(log)
    if per_epoch:
        print("\n| total epochs | CPU-hours so far | validation |\n|---|---|---|")
        for row, hours in zip(log.itertuples(), spent):
            print(f"| {int(row.total_epoch)} | {hours:.2f} | {row.val_accuracy:.1%} |")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (by_epoch, by_budget) = plt.subplots(1, 2, figsize=(11, 3.6), dpi=110)
    for colour, (stage, rows) in zip(plt.cm.tab20.colors, log.groupby("stage", sort=False)):
        by_epoch.plot(rows["total_epoch"], rows["val_accuracy"], label=stage, color=colour)
        by_budget.plot(spent[rows.index], rows["val_accuracy"], lw=0.8, color=colour)
    by_budget.step(spent, log["val_accuracy"].cummax(), where="post", color="black", label="best so far")
    by_epoch.set_xlabel("epochs, counted on from the model a run started from")
    by_budget.set_xlabel("CPU-hours spent so far, every run in the order trained")
    for axis in (by_epoch, by_budget):
        axis.set_ylabel("validation accuracy")
        axis.grid(alpha=0.3)
        axis.set_ylim(bottom=max(0.0, log["val_accuracy"].quantile(0.05) - 0.02))  # the plateau, not the first epochs
    by_epoch.legend(fontsize=7)
    by_budget.legend(fontsize=7, loc="lower right")
    figure.tight_layout()
    figure_file = figure_file or figure_for(log_file)
    figure.savefig(figure_file)
    print(f"\nfigure: {figure_file.relative_to(ROOT) if figure_file.is_relative_to(ROOT) else figure_file}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--append", type=Path, metavar="RUN_DIR", help="add this run's history.csv as a new stage")
    parser.add_argument("--stage", help="the new stage's name (with --append)")
    parser.add_argument("--cpu-hours", type=float, help="CPU-hours the run took (default: from its metadata.json)")
    parser.add_argument("--log", type=Path, default=LOG, help=f"the log to read and append to (default: {LOG.relative_to(ROOT)})")
    parser.add_argument("--per-epoch", action="store_true", help="also print validation against CPU-hours, epoch by epoch")
    parser.add_argument("--figure", type=Path, help="where the figure goes (default: docs/figures/, named after the log)")
    args = parser.parse_args()
    if args.append:
        if args.stage is None:
            parser.error("--append needs --stage")
        append(args.append, args.stage, args.cpu_hours, args.log)
    report(args.log, args.per_epoch, args.figure)
    return 0


if __name__ == "__main__":
    sys.exit(main())
