"""FER+ votes: both file forms, the majority protocol, soft targets, and scores against the majority,
on small data made here."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from PIL import Image

from core.data import load_dataset
from core.emotions import EMOTIONS, SEED_EMOTIONS
from core.evaluation import summary
from core.votes import COLUMNS, VotesError, attach_found_votes, distribution, majority, parse_votes, targets, trainable, votes_beside

HEADER = "image," + ",".join(COLUMNS)


def votes(**counts: int) -> np.ndarray:
    """One face's ten counts from FER+ column names: votes(happiness=7, neutral=3)."""
    return np.array([[counts.get(column, 0) for column in COLUMNS]], np.float32)


def test_majority_follows_fer_plus_protocol():
    faces = np.concatenate([
        votes(happiness=6, neutral=4),  # happy
        votes(happiness=5, neutral=5),  # a tie: left out
        votes(unknown=6, sadness=4),  # unknown majority: left out
        votes(NF=9, anger=1),  # not a face: left out
        votes(contempt=5, anger=3),  # contempt is not one of emovoice's emotions: left out
        votes(),  # no votes
        votes(neutral=3, sadness=5, anger=2),  # sad
    ])
    assert majority(faces, EMOTIONS).tolist() == [EMOTIONS.index("happy"), -1, -1, -1, -1, -1, EMOTIONS.index("sad")]
    # The seed's five have no neutral: a neutral majority is outside them.
    assert majority(votes(neutral=6, anger=4), SEED_EMOTIONS).tolist() == [-1]


def test_distribution_drops_contempt_and_non_emotions():
    face = votes(happiness=4, contempt=2, unknown=2, surprise=2)
    target = distribution(face, EMOTIONS)[0]
    assert target[EMOTIONS.index("happy")] == pytest.approx(4 / 6)
    assert target[EMOTIONS.index("surprise")] == pytest.approx(2 / 6)
    assert target.sum() == pytest.approx(1)
    assert trainable(np.concatenate([face, votes(NF=6, fear=4), votes(unknown=7, fear=3), votes()]), EMOTIONS).tolist() == \
        [True, False, False, False]


def test_label_share_mixes_the_datasets_own_label():
    mixed = targets(np.concatenate([votes(neutral=8, sadness=2), votes()]),
                    np.array([EMOTIONS.index("sad"), EMOTIONS.index("fear")]), EMOTIONS, label_share=0.5)
    assert mixed[0][EMOTIONS.index("neutral")] == pytest.approx(0.4)
    assert mixed[0][EMOTIONS.index("sad")] == pytest.approx(0.1 + 0.5)
    assert mixed[1].tolist() == np.eye(7)[EMOTIONS.index("fear")].tolist()  # no votes: its own label


def test_ferplus_csv_joins_by_path_and_fer2013new_row_for_row(tmp_path):
    table = parse_votes(f"{HEADER}\ntest/sad/fer0000007.png,6,0,0,4,0,0,0,0,0,0\nbroken,row\n".encode())
    assert list(table.counts) == ["test/sad/fer0000007.png"]
    new = parse_votes(b"Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF\n"
                      b"Training,fer0000000.png,0,10,0,0,0,0,0,0,0,0\n"
                      b"Training,,0,0,0,0,0,0,0,0,0,10\n"
                      b"PublicTest,fer0000002.png,1,0,0,0,9,0,0,0,0,0\n")
    assert sorted(new.counts) == ["fer0000000.png", "fer0000001.png", "fer0000002.png"]  # row for row, by FER+'s names
    with pytest.raises(VotesError, match="columns"):
        parse_votes(b"a,b,c\n1,2,3\n")


