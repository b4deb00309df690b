"""The trade-off between FER+'s votes and FER2013's own labels (issue 25): one training run per share of
FER2013's one-hot label mixed into each face's vote distribution, each scored on test/ against both label sets.

    python scripts/train.py --recipe ferplus --label-share 0.25 --data fer2013.zip     # one point of the curve
    python benchmarks/label_share.py --append RUN_DIR       # add that run's scores to the log
    python benchmarks/label_share.py                        # the table and docs/figures/label_share.png

Share 0 trains on the votes alone, share 1 on FER2013's labels alone (with the same faces: those whose
majority is not-a-face or unknown are left out either way). A run's scores are the ones its training wrote
to metadata.json at its best epoch (the Keras model with its test-time views), so the log needs no data.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.runs import read_run, write_text  # noqa: E402
from core.training import TrainConfig  # noqa: E402

LOG = ROOT / "benchmarks" / "label_share_log.csv"
FIGURE = ROOT / "docs" / "figures" / "label_share.png"
COLUMNS = ["label_share", "run", "epochs", "seed", "cpu_hours", "validation_ferplus", "test_ferplus",
           "test_fer2013", "test_fer2013_5class"]


def scores(run_dir: Path) -> dict:
    """One row of the log from a finished run's metadata.json."""
    run = read_run(run_dir)
    if "test_ferplus" not in run.metrics:
        raise SystemExit(f"error: {run_dir} was not trained and scored with FER+ votes")
    config = TrainConfig.from_json(run.recipe or {})
    return {"label_share": config.label_share, "run": run.name, "epochs": run.epochs_trained,
            "seed": config.seed, "cpu_hours": round((run.training_cpu_seconds or 0) / 3600, 2),
            "validation_ferplus": run.accuracy("validation"), "test_ferplus": run.accuracy("test_ferplus"),
            "test_fer2013": run.accuracy("test"), "test_fer2013_5class": run.accuracy("test", five_emotions=True)}


def append(run_dir: Path, log_file: Path = LOG) -> None:
    log = pd.read_csv(log_file) if log_file.exists() else pd.DataFrame(columns=COLUMNS)
    row = scores(run_dir)
    if row["run"] in set(log["run"]):
        raise SystemExit(f"error: {row['run']} is already in {log_file}")
    write_text(log_file, pd.concat([log, pd.DataFrame([row])]).to_csv(index=False))


def report(log_file: Path = LOG, figure_file: Path = FIGURE) -> None:
    log = pd.read_csv(log_file).sort_values("label_share")
    print("| share of FER2013's label | epochs | CPU-hours | validation (majority) | FER+ majority | FER2013 labels, 7 / 5 |")
    print("|---|---|---|---|---|---|")
    for _, row in log.iterrows():
        print(f"| {row.label_share:g} | {row.epochs} | {row.cpu_hours:.2f} | {row.validation_ferplus:.1%} | {row.test_ferplus:.1%} "
              f"| {row.test_fer2013:.1%} / {row.test_fer2013_5class:.1%} |")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 3.2), dpi=110)
    for column, label in (("test_ferplus", "FER+ majority"), ("test_fer2013_5class", "FER2013's labels, the seed's 5"),
                          ("test_fer2013", "FER2013's labels, 7")):
        axis.plot(log["label_share"], log[column] * 100, marker="o", label=label)
    axis.set_xlabel("share of FER2013's one-hot label in the targets")
    axis.set_ylabel("accuracy on test/ (%)")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure_file.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(figure_file)
    print(f"\nfigure: {figure_file}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--append", type=Path, metavar="RUN_DIR", help="add this finished run's scores to the log")
    parser.add_argument("--log", type=Path, default=LOG, help=f"the log (default: {LOG.relative_to(ROOT)})")
    parser.add_argument("--figure", type=Path, default=FIGURE, help=f"where to draw the curve (default: {FIGURE.relative_to(ROOT)})")
    args = parser.parse_args(argv)
    if args.append:
        append(args.append, args.log)
    report(args.log, args.figure)
    return 0


if __name__ == "__main__":
    sys.exit(main())
