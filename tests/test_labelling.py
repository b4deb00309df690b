"""Labelling photos and videos to CSV rows (core.labelling, core.video), on real faces and real videos.

Videos are written here with OpenCV's VideoWriter from a FER2013 face pasted into 640x480 frames.
"""

from __future__ import annotations

import io
import math
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest

from support.photos import (SAMPLE_ZIP, SURPRISED_FACE, encode, fer_face_array, lie_about_size, photo_folder,
                            portrait, walking_face, write_video)
from core.archives import MAX_ENTRIES
from core.labeller import BATCH_SIZE, WORKERS, Labeller
from core.labelling import LabelError, label, read_rows
from core.recognise import recognise
from core.video import VideoFrames
from test_video import lying_avi

BLANK = np.full((480, 640, 3), 128, dtype=np.uint8)


# -- videos ------------------------------------------------------------------------------------------------


def test_video_is_sampled_at_the_asked_rate_with_times_from_the_frame_index(tmp_path, face):
    video = VideoFrames(write_video(tmp_path / "walk.mp4", walking_face(face, 30), fps=10), fps=5)
    assert (video.info.fps, video.info.frame_count, video.expected_samples) == (10, 30, 15)
    times = [time_s for time_s, _ in video]
    assert times == [round(0.2 * k, 3) for k in range(15)]
    _, first = next(iter(video))
    assert first.shape == (480, 640, 3) and first.dtype == np.uint8
    assert [t for t, _ in VideoFrames(tmp_path / "walk.mp4", fps=100)] == [round(0.1 * k, 3) for k in range(30)]


def test_video_rows_are_the_try_it_answers_for_each_sampled_frame_and_follow_the_face(tmp_path, face, classifier):
    frames = walking_face(face, 30)
    path = write_video(tmp_path / "walk.mp4", frames, fps=10)
    summary = label(path, tmp_path / "walk.csv", fps=5, classifier=classifier)
    rows = read_rows((tmp_path / "walk.csv").read_text())
    assert [row["time_s"] for row in rows] == [f"{0.2 * k:.3f}" for k in range(15)]
    assert {row["face"] for row in rows} == {"1"}  # one person, followed across every frame
    # Each row is what Try-It answers for that frame (decoded from the video, so compared by the box and emotion).
    for row, (_, frame) in zip(rows, VideoFrames(path, fps=5)):
        [answer] = recognise(classifier, frame).faces
        assert [int(row[k]) for k in ("x", "y", "width", "height")] == answer.box.as_list()
        assert row["emotion"] == answer.emotion
        assert math.isclose(float(row[answer.emotion]), answer.probabilities[answer.emotion], abs_tol=1e-4)
        assert math.isclose(sum(float(row[e]) for e in classifier.classes), 1, abs_tol=1e-3)
    assert (summary.frames, summary.frames_with_faces, summary.faces, summary.people) == (15, 15, 15, 1)
    assert summary.video_seconds == pytest.approx(3.0) and not summary.notes


def test_two_people_one_after_the_other_in_the_same_place_get_two_ids(tmp_path, face, classifier):
    """Issue 24.7: one person walks off and another steps into the same place at once; the boxes overlap,
    the faces do not look alike, so the second person is a new face."""
    with zipfile.ZipFile(SAMPLE_ZIP) as archive:
        other = fer_face_array(archive.read(SURPRISED_FACE))
    frames = [portrait(face, [(200 + i, 120)]) for i in range(10)] + \
        [portrait(other, [(205 + i, 120)]) for i in range(10)]
    summary = label(write_video(tmp_path / "swap.mp4", frames, fps=10), tmp_path / "swap.csv", fps=5,
                    classifier=classifier)
    rows = read_rows((tmp_path / "swap.csv").read_text())
    assert [(row["time_s"], row["face"]) for row in rows] == \
        [(f"{0.2 * k:.3f}", "1") for k in range(5)] + [(f"{0.2 * k:.3f}", "2") for k in range(5, 10)]
    assert summary.people == 2


