"""Average several trained models into one model folder: an ensemble of seeds or snapshots of a recipe.

    python scripts/ensemble.py models/emovoice-vgg runs/20261202-232450-vgg \
        --data ../shared/data/fer2013/fer2013.zip --out runs/ensemble

The members' probabilities are averaged inside one graph, so the product converts and runs the folder
like any model (Try it, predict.py, evaluate.py, labelling; --model or the Train page's "make active").
Its metadata scores it on the validation faces and test/ as a finished training run is, and fits its
temperature; each face costs the members' time together (benchmarks/inference_options.py), times its
test-time views (--tta; default: the members' own).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.training.config import TTA_CHOICES  # noqa: E402  (no Keras: --help answers at once)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", type=Path, help="model folders (at least two) with the same emotions")
    parser.add_argument("--data", required=True, help="the dataset they were trained on (folder, .zip or fer2013.csv)")
    parser.add_argument("--out", type=Path, required=True, help="a new folder for the ensemble")
    parser.add_argument("--votes", type=Path, metavar="CSV", help="FER+ votes (fer2013new.csv or ferplus.csv); "
                        "default: found beside the data. With votes it is scored and calibrated against their majority")
    parser.add_argument("--tta", choices=TTA_CHOICES, help="the ensemble's test-time views "
                        "(default: the members'); each face costs members x views, so two members with none cost "
                        "what one costs with flip")
    args = parser.parse_args(argv)
    if len(args.models) < 2:
        return _fail("an ensemble needs at least two models")
    if args.out.exists() and any(args.out.iterdir()):
        return _fail(f"{args.out} is not empty: give a new folder")
    from core.data import DatasetError, load_dataset  # OpenCV and Keras: only once the arguments are good
    from core.runs import ModelError
    from core.training import save_ensemble
    from core.votes import VotesError, attach_found_votes

    try:
        dataset = load_dataset(args.data)
        attach_found_votes(dataset, args.votes)
        metadata = save_ensemble(args.models, dataset, args.out, args.tta)
    except (DatasetError, ModelError, VotesError, ValueError, OSError) as error:
        return _fail(str(error))
    print(json.dumps({"model": str(args.out), "architecture": metadata.architecture, "metrics": {
        split: {"n": score.n, "accuracy": score.accuracy, "accuracy_5class": score.accuracy_5class}
        for split, score in metadata.metrics.items()}},
        indent=2))
    return 0


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
