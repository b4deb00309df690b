"""Label every face in photos or a video: one CSV row per face, with its emotion and probabilities.

    python scripts/label.py photos/ --out faces.csv               # a folder (class folders are fine) or a .zip
    python scripts/label.py talk.mp4 --out talk.csv --fps 2       # a video, 2 frames sampled per second
    python scripts/label.py photos.zip --out faces.csv --ray      # on a Ray instance started on this machine
    python scripts/label.py photos/ --out faces.csv --ray ray://head:10001 --json   # on a Ray cluster

Columns: source, time_s (videos), face (in a video, the same id follows the same face across frames),
x, y, width, height, emotion, then one probability per emotion. A photo without a face gets a row
with no emotion; unreadable files are skipped and counted. The CSV appears only once it is complete.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # FFmpeg's own chatter about damaged frames: we report them
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# Light: names and numbers only (OpenCV, ONNX Runtime and TensorFlow Lite are imported after the arguments are read).
from core.video import DEFAULT_FPS, MAX_FPS, VIDEO_EXTENSIONS  # noqa: E402

BAR_WIDTH = 30
REDRAW_S = 0.25  # the bar is redrawn at most this often


class ProgressBar:
    """`[#####.....] 120/300 40% 12.5/s ETA 00:14` on stderr, redrawn in place."""

    def __init__(self, unit: str):
        self.unit, self.started, self.drawn = unit, time.perf_counter(), 0.0

    def __call__(self, done: int, total: int) -> None:
        now = time.perf_counter()
        if now - self.drawn < REDRAW_S and done < total:
            return
        self.drawn = now
        rate = done / max(now - self.started, 1e-9)
        share = done / total if total else 0.0
        eta = time.strftime("%M:%S", time.gmtime((total - done) / rate)) if rate and total else "--:--"
        filled = round(BAR_WIDTH * share)
        print(f"\r[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {done}/{total or '?'} {share:.0%} "
              f"{rate:.1f} {self.unit}/s ETA {eta} ", end="", file=sys.stderr, flush=True)

    def close(self) -> None:
        print(file=sys.stderr)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input", type=Path, help="a photo, a folder or .zip of photos, or a video")
    parser.add_argument("--out", type=Path, required=True, help="the CSV to write")
    parser.add_argument("--fps", type=float, default=DEFAULT_FPS,
                        help=f"video frames sampled per second (default {DEFAULT_FPS:g}, at most {MAX_FPS:g})")
    parser.add_argument("--ray", nargs="?", const="", metavar="ADDRESS",
                        help="label on Ray: alone, a local instance; with an address, that cluster")
    parser.add_argument("--actors", type=int, help="with --ray: how many model actors (default: one per CPU)")
    parser.add_argument("--model", type=Path, help="model folder (default: the active model)")
    parser.add_argument("--json", action="store_true", help="print a summary as one JSON object")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not (math.isfinite(args.fps) and 0 < args.fps <= MAX_FPS):
        print(f"error: --fps must be above 0 and at most {MAX_FPS:g} (frames sampled per second), not {args.fps:g}",
              file=sys.stderr)
        return 2
    if args.ray is not None:
        try:
            import ray  # noqa: F401  (optional: requirements-ray.txt)
        except ImportError:
            print("error: --ray needs Ray: pip install -r requirements-ray.txt", file=sys.stderr)
            return 2
    if args.out.is_dir():  # said now, not after every frame is labelled
        print(f"error: --out {args.out} is a folder: name the CSV file to write", file=sys.stderr)
        return 2
    if args.actors is not None and args.actors < 1:
        print(f"error: --actors must be at least 1, not {args.actors}", file=sys.stderr)
        return 2

    from core.labeller import LOCAL_RAY
    from core.labelling import LabelError, label
    from core.runs import ModelError

    ray_address = LOCAL_RAY if args.ray == "" else args.ray  # --ray alone: an instance on this machine

    unit = "frames" if args.input.suffix.lower() in VIDEO_EXTENSIONS else "photos"
    bar = ProgressBar(unit)
    try:
        summary = label(args.input, args.out, model_dir=args.model, fps=args.fps, ray=ray_address, actors=args.actors,
                        progress=bar)
    except (LabelError, ModelError, OSError) as error:
        bar.close()
        failed = getattr(error, "filename", None) or args.input  # an OSError names its file: the CSV's, maybe
        print(f"error: {failed}: {getattr(error, 'strerror', None) or error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        bar.close()
        print(f"interrupted: {args.out} was not written", file=sys.stderr)
        return 130
    bar.close()
    if args.json:
        print(json.dumps({"csv": str(args.out), **summary.as_dict()}))
    else:
        print("\n".join([f"wrote {args.out}", *summary.lines()]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
