"""Train the full-length recipe on a borrowed GPU machine under JAX, and bring the runs back.

Such a machine has JAX but neither TensorFlow nor Keras, no network, takes at most 64 MiB of
files with a command and keeps what a command writes outside the repository only while it stays
warm. FER2013's train/ split alone is ~55 MB compressed, so it travels in two parts over two
commands; the second also carries Keras' wheels and trains. Three steps:

    python scripts/gpu_train.py pack --data ../shared/data/fer2013/fer2013.zip     # here: writes .gpu/
    python scripts/gpu_train.py stash .gpu/part-1                                  # there, command 1
    python scripts/gpu_train.py train --minutes 8 --seeds 3 --out $OUT             # there, command 2

`pack` prints the two device commands in full. `train` runs one process per seed side by side
(the GPU has room for many such small nets), sizes the epochs to the minutes it is given by timing
a short first run, and leaves each run folder (model.keras, metadata.json, history.csv, its log) as
one tar under --out.
Rehearse it all on a CPU with `pack --limit 600` and `train --epochs 1 --seeds 1`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BUNDLE = Path(os.environ.get("EMOVOICE_GPU_BUNDLE", ROOT / ".gpu"))  # git-ignored: what travels to the GPU machine
STASH = Path(os.environ.get("EMOVOICE_GPU_STASH", "/tmp/emovoice-gpu"))  # there, outside the repository
PARTS = 2
WHEELS = ("keras==3.15.1", "namex==0.1.0", "optree==0.20.0")  # what that machine lacks for Keras (device/KINDS.md)
WRAP_UP_S = 30  # seconds a run needs after its last epoch: the final scores, the writes and the tar


def pack(data: str, limit: int | None, python_version: str | None) -> None:
    """The train/ split in PARTS compressed .npz files, plus the wheels Keras needs there."""
    import numpy as np

    from core.data import load_dataset

    dataset = load_dataset(data)
    images, labels = dataset.images["train"], dataset.labels["train"]
    if limit:
        pick = np.random.default_rng(0).permutation(len(labels))[:limit]
        images, labels = images[pick], labels[pick]
    shutil.rmtree(BUNDLE, ignore_errors=True)
    for index, chunk in enumerate(np.array_split(np.arange(len(labels)), PARTS), 1):
        folder = BUNDLE / f"part-{index}"
        folder.mkdir(parents=True)
        np.savez_compressed(folder / f"train-{index}.npz", images=images[chunk], labels=labels[chunk])
    if python_version:
        _download_wheels(python_version)
    for path in sorted(p for p in BUNDLE.rglob("*") if p.is_file()):
        print(f"{path}  {path.stat().st_size / 2**20:.1f} MiB")
    print("\nOn the GPU machine (device tool), two commands:\n"
          '  1. carry [".gpu/part-1"], timeout 120:\n'
          "     python3 scripts/gpu_train.py stash .gpu/part-1\n"
          '  2. carry [".gpu/part-2", ".gpu/wheels"], timeout 600:\n'
          "     python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .gpu/wheels/*.whl"
          " && PYTHONPATH=/tmp/site KERAS_BACKEND=jax PYTHONUNBUFFERED=1"
          " python3 scripts/gpu_train.py train --minutes 8 --seeds 3 --out $OUT")


def _download_wheels(python_version: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                    "--python-version", python_version, "--implementation", "cp",
                    "--platform", "manylinux_2_28_x86_64", "--platform", "manylinux_2_17_x86_64",
                    "--platform", "manylinux2014_x86_64", "-d", str(BUNDLE / "wheels"), *WHEELS], check=True)


def stash(part: Path) -> None:
    """Keep a carried part outside the repository, where the next command on the same machine finds it."""
    STASH.mkdir(parents=True, exist_ok=True)
    for file in Path(part).glob("*.npz"):
        shutil.copy(file, STASH / file.name)
    print(f"stashed: {sorted(p.name for p in STASH.glob('*.npz'))}")


def _dataset_file() -> Path:
    """The stashed and carried parts joined into one dataset file that core.data reads.

    The validation faces are split off here, the way every CPU run splits them, so that
    all seeds select their epochs on the same faces and none of them trains on those.
    """
    import numpy as np

    from core.data import BuildReport
    from core.training import split_validation

    parts = sorted({p.name: p for p in [*STASH.glob("train-*.npz"), *BUNDLE.glob("part-*/train-*.npz")]}.values())
    if len(parts) < PARTS:
        raise SystemExit(f"error: found {len(parts)} of {PARTS} data parts ({STASH}, {BUNDLE}): stash part 1 first")
    loaded = [np.load(p) for p in parts]
    images, labels = np.concatenate([p["images"] for p in loaded]), np.concatenate([p["labels"] for p in loaded])
    (train_images, train_labels), (val_images, val_labels) = split_validation(images, labels)
    joined = STASH / "fer2013-train.npz"
    np.savez(joined, images__train=train_images, labels__train=train_labels, images__val=val_images,
             labels__val=val_labels, report=np.array(BuildReport().to_json()))
    return joined


def train(minutes: float, seeds: int, epochs: int | None, out: Path) -> None:
    """One training process per seed, side by side, each sized to finish within `minutes`."""
    data = _dataset_file()
    deadline = time.time() + minutes * 60
    if epochs is None:  # time two epochs of every seed side by side, then size the real runs to what is left
        started = time.time()
        _run_seeds(data, seeds, 2, out / "probe", deadline)
        probes = [json.loads(p.read_text()) for p in (out / "probe").glob("seed-*/metadata.json")]
        if any(probe["epochs_trained"] < 2 for probe in probes):
            raise SystemExit("error: two epochs did not fit in --minutes: give more minutes or fewer --seeds")
        per_epoch = max(probe["history_tail"]["seconds"] for probe in probes)  # the second epoch: compiled by then
        overhead = time.time() - started - 2 * per_epoch  # starting Python and JAX, compiling, scoring, writing
        shutil.rmtree(out / "probe", ignore_errors=True)
        epochs = min(300, int((deadline - time.time() - overhead) / (per_epoch * 1.15)))  # a margin: a cut schedule never anneals
        print(f"about {per_epoch:.1f} s an epoch and {overhead:.0f} s besides: {epochs} epochs for each of {seeds} seeds",
              flush=True)
        if epochs < 2:
            raise SystemExit("error: fewer than 2 epochs fit in the minutes left: give more --minutes or fewer --seeds")
    _run_seeds(data, seeds, epochs, out, deadline)
    for run in sorted(p for p in out.glob("seed-*") if p.is_dir()):
        metadata = json.loads((run / "metadata.json").read_text())
        (run / "checkpoint.keras").unlink(missing_ok=True)  # the optimizer's state: too big to bring back
        (run / "state.json").unlink(missing_ok=True)
        shutil.move(out / f"{run.name}.log", run / "train.log")
        shutil.make_archive(str(run), "tar", out, run.name)  # one file a run: at most 8 files come back
        shutil.rmtree(run)
        print(f"{run.name}.tar: {metadata['status']}, {metadata['epochs_trained']} epochs, "
              f"validation {metadata.get('metrics', {}).get('validation', {}).get('accuracy')}")


def _run_seeds(data: Path, seeds: int, epochs: int, out: Path, deadline: float) -> None:
    processes = []
    # JAX takes 75% of the GPU's memory per process unless told otherwise; these nets need little.
    env = {**os.environ, "XLA_PYTHON_CLIENT_MEM_FRACTION": f"{0.9 / seeds:.2f}"}
    for seed in range(1, seeds + 1):
        run_dir = out / f"seed-{seed}"
        run_dir.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, __file__, "one", "--data", str(data), "--epochs", str(epochs), "--seed", str(seed),
                   "--deadline", str(deadline), "--run-dir", str(run_dir)]
        log = open(run_dir.parent / f"{run_dir.name}.log", "w")
        processes.append(subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env))
    for seed, process in enumerate(processes, 1):
        if process.wait() != 0:
            log = (out / f"seed-{seed}.log").read_text()
            raise SystemExit(f"error: seed {seed} failed:\n{log[-3000:]}")


def one(data: Path, epochs: int, seed: int, deadline: float, run_dir: Path) -> None:
    """One seed's run: the shipped recipe through core.training.train, stopped at the deadline."""
    from core.data import load_dataset
    from core.training import recipe
    from core.training import train as train_run

    config = recipe("vgg", epochs=epochs, seed=seed, patience=epochs)  # a full schedule: no early stop
    metadata = train_run(config, load_dataset(data), run_dir, should_stop=lambda: time.time() > deadline - WRAP_UP_S)
    print(json.dumps({k: metadata.get(k) for k in ("status", "epochs_trained", "metrics")}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    steps = parser.add_subparsers(dest="step", required=True)
    p = steps.add_parser("pack", help="here: write .gpu/ (data parts and wheels)")
    p.add_argument("--data", required=True)
    p.add_argument("--limit", type=int, help="only this many training faces (a rehearsal)")
    p.add_argument("--python-version", default="3.12", help="the GPU machine's Python (default 3.12)")
    p.add_argument("--no-wheels", action="store_true", help="carry no wheels (the machine there has Keras)")
    s = steps.add_parser("stash", help="there: keep a carried part for the next command")
    s.add_argument("part", type=Path)
    t = steps.add_parser("train", help="there: train every seed and write the runs under --out")
    t.add_argument("--minutes", type=float, default=8.0, help="wall-clock budget for this command")
    t.add_argument("--seeds", type=int, default=3)
    t.add_argument("--epochs", type=int, help="fixed epochs (default: as many as fit the minutes, at most 300)")
    t.add_argument("--out", type=Path, required=True)
    o = steps.add_parser("one")  # one seed's process, started by `train`
    o.add_argument("--data", type=Path, required=True)
    o.add_argument("--epochs", type=int, required=True)
    o.add_argument("--seed", type=int, required=True)
    o.add_argument("--deadline", type=float, required=True)
    o.add_argument("--run-dir", type=Path, required=True)
    args = parser.parse_args()
    if args.step == "pack":
        pack(args.data, args.limit, None if args.no_wheels else args.python_version)
    elif args.step == "stash":
        stash(args.part)
    elif args.step == "train":
        train(args.minutes, args.seeds, args.epochs, args.out)
    else:
        one(args.data, args.epochs, args.seed, args.deadline, args.run_dir)


if __name__ == "__main__":
    main()
