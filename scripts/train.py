"""Train an emotion model and save it as a run (see docs on training).

    python scripts/train.py --data ../shared/data/fer2013/fer2013.zip             # the shipped recipe (recipes/vgg.toml)
    python scripts/train.py --data fer2013.zip --recipe seed                    # the seed project's recipe
    python scripts/train.py --data fer2013.zip --recipe ferplus                 # FER+ votes as targets
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

from core.training.config import RecipeError, TrainConfig, config_of, read_recipe, recipe_names  # noqa: E402  (no Keras)

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
    resume = False
    from core.runs import ModelError, read_run  # metadata only: no Keras

    try:
        if args.resume:
            plan = _resume_plan(args, overrides)
            if isinstance(plan, str):
                return _fail(plan)
            config, data, resume = plan
            run_dir = args.resume
        elif args.data:
            named = read_recipe(args.recipe or overrides["architecture"] or "vgg")
            architecture = overrides["architecture"] or (read_run(args.init).architecture if args.init else None)
            config = config_of(named, architecture, **overrides)
            if named.train_on_votes and args.no_votes:
                return _fail(f"the {named.name} recipe trains on FER+ votes; leave out --no-votes")
            args.need_votes = named.train_on_votes
            run_dir, data = None, args.data
        else:
            from core.training.jobs import datasets_in

            found = datasets_in()
            return _fail("give --data (or --resume RUN_DIR)" + (f"; data/ holds {', '.join(found)}" if found else ""))
    except (RecipeError, ModelError) as error:
        return _fail(str(error))
    if config.keep_start and not (args.init or args.resume):
        return _fail("--keep-start needs --init MODEL, the model whose share it keeps")
    if not 0 <= config.keep_start < 1:
        return _fail(f"--keep-start must be at least 0 and below 1, not {config.keep_start}")
    if args.minutes is not None and (args.minutes <= 0 or resume):
        return _fail("--minutes must be above 0, and sizes a new run (not a --resume)")

    # The arguments are good: now the heavy imports (Keras, OpenCV).
    from core.data import DatasetError, load_dataset
    from core.runs import new_run_dir, set_active
    from core.training import train
    from core.votes import VotesError, read_votes, votes_beside

    votes = None if args.no_votes else (args.votes or votes_beside(data))
    if getattr(args, "need_votes", False) and not votes:
        return _fail(f"the {args.recipe} recipe trains on FER+ votes: put ferplus.csv beside the data or give --votes CSV")
    try:
        dataset = load_dataset(data, progress=None if args.quiet else _print_build_progress)
        if votes:
            matched = dataset.attach_votes(read_votes(votes))
            print(f"votes: {matched} faces voted ({votes})", file=sys.stderr)
        photos = load_dataset(args.photos, progress=None if args.quiet else _print_build_progress) if args.photos else None
    except (DatasetError, VotesError) as error:
        return _fail(str(error))
    for warning in dataset.report.warnings() + (photos.report.warnings() if photos else []):
        print(f"warning: {warning}", file=sys.stderr)

    stop_requested = []
    signal.signal(signal.SIGTERM, lambda *_: stop_requested.append(True))
    run_dir = run_dir or new_run_dir(config.architecture, args.runs_dir)
    print(f"training {config.architecture} on {data} -> {run_dir}", file=sys.stderr)
    progress = None if args.quiet else _print_progress
    try:
        if args.minutes is not None:
            config = _sized_to_budget(config, args.minutes, dataset, run_dir, args.init, photos, progress)
            resume = True  # on from the timed first epoch, with the schedule sized to the budget
        metadata = train(config, dataset, run_dir, on_progress=progress,
                         should_stop=lambda: bool(stop_requested), resume=resume, init_model=args.init, photos=photos)
    except KeyboardInterrupt:
        print(f"\nstopped; the best epoch so far is in {run_dir} (continue with --resume {run_dir})", file=sys.stderr)
        return 130
    except (ValueError, ModelError) as error:  # too few faces, a start model of other emotions
        return _fail(str(error))
    except OSError as error:  # a full disk, a vanished folder: the last good save stays in place
        print(f"error: could not write the run ({error}); the last completed save in {run_dir} is intact", file=sys.stderr)
        return 1
    if args.activate and metadata.metrics:
        set_active(run_dir)
    print(json.dumps({"run": str(run_dir), "status": metadata.status, "metrics": {split: asdict(score) for split, score in metadata.metrics.items()} or None}, indent=2))
    return 0


def _resume_plan(args, overrides: dict) -> tuple[TrainConfig, str, bool] | str:
    """(config, data, resume) to continue args.resume, or a one-line reason it cannot be.

    A run killed before its first epoch ended has no checkpoint (state.json): it starts again, in its
    own folder, from what its metadata recorded (its recipe, data and starting model).
    """
    from core.records import ResumeState
    from core.runs import STATE_FILE, ModelError, read_run, start_model_path

    run_dir = args.resume
    if not run_dir.is_dir():
        return f"{run_dir} is not a run folder"
    try:
        earlier = read_run(run_dir)
    except ModelError:
        return f"{run_dir} has nothing to resume: no readable metadata.json (it stopped before training began)"
    state_file = run_dir / STATE_FILE
    resume = state_file.is_file()
    if resume:
        config = TrainConfig.from_json(ResumeState.from_json(json.loads(state_file.read_text())).config)
        if overrides["epochs"]:
            config.epochs = overrides["epochs"]
    else:
        print(f"{run_dir} stopped before its first epoch ended: training it again from the start", file=sys.stderr)
        config = TrainConfig.from_json({**(earlier.recipe or {}), **{k: v for k, v in overrides.items() if v is not None}})
        args.init = args.init or (start_model_path(earlier.initialised_from) if earlier.initialised_from else None)
    args.votes = args.votes or earlier.dataset.votes
    args.no_votes = args.no_votes or not args.votes
    args.photos = args.photos or (earlier.photos.source if earlier.photos else None)
    return config, args.data or earlier.dataset.source, resume


def _sized_to_budget(config: TrainConfig, minutes: float, dataset, run_dir: Path, init_model, photos, progress) -> TrainConfig:
    """Train the first epoch, time it, and return the config with the epochs that fit in `minutes` in all
    (at least the one done, at most config.epochs). The run then resumes from that epoch's checkpoint."""
    import time
    from dataclasses import replace

    from core.training import train

    started, first_epoch_ended = time.monotonic(), []

    def timed(report) -> None:
        if report.batch is None and not first_epoch_ended:
            first_epoch_ended.append(time.monotonic())
        if progress:
            progress(report)

    # Stopped at the second epoch's first batch: the first is saved and resumable. Start-up counts in its time.
    train(config, dataset, run_dir, on_progress=timed, should_stop=lambda: bool(first_epoch_ended),
          init_model=init_model, photos=photos)
    first_epoch_s = (first_epoch_ended or [time.monotonic()])[0] - started
    epochs = max(1, min(config.epochs, int(minutes * 60 // first_epoch_s)))
    print(f"the first epoch took {first_epoch_s:.0f} s: {epochs} of the {config.epochs} epochs fit in {minutes:g} minutes",
          file=sys.stderr)
    return replace(config, epochs=epochs)


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
