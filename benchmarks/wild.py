"""Real photos through the Try-It path, stage by stage: how often a face is found, how often it is right, how fast.

    python benchmarks/wild.py --data ../shared/data/wild/wild-dev.zip

Reads a folder or zip of class folders (angry/, happy/, ...) in one process and answers each photo as Try it
does: its most prominent (largest) face; a photo with no face found counts as wrong. Stages:

  haar        the path before issue #11: OpenCV's Haar cascade, its box widened 3%, one crop
  detector    CenterFace (core.faces), its box framed as FER2013 frames faces (benchmarks/fer_framing.py), upright
  + align     ...turned upright by the eyes and framed by them (core.faces.cropped_faces)
  + jitter    ...the model averaged over jittered views of each face: the product (core.recognise.recognise)

For each: accuracy on 7 emotions, on the seed's 5 (photos of those five, the likeliest of the five), the share of
photos with no face found, and the mean milliseconds per photo (decode, detect, crop, classify). Then the median
time of each stage on a 640x480 photo with one face, and false faces on face-free images made by this script.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from core.archives import Archive  # noqa: E402
from core.data import IMAGE_EXTENSIONS  # noqa: E402
from core.emotions import SEED_EMOTIONS, canonical_emotion  # noqa: E402
from core.faces import (FER_BOX_CENTRE, FER_BOX_SIDE, INPUT_SIZE, JITTER, SMALL_IMAGE_SIDE,  # noqa: E402
                        cropped_faces, detected_faces, resize_face, whole_image_face)
from core.images import decode_image, to_gray  # noqa: E402
from core.recognise import Classifier, load_classifier, recognise  # noqa: E402

Answer = Callable[[bytes], "np.ndarray | None"]  # photo -> probabilities of its main face, or None: no face


def labelled_photos(source: Path) -> Iterator[tuple[str, str, bytes]]:
    """(file name, emotion, encoded photo) for each image under a class folder of a zip or folder, by path."""
    def emotion_of(parts: tuple[str, ...]) -> str | None:
        return next((e for e in map(canonical_emotion, reversed(parts[:-1])) if e), None)

    with Archive(source) as archive:
        for member in sorted(archive.members, key=lambda member: PurePosixPath(member.name).parts):
            parts = PurePosixPath(member.name).parts
            if member.suffix in IMAGE_EXTENSIONS and (emotion := emotion_of(parts)):
                yield parts[-1], emotion, archive.read(member.name)


# -- the stages before the product's own path -------------------------------------------------------------
_haar = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")


def haar_face(gray: np.ndarray) -> np.ndarray | None:
    """The main face as core/faces.py found and cut it before issue #11 (its code, kept here as the baseline)."""
    if max(gray.shape) <= SMALL_IMAGE_SIDE:
        return whole_image_face(gray)
    scale = min(1.0, 400 / max(gray.shape))
    small = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else gray
    min_side = max(20, int(min(small.shape) * 0.06))
    found = np.asarray(_haar.detectMultiScale(cv2.equalizeHist(small), scaleFactor=1.1, minNeighbors=5,
                                              minSize=(min_side, min_side))).reshape(-1, 4)
    if len(found) == 0:
        return None
    x, y, w, h = max(found.tolist(), key=lambda b: b[2] * b[3])
    return square_crop(gray, (x + w / 2) / scale, (y + h / 2) / scale, max(w, h) * 1.06 / scale)


def detector_face(gray: np.ndarray) -> np.ndarray | None:
    """The main face by CenterFace's box alone: no turning, the box placed where FER2013 has it."""
    if max(gray.shape) <= SMALL_IMAGE_SIDE:
        return whole_image_face(gray)
    faces = detected_faces(gray)
    if not faces:
        return None
    box = faces[0].box
    side = max(box.width, box.height) * INPUT_SIZE / FER_BOX_SIDE
    cx = box.x + box.width / 2 + (INPUT_SIZE / 2 - FER_BOX_CENTRE[0]) * side / INPUT_SIZE
    cy = box.y + box.height / 2 + (INPUT_SIZE / 2 - FER_BOX_CENTRE[1]) * side / INPUT_SIZE
    return square_crop(gray, cx, cy, side)


def square_crop(gray: np.ndarray, cx: float, cy: float, side: float) -> np.ndarray:
    x0, y0 = round(cx - side / 2), round(cy - side / 2)
    x1, y1 = x0 + round(side), y0 + round(side)
    pad = max(0, -x0, -y0, x1 - gray.shape[1], y1 - gray.shape[0])
    if pad:
        gray = cv2.copyMakeBorder(gray, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        x0, y0, x1, y1 = x0 + pad, y0 + pad, x1 + pad, y1 + pad
    return resize_face(gray[y0:y1, x0:x1])


def stages(classifier: Classifier) -> dict[str, Answer]:
    def one_face(cut: Callable[[np.ndarray], np.ndarray | None]) -> Answer:
        def answer(photo: bytes) -> np.ndarray | None:
            face = cut(to_gray(decode_image(photo)))
            return None if face is None else classifier.probabilities(face[None])[0]
        return answer

    def aligned(gray: np.ndarray) -> np.ndarray | None:
        found = cropped_faces(gray, jitter=JITTER[:1], limit=1).faces
        return found[0].face if found else None

    def product(photo: bytes) -> np.ndarray | None:
        main = recognise(classifier, photo).main_face
        return None if main is None else np.array([main.probabilities[c] for c in classifier.classes])

    return {"haar (before)": one_face(haar_face), "detector": one_face(detector_face),
            "+ align, FER framing": one_face(aligned), "+ jitter (product)": product}


def webcam_photo(photo: bytes) -> bytes:
    """A 640x480 JPEG with the photo's face at about a third of the frame, as a webcam snapshot has it."""
    face = cv2.resize(decode_image(photo), (300, 300), interpolation=cv2.INTER_AREA)
    canvas = np.full((480, 640, 3), 110, np.uint8)
    canvas[90:390, 170:470] = face
    return cv2.imencode(".jpg", cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR))[1].tobytes()


