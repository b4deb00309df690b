"""Rebuild the bundled samples from FER2013 (original pixels) and FER+'s votes.

    python scripts/build_samples.py --data ../shared/data/fer2013/fer2013.zip --votes ../shared/data/fer2013/ferplus.csv

Writes two zips that share no face, and one votes file beside them:
- samples/fer2013-sample.zip: 20 test/ faces per emotion, what the Evaluate page scores out of the box;
- samples/fer2013-train-sample.zip: 30 train/ faces per emotion, what the Train page trains on out of the box;
- samples/ferplus.csv: the FER+ votes of every face in both, by its path inside its zip.
The faces are drawn at random (--seed) among those whose taggers' majority is an emotion; the image bytes
are copied unchanged.
"""

from __future__ import annotations

import argparse
import csv
import io
import random
import sys
import zipfile
from pathlib import Path, PurePosixPath

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.paths import SAMPLES_DIR  # noqa: E402

PER_EMOTION = {"test": 20, "train": 30}
ZIP_NAMES = {"test": "fer2013-sample.zip", "train": "fer2013-train-sample.zip"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="FER2013 zip with train/ and test/ class folders")
    parser.add_argument("--votes", type=Path, required=True, help="ferplus.csv: image path, then FER+'s ten columns")
    parser.add_argument("--out", type=Path, default=SAMPLES_DIR)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    import numpy as np

    from core.emotions import EMOTIONS
    from core.runs import write_atomic
    from core.votes import COLUMNS, VotesError, majority, read_votes

    try:
        table = read_votes(args.votes)
        archive = zipfile.ZipFile(args.data)
    except (VotesError, OSError, zipfile.BadZipFile) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    rng = random.Random(args.seed)
    rows = []
    for split, count in PER_EMOTION.items():
        chosen = []
        for emotion in EMOTIONS:
            names = sorted(name for name in archive.namelist()
                           if PurePosixPath(name).parts[:2] == (split, emotion) and name in table.counts)
            agreed = majority(np.stack([table.counts[name] for name in names]), EMOTIONS)
            chosen += rng.sample([name for name, label in zip(names, agreed) if label >= 0], count)

        def write(partial: Path, chosen=chosen) -> None:
            with zipfile.ZipFile(partial, "w", zipfile.ZIP_STORED) as out:
                for name in chosen:
                    out.writestr(name, archive.read(name))

        write_atomic(args.out / ZIP_NAMES[split], write)
        rows += [[name, *(int(v) for v in table.counts[name])] for name in chosen]
        print(f"{args.out / ZIP_NAMES[split]}: {len(chosen)} faces", file=sys.stderr)
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows([["image", *COLUMNS], *rows])
    write_atomic(args.out / "ferplus.csv", lambda partial: partial.write_text(buffer.getvalue()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
