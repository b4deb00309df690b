"""Training fixtures: the bundled sample as a dataset, one trained run shared by the tests that only need
"a trained model", FER+ votes written for the sample's faces, and the sample with its votes as a training set.

tests/conftest.py imports the two fixtures, `sample` and `trained_run`, so every test file has them.
"""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from core.votes import COLUMNS, parse_votes
from support.photos import SAMPLE_ZIP


@pytest.fixture(scope="session")
def sample(tmp_path_factory):
    """The bundled sample (140 FER2013 test faces), read once per session."""
    from core.data import load_dataset

    return load_dataset(SAMPLE_ZIP, cache_dir=tmp_path_factory.mktemp("sample-cache"))


@pytest.fixture(scope="session")
def trained_run(sample, tmp_path_factory) -> Path:
    """One finished run (seed network, 1 epoch on the sample), trained once per session. Read it, never
    change it: copy it (`copy_run`) to change it."""
    from core.training import recipe, train

    folder = tmp_path_factory.mktemp("shared-run") / "seed-1-epoch"
    train(recipe("seed", epochs=1, batch_size=32), sample, folder)
    return folder


def copy_run(run: Path, to: Path) -> Path:
    shutil.copytree(run, to)
    return to


def votes_csv(names: list[str], leading: list[str], other: list[str], tied: list[bool]) -> bytes:
    """A ferplus.csv (image, ten counts) that gives each named face 6 votes for `leading` and 4 for `other`,
    or 5 and 5 where `tied`."""
    lines = ["image," + ",".join(COLUMNS)]
    fer_column = {"neutral": "neutral", "happy": "happiness", "surprise": "surprise", "sad": "sadness",
                  "angry": "anger", "disgust": "disgust", "fear": "fear"}
    for name, first, second, tie in zip(names, leading, other, tied):
        counts = dict.fromkeys(COLUMNS, 0)
        counts[fer_column[first]] += 5 if tie else 6
        counts[fer_column[second]] += 5 if tie else 4
        lines.append(name + "," + ",".join(str(counts[column]) for column in COLUMNS))
    return ("\n".join(lines) + "\n").encode()


def attach_test_votes(dataset, rng_seed: int = 0) -> dict[str, str]:
    """Votes for every face of `dataset` (made here, parsed by core.votes): a majority that is the face's own
    label for about half of them and "happy" for the rest, a tie for every fifth. Returns name -> majority
    ("" for a tie)."""
    from core.emotions import EMOTIONS

    rng = np.random.default_rng(rng_seed)
    names, leading, other, tied = [], [], [], []
    for split in dataset.splits:
        for name, label in zip(dataset.names[split], dataset.labels[split]):
            own = EMOTIONS[label]
            first = own if rng.random() < 0.5 else ("happy" if own != "happy" else "surprise")
            names.append(str(name))
            leading.append(first)
            other.append(own if first != own else "neutral")
            tied.append(len(names) % 5 == 0)
    dataset.attach_votes(parse_votes(votes_csv(names, leading, other, tied), "test-votes.csv"))
    return {name: "" if tie else first for name, first, tie in zip(names, leading, tied)}


def sample_with_votes_as_both_splits(sample_zip: Path, folder: Path) -> Path:
    """The sample's faces as both train/ and test/, and their FER+ votes beside them as ferplus.csv."""
    data = folder / "fer2013.zip"
    with zipfile.ZipFile(sample_zip) as source, zipfile.ZipFile(data, "w") as target:
        for name in source.namelist():
            target.writestr(name, source.read(name))
            target.writestr(name.replace("test/", "train/", 1), source.read(name))
    votes = (sample_zip.parent / "ferplus.csv").read_text().splitlines()
    (folder / "ferplus.csv").write_text("\n".join(votes + [row.replace("test/", "train/", 1) for row in votes[1:]]) + "\n")
    return data
