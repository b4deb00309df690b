"""fer2013.csv: FER2013's faces as rows of 48x48 pixel values, read one line at a time.

Columns: emotion (0-6, in core.emotions.EMOTIONS' order), pixels (2,304 values, space-separated) and,
optionally, Usage (Training, PublicTest, PrivateTest: the split).
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Callable, Iterable

import numpy as np

from core.emotions import EMOTIONS, INPUT_SIZE
from core.votes import fer_name

CSV_USAGE = {"Training": "train", "PublicTest": "test", "PrivateTest": "private"}
MALFORMED_ROW = "malformed CSV row"

AddFace = Callable[[str, str, np.ndarray, str], None]  # (split, emotion, 48x48 face, its name in the source)


def read_fer_csv(lines: Iterable[bytes], add: AddFace, skipped: Counter) -> None:
    """fer2013.csv's rows (emotion, pixels, optionally Usage), read one line at a time.

    Each line is parsed on its own, so a stray quote or a row with extra columns costs that row (counted),
    never the rows after it. A row keeps its number in the file whether or not the rows before it were
    read: FER+ names faces by row (core.votes.fer_name), so its votes still join the right faces.
    """
    header: list[str] | None = None
    pixel_count = INPUT_SIZE * INPUT_SIZE
    row = 0
    for raw in lines:
        line = raw.decode("utf-8", errors="replace").strip("\r\n")
        if not line.strip():
            continue  # blank lines are no rows (as pandas, and FER+, count them)
        try:
            fields = next(csv.reader([line], strict=True))
        except csv.Error:
            fields = None
        if header is None:  # "\ufeff": the byte-order mark Excel, and pandas' utf-8-sig, write first
            header = [name.strip().lstrip("\ufeff").lower() for name in fields or []]
            if not {"emotion", "pixels"} <= set(header):
                skipped["CSV without 'emotion' and 'pixels' columns"] += 1
                return
            columns = {name: header.index(name) for name in ("emotion", "pixels", "usage") if name in header}
            continue
        number, row = row, row + 1
        face = _face(fields, header, columns, pixel_count)
        if face is None:
            skipped[MALFORMED_ROW] += 1
            continue
        index, pixels = face
        use = fields[columns["usage"]] if "usage" in columns and columns["usage"] < len(fields) else "Training"
        split = CSV_USAGE.get(use.strip(), "all")
        # Named as FER+ names fer2013.csv's rows, so that fer2013new.csv's votes join row for row.
        add(split, EMOTIONS[index], pixels, fer_name(number))


def _face(fields: list[str] | None, header: list[str], columns: dict[str, int],
          pixel_count: int) -> tuple[int, np.ndarray] | None:
    """(emotion index, 48x48 face) of a CSV row, or None for a row that is not one face."""
    if fields is None or len(fields) > len(header) or columns["pixels"] >= len(fields):
        return None
    try:
        index = int(fields[columns["emotion"]].strip())
        values = np.array(fields[columns["pixels"]].split(), dtype=np.float64)
    except ValueError:
        return None
    if not 0 <= index < len(EMOTIONS) or values.size != pixel_count or not np.all((values >= 0) & (values <= 255)):
        return None
    return index, values.reshape(INPUT_SIZE, INPUT_SIZE).astype(np.uint8)
