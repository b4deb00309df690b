"""Train an emotion model and save it as a run (see docs on training).

    python scripts/train.py --data fer2013.zip --recipe ferplus_adam_long       # the shipped model's base: FER+ votes as targets
    python scripts/train.py --data fer2013.zip                                  # the vgg recipe on FER2013's own labels
    python scripts/train.py --data fer2013.zip --recipe seed                    # the seed project's recipe
    python scripts/train.py --resume runs/20261125-083000-vgg                   # continue a stopped run
    python scripts/train.py --data fer2013.zip --recipe fine_tune --init models/emovoice-vgg --photos my-photos.zip
                                                      # adapt to real photos in class folders (angry/, happy/, ...)
    KERAS_BACKEND=jax python scripts/train.py --data fer2013.zip --minutes 30  # on a GPU (or several), in 30 minutes

Every recipe value has a flag (--epochs, --lr, --batch-size, ...) that changes it; the recipes are the
files in recipes/.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from dataclasses import asdict, fields
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.training.config import TrainConfig, recipe_names  # noqa: E402  (no Keras)

SHORT_FLAGS = {"architecture": "--arch", "learning_rate": "--lr"}  # the names the README has always used
TYPES = {"int": int, "float": float, "str": str}


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="FER2013-style folder or .zip, or fer2013.csv")
    parser.add_argument("--recipe", choices=recipe_names(), help="a named recipe from recipes/ (default: the "
                        "architecture's own, vgg)")
    recipe_flags = parser.add_argument_group("recipe values", "each changes one value of the recipe (TrainConfig)")
    for option in fields(TrainConfig):
        flags = [f"--{option.name.replace('_', '-')}"] + ([SHORT_FLAGS[option.name]] if option.name in SHORT_FLAGS else [])
        flags.sort(key=len)
        help_text = f"{option.metadata['help']} (default: {option.default})"
        if option.type == "bool":
            recipe_flags.add_argument(*flags, dest=option.name, action=argparse.BooleanOptionalAction, default=None,
                                      help=help_text)
        else:
            recipe_flags.add_argument(*flags, dest=option.name, type=TYPES[option.type], default=None,
                                      choices=option.metadata["choices"], help=help_text)
    parser.add_argument("--votes", metavar="CSV", help="FER+ votes (fer2013new.csv or ferplus.csv) to train on as "
                        "soft targets; found beside --data when not given (--no-votes: FER2013's labels)")
    parser.add_argument("--no-votes", action="store_true", help="train on the dataset's labels even when votes are found")
    parser.add_argument("--runs-dir", type=Path, help="where run folders go (default: runs/)")
    parser.add_argument("--resume", type=Path, metavar="RUN_DIR", help="continue a run from its last checkpoint")
    parser.add_argument("--init", type=Path, metavar="MODEL", help="warm-start from a trained model's weights")
    parser.add_argument("--photos", metavar="PATH", help="also train on labelled photos (class folders, folder or .zip); "
                        "their faces are cut as Try it cuts them")
    parser.add_argument("--minutes", type=float, help="a time budget: the first epoch is timed, and the run's "
                        "epochs (and its learning-rate schedule) are cut to what fits, --epochs at most")
    parser.add_argument("--activate", action="store_true", help="make the result the active model")
    parser.add_argument("--quiet", action="store_true", help="print only the final JSON")
    return parser


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    overrides = {option.name: getattr(args, option.name) for option in fields(TrainConfig)}
    from core.training.plan import PlanError, new_run, resumed_run  # no Keras

    if not (args.data or args.resume):
        from core.training.jobs import datasets_in

        found = datasets_in()
        return _fail("give --data (or --resume RUN_DIR)" + (f"; data/ holds {', '.join(found)}" if found else ""))
    try:
        if args.resume:
            plan = resumed_run(args.resume, overrides, args.data, args.votes, args.no_votes, args.photos, args.init)
        else:
            plan = new_run(args.data, args.recipe, overrides, args.votes, args.no_votes, args.photos, args.init)
    except PlanError as error:
        return _fail(str(error))
    if args.minutes is not None and (args.minutes <= 0 or plan.resume):
        return _fail("--minutes must be above 0, and sizes a new run (not a --resume)")
    if plan.run_dir and not plan.resume:
        print(f"{plan.run_dir} stopped before its first epoch ended: training it again from the start", file=sys.stderr)
    if args.activate:  # refused now, not after hours of training: the product reads its active run from runs/
        from core.paths import RUNS_DIR

        written_to = plan.run_dir.parent if plan.run_dir else (args.runs_dir or RUNS_DIR)
        if Path(written_to).resolve() != RUNS_DIR.resolve():
            return _fail(f"--activate makes a run in {RUNS_DIR} the active model, and this run is in {written_to}: "
                         "leave out --runs-dir, or activate it once it is moved there")

    # The arguments are good: now the heavy imports (Keras, OpenCV).
    from core.data import DatasetError, load_dataset
    from core.runs import ModelError, new_run_dir, set_active
    from core.training import sized_to_budget, train
    from core.records import FINISHED
    from core.votes import VotesError, attach_found_votes

    try:
        dataset = load_dataset(plan.data, progress=None if args.quiet else _print_build_progress)
        if plan.votes:  # refused when they name none of the faces: a votes recipe would train on labels
            try:
                attach_found_votes(dataset, plan.votes)
                voted = sum(int((votes.sum(axis=1) > 0).sum()) for votes in dataset.votes.values())
                print(f"votes: {voted} faces voted ({plan.votes})", file=sys.stderr)
            except VotesError as error:
                if not plan.votes_found:
                    raise
                print(f"warning: {error}; training on the dataset's labels", file=sys.stderr)
        photos = load_dataset(plan.photos, progress=None if args.quiet else _print_build_progress) if plan.photos else None
    except (DatasetError, VotesError) as error:
        return _fail(str(error))
    if plan.resume:  # other data would split other validation faces: the epochs so far chose by different ones
        from core.data import BUILDER_VERSION, source_fingerprint
        from core.runs import read_run

        trained_on = read_run(plan.run_dir).dataset
        same_data = {source_fingerprint(Path(plan.data), version) for version in range(1, BUILDER_VERSION + 1)}
        if trained_on.fingerprint and trained_on.fingerprint not in same_data:
            # A folder is known by its files' names, sizes and times, which a copy without -p (or -t) changes.
            differ = ("its content differs" if Path(plan.data).is_file()
                      else "its files' names, sizes or modification times differ")
            return _fail(f"{plan.data} is not the data {plan.run_dir.name} trained on ({differ}): give that "
                         "data, or start a new run")
    for warning in dataset.report.warnings() + (photos.report.warnings() if photos else []):
        print(f"warning: {warning}", file=sys.stderr)

    stop_requested = []
    signal.signal(signal.SIGTERM, lambda *_: stop_requested.append(True))
    config, resume = plan.config, plan.resume
    run_dir = plan.run_dir or new_run_dir(config.architecture, args.runs_dir)
    print(f"training {config.architecture} on {plan.data} -> {run_dir}", file=sys.stderr)
    progress = None if args.quiet else _print_progress
    try:
        if args.minutes is not None:
            epochs = config.epochs
            config, first_epoch_s = sized_to_budget(config, args.minutes, dataset, run_dir, plan.init_model, photos, progress)
            print(f"the first epoch took {first_epoch_s:.0f} s: {config.epochs} of the {epochs} epochs fit in "
                  f"{args.minutes:g} minutes", file=sys.stderr)
            resume = True  # on from the timed first epoch, with the schedule sized to the budget
        metadata = train(config, dataset, run_dir, on_progress=progress, should_stop=lambda: bool(stop_requested),
                         resume=resume, init_model=plan.init_model, photos=photos)
    except KeyboardInterrupt:
        print(f"\nstopped; the best epoch so far is in {run_dir} (continue with --resume {run_dir})", file=sys.stderr)
        return 130
    except (ValueError, ModelError) as error:  # too few faces, a start model of other emotions
        return _fail(str(error))
    except OSError as error:  # a full disk, a vanished folder: the last good save stays in place
        print(f"error: could not write the run ({error}); the last completed save in {run_dir} is intact", file=sys.stderr)
        return 1
    if args.activate and metadata.status == FINISHED and metadata.metrics:
        set_active(run_dir)
    elif args.activate:  # a stopped run's best epoch so far is kept, not served
        print(f"warning: not made active: the run is {metadata.status}", file=sys.stderr)
    metrics = {split: asdict(score) for split, score in metadata.metrics.items()}
    print(json.dumps({"run": str(run_dir), "status": metadata.status, "metrics": metrics or None}, indent=2))
    return 0


def _print_build_progress(done: int, total: int) -> None:
    print(f"\rreading images {done}/{total}", end="\n" if done == total else "", file=sys.stderr, flush=True)


def _print_progress(progress) -> None:
    if progress.batch is not None:
        return
    logs = progress.logs
    print(f"epoch {progress.epoch}/{progress.epochs}  loss {logs.get('loss', 0):.4f}  acc {logs.get('accuracy', 0):.4f}  "
          f"val_loss {logs.get('val_loss', 0):.4f}  val_acc {logs.get('val_accuracy', 0):.4f}  lr {logs.get('lr', 0):.5f}  "
          f"elapsed {progress.elapsed_s / 60:.1f} min  eta {progress.eta_s / 60:.1f} min", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
