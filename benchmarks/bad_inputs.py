"""What a user sees for each kind of bad photo: the message, the time it took, the memory it cost.

    python benchmarks/bad_inputs.py

Each photo (samples/bad_photos.py makes them) goes through core.recognise.recognise, the path that
scripts/predict.py and the Try-It page share; the table is what the README shows.
"""

from __future__ import annotations

import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.images import ImageError  # noqa: E402
from core.recognise import load_classifier, recognise  # noqa: E402
from samples.bad_photos import bad_photos  # noqa: E402


def main() -> int:
    photos = bad_photos()
    classifier = load_classifier()
    recognise(classifier, photos[-1].data)  # warm-up: the first call sizes the model's buffers
    print("| photo | what the user sees | time |")
    print("|---|---|---|")
    for photo in photos:
        started = time.perf_counter()
        try:
            result = recognise(classifier, photo.data)
            faces = ", ".join(f.emotion for f in result.faces[:3]) + (" ..." if len(result.faces) > 3 else "")
            seen = f"{len(result.faces)} face(s): {faces}" if result.faces else ""
            seen = "; ".join(s for s in (seen, result.message()) if s)
        except ImageError as error:
            seen = f"error: {error}"
        elapsed = time.perf_counter() - started
        print(f"| {photo.kind} | {seen} | {elapsed * 1000:.0f} ms |")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak memory of the whole process (TensorFlow and the model included): {peak:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