def test_a_face_that_leaves_for_long_gets_a_new_id_and_two_faces_keep_theirs(tmp_path, face, classifier):
    two = [portrait(face, [(40 + 2 * i, 140), (380 - 2 * i, 140)], side=200) for i in range(10)]
    frames = two + [BLANK] * 15 + walking_face(face, 10)  # 1 s of two faces, 1.5 s of nobody, then one face
    path = write_video(tmp_path / "two.mp4", frames, fps=10)
    summary = label(path, tmp_path / "two.csv", fps=5, classifier=classifier)
    rows = read_rows((tmp_path / "two.csv").read_text())
    by_time: dict[str, list[tuple[str, int]]] = {}
    for row in rows:
        by_time.setdefault(row["time_s"], []).append((row["face"], int(row["x"])))
    early = [sorted(faces, key=lambda f: f[1]) for t, faces in by_time.items() if float(t) < 1]
    left_right = [tuple(face_id for face_id, _ in faces) for faces in early]
    assert len(left_right) == 5 and len(set(left_right)) == 1 and set(left_right[0]) == {"1", "2"}  # each keeps its id
    assert {row["face"] for row in rows if float(row["time_s"]) >= 2.5} == {"3"}
    # Sampled at 0.0-0.8 s (two faces), 1.0-2.4 s (nobody), 2.6-3.4 s (one face).
    assert (summary.frames, summary.frames_with_faces, summary.faces, summary.people) == (18, 10, 15, 3)


def test_a_video_without_faces_gives_a_header_only_csv_and_says_so(tmp_path, classifier):
    path = write_video(tmp_path / "wall.avi", [BLANK] * 20, fps=10, fourcc="MJPG")
    summary = label(path, tmp_path / "wall.csv", classifier=classifier)
    assert (tmp_path / "wall.csv").read_text().splitlines() == [
        "source,time_s,face,x,y,width,height,emotion," + ",".join(classifier.classes)]
    assert summary.frames == 10 and summary.faces == 0
    assert summary.notes == ["no face found in the 10 frame(s) sampled from the video"]


def test_a_truncated_video_is_labelled_up_to_where_it_stops(tmp_path, face, classifier):
    whole = write_video(tmp_path / "whole.avi", walking_face(face, 40), fps=10, fourcc="MJPG")
    cut = tmp_path / "cut.avi"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size * 2 // 5])
    summary = label(cut, tmp_path / "cut.csv", fps=5, classifier=classifier)
    assert 0 < summary.frames < 20 and summary.faces == summary.frames
    assert len(read_rows((tmp_path / "cut.csv").read_text())) == summary.frames
    assert "probably truncated" in summary.notes[0]


@pytest.mark.parametrize("damage", ["garbage", "cut_header", "unknown_codec"])
def test_an_unreadable_video_is_one_message_and_no_csv(tmp_path, face, classifier, damage):
    good = write_video(tmp_path / "good.avi", walking_face(face, 10), fourcc="MJPG").read_bytes()
    bad = {"garbage": np.random.default_rng(0).bytes(50_000),
           "cut_header": good[:300],
           # The AVI names its codec twice; a codec FFmpeg does not know cannot be decoded.
           "unknown_codec": good.replace(b"MJPG", b"QQQQ")}[damage]
    path = tmp_path / "bad.avi"
    path.write_bytes(bad)
    with pytest.raises(LabelError, match="bad.avi: ") as error:
        label(path, tmp_path / "bad.csv", classifier=classifier)
    assert "\n" not in str(error.value)
    assert not list(tmp_path.glob("*.csv")) and not list(tmp_path.glob("*partial*"))


# -- photos ------------------------------------------------------------------------------------------------


