"""scripts/label.py from a terminal, and the same labelling on a local Ray instance, row for row.

The script's main() is called in this process (with its arguments), as a terminal would run it; one test
runs it as its own process.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass

import pytest

from support.photos import PROJECT_ROOT as ROOT
from support.photos import photo_folder, walking_face, write_video
from support.scripts import run_main, run_process
from core.labelling import label


@dataclass
class Done:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def run(capsys):
    """scripts/label.py ARGS..., called in this process."""
    def run(*args) -> Done:
        code = run_main("label", *args)
        out, err = capsys.readouterr()
        return Done(code, out, err)

    return run


def test_the_script_runs_as_its_own_process(tmp_path, face):
    video = write_video(tmp_path / "walk.mp4", walking_face(face, 10), fps=10)
    done = run_process(ROOT / "scripts" / "label.py", video, "--out", tmp_path / "walk.csv")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == f"wrote {tmp_path / 'walk.csv'}"


def test_label_a_video_prints_progress_and_a_json_summary(tmp_path, face, run):
    video = write_video(tmp_path / "walk.mp4", walking_face(face, 40), fps=10)
    done = run(video, "--out", tmp_path / "walk.csv", "--fps", "2", "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["csv"] == str(tmp_path / "walk.csv") and summary["mode"] == "in-process"
    assert (summary["frames"], summary["faces"], summary["people"], summary["video_seconds"]) == (8, 8, 1, 4.0)
    assert sum(summary["emotions"].values()) == 8 and summary["times_real_time"] > 0
    assert "8/8 100%" in done.stderr and "frames/s ETA" in done.stderr
    assert len((tmp_path / "walk.csv").read_text().splitlines()) == 1 + 8


def test_one_person_sampled_seconds_apart_stays_one_person(tmp_path, face, run):
    """At --fps 0.5 the frames are 2 s apart, longer than a face is otherwise kept: still one person."""
    video = write_video(tmp_path / "still.mp4", walking_face(face, 1) * 50, fps=10)  # 5 s of one still face
    done = run(video, "--out", tmp_path / "still.csv", "--fps", "0.5", "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert (summary["frames"], summary["faces"], summary["people"]) == (3, 3, 1)


def test_label_photos_in_words(tmp_path, face, fer_faces, run):
    root = photo_folder(tmp_path / "photos", face, fer_faces)
    done = run(root, "--out", tmp_path / "out.csv")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == f"wrote {tmp_path / 'out.csv'}"
    assert "6 photo(s), 1 without a face" in done.stdout
    assert "skipped 1 file(s): not a photo" in done.stdout and "skipped 1 file(s): unreadable photo" in done.stdout


@pytest.mark.parametrize("name, content", [("empty", None), ("clip.mp4", b"\0" * 5000), ("notes.txt", b"hello")])
def test_bad_input_is_one_line_exit_2_and_no_csv(tmp_path, name, content, run):
    source = tmp_path / name
    source.mkdir() if content is None else source.write_bytes(content)
    done = run(source, "--out", tmp_path / "out.csv")
    assert done.returncode == 2
    [message] = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert message.startswith(f"error: {source}: ") and "Traceback" not in done.stderr
    assert not (tmp_path / "out.csv").exists()


def test_an_out_that_cannot_be_written_is_named_not_the_input(tmp_path, face, fer_faces, run):
    root = photo_folder(tmp_path / "photos", face, fer_faces)
    done = run(root, "--out", tmp_path)  # a folder: refused before any photo is read
    assert done.returncode == 2 and done.stderr == f"error: --out {tmp_path} is a folder: name the CSV file to write\n"
    (tmp_path / "notes.txt").write_text("a file where a folder would be")
    done = run(root, "--out", tmp_path / "notes.txt" / "out.csv")
    [message] = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert done.returncode == 2 and message.startswith(f"error: {tmp_path / 'notes.txt'}: ") and str(root) not in message


def test_a_csv_that_fills_the_disk_is_named_and_left_out(tmp_path, face, fer_faces, run):
    """A write that fails part-way (here: past the size this process may write, as a full disk fails) names
    the CSV, not the photos, and leaves no half-written file."""
    import resource
    import signal

    root = photo_folder(tmp_path / "photos", face, fer_faces)
    limits = resource.getrlimit(resource.RLIMIT_FSIZE)
    ignored = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails (EFBIG) instead of killing us
    resource.setrlimit(resource.RLIMIT_FSIZE, (200, limits[1]))
    try:
        done = run(root, "--out", tmp_path / "out" / "labels.csv")
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, limits)
        signal.signal(signal.SIGXFSZ, ignored)
    [message] = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert done.returncode == 2 and message.startswith(f"error: {tmp_path / 'out' / 'labels.csv'}: File too large")
    assert list((tmp_path / "out").iterdir()) == []


def test_ray_asked_for_where_it_is_not_installed_is_one_line(tmp_path, face, run, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # as on a machine without requirements-ray.txt: import fails
    video = write_video(tmp_path / "walk.mp4", walking_face(face, 5), fps=10)
    done = run(video, "--out", tmp_path / "out.csv", "--ray")
    assert done.returncode == 2 and done.stderr == "error: --ray needs Ray: pip install -r requirements-ray.txt\n"
    assert not (tmp_path / "out.csv").exists()


@pytest.mark.parametrize("fps", ["inf", "1e9", "nan", "0", "-2"])
def test_a_sampling_rate_no_video_has_is_one_line_and_exit_2(tmp_path, face, fps, run):
    """Issue 24.P10: `--fps inf` (or 1e9) never ended."""
    video = write_video(tmp_path / "walk.mp4", walking_face(face, 5), fps=10)
    done = run(video, "--out", tmp_path / "out.csv", "--fps", fps)
    assert done.returncode == 2
    assert done.stderr.startswith("error: --fps must be above 0 and at most 240") and done.stderr.count("\n") == 1
    assert not (tmp_path / "out.csv").exists()


# -- Ray ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray")
    from core.labeller import start_ray

    start_ray()
    yield
    ray.shutdown()


@pytest.mark.slow
# Ray warns when a pool's actors outnumber the inputs it is given: a video once reached them as one input.
@pytest.mark.filterwarnings("error:The minimum number of concurrent actors")
def test_ray_gives_the_same_rows_as_in_process(local_ray, tmp_path, face, fer_faces, classifier):
    photos = photo_folder(tmp_path / "photos", face, fer_faces)
    video = write_video(tmp_path / "walk.mp4", walking_face(face, 40), fps=10)
    for source in (photos, video):
        here = label(source, tmp_path / "here.csv", classifier=classifier)
        there = label(source, tmp_path / "ray.csv", ray="local", actors=2)
        assert (tmp_path / "ray.csv").read_text() == (tmp_path / "here.csv").read_text()
        assert len((tmp_path / "ray.csv").read_text().splitlines()) > 5
        assert (there.faces, there.photos, there.frames, there.people, dict(there.skipped)) == \
            (here.faces, here.photos, here.frames, here.people, dict(here.skipped))
        assert there.mode == "ray (local)"
