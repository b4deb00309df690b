"""Real photos taught to the model, scored on people it never saw: the photos split in two by person.

    python benchmarks/photo_folds.py --data ../shared/data/fer2013/fer2013.zip --photos ../shared/data/wild/wild-dev.zip \
        --model runs/BASE    # a model never taught these photos (docs/photos.md)
    ... --model runs/BASE runs/BASE2 --tta none    # an ensemble (scripts/ensemble.py): each member taught, then averaged

The runs follow recipes/fine_tune.toml unless told otherwise, and train FER2013's faces on their FER+ votes
when votes are given (--votes) or found beside --data, as scripts/train.py does.

The photos (class folders, as benchmarks/wild.py reads them) are split by person, the file name without
its trailing number (LFW's Tony_Blair_0102.jpg is Tony_Blair), into two halves of about equal size. For
each half, a run warm-started from --model trains on FER2013's training faces plus the other half's photos
(scripts/train.py --photos, same options), then both the run and --model answer the held half through the
Try-It path (core.recognise: the largest face, jittered views; no face counts as wrong). Several --model
are an ensemble: each member is taught as one model would be, and the taught members averaged. Prints accuracy on
7 emotions and on the seed's 5, and each emotion's recall, pooled over both halves; and each run's FER2013
validation and test/ accuracy beside --model's. The estimate for a model trained on all the photos.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from core.data import load_dataset, source_fingerprint  # noqa: E402
from core.emotions import SEED_EMOTIONS  # noqa: E402
from core.recognise import load_classifier, recognise  # noqa: E402
from core.runs import read_run  # noqa: E402
from core.records import RunMetadata  # noqa: E402
from core.training import FINE_TUNE, recipe, save_ensemble, train  # noqa: E402
from core.training.config import TTA_CHOICES  # noqa: E402
from core.votes import attach_found_votes  # noqa: E402
from wild import labelled_photos  # noqa: E402


def person(file_name: str) -> str:
    return re.sub(r"[_ -]?\d+$", "", Path(file_name).stem)


def halves(names: list[str]) -> np.ndarray:
    """Each photo's half (0 or 1), given each photo's person: whole people, largest first, to the smaller half."""
    counts = {name: names.count(name) for name in set(names)}
    half_of, sizes = {}, [0, 0]
    for name in sorted(counts, key=lambda n: (-counts[n], n)):
        half_of[name] = int(np.argmin(sizes))
        sizes[half_of[name]] += counts[name]
    return np.array([half_of[name] for name in names])


def answers(model_dir: Path, photos: list[tuple[str, str, bytes]]) -> list[dict[str, float] | None]:
    """The probabilities of each photo's main face, None where no face was found."""
    classifier = load_classifier(model_dir)
    main_faces = [recognise(classifier, photo).main_face for _, _, photo in photos]
    return [None if face is None else face.probabilities for face in main_faces]


def taught(models: list[Path], configs: list, fer, photos, run_dir: Path, tta: str | None) -> RunMetadata:
    """Each model warm-started on FER2013's faces plus the photos (its own config); several are then averaged."""
    if len(models) == 1:
        return train(configs[0], fer, run_dir, init_model=models[0], photos=photos)
    members = [run_dir / f"member-{i}" for i in range(len(models))]
    for model, config, member in zip(models, configs, members):
        train(config, fer, member, init_model=model, photos=photos)
    return save_ensemble(members, fer, run_dir / "ensemble", tta)