def test_a_folder_of_photos_gives_a_row_per_face_and_counts_what_it_skips(tmp_path, face, fer_faces, classifier):
    root = photo_folder(tmp_path / "photos", face, fer_faces)
    summary = label(root, tmp_path / "out.csv", classifier=classifier)
    rows = read_rows((tmp_path / "out.csv").read_text())
    by_photo: dict[str, list[dict]] = {}
    for row in rows:
        by_photo.setdefault(Path(row["source"]).relative_to(root).as_posix(), []).append(row)
    assert sorted(by_photo) == ["happy/0.jpg", "happy/1.jpg", "happy/2.jpg", "sad/crop.jpg", "two.png", "wall.png"]
    assert [row["face"] for row in by_photo["two.png"]] == ["1", "2"]
    [wall] = by_photo["wall.png"]
    assert wall["emotion"] == wall["face"] == wall["x"] == wall["happy"] == "" and wall["time_s"] == ""
    [crop] = by_photo["sad/crop.jpg"]  # a 48x48 crop is one face, as in Try-It
    assert [crop[k] for k in ("x", "y", "width", "height")] == ["0", "0", "48", "48"]
    assert crop["emotion"] == recognise(classifier, fer_faces["sad"][0]).main_face.emotion
    assert (summary.photos, summary.photos_without_face, summary.faces) == (6, 1, 6)
    assert summary.skipped == {"not a photo": 1, "unreadable photo": 1}
    assert sum(summary.emotions.values()) == 6


def colour_photo(face: np.ndarray) -> np.ndarray:
    """The face in a warm colour cast, as phone photos are: its gray differs by how colour is turned to gray."""
    rgb = portrait(face).astype(np.float32)
    return (rgb * np.array([1.0, 0.8, 0.55])).clip(0, 255).astype(np.uint8)


def large_photo(face: np.ndarray, side: int = 3000) -> np.ndarray:
    """The 640x480 portrait enlarged to `side` pixels wide: over core.images.MAX_SIDE, so it is read shrunk."""
    from PIL import Image

    height = side * 480 // 640
    return np.asarray(Image.fromarray(colour_photo(face)).resize((side, height), Image.Resampling.BICUBIC))


def test_photos_are_read_exactly_as_try_it_reads_them(tmp_path, face, fer_faces, classifier):
    """Issue 24.2 and 24.3: Label answers a photo with Try it's probabilities to the last digit and its boxes,
    in the photo's own pixels (a photo over 2048 px is searched shrunk, and its boxes are scaled back)."""
    photos = {"colour.jpg": encode(colour_photo(face), quality=90), "large.jpg": encode(large_photo(face), quality=90),
              "gray.png": encode(portrait(face)[..., 0], "PNG"), "crop.jpg": fer_faces["sad"][0]}
    folder = tmp_path / "photos"
    folder.mkdir()
    for name, data in photos.items():
        (folder / name).write_bytes(data)
    batch = Labeller(classifier)({"path": np.array([str(folder)] * len(photos), dtype=object),
                                  "member": np.array(list(photos), dtype=object),
                                  "name": np.array(list(photos), dtype=object)})
    label(folder, tmp_path / "out.csv", classifier=classifier)
    written = {Path(row["source"]).name: row for row in read_rows((tmp_path / "out.csv").read_text())}
    for index, (name, data) in enumerate(photos.items()):
        [answer] = recognise(classifier, data).faces
        assert [int(batch[k][index]) for k in ("x", "y", "width", "height")] == answer.box.as_list(), name
        assert [batch[emotion][index] for emotion in classifier.classes] == \
            [answer.probabilities[emotion] for emotion in classifier.classes], name  # exactly: one path
        row = written[name]
        assert [row[emotion] for emotion in classifier.classes] == \
            [f"{answer.probabilities[emotion]:.4f}" for emotion in classifier.classes], name
        assert [int(row[k]) for k in ("x", "y", "width", "height")] == answer.box.as_list(), name
    # The large photo's face, 240 px at (200, 120) of 640x480 before it was enlarged 3000/640 times, is boxed there.
    row, enlarged = written["large.jpg"], 3000 / 640
    centre = (int(row["x"]) + int(row["width"]) / 2, int(row["y"]) + int(row["height"]) / 2)
    assert centre == pytest.approx(((200 + 120) * enlarged, (120 + 120) * enlarged), abs=0.06 * 240 * enlarged)
    assert int(row["width"]) > 0.5 * 240 * enlarged


