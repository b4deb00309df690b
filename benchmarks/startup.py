"""How long `python scripts/predict.py PHOTO` takes from a terminal, against an earlier release, in one run.

    python benchmarks/startup.py                      # against abaced9, the release before LiteRT
    python benchmarks/startup.py --old HEAD~5 --repeats 7 --photo samples/happy.jpg

The earlier release is exported with `git archive` into a scratch folder (nothing in the working tree
or in git changes) and both are timed in turns, so a busy machine slows them alike: read the ratio.
Also timed: importing what predicting needs (the libraries alone, no model), and the model's load.
"""

from __future__ import annotations

import argparse
import io
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IMPORT_ONLY = "import core.recognise, core.voices, core.drawing"  # what predict.py imports to predict
LOAD_MODEL = IMPORT_ONLY + "; core.recognise.load_classifier()"


def export_release(commit: str, folder: Path) -> Path:
    """The tree of `commit` in `folder` (git archive: no checkout, no change to this repository)."""
    archive = subprocess.run(["git", "archive", commit], cwd=ROOT, capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(folder, filter="data")
    return folder


def wall_seconds(command: list[str], cwd: Path) -> tuple[float, str]:
    """Seconds `command` takes, and what it wrote to stderr (a clean run writes nothing)."""
    started = time.perf_counter()
    finished = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if finished.returncode not in (0, 1):  # 1: no face, still a full run
        raise RuntimeError(f"{' '.join(command)} failed in {cwd}: {finished.stderr[-2000:]}")
    return elapsed, finished.stderr


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--old", default="abaced9", help="the release to compare with (a git commit)")
    parser.add_argument("--photo", type=Path, default=ROOT / "samples" / "happy.jpg")
    parser.add_argument("--repeats", type=int, default=5, help="runs of each command, taken in turns")
    args = parser.parse_args(argv)
    photo = str(args.photo.resolve())
    with tempfile.TemporaryDirectory(prefix="emovoice-startup-") as scratch:
        old = export_release(args.old, Path(scratch))
        commands = {
            "import only (now)": ([sys.executable, "-c", IMPORT_ONLY], ROOT),
            "import + load the model (now)": ([sys.executable, "-c", LOAD_MODEL], ROOT),
            "predict.py PHOTO (now)": ([sys.executable, "scripts/predict.py", photo], ROOT),
            f"predict.py PHOTO ({args.old})": ([sys.executable, "scripts/predict.py", photo], old),
        }
        wall_seconds(*commands[f"predict.py PHOTO ({args.old})"])  # warm-up: the old release converts its model once
        times: dict[str, list[float]] = {name: [] for name in commands}
        stderr_lines: dict[str, int] = {}
        for _ in range(args.repeats):
            for name, (command, cwd) in commands.items():
                seconds, stderr = wall_seconds(command, cwd)
                times[name].append(seconds)
                stderr_lines[name] = len(stderr.splitlines())
    print(f"{args.repeats} runs each, in turns; median (min-max) wall seconds; lines written to stderr")
    for name, values in times.items():
        print(f"  {name:<34} {statistics.median(values):5.2f} s ({min(values):.2f}-{max(values):.2f})"
              f"   stderr: {stderr_lines[name]} lines")
    now = statistics.median(times["predict.py PHOTO (now)"])
    before = statistics.median(times[f"predict.py PHOTO ({args.old})"])
    print(f"predict.py now takes {now / before:.2f} of {args.old}'s time ({before / now:.1f}x faster)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
