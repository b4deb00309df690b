"""Read a facial-expression dataset into the cache and report what was found.

    python scripts/build_dataset.py ../shared/data/fer2013/fer2013.zip
    python scripts/build_dataset.py ~/Downloads/fer2013.csv --json

Accepts a folder or .zip with train/ and test/ class folders (Kaggle's FER2013),
a plain folder of class folders, or the original fer2013.csv, and says how many faces have FER+ votes
(beside the data, or --votes). Later runs of train/evaluate read the cached arrays until the source changes.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", help="folder, .zip or fer2013.csv")
    parser.add_argument("--cache-dir", type=Path, help="where the arrays are cached (default: ~/.cache/emovoice/datasets)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--votes", type=Path, metavar="CSV", help="FER+ votes to join (found beside the data when not given)")
    args = parser.parse_args(argv)

    from core.data import DatasetError, load_dataset
    from core.votes import VotesError, attach_found_votes

    try:
        dataset = load_dataset(args.source, cache_dir=args.cache_dir)
        votes = attach_found_votes(dataset, args.votes)
    except (DatasetError, VotesError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    report = dataset.report
    if args.json:
        print(json.dumps({"source": dataset.source, "fingerprint": dataset.fingerprint, "counts": report.counts,
                          "skipped": dict(report.skipped), "unknown_classes": sorted(report.unknown_classes),
                          "votes": str(votes) if votes else None, "voted_faces": _voted(dataset),
                          "warnings": report.warnings()}))
        return 0
    print(f"{dataset.source} (fingerprint {dataset.fingerprint})")
    for split, counts in report.counts.items():
        print(f"  {split}: {sum(counts.values())} images  " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    if votes:
        print(f"  FER+ votes for {_voted(dataset)} faces ({votes})")
    for warning in report.warnings():
        print(f"  warning: {warning}")
    return 0


def _voted(dataset) -> int:
    return int(sum((counts.sum(axis=1) > 0).sum() for counts in (dataset.votes or {}).values()))


if __name__ == "__main__":
    sys.exit(main())
