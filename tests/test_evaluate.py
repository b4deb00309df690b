"""scripts/evaluate.py as a user runs it: FER2013's labels and the FER+ majority side by side, and its figures."""

from __future__ import annotations

import json
import os
import zipfile

import numpy as np
import pytest
from support.photos import SAMPLE_ZIP
from support.scripts import error_lines, run_main

from core.emotions import EMOTIONS
from core.votes import COLUMNS

FER_PLUS_COLUMN = {"neutral": "neutral", "happy": "happiness", "surprise": "surprise", "sad": "sadness",
                   "angry": "anger", "disgust": "disgust", "fear": "fear"}


@pytest.fixture(scope="module")
def voted_faces(tmp_path_factory):
    """14 real faces in a zip, and votes beside it whose majority the shipped model agrees with on known faces:
    the even faces' majority is the model's own answer, the odd ones' another emotion, and two faces are
    left out by FER+'s protocol (a tie, and not-a-face)."""
    from core.images import decode_image, to_gray
    from core.recognise import load_classifier

    folder = tmp_path_factory.mktemp("voted")
    with zipfile.ZipFile(SAMPLE_ZIP) as sample:
        names = [n for n in sorted(sample.namelist()) if n.startswith("test/")]
        picked = [next(n for n in names if n.split("/")[1] == emotion) for emotion in EMOTIONS]
        picked += [[n for n in names if n.split("/")[1] == emotion][1] for emotion in EMOTIONS]
        faces = {name: sample.read(name) for name in picked}
    classifier = load_classifier()
    answers = classifier.probabilities(np.stack([to_gray(decode_image(data)) for data in faces.values()])).argmax(axis=1)
    rows = []
    with zipfile.ZipFile(folder / "faces.zip", "w") as archive:
        for index, ((name, data), answer) in enumerate(zip(faces.items(), answers)):
            archive.writestr(name, data)
            said = classifier.classes[answer if index % 2 == 0 else (answer + 1) % len(classifier.classes)]
            counts = dict.fromkeys(COLUMNS, 0)
            if index == 1:
                counts.update(neutral=5, happiness=5)  # a tie
            elif index == 3:
                counts.update(NF=8, anger=2)  # not a face
            else:
                counts.update({FER_PLUS_COLUMN[said]: 7, "unknown": 3})
            rows.append(",".join([name, *(str(counts[c]) for c in COLUMNS)]))
    (folder / "ferplus.csv").write_text("image," + ",".join(COLUMNS) + "\n" + "\n".join(rows) + "\n")
    return folder


def test_evaluate_reports_agreement_with_the_fer_plus_majority(voted_faces, capsys):
    assert run_main("evaluate", "--data", voted_faces / "faces.zip", "--json") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n"] == 14 and report["n_ferplus"] == 12  # the tie and the not-a-face left out
    assert report["accuracy_ferplus"] == pytest.approx(7 / 12, abs=1e-4)  # the 7 even faces, out of 12 voted
    assert sum(row["support"] for row in report["per_class_ferplus"].values()) == 12

    assert run_main("evaluate", "--data", voted_faces / "faces.zip") == 0  # in words too
    assert "agreement with the FER+ majority: 58.33% (n=12" in capsys.readouterr().out


def test_evaluate_without_votes_and_with_votes_that_match_nothing(voted_faces, tmp_path, capsys):
    alone = tmp_path / "alone.zip"
    alone.write_bytes((voted_faces / "faces.zip").read_bytes())
    assert run_main("evaluate", "--data", alone, "--json") == 0
    assert "accuracy_ferplus" not in json.loads(capsys.readouterr().out)
    (tmp_path / "other.csv").write_text("image," + ",".join(COLUMNS) + "\nnot/there.png" + ",1" * 10 + "\n")
    assert run_main("evaluate", "--data", alone, "--votes", tmp_path / "other.csv") == 2
    assert len(error_lines(capsys.readouterr().err)) == 1


def test_figures_are_written_whole_or_refused_in_one_line(voted_faces, tmp_path, capsys):
    assert run_main("evaluate", "--data", voted_faces / "faces.zip", "--figures", tmp_path / "figures") == 0
    written = sorted(p.name for p in (tmp_path / "figures").iterdir())
    assert written == ["confusion_matrix.png", "confusion_matrix_5class.png", "confusion_matrix_ferplus.png",
                       "recall.png", "reliability.png"]
    capsys.readouterr()
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    if os.access(locked, os.W_OK):  # root writes anywhere: a file where the folder should be refuses all the same
        locked.rmdir()
        locked.write_text("a file, not a folder")
    assert run_main("evaluate", "--data", voted_faces / "faces.zip", "--figures", locked / "out") == 2
    [error] = error_lines(capsys.readouterr().err)
    assert "cannot write the figures" in error
