"""scripts/predict.py as a user runs it: a clean terminal, boxes in the photo's own pixels, and files it refuses
before reading them."""

from __future__ import annotations

import json
import os
import tracemalloc

import cv2
import pytest

from support.photos import encode, portrait
from support.scripts import error_lines, run_main, run_process


def test_a_prediction_from_a_shell_writes_nothing_to_stderr(tmp_path, face):
    """Issue 24 #9: every call printed TensorFlow's start-up lines (5 of them) to stderr."""
    photo = tmp_path / "face.jpg"
    photo.write_bytes(encode(portrait(face)))
    done = run_process("scripts/predict.py", photo)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("face 1 at ") and done.stderr == ""


def test_help_says_a_folder_of_photos_is_one_call_to_label(capsys):
    assert run_main("predict", "--help") == 0
    assert "scripts/label.py" in capsys.readouterr().out


def test_boxes_are_in_the_photos_own_pixels(tmp_path, capsys, face):
    """Issue 24 #2: on a photo over 2048 pixels, --json gave boxes in the photo shrunk to 2048."""
    small = portrait(face, [(260, 100)])  # 640x480
    (tmp_path / "small.jpg").write_bytes(encode(small))
    (tmp_path / "big.jpg").write_bytes(encode(cv2.resize(small, (3200, 2400), interpolation=cv2.INTER_CUBIC)))
    answers = {}
    for name in ("small", "big"):
        assert run_main("predict", tmp_path / f"{name}.jpg", "--json") == 0
        answers[name] = json.loads(capsys.readouterr().out)
    assert answers["big"]["photo_size"] == [3200, 2400]
    small_box, big_box = answers["small"]["faces"][0]["box"], answers["big"]["faces"][0]["box"]
    assert all(abs(5 * s - b) <= 25 for s, b in zip(small_box, big_box)), (small_box, big_box)


def test_a_huge_file_is_refused_before_it_is_read(tmp_path, capsys):
    """Issue 24 P9: a 3 GB file was read whole (3.9 GB of memory) before its size was refused."""
    huge = tmp_path / "huge.jpg"
    with open(huge, "wb") as handle:
        handle.truncate(200 * 2**20)  # sparse: 200 MB that take no disk
    tracemalloc.start()
    try:
        code = run_main("predict", huge)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    [error] = error_lines(capsys.readouterr().err)
    assert code == 2 and "the file is 200 MB; the limit is 20 MB" in error
    assert peak < 30 * 2**20, f"{peak / 2**20:.0f} MB"  # reading the file would have taken 200


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero")
def test_what_is_not_a_regular_file_is_refused(tmp_path, capsys):
    """Issue 24 P9: on /dev/zero predict.py grew to 21 GB until the kernel stopped it."""
    assert run_main("predict", "/dev/zero") == 2
    assert "not a regular file" in error_lines(capsys.readouterr().err)[0]
    assert run_main("predict", tmp_path) == 2
    assert "scripts/label.py" in error_lines(capsys.readouterr().err)[0]  # a folder: the tool for folders