def likeliest(probabilities: dict[str, float] | None, emotions) -> str | None:
    return None if probabilities is None else max(emotions, key=lambda e: probabilities.get(e, -1.0))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="FER2013 zip or folder")
    parser.add_argument("--votes", help="FER+ votes for --data (found beside it when not given)")
    parser.add_argument("--no-votes", action="store_true", help="train FER2013's faces on their own labels")
    parser.add_argument("--photos", type=Path, required=True, help="a folder or zip of class folders of photos")
    parser.add_argument("--model", type=Path, nargs="+", required=True,
                        help="the model to start from, never taught --photos; several: an ensemble of them")
    parser.add_argument("--tta", choices=TTA_CHOICES, help="an ensemble's test-time views (default: its members')")
    parser.add_argument("--epochs", type=int, default=FINE_TUNE["epochs"])
    parser.add_argument("--lr", type=float, default=FINE_TUNE["learning_rate"])
    parser.add_argument("--photo-repeat", type=int, default=FINE_TUNE["photo_repeat"])
    parser.add_argument("--keep-start", type=float, default=FINE_TUNE["keep_start"],
                        help="the --model's share kept in each run (train.py --keep-start)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--runs-dir", type=Path, help="keep the two runs here (default: thrown away)")
    args = parser.parse_args(argv)
    starts = [read_run(model) for model in args.model]
    for model, record in zip(args.model, starts):
        if record.photos and record.photos.fingerprint == source_fingerprint(args.photos):
            parser.error(f"{model} was taught these photos, so it cannot be scored on them: start from a model "
                         "that was not (the shipped model's stage 2, see docs/photos.md, Teaching it real photos)")

    fer = load_dataset(args.data)
    votes = None if args.no_votes else attach_found_votes(fer, args.votes)
    photos = list(labelled_photos(args.photos))
    people = [person(name) for name, _, _ in photos]
    half = halves(people)
    truth = [emotion for _, emotion, _ in photos]
    configs = [recipe(record.architecture, epochs=args.epochs, learning_rate=args.lr,
                      photo_repeat=args.photo_repeat, keep_start=args.keep_start, seed=args.seed) for record in starts]
    before: list[dict[str, float] | None] = [None] * len(photos)
    after: list[dict[str, float] | None] = [None] * len(photos)
    runs = []
    with tempfile.TemporaryDirectory() as scratch:
        start = starts[0] if len(starts) == 1 else \
            save_ensemble(args.model, fer, (args.runs_dir or Path(scratch)) / "photo-folds-start", args.tta)
        start_dir = Path(start.path)
        for held in (0, 1):
            taught_photos = Path(scratch) / f"photos-{1 - held}"
            for index in np.flatnonzero(half != held):
                name, emotion, photo = photos[index]
                (taught_photos / emotion).mkdir(parents=True, exist_ok=True)
                (taught_photos / emotion / f"{index}-{name}").write_bytes(photo)
            run_dir = (args.runs_dir or Path(scratch)) / f"photo-folds-held-{held}"
            run_dir.mkdir(parents=True, exist_ok=True)
            metadata = taught(args.model, configs, fer, load_dataset(taught_photos, cache_dir=Path(scratch) / "cache"),
                              run_dir, args.tta)
            runs.append(metadata)
            held_index = np.flatnonzero(half == held)
            held_photos = [photos[i] for i in held_index]
            for index, answer in zip(held_index, answers(Path(metadata.path), held_photos)):
                after[index] = answer
            for index, answer in zip(held_index, answers(start_dir, held_photos)):
                before[index] = answer
            print(f"half {held} held out: {len(held_photos)} photos of {len({people[i] for i in held_index})} "
                  f"people; taught {int((half != held).sum())}", file=sys.stderr, flush=True)

    emotions = sorted(set(truth), key=truth.index)
    print(f"{len(photos)} photos, {len(set(people))} people; FER2013 on {'votes ' + str(votes) if votes else 'its labels'}; "
          f"runs: --epochs {args.epochs} "
          f"--lr {args.lr} --photo-repeat {args.photo_repeat} --keep-start {args.keep_start} --seed {args.seed}, "
          f"from {' + '.join(map(str, args.model))}" + (f" (tta {start.tta})" if len(args.model) > 1 else "") + "\n")
    print("| model | accuracy (7) | accuracy (seed's 5) | " + " | ".join(emotions) + " |")
    print("|---|---|---|" + "---|" * len(emotions))
    start_name = " + ".join(model.name for model in args.model)
    for label, said in ((f"{start_name} (start)", before), ("taught the other half's photos", after)):
        right = [likeliest(s, s) == t for s, t in zip(said, truth)]
        # As benchmarks/wild.py counts them: photos of the five, the likeliest of the five
        five = [likeliest(s, SEED_EMOTIONS) == t for s, t in zip(said, truth) if t in SEED_EMOTIONS]
        recall = [np.mean([r for r, t in zip(right, truth) if t == e]) for e in emotions]
        print(f"| {label} | {np.mean(right):.1%} | {np.mean(five):.1%} | " + " | ".join(f"{r:.0%}" for r in recall) + " |")
    print("\nFER2013 (validation / test/ / test/ against the FER+ majority, with the model's test-time augmentation;"
          " validation is against the majority when the faces have votes):")
    for label, run in [(start_name, start)] + [(f"run holding half {held} out", run) for held, run in enumerate(runs)]:
        scores = [run.accuracy(split) for split in ("validation", "test", "test_ferplus")]
        print(f"  {label}: " + " / ".join("–" if score is None else f"{score:.1%}" for score in scores))
    return 0


if __name__ == "__main__":
    sys.exit(main())