def test_a_video_over_2048_pixels_gets_boxes_in_its_own_pixels(tmp_path, face, classifier):
    """Issue 24.2 for videos: frames are read shrunk to 2048 pixels, as photos are; boxes are in the video's pixels."""
    import cv2

    width, height = 2600, 1950
    path = tmp_path / "large.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 5, (width, height))
    frame = cv2.resize(portrait(face), (width, height), interpolation=cv2.INTER_CUBIC)
    for _ in range(3):
        writer.write(frame)
    writer.release()
    label(path, tmp_path / "large.csv", fps=5, classifier=classifier)
    rows = read_rows((tmp_path / "large.csv").read_text())
    assert len(rows) == 3
    enlarged = width / 640
    for row in rows:  # the face, 240 px at (200, 120) of 640x480 before it was enlarged
        centre = (int(row["x"]) + int(row["width"]) / 2, int(row["y"]) + int(row["height"]) / 2)
        assert centre == pytest.approx(((200 + 120) * enlarged, (120 + 120) * enlarged), abs=0.06 * 240 * enlarged)
        assert int(row["width"]) > 0.5 * 240 * enlarged


def test_photos_over_many_batches_keep_their_order_and_their_own_answers(tmp_path, face, classifier):
    """Batches are labelled by several threads at once: the rows still follow the files, each with its own face."""
    count = WORKERS * BATCH_SIZE + 5
    folder = tmp_path / "photos"
    folder.mkdir()
    for number in range(count):  # the face moves 10 pixels right from one photo to the next
        (folder / f"{number:03d}.jpg").write_bytes(encode(portrait(face, [(10 * number, 120)])))
    summary = label(folder, tmp_path / "out.csv", classifier=classifier)
    rows = read_rows((tmp_path / "out.csv").read_text())
    assert [Path(row["source"]).name for row in rows] == [f"{number:03d}.jpg" for number in range(count)]
    lefts = [int(row["x"]) for row in rows]
    assert all(a < b for a, b in zip(lefts, lefts[1:]))
    assert (summary.photos, summary.faces) == (count, count)


def test_a_zip_gives_the_same_rows_as_the_folder(tmp_path, face, fer_faces, classifier):
    root = photo_folder(tmp_path / "photos", face, fer_faces)
    archive = tmp_path / "photos.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for file in sorted(root.rglob("*")):
            zipped.write(file, file.relative_to(root).as_posix())
        zipped.writestr("../escape.jpg", encode(portrait(face)))
        zipped.writestr("inner.zip", b"PK\x05\x06" + b"\0" * 18)
        zipped.writestr("__MACOSX/happy/._0.jpg", b"\0")
    label(root, tmp_path / "folder.csv", classifier=classifier)
    summary = label(archive, tmp_path / "zip.csv", classifier=classifier)
    folder_rows = read_rows((tmp_path / "folder.csv").read_text())
    zip_rows = read_rows((tmp_path / "zip.csv").read_text())
    for row in folder_rows:
        row["source"] = Path(row["source"]).relative_to(root).as_posix()
    for row in zip_rows:
        row["source"] = row["source"].removeprefix(f"{archive}/")
    assert zip_rows == folder_rows
    assert summary.skipped == {"not a photo": 1, "unreadable photo": 1, "unsafe path in the zip (absolute or ../)": 1,
                               "nested zip (unzip it and give the folder)": 1}


def test_a_zip64_of_too_many_entries_is_refused_at_once(tmp_path):
    """Over 65,535 entries a zip is ZIP64, and its classic end record says 0xFFFF: the limit still holds."""
    archive = tmp_path / "many.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for number in range(0x10000 + 1):
            zipped.writestr(f"{number}.jpg", b"")
    with pytest.raises(LabelError, match=f"many.zip holds more than {MAX_ENTRIES:,} entries"):
        label(archive, tmp_path / "out.csv")  # refused before the model is even loaded
    assert not (tmp_path / "out.csv").exists()


def test_zip_bombs_are_skipped_in_bounded_memory(tmp_path, face, classifier):
    archive = tmp_path / "bomb.zip"
    zeros = bytes(1 << 20)
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
        zipped.writestr("face.jpg", encode(portrait(face)))
        with zipped.open("huge.jpg", "w", force_zip64=True) as member:  # 256 MB of zeros, 256 KB compressed
            for _ in range(256):
                member.write(zeros)
        zipped.writestr("liar.jpg", bytes(30 << 20))  # 30 MB that will claim to be 1 KB
    assert archive.stat().st_size < 1 << 20
    lie_about_size(archive, "liar.jpg", 1024)
    tracemalloc.start()
    summary = label(archive, tmp_path / "out.csv", classifier=classifier)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 10 << 20  # members are inflated only up to their declared size: the 30 MB never are
    assert summary.photos == 1 and summary.faces == 1
    assert summary.skipped == {"file over 20 MB": 1, "unreadable photo": 1}


