"""FER+ votes: ten people's reading of each FER2013 face, as training targets and as a majority to score.

FER+ (Barsoum et al. 2016, microsoft/FERPlus, MIT) asked ten taggers per FER2013 face to pick one of
neutral, happiness, surprise, sadness, anger, disgust, fear, contempt, unknown and not-a-face. Two forms
are read:

- the `ferplus.csv` form: `image` (the face's path inside the dataset zip or folder), then the ten counts;
- FER+'s own `fer2013new.csv`: `Usage`, `Image name`, then the ten counts, row for row with fer2013.csv
  (core.data names the CSV's faces `fer0000000.png`... by row, as FER+ does).

Contempt is not one of emovoice's emotions: FER2013 never labelled it, the voice bank (RAVDESS) has no
contempt clips, and it has 1.7% of FER+'s votes (the majority on 189 of 32,137 faces). It is dropped from the distribution,
so its votes count for nothing; a face whose majority is contempt is left out of the majority scores,
as are unknown and not-a-face majorities and ties (FER+'s majority protocol).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from core.emotions import EMOTIONS

COLUMNS: tuple[str, ...] = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear",
                            "contempt", "unknown", "NF")
# The FER+ column of each of emovoice's emotions.
_COLUMN_OF = {"neutral": 0, "happy": 1, "surprise": 2, "sad": 3, "angry": 4, "disgust": 5, "fear": 6}
_NOT_AN_EMOTION = (COLUMNS.index("unknown"), COLUMNS.index("NF"))
MAX_VOTES_BYTES = 64 * 1024 * 1024  # FER+'s own file is 2 MB


class VotesError(ValueError):
    """A votes file that cannot be read at all, with a message that says what to do."""


@dataclass(frozen=True)
class VoteTable:
    """Vote counts (N, 10) in COLUMNS' order, by the face's path inside its dataset."""

    source: str
    counts: dict[str, np.ndarray]

    def lookup(self, names: np.ndarray) -> np.ndarray:
        """Counts for each face name (all zeros where the table has no row): by its path, else by its file name
        where the table holds that file name once (FER+'s fer0000123.png names are unique; im0.png in every class
        folder is no one face)."""
        by_file: dict[str, np.ndarray | None] = {}
        for key, row in self.counts.items():
            name = PurePosixPath(key).name
            by_file[name] = None if name in by_file else row  # a name held twice joins nothing
        rows = [self.counts.get(str(name)) if str(name) in self.counts else by_file.get(PurePosixPath(str(name)).name)
                for name in names]
        return np.stack([np.zeros(len(COLUMNS), np.float32) if row is None else row for row in rows]) \
            if rows else np.zeros((0, len(COLUMNS)), np.float32)


def read_votes(path: str | Path) -> VoteTable:
    """Read votes in either form (see the module's docstring); bad rows are skipped."""
    path = Path(path)
    if not path.is_file():
        raise VotesError(f"{path} is not a file: give FER+'s fer2013new.csv or a ferplus.csv of image,counts rows")
    if path.stat().st_size > MAX_VOTES_BYTES:
        raise VotesError(f"{path.name} is {path.stat().st_size / 2**20:.0f} MB; a votes file is at most "
                         f"{MAX_VOTES_BYTES // 2**20} MB")
    try:
        data = path.read_bytes()
    except OSError as error:  # a file it may not read
        raise VotesError(f"{path} cannot be read ({error.strerror})") from None
    return parse_votes(data, str(path))


def parse_votes(data: bytes, source: str = "votes") -> VoteTable:
    try:
        rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    except (UnicodeDecodeError, csv.Error) as error:
        raise VotesError(f"{source} is not a readable CSV ({error})") from None
    if not rows:
        raise VotesError(f"{source} is empty")
    header = [cell.strip().lower() for cell in rows[0]]
    wanted = [column.lower() for column in COLUMNS]
    if header[:1] == ["image"] and header[1:11] == wanted:
        name_of, first = (lambda index, row: row[0].strip()), 1
    elif header[:2] == ["usage", "image name"] and header[2:12] == wanted:
        name_of, first = (lambda index, row: fer_name(index)), 2
    else:
        raise VotesError(f"{source} has neither FER+'s columns (Usage, Image name, neutral, ..., NF) nor "
                         "image,neutral,...,NF")
    counts = {}
    # Blank lines are no rows, as core.fer_csv (and pandas) count fer2013.csv's: FER+'s rows join by number.
    lines = [row for row in rows[1:] if len(row) > 1 or "".join(row).strip()]
    for index, row in enumerate(lines):
        try:
            values = np.array([float(cell) for cell in row[first:first + len(COLUMNS)]], np.float32)
        except ValueError:
            continue
        if len(values) == len(COLUMNS) and np.all(values >= 0) and values.sum() > 0:
            counts[name_of(index, row)] = values
    if not counts:
        raise VotesError(f"{source} holds no rows of vote counts")
    return VoteTable(source, counts)


def votes_beside(data: str | Path) -> Path | None:
    """A votes file that sits beside a dataset, as FER+ is downloaded: ferplus.csv next to the zip or folder
    (or inside the folder), or FER+'s fer2013new.csv next to fer2013.csv (or a zip of it)."""
    data = Path(data)
    candidates = [data.parent / "ferplus.csv"]
    if data.is_dir():
        candidates.insert(0, data / "ferplus.csv")
    if data.suffix.lower() == ".csv" or _holds_a_csv(data):  # its rows are what fer2013new.csv names
        candidates.append(data.parent / "fer2013new.csv")
    return next((path for path in candidates if path.is_file()), None)


def _holds_a_csv(data: Path) -> bool:
    """A zip with a CSV of faces in it; a zip of image folders names its faces by file, which FER+ does not."""
    if data.suffix.lower() != ".zip":
        return False
    from core.archives import Archive, ArchiveError

    try:
        with Archive(data) as archive:  # its entries counted before zipfile parses them
            return any(member.suffix == ".csv" for member in archive.members)
    except ArchiveError:
        return False


def attach_found_votes(dataset, votes: str | Path | None = None) -> Path | None:
    """Join votes to a core.data.Dataset: the file given, else one found beside the dataset's source (see
    `votes_beside`). Returns the file used, or None when there is none."""
    path = Path(votes) if votes else votes_beside(dataset.source)
    if path is None:
        return None
    if not dataset.attach_votes(read_votes(path)):
        raise VotesError(f"none of the faces in {Path(dataset.source).name} has a row in {path.name}: "
                         "its image column must name the faces' paths inside the dataset")
    return path


def fer_name(row: int) -> str:
    """FER+'s name for the face on `row` of fer2013.csv (0-based, header not counted)."""
    return f"fer{row:07d}.png"


def distribution(counts: np.ndarray, emotions: tuple[str, ...]) -> np.ndarray:
    """Each face's votes over `emotions` as probabilities (rows of zeros where none of its votes is one of them)."""
    picked = counts[:, [_COLUMN_OF[emotion] for emotion in emotions]].astype(np.float32)
    total = picked.sum(axis=1, keepdims=True)
    return np.divide(picked, total, out=np.zeros_like(picked), where=total > 0)


def trainable(counts: np.ndarray, emotions: tuple[str, ...]) -> np.ndarray:
    """Faces to train on: voted, majority neither unknown nor not-a-face, some votes among `emotions`."""
    voted = counts.sum(axis=1) > 0
    majority = counts.argmax(axis=1)
    return voted & ~np.isin(majority, _NOT_AN_EMOTION) & (distribution(counts, emotions).sum(axis=1) > 0)


def majority(counts: np.ndarray, emotions: tuple[str, ...]) -> np.ndarray:
    """The taggers' majority as an index into `emotions`, or -1: no votes, a tie, or a majority that is not
    one of `emotions` (contempt, unknown, not-a-face, or an emotion outside a subset)."""
    index_in = np.full(len(COLUMNS), -1)
    for position, emotion in enumerate(emotions):
        index_in[_COLUMN_OF[emotion]] = position
    top = counts.max(axis=1, keepdims=True)
    tie = (counts == top).sum(axis=1) > 1
    labels = index_in[counts.argmax(axis=1)]
    labels[tie | (top[:, 0] <= 0)] = -1
    return labels


def targets(counts: np.ndarray, labels: np.ndarray, emotions: tuple[str, ...], label_share: float = 0.0) -> np.ndarray:
    """Soft targets: the vote distribution, with `label_share` of the dataset's own one-hot label mixed in.
    Faces without votes keep their one-hot label."""
    one_hot = np.eye(len(emotions), dtype=np.float32)[labels]
    votes = distribution(counts, emotions)
    mixed = (1 - label_share) * votes + label_share * one_hot
    has_votes = votes.sum(axis=1) > 0
    return np.where(has_votes[:, None], mixed, one_hot).astype(np.float32)


assert set(_COLUMN_OF) == set(EMOTIONS)
