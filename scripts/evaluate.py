"""Score a model on a labelled dataset: accuracy, per-class table, confusion matrix.

    python scripts/evaluate.py --data ../shared/data/fer2013/fer2013.zip --json
    python scripts/evaluate.py --data my_faces/ --model runs/20261125-083000-vgg --figures out/

When the data has a test/ split, that split is scored; otherwise every image.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.data import DatasetError, load_dataset  # noqa: E402
from core.evaluation import confusion_figure, evaluate, recall_figure  # noqa: E402
from core.paths import SHIPPED_MODEL_DIR  # noqa: E402
from core.recognise import load_classifier  # noqa: E402
from core.runs import ModelError  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="folder, .zip or fer2013.csv")
    parser.add_argument("--model", type=Path, default=SHIPPED_MODEL_DIR, help="model folder (default: the shipped model)")
    parser.add_argument("--split", default="auto", help="split to score: test, train, private, all (default: test if present, else all)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--figures", type=Path, help="write confusion-matrix and recall PNGs to this folder")
    args = parser.parse_args()
    try:
        classifier = load_classifier(args.model)
        dataset = load_dataset(args.data)
        evaluation = evaluate(classifier, dataset, None if args.split == "all" else args.split)
    except (DatasetError, ModelError, ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for warning in dataset.report.warnings():
        print(f"warning: {warning}", file=sys.stderr)

    report = evaluation.summary()
    if args.figures:
        args.figures.mkdir(parents=True, exist_ok=True)
        confusion_figure(evaluation.scores).savefig(args.figures / "confusion_matrix.png", dpi=110)
        recall_figure(evaluation.scores).savefig(args.figures / "recall.png", dpi=110)
        if evaluation.seed_scores:
            confusion_figure(evaluation.seed_scores).savefig(args.figures / "confusion_matrix_5class.png", dpi=110)
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"model {classifier.loaded.path.name} on {args.data}: {report['n']} images")
    print(f"accuracy: {report['accuracy']:.2%}")
    if report["accuracy_5class"] is not None:
        print(f"accuracy on the seed's 5 emotions: {report['accuracy_5class']:.2%} (n={report['n_5class']})")
    print(evaluation.scores.table().round(3).to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main())
