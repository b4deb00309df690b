"""How fast scripts/label.py's engine labels photos and videos, and what memory a long video costs.

    python benchmarks/label_throughput.py                       # video at 5 fps, 200 photos, a 10-minute video
    python benchmarks/label_throughput.py --ray                 # ...and the video and photos on a local Ray, 1 and 2 actors
    python benchmarks/label_throughput.py --photos 100 --long-minutes 0

Everything is made here from one FER2013 face pasted into 640x480 frames: a 60 s 30 fps video labelled at
5 frames per second (goal: at least 4x real time on 2 cores), N photos (goal: 40 photos/s), and a long
video whose process memory is read every batch (it should stay flat: frames are streamed).
Timings leave out loading the model (in-process) but include starting the actors (Ray).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from core.labeller import LOCAL_RAY, start_ray  # noqa: E402
from core.labelling import label  # noqa: E402
from core.paths import SAMPLES_DIR  # noqa: E402
from core.recognise import load_classifier  # noqa: E402

FRAME_RATE = 30  # of the made videos
LABEL_FPS = 5.0
DISTINCT_FRAMES = 60  # the face drifts over this many frames, then the cycle repeats (saves making 1800)
FACE = "test/happy/fer0029960.png"  # a FER2013 face of the bundled sample that the detector finds enlarged
FACE_SIDE = 240  # pixels, in a 640x480 frame


def sample_face() -> np.ndarray:
    with zipfile.ZipFile(SAMPLES_DIR / "fer2013-sample.zip") as archive:
        gray = cv2.imdecode(np.frombuffer(archive.read(FACE), np.uint8), cv2.IMREAD_GRAYSCALE)
    return cv2.resize(gray, (FACE_SIDE, FACE_SIDE), interpolation=cv2.INTER_CUBIC)


def frames(face: np.ndarray) -> list[np.ndarray]:
    """BGR 640x480 frames of the face drifting left and right, as someone on a call moves."""
    offsets = 60 * np.sin(np.linspace(0, 2 * np.pi, DISTINCT_FRAMES, endpoint=False))
    cycle = []
    for dx in offsets:
        canvas = np.full((480, 640), 128, np.uint8)
        x = 200 + round(dx)
        canvas[120 : 120 + FACE_SIDE, x : x + FACE_SIDE] = face
        cycle.append(cv2.cvtColor(canvas, cv2.COLOR_GRAY2BGR))
    return cycle


def make_video(path: Path, cycle: list[np.ndarray], seconds: float) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FRAME_RATE, (640, 480))
    for index in range(round(seconds * FRAME_RATE)):
        writer.write(cycle[index % len(cycle)])
    writer.release()
    return path


def cpu_s() -> float:
    """CPU seconds this process has used (all threads): the cores' share of the work, whatever else runs."""
    times = os.times()
    return times.user + times.system


def rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60, help="length of the video labelled for speed")
    parser.add_argument("--photos", type=int, default=200, help="640x480 photos labelled for speed")
    parser.add_argument("--long-minutes", type=float, default=10, help="length of the video watched for memory (0: skip)")
    parser.add_argument("--long-fps", type=float, default=1.0, help="its sampling rate (every frame is still decoded)")
    parser.add_argument("--ray", action="store_true", help="also label the video and the photos on a local Ray instance")
    args = parser.parse_args(argv)

    cycle = frames(sample_face())
    classifier = load_classifier()
    print(f"machine: {os.cpu_count()} CPUs, load average at start {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory(prefix="label-bench-") as scratch:
        scratch = Path(scratch)
        video = make_video(scratch / "talk.mp4", cycle, args.seconds)
        cpu = cpu_s()
        summary = label(video, scratch / "video.csv", fps=LABEL_FPS, classifier=classifier)
        cpu = cpu_s() - cpu
        print(f"video {args.seconds:.0f} s, {FRAME_RATE} fps, 640x480, labelled at {LABEL_FPS:g} fps in-process: "
              f"{summary.frames} frames in {summary.seconds:.1f} s = {summary.frames / summary.seconds:.1f} frames/s, "
              f"{summary.video_seconds / summary.seconds:.2f}x real time ({summary.faces} faces); "
              f"CPU {cpu:.1f} s = {1000 * cpu / summary.frames:.0f} ms per frame, {summary.video_seconds / cpu:.2f}x "
              "real time per CPU second")

        folder = scratch / "photos"
        folder.mkdir()
        for number in range(args.photos):
            cv2.imwrite(str(folder / f"{number:05d}.jpg"), cycle[number % len(cycle)])
        cpu = cpu_s()
        summary = label(folder, scratch / "photos.csv", classifier=classifier)
        cpu = cpu_s() - cpu
        print(f"{args.photos} photos 640x480 in-process: {summary.seconds:.1f} s = "
              f"{summary.photos / summary.seconds:.1f} photos/s ({summary.faces} faces); "
              f"CPU {cpu:.1f} s = {1000 * cpu / summary.photos:.0f} ms per photo")
        if args.ray:
            import ray

            start_ray(LOCAL_RAY)  # once for both pool sizes
            try:
                for actors in (1, 2):
                    summary = label(video, scratch / "ray-video.csv", fps=LABEL_FPS, ray=LOCAL_RAY, actors=actors)
                    print(f"video {args.seconds:.0f} s at {LABEL_FPS:g} fps on local Ray, {actors} actor(s): "
                          f"{summary.frames} frames in {summary.seconds:.1f} s = {summary.video_seconds / summary.seconds:.2f}x "
                          "real time (actor start-up included)")
                    summary = label(folder, scratch / "ray.csv", ray=LOCAL_RAY, actors=actors)
                    print(f"{args.photos} photos 640x480 on local Ray, {actors} actor(s): {summary.seconds:.1f} s = "
                          f"{summary.photos / summary.seconds:.1f} photos/s (actor start-up included)")
            finally:
                ray.shutdown()

        if args.long_minutes:
            long_video = make_video(scratch / "long.mp4", cycle, args.long_minutes * 60)
            memory: list[float] = []
            summary = label(long_video, scratch / "long.csv", fps=args.long_fps, classifier=classifier,
                            progress=lambda done, total: memory.append(rss_mb()))
            print(f"long video {args.long_minutes:g} min at {args.long_fps:g} fps: {summary.frames} frames in "
                  f"{summary.seconds:.0f} s; process memory after the first batch {memory[0]:.0f} MB, "
                  f"at the end {memory[-1]:.0f} MB, peak {max(memory):.0f} MB "
                  f"(read after each of {len(memory)} batches)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
