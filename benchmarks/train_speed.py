"""Seconds per training epoch of the shipped recipe, per Keras backend, against an earlier commit.

    python benchmarks/train_speed.py --data ../shared/data/fer2013/fer2013.zip --baseline 85b54ee

Each configuration trains the vgg recipe for a few epochs on the same faces in a fresh process;
an epoch's time is the median over the epochs after the first (which compiles). Configurations
take turns, round after round, so that a machine that gets busier or quieter affects them alike;
compare the ratios this prints, which come from one run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Run in a child process with the tree to test first on sys.path; prints the epochs' end times.
CHILD = """
import json, sys, time
from pathlib import Path
import numpy as np
sys.path.insert(0, sys.argv[1])
from core.data import BuildReport, Dataset
from core.training import recipe, train
arrays = np.load(sys.argv[2])
dataset = Dataset("benchmark", "benchmark", {"train": arrays["images"]}, {"train": arrays["labels"]}, BuildReport())
ends = []
def progress(p):
    if p.batch is None:
        ends.append(time.monotonic())
train(recipe("vgg", epochs=int(sys.argv[3])), dataset, Path(sys.argv[4]), on_progress=progress)
print(json.dumps(np.diff(ends).tolist()))
"""


def epoch_seconds(tree: Path, backend: str, faces: Path, epochs: int) -> list[float]:
    with tempfile.TemporaryDirectory() as run_dir:
        env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
        done = subprocess.run([sys.executable, "-c", CHILD, str(tree), str(faces), str(epochs), run_dir],
                              capture_output=True, text=True, env=env, check=False)
        if done.returncode != 0:
            raise SystemExit(f"error: {backend} on {tree} failed:\n{done.stderr[-2000:]}")
        return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="FER2013 zip or folder (its train/ split is used)")
    parser.add_argument("--faces", type=int, default=6400, help="training faces per epoch (default 6400)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per configuration and round (default 3)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--baseline", metavar="REV", help="also time this commit's code under TensorFlow")
    parser.add_argument("--backends", default="tensorflow,jax")
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT))
    import numpy as np

    from core.data import load_dataset

    dataset = load_dataset(args.data)
    pick = np.random.default_rng(0).permutation(len(dataset.labels["train"]))[: args.faces]
    with tempfile.TemporaryDirectory() as scratch:
        faces = Path(scratch) / "faces.npz"
        np.savez(faces, images=dataset.images["train"][pick], labels=dataset.labels["train"][pick])
        configurations = [(f"this tree, {backend}", ROOT, backend) for backend in args.backends.split(",")]
        if args.baseline:
            baseline = Path(scratch) / "baseline"
            baseline.mkdir()
            archive = subprocess.run(["git", "-C", str(ROOT), "archive", args.baseline, "core"], capture_output=True, check=True)
            subprocess.run(["tar", "-x", "-C", str(baseline)], input=archive.stdout, check=True)
            configurations.insert(0, (f"{args.baseline}, tensorflow", baseline, "tensorflow"))
        times: dict[str, list[float]] = {name: [] for name, _, _ in configurations}
        for round_number in range(args.rounds):
            for name, tree, backend in configurations:
                times[name] += epoch_seconds(tree, backend, faces, args.epochs)[1:]
                print(f"round {round_number + 1}: {name}: {times[name][-1]:.1f} s", file=sys.stderr, flush=True)

    reference = statistics.median(times[configurations[0][0]])
    print(f"{len(pick)} faces an epoch (90% trained, 10% validated), batch 128, {os.cpu_count()} cores\n")
    print(f"| code, backend | seconds per epoch (median) | ratio to {configurations[0][0]} |")
    print("|---|---|---|")
    for name, _, _ in configurations:
        median = statistics.median(times[name])
        print(f"| {name} | {median:.1f} | {median / reference:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
