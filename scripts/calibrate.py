"""Fit a model's temperature on its validation faces and store it in the model's metadata.json.

    python scripts/calibrate.py --model models/emovoice-vgg --data ../shared/data/fer2013/fer2013.zip

Training fits the temperature itself when a run finishes; this refits it on data you name. The
validation faces are the ones training held out and scored (core.training.validation_faces): the same
stratified, seeded share of train/, of the model's own emotions, labelled by the FER+ taggers' majority
when the model trained on votes, as training labels them: the votes file it recorded, else one found beside
--data, or --votes. Predictions do not change; the probabilities that Try it shows and that choose a strong or
normal voice do.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.records import Calibration  # noqa: E402  (plain dataclasses: nothing heavy)


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True, help="model folder to calibrate (its metadata.json is updated)")
    parser.add_argument("--data", required=True, help="the dataset the model was trained on (folder, .zip or fer2013.csv)")
    parser.add_argument("--votes", type=Path, metavar="CSV", help="FER+ votes (fer2013new.csv or ferplus.csv) to fit "
                        "against; not given: the file the model trained on, else one found beside --data")
    parser.add_argument("--json", action="store_true", help="print the report as one JSON object")
    return parser.parse_args(argv)


def calibrate(model_dir: Path, images, labels) -> Calibration:
    """Fit the temperature of the model in `model_dir` on (N, 48, 48) faces and their class indexes, through
    the product's own inference path (TensorFlow Lite, test-time views included), and store it with its
    report (temperature, ECE and NLL before and after) in the model's metadata.json."""
    from core.calibration import calibration_report, fit_temperature
    from core.recognise import load_classifier
    from core.runs import read_run, write_run

    raw = load_classifier(model_dir).raw_probabilities(images)
    report = calibration_report(raw, labels, fit_temperature(raw, labels))
    run = read_run(model_dir)
    run.temperature, run.calibration = report.temperature, report
    write_run(run, model_dir)
    return report


def _votes_to_fit_against(given: Path | None, trained_on: str | None, data: str) -> Path | None:
    """The votes whose majority labels the faces, as in the model's own training: None for a model trained on
    labels. A votes file recorded on another machine is looked for beside the data instead."""
    from core.votes import votes_beside

    if given or not trained_on:
        return given
    found = Path(trained_on) if Path(trained_on).is_file() else votes_beside(data)
    if found is None:
        raise ValueError(f"the model trained on FER+ votes ({Path(trained_on).name}), and none lie beside {data}: "
                         "give --votes CSV")
    return found


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    from core.data import DatasetError, load_dataset  # only once the arguments are good
    from core.runs import ModelError, read_run
    from core.training import TrainConfig, validation_faces
    from core.votes import VotesError, attach_found_votes

    try:
        metadata = read_run(args.model)
        recipe = metadata.recipe or {}
        dataset = load_dataset(args.data)
        if not dataset.training_split():
            raise ValueError(f"{args.data} has no train/ split or class folders to take the validation faces from")
        votes = _votes_to_fit_against(args.votes, metadata.dataset and metadata.dataset.votes, args.data)
        if votes:
            attach_found_votes(dataset, votes)
        validation = validation_faces(dataset, tuple(metadata.classes),
                                      recipe.get("validation_fraction", TrainConfig.validation_fraction))
        if len(validation) == 0:
            raise ValueError(f"{args.data} holds no train/ faces of the model's emotions")
        report = calibrate(args.model, validation.images, validation.labels)
    except (DatasetError, ModelError, VotesError, ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(asdict(report)))
    else:
        against = f"their FER+ majority ({votes.name})" if votes else "their labels"
        print(f"{args.model}: temperature {report.temperature} fitted on {report.n} validation faces, against {against}; "
              f"ECE {report.ece_before:.3f} -> {report.ece_after:.3f}, "
              f"NLL {report.nll_before:.3f} -> {report.nll_after:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