def face_free_images(count: int, seed: int = 0) -> Iterator[np.ndarray]:
    """640x480 RGB images with no face: blurred noise, blobs, boxes, text, waves (each a fifth)."""
    rng = np.random.default_rng(seed)
    for index in range(count):
        kind = index % 5
        image = np.full((480, 640), int(rng.integers(40, 220)), np.uint8)
        if kind == 0:
            noise = cv2.GaussianBlur(rng.integers(0, 256, (480, 640)).astype(np.uint8), (0, 0), float(rng.uniform(1, 12)))
            image = cv2.normalize(noise, None, 0, 255, cv2.NORM_MINMAX)
        elif kind == 1:
            for _ in range(25):
                centre = (int(rng.integers(0, 640)), int(rng.integers(0, 480)))
                axes = (int(rng.integers(5, 90)), int(rng.integers(5, 90)))
                cv2.ellipse(image, centre, axes, float(rng.uniform(0, 180)), 0, 360, int(rng.integers(0, 256)), -1)
        elif kind == 2:
            for _ in range(30):
                corners = (int(rng.integers(0, 640)), int(rng.integers(0, 480))), (int(rng.integers(0, 640)), int(rng.integers(0, 480)))
                cv2.rectangle(image, *corners, int(rng.integers(0, 256)), int(rng.choice([-1, 2, 5])))
        elif kind == 3:
            for line in range(12):
                cv2.putText(image, f"emovoice {rng.integers(1000)} hello", (10, 35 + 38 * line), cv2.FONT_HERSHEY_SIMPLEX,
                            float(rng.uniform(0.6, 1.4)), int(rng.integers(0, 256)), 2)
        else:
            y, x = np.mgrid[0:480, 0:640]
            image = ((np.sin(x / rng.uniform(5, 40)) + np.cos(y / rng.uniform(5, 40))) * 60 + 128).astype(np.uint8)
        yield np.stack([image] * 3, axis=-1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("../shared/data/wild/wild-dev.zip"),
                        help="a folder or zip of class folders of photos")
    parser.add_argument("--model", type=Path, default=None, help="model folder (default: the active model)")
    parser.add_argument("--limit", type=int, default=0, help="score only every n-th photo to give this many (0: all)")
    parser.add_argument("--repeats", type=int, default=30, help="timed calls per stage on the 640x480 photo")
    parser.add_argument("--face-free", type=int, default=200, help="face-free images to count false faces on")
    parser.add_argument("--stages", nargs="+", default=None, help="only these stages (names as printed)")
    args = parser.parse_args()

    classifier = load_classifier(args.model)
    classes = classifier.classes
    five = [classes.index(e) for e in SEED_EMOTIONS if e in classes]
    photos = list(labelled_photos(args.data))
    if args.limit:
        photos = photos[:: max(1, len(photos) // args.limit)][: args.limit]
    answers = {name: answer for name, answer in stages(classifier).items() if not args.stages or name in args.stages}
    for answer in answers.values():  # warm-up: the first call loads the detector and sizes the model's buffers
        answer(photos[0][2])

    print(f"data: {args.data} ({len(photos)} photos); model: {classifier.loaded.path.name}")
    print("| stage | accuracy (7) | accuracy (seed's 5) | no face | ms per photo | ms, 640x480 photo |")
    print("|---|---|---|---|---|---|")
    webcam = webcam_photo(photos[0][2])
    for name, answer in answers.items():
        right = right5 = n5 = missed = 0
        started = time.perf_counter()
        for _, emotion, photo in photos:
            probabilities = answer(photo)
            in_five = emotion in SEED_EMOTIONS
            n5 += in_five
            if probabilities is None:
                missed += 1
                continue
            right += classes[int(np.argmax(probabilities))] == emotion
            right5 += in_five and classes[five[int(np.argmax(probabilities[five]))]] == emotion
        per_photo = (time.perf_counter() - started) / len(photos) * 1000
        timings = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            answer(webcam)
            timings.append(time.perf_counter() - started)
        print(f"| {name} | {right / len(photos):.1%} | {right5 / max(1, n5):.1%} | {missed / len(photos):.1%} | "
              f"{per_photo:.1f} | {statistics.median(timings) * 1000:.1f} |", flush=True)

    if args.face_free:
        with_faces = sum(bool(recognise(classifier, image).faces) for image in face_free_images(args.face_free))
        print(f"\nfalse faces: {with_faces} of {args.face_free} face-free images had a face found (product path)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