def test_an_empty_folder_or_unknown_file_is_one_message_and_no_csv(tmp_path, classifier):
    (tmp_path / "empty").mkdir()
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "a.txt").write_text("x")
    (tmp_path / "report.pdf").write_bytes(b"%PDF")
    for source, message in [("empty", "no photos in .* \\(it is empty\\)"),
                            ("junk", "no photos in .* \\(skipped 1 file\\(s\\): not a photo\\)"),
                            ("report.pdf", "report.pdf: not a photo"), ("missing", "does not exist")]:
        with pytest.raises(LabelError, match=message):
            label(tmp_path / source, tmp_path / "out.csv", classifier=classifier)
    assert not (tmp_path / "out.csv").exists()


def test_an_interrupted_run_leaves_no_csv_behind(tmp_path, face, classifier):
    path = write_video(tmp_path / "walk.mp4", walking_face(face, 30), fps=10)  # two batches at 10 fps
    (tmp_path / "out.csv").write_text("the previous, complete labels\n")

    def stop(done: int, total: int) -> None:
        raise KeyboardInterrupt  # the user pressing Ctrl-C after the first batch

    with pytest.raises(KeyboardInterrupt):
        label(path, tmp_path / "out.csv", fps=10, classifier=classifier, progress=stop)
    assert (tmp_path / "out.csv").read_text() == "the previous, complete labels\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv", "walk.mp4"]


# -- uploads from the dashboard ------------------------------------------------------------------------------


def test_an_upload_longer_than_the_limit_is_refused_whatever_it_declares(tmp_path, face, classifier):
    """Issue 24.P3: a video that declares 0.5 s but runs 4 s is stopped by its decoded frames."""
    from core.label_uploads import label_upload
    from core.labelling import VideoTooLong

    video = lying_avi(tmp_path / "liar.avi", face)
    assert VideoFrames(video).info.duration_s == pytest.approx(0.5)
    with pytest.raises(VideoTooLong) as error:
        label_upload("talk.avi", video.read_bytes(), classifier, max_video_s=2, scratch_root=tmp_path / "scratch")
    message = str(error.value)
    assert message.startswith("talk.avi runs past 2 s, the limit here (it declares 0.5 s)") and "\n" not in message
    assert str(tmp_path) not in message and "scripts/label.py talk.avi" in message
    assert list((tmp_path / "scratch").iterdir()) == []  # the scratch folder went with the failure
    done = label_upload("talk.avi", video.read_bytes(), classifier, max_video_s=10, scratch_root=tmp_path / "scratch")
    assert done.summary.frames == 20 and done.video


@pytest.mark.parametrize("name", ["表" * 90 + ".zip", "a\0b.zip", "../../etc/evil.zip"])
def test_an_upload_of_any_name_is_labelled_in_a_scratch_folder_of_its_own(tmp_path, face, classifier, name):
    """Issue 24.P7 and P12: the upload's name never becomes a file name (90 CJK characters are too long for one,
    a NUL cannot be in one); the scratch folder is removed, and one left by a killed process is removed too."""
    from core.label_uploads import label_upload, shown_name

    scratch = tmp_path / "scratch"
    orphan = scratch / "999999999-left-by-a-kill"  # no process has this id
    orphan.mkdir(parents=True)
    (orphan / "upload.mp4").write_bytes(b"half a video")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zipped:
        zipped.writestr("happy/one.jpg", encode(portrait(face)))
    done = label_upload(name, buffer.getvalue(), classifier, scratch_root=scratch)
    assert [row["source"] for row in done.rows] == ["happy/one.jpg"] and done.summary.faces == 1
    assert done.name == shown_name(name) and "\0" not in done.name and "/" not in done.name
    assert list(thumbnail[:2] for thumbnail in done.thumbnails.values()) == [b"\xff\xd8"]  # a JPEG of the face
    assert list(scratch.iterdir()) == []
