"""Where FER2013 puts a face in its 48x48 crop: the numbers core/faces.py frames every detected face by.

    python benchmarks/fer_framing.py --data ../shared/data/fer2013/fer2013.zip

Each face is enlarged 4 times (to 192 pixels, the size of a face in a webcam photo), given a margin of
replicated border and searched by the product's detector; its landmarks and box, taken back to the 48x48
crop, are averaged over every face it finds. Prints the eyes' midpoint and distance, the mouth's midpoint,
the box's centre and larger side, in crop pixels, and how many faces were found.
"""

from __future__ import annotations

import argparse
import sys
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from core.faces import detected_faces  # noqa: E402

ENLARGE = 4
MARGIN = 64  # pixels of replicated border around the enlarged face: room for the detector's box


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="../shared/data/fer2013/fer2013.zip", help="FER2013 as a zip of class folders")
    parser.add_argument("--faces", type=int, default=2000, help="training faces to measure (every n-th, all classes)")
    args = parser.parse_args()

    with zipfile.ZipFile(args.data) as archive:
        names = sorted(n for n in archive.namelist() if n.startswith("train/") and n.endswith((".jpg", ".png")))
        names = names[:: max(1, len(names) // args.faces)][: args.faces]
        eyes, eye_distance, mouths, box_centres, box_sides, found = [], [], [], [], [], 0
        for name in names:
            face = cv2.imdecode(np.frombuffer(archive.read(name), np.uint8), cv2.IMREAD_GRAYSCALE)
            big = cv2.resize(face, None, fx=ENLARGE, fy=ENLARGE, interpolation=cv2.INTER_CUBIC)
            photo = cv2.copyMakeBorder(big, MARGIN, MARGIN, MARGIN, MARGIN, cv2.BORDER_REPLICATE)
            faces = detected_faces(photo, side=photo.shape[0])  # at its own size: no resampling
            if not faces:
                continue
            found += 1
            best = max(faces, key=lambda f: f.score)
            marks = (best.landmarks - MARGIN) / ENLARGE
            box = best.box
            eyes.append(marks[:2].mean(axis=0))
            eye_distance.append(np.linalg.norm(marks[1] - marks[0]))
            mouths.append(marks[3:5].mean(axis=0))
            box_centres.append(((box.x + box.width / 2 - MARGIN) / ENLARGE, (box.y + box.height / 2 - MARGIN) / ENLARGE))
            box_sides.append(max(box.width, box.height) / ENLARGE)
    print(f"faces: {len(names)} measured, {found} found by the detector ({found / len(names):.1%})")
    print("eye midpoint (x, y): ({:.1f}, {:.1f})".format(*np.mean(eyes, axis=0)))
    print(f"eye distance: {np.mean(eye_distance):.1f} (sd {np.std(eye_distance):.1f})")
    print("mouth midpoint (x, y): ({:.1f}, {:.1f})".format(*np.mean(mouths, axis=0)))
    print("box centre (x, y): ({:.1f}, {:.1f})".format(*np.mean(box_centres, axis=0)))
    print(f"box side: {np.mean(box_sides):.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
