"""Train an emotion model and save it as a run (see README, "Training").

    python scripts/train.py --data ../shared/data/fer2013/fer2013.zip             # the shipped recipe
    python scripts/train.py --data fer2013.zip --arch seed                      # the seed project's recipe
    python scripts/train.py --resume runs/20261125-083000-vgg                   # continue a stopped run
    python scripts/train.py --data fer2013.zip --init models/emovoice-vgg --photos my-photos.zip --epochs 3 \
        --lr 0.001 --photo-repeat 16 --keep-start 0.65   # adapt to real photos in class folders (angry/, happy/, ...)
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.data import DatasetError, load_dataset  # noqa: E402
from core.models import ARCHITECTURES  # noqa: E402
from core.runs import new_run_dir, set_active  # noqa: E402
from core.votes import VotesError, read_votes, votes_beside  # noqa: E402
from core.training import STATE_FILE, Progress, TrainConfig, recipe, train  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="FER2013-style folder or .zip, or fer2013.csv")
    parser.add_argument("--votes", metavar="CSV", help="FER+ votes (fer2013new.csv or ferplus.csv) to train on as "
                        "soft targets; found beside --data when not given (--no-votes: FER2013's labels)")
    parser.add_argument("--no-votes", action="store_true", help="train on the dataset's labels even when votes are found")
    parser.add_argument("--label-share", type=float, metavar="SHARE",
                        help="with votes: mix this share of the dataset's own label into each vote distribution (default 0)")
    parser.add_argument("--arch", choices=sorted(ARCHITECTURES), default="vgg", help="architecture (default: vgg)")
    parser.add_argument("--emotions", help="'all' (7), 'seed' (5) or a comma-separated list")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--lr", type=float, dest="learning_rate")
    parser.add_argument("--optimizer", choices=["sgd", "adam"])
    parser.add_argument("--schedule", choices=["cosine", "plateau", "none"])
    parser.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None)
    parser.add_argument("--class-balance", type=float, metavar="POWER",
                        help="weight emotions by (1 / count) ** POWER: 0 off (default), 0.5 lifts rare ones, 1 balances")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--runs-dir", type=Path, help="where run folders go (default: runs/)")
    parser.add_argument("--resume", type=Path, metavar="RUN_DIR", help="continue a run from its last checkpoint")
    parser.add_argument("--init", type=Path, metavar="MODEL", help="warm-start from a trained model's weights")
    parser.add_argument("--photos", metavar="PATH", help="also train on labelled photos (class folders, folder or .zip); "
                        "their faces are cut as Try it cuts them")
    parser.add_argument("--photo-repeat", type=int, help="times each photo's face trains an epoch (default 4)")
    parser.add_argument("--keep-start", type=float, metavar="SHARE",
                        help="with --init: average the starting model's weights into the result, this share "
                             "(0.5 keeps most of what it knew while learning --photos)")
    parser.add_argument("--activate", action="store_true", help="make the result the active model")
    parser.add_argument("--quiet", action="store_true", help="print only the final JSON")
    args = parser.parse_args()

    if args.resume:
        state = json.loads((args.resume / STATE_FILE).read_text())
        config = TrainConfig(**{**state["config"], **({"epochs": args.epochs} if args.epochs else {})})
        run_dir = args.resume
        earlier = json.loads((run_dir / "metadata.json").read_text())
        data = args.data or earlier["dataset"]["source"]
        args.votes = args.votes or earlier["dataset"].get("votes")
        args.no_votes = args.no_votes or not args.votes
        args.photos = args.photos or (earlier.get("photos") or {}).get("source")
    elif args.data:
        overrides = {k: getattr(args, k) for k in ("emotions", "epochs", "batch_size", "learning_rate",
                                                   "optimizer", "schedule", "augment", "class_balance", "photo_repeat", "keep_start",
                                                   "label_share", "seed")}
        config = recipe(args.arch, **overrides)
        run_dir, data = None, args.data
    else:
        parser.error("give --data (or --resume RUN_DIR)")
    if config.keep_start and not (args.init or args.resume):
        parser.error("--keep-start needs --init MODEL, the model whose share it keeps")
    if not 0 <= config.keep_start < 1:
        parser.error(f"--keep-start must be at least 0 and below 1, not {config.keep_start}")

    votes = None if args.no_votes else (args.votes or votes_beside(data))
    try:
        dataset = load_dataset(data, progress=None if args.quiet else _print_build_progress)
        if votes:
            matched = dataset.attach_votes(read_votes(votes))
            print(f"votes: {matched} faces voted ({votes})", file=sys.stderr)
        photos = load_dataset(args.photos, progress=None if args.quiet else _print_build_progress) if args.photos else None
    except (DatasetError, VotesError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for warning in dataset.report.warnings() + (photos.report.warnings() if photos else []):
        print(f"warning: {warning}", file=sys.stderr)

    stop_requested = []
    signal.signal(signal.SIGTERM, lambda *_: stop_requested.append(True))
    run_dir = run_dir or new_run_dir(config.architecture, args.runs_dir)
    print(f"training {config.architecture} on {data} -> {run_dir}", file=sys.stderr)
    try:
        metadata = train(config, dataset, run_dir, on_progress=None if args.quiet else _print_progress,
                         should_stop=lambda: bool(stop_requested), resume=bool(args.resume), init_model=args.init, photos=photos)
    except KeyboardInterrupt:
        print(f"\nstopped; the best epoch so far is in {run_dir} (continue with --resume {run_dir})", file=sys.stderr)
        return 130
    except OSError as error:  # a full disk, a vanished folder: the last good save stays in place
        print(f"error: could not write the run ({error}); the last completed save in {run_dir} is intact", file=sys.stderr)
        return 1
    if args.activate and metadata.get("metrics"):
        set_active(run_dir)
    print(json.dumps({"run": str(run_dir), "status": metadata["status"], "metrics": metadata.get("metrics")}, indent=2))
    return 0


def _print_build_progress(done: int, total: int) -> None:
    print(f"\rreading images {done}/{total}", end="\n" if done == total else "", file=sys.stderr, flush=True)


def _print_progress(progress: Progress) -> None:
    if progress.batch is not None:
        return
    logs = progress.logs
    print(f"epoch {progress.epoch}/{progress.epochs}  loss {logs.get('loss', 0):.4f}  acc {logs.get('accuracy', 0):.4f}  "
          f"val_loss {logs.get('val_loss', 0):.4f}  val_acc {logs.get('val_accuracy', 0):.4f}  lr {logs.get('lr', 0):.5f}  "
          f"elapsed {progress.elapsed_s / 60:.1f} min  eta {progress.eta_s / 60:.1f} min", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