def _face_png(value: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((48, 48), value, np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_fer2013_csv_with_fer2013new_beside_it_gets_votes_row_for_row(tmp_path):
    pixels = " ".join(["128"] * 48 * 48)
    (tmp_path / "fer2013.csv").write_text("emotion,pixels,Usage\n"
                                          f"3,{pixels},Training\n6,{pixels},Training\n0,{pixels},PublicTest\n")
    (tmp_path / "fer2013new.csv").write_text(
        "Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF\n"
        "Training,fer0000000.png,0,10,0,0,0,0,0,0,0,0\n"
        "Training,fer0000001.png,2,0,0,8,0,0,0,0,0,0\n"
        "PublicTest,fer0000002.png,7,0,0,0,3,0,0,0,0,0\n")
    dataset = load_dataset(tmp_path / "fer2013.csv", cache_dir=tmp_path / "cache")
    assert attach_found_votes(dataset) == tmp_path / "fer2013new.csv"
    _, labels, counts = dataset.select_with_votes("train", EMOTIONS)
    assert majority(counts, EMOTIONS).tolist() == [EMOTIONS.index("happy"), EMOTIONS.index("sad")]
    # The test face: FER2013 says angry, the taggers say neutral. A model answering neutral agrees with people.
    images, labels, counts = dataset.select_with_votes("test", EMOTIONS)
    neutral = np.eye(7, dtype=np.float32)[[EMOTIONS.index("neutral")]]
    report = summary(neutral, labels, EMOTIONS, counts)
    assert (report["accuracy"], report["accuracy_ferplus"], report["n_ferplus"]) == (0.0, 1.0, 1)

    with zipfile.ZipFile(tmp_path / "fer2013.zip", "w") as archive:  # the CSV zipped, fer2013new.csv beside it
        archive.write(tmp_path / "fer2013.csv", "fer2013/fer2013.csv")
    zipped = load_dataset(tmp_path / "fer2013.zip", cache_dir=tmp_path / "cache")
    assert attach_found_votes(zipped) == tmp_path / "fer2013new.csv"
    assert majority(zipped.select_with_votes("train", EMOTIONS)[2], EMOTIONS).tolist() == [
        EMOTIONS.index("happy"), EMOTIONS.index("sad")]
    with zipfile.ZipFile(tmp_path / "folders.zip", "w") as archive:  # faces named by file: fer2013new.csv names none
        archive.writestr("train/happy/im0.png", _face_png(100))
    assert votes_beside(tmp_path / "folders.zip") is None


def test_a_byte_order_mark_and_blank_lines_change_no_face_and_no_vote(tmp_path):
    """As Excel saves them: a byte-order mark before the header, and a blank line in each file."""
    pixels = " ".join(["128"] * 48 * 48)
    (tmp_path / "fer2013.csv").write_bytes(("\ufeffemotion,pixels,Usage\n"
                                            f"3,{pixels},Training\n\n6,{pixels},Training\n").encode("utf-8"))
    (tmp_path / "fer2013new.csv").write_text(
        "Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF\n"
        "Training,fer0000000.png,0,10,0,0,0,0,0,0,0,0\n\n"
        "Training,fer0000001.png,2,0,0,8,0,0,0,0,0,0\n")
    dataset = load_dataset(tmp_path / "fer2013.csv", cache_dir=tmp_path / "cache")
    attach_found_votes(dataset)
    _, labels, counts = dataset.select_with_votes("train", EMOTIONS)
    assert labels.tolist() == [EMOTIONS.index("happy"), EMOTIONS.index("neutral")]
    assert majority(counts, EMOTIONS).tolist() == [EMOTIONS.index("happy"), EMOTIONS.index("sad")]


def test_zip_votes_found_beside_it_and_refused_when_nothing_matches(tmp_path):
    with zipfile.ZipFile(tmp_path / "faces.zip", "w") as archive:
        archive.writestr("test/happy/fer0000010.png", _face_png(100))
        archive.writestr("test/sad/fer0000011.png", _face_png(150))
    (tmp_path / "ferplus.csv").write_text(f"{HEADER}\ntest/happy/fer0000010.png,1,9,0,0,0,0,0,0,0,0\n")
    dataset = load_dataset(tmp_path / "faces.zip", cache_dir=tmp_path / "cache")
    attach_found_votes(dataset)
    assert (dataset.votes["test"].sum(axis=1) > 0).tolist() == [True, False]
    (tmp_path / "other.csv").write_text(f"{HEADER}\nelsewhere/x.png,1,9,0,0,0,0,0,0,0,0\n")
    with pytest.raises(VotesError, match="none of the faces"):
        attach_found_votes(dataset, tmp_path / "other.csv")


def test_votes_that_name_none_of_the_models_emotions_score_nothing_against_them():
    """Calibration and the FER+ figures then use the dataset's labels, never an empty set of faces (NaN)."""
    from core.evaluation import Evaluation

    counts = np.concatenate([votes(contempt=8, neutral=2), votes(unknown=10)])
    probabilities = np.eye(len(SEED_EMOTIONS), dtype=np.float32)[[0, 1]]
    assert "accuracy_ferplus" not in summary(probabilities, np.array([0, 1]), SEED_EMOTIONS, counts)
    evaluation = Evaluation(SEED_EMOTIONS, np.zeros((2, 48, 48), np.uint8), np.array([0, 1]), probabilities, counts)
    faces, labels = evaluation.calibration_faces()
    assert len(faces) == 2 and labels.tolist() == [0, 1]


def test_a_face_joins_votes_by_file_name_only_where_that_name_is_one_face():
    table = parse_votes((HEADER + "\nFER2013Train/fer0000007.png,0,9,1,0,0,0,0,0,0,0\n"
                         "train/angry/im0.png,0,0,0,0,9,1,0,0,0,0\ntrain/sad/im0.png,0,0,0,9,1,0,0,0,0,0\n").encode())
    found = table.lookup(np.array(["train/happy/fer0000007.png", "test/happy/im0.png", "train/sad/im0.png"]))
    assert found[0].argmax() == COLUMNS.index("happiness")  # FER+'s own folder names differ: the file name is unique
    assert not found[1].any()  # im0.png is two faces in the table: neither is this test face
    assert found[2].argmax() == COLUMNS.index("sadness")  # its own path
