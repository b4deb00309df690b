"""The benchmarks behind the figures in docs/, run as a user runs them on small data: a renamed core function or a
rebuilt sample breaks a benchmark that nobody runs day to day, and the figure it stands behind can no longer be
re-measured. (Run, never imported: tests and benchmarks never import each other.)
"""

from __future__ import annotations

import csv
import json
import shutil

import pytest

from samples.bad_photos import bad_photos
from support.photos import PROJECT_ROOT, SAMPLE_ZIP, encode, portrait
from support.scripts import run_main, run_process
from support.training import sample_with_votes_as_both_splits


def table_rows(stdout: str) -> dict[str, list[str]]:
    """A printed Markdown table's rows by their first cell."""
    rows = [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in stdout.splitlines()
            if line.startswith("| ") and not line.startswith("|---")]
    return {row[0]: row[1:] for row in rows}


def test_label_share_curve_logs_a_run_trained_with_that_share_against_both_label_sets(tmp_path, sample_zip):
    data = sample_with_votes_as_both_splits(sample_zip, tmp_path)
    assert run_main("train", "--data", data, "--arch", "seed", "--epochs", "1", "--label-share", "0.25",
                    "--runs-dir", tmp_path / "runs", "--quiet") == 0
    [run] = (tmp_path / "runs").glob("*-seed")
    log, figure = tmp_path / "label_share.csv", tmp_path / "label_share.png"
    shown = run_process("benchmarks/label_share.py", "--append", run, "--log", log, "--figure", figure)
    assert shown.returncode == 0, shown.stderr
    [row] = csv.DictReader(log.open())
    metrics = json.loads((run / "metadata.json").read_text())["metrics"]
    assert float(row["label_share"]) == 0.25 and row["run"] == run.name
    assert float(row["test_ferplus"]) == metrics["test_ferplus"]["accuracy"]
    assert float(row["test_fer2013"]) == metrics["test"]["accuracy"]
    assert "| 0.25 | 1 |" in shown.stdout and figure.stat().st_size > 0
    again = run_process("benchmarks/label_share.py", "--append", run, "--log", log, "--figure", figure)
    assert again.returncode != 0 and "already in" in again.stderr
    assert len(list(csv.DictReader(log.open()))) == 1


def test_photo_folds_refuses_a_model_already_taught_the_photos(tmp_path, face):
    """Scored on photos it learned, a model would look better than it is on people it never saw."""
    from core.data import source_fingerprint

    photos = tmp_path / "photos"
    (photos / "happy").mkdir(parents=True)
    (photos / "happy" / "Ann_Smith_0001.jpg").write_bytes(encode(portrait(face)))
    model = tmp_path / "taught"
    shutil.copytree(PROJECT_ROOT / "models" / "seed", model)
    metadata = json.loads((model / "metadata.json").read_text())
    metadata["photos"] = {"source": str(photos), "fingerprint": source_fingerprint(photos), "faces": 1, "repeat": 1}
    (model / "metadata.json").write_text(json.dumps(metadata))
    refused = run_process("benchmarks/photo_folds.py", "--data", SAMPLE_ZIP, "--photos", photos, "--model", model)
    assert refused.returncode == 2 and "was taught these photos" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_every_benchmark_still_imports_what_it_uses_from_core():
    """Behind every figure in docs/ is a benchmark that nobody runs day to day, so a renamed core function
    breaks it silently (inference_options.py once did). One process imports them all, as running them would,
    without running them."""
    benchmarks = sorted(path.stem for path in (PROJECT_ROOT / "benchmarks").glob("*.py"))
    imported = run_process("-c", "import importlib, sys; sys.path.insert(0, 'benchmarks')\n"
                           f"for name in {benchmarks!r}: importlib.import_module(name)", timeout_s=120)
    assert imported.returncode == 0, imported.stderr[-2000:]
    assert len(benchmarks) >= 10


def test_the_labelling_benchmark_still_runs_on_the_bundled_sample():
    """Importing is not running: label_throughput named a face of the bundled sample by file, and silently
    stopped running when the sample was rebuilt. A 2-second video and 3 photos, labelled for real."""
    ran = run_process("benchmarks/label_throughput.py", "--seconds", 2, "--photos", 3, "--long-minutes", 0, timeout_s=120)
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert "10 frames" in ran.stdout and "3 photos 640x480 in-process" in ran.stdout and "(3 faces)" in ran.stdout


@pytest.mark.slow
def test_the_latency_benchmark_scores_and_times_both_models_on_the_bundled_sample():
    """README's "one face, batch 1 / a 640x480 photo" row."""
    ran = run_process("benchmarks/benchmark.py", "--data", SAMPLE_ZIP, "--repeats", 3, timeout_s=180)
    assert ran.returncode == 0, ran.stderr[-2000:]
    rows = table_rows(ran.stdout)
    assert rows["seed"][:2] == ["seed", "5"] and rows["seed"][4] == "100"  # the sample's faces of the seed's five
    assert rows["emovoice-vgg"][:2] == ["vgg", "7"] and rows["emovoice-vgg"][4] == "140"
    assert all(rows[model][5].endswith(" ms") and rows[model][6].endswith(" ms") for model in ("seed", "emovoice-vgg"))


@pytest.mark.slow
def test_the_bad_inputs_benchmark_answers_every_kind_of_bad_photo():
    """docs/robustness.md's table: one row for every bad photo that samples/bad_photos.py makes."""
    ran = run_process("benchmarks/bad_inputs.py", timeout_s=120)
    assert ran.returncode == 0, ran.stderr[-2000:]
    rows = table_rows(ran.stdout)
    assert {photo.kind for photo in bad_photos()} <= set(rows)
    assert rows["48x48 FER crop"][0].startswith("1 face(s)") and "peak memory" in ran.stdout


@pytest.mark.slow
def test_the_photo_path_benchmark_reads_a_photo_at_every_stage(tmp_path, face):
    """docs/photos.md's stages, on one portrait made from a FER2013 face that every stage finds."""
    (tmp_path / "happy").mkdir()
    (tmp_path / "happy" / "one.jpg").write_bytes(encode(portrait(face)))
    ran = run_process("benchmarks/wild.py", "--data", tmp_path, "--repeats", 2, "--face-free", 5, timeout_s=180)
    assert ran.returncode == 0, ran.stderr[-2000:]
    rows = table_rows(ran.stdout)
    assert [stage for stage in rows if stage != "stage"] == ["haar (before)", "detector", "+ align, FER framing",
                                                            "+ jitter (product)"]
    assert all(row[2] == "0.0%" for stage, row in rows.items() if stage != "stage")  # no photo without a face
    assert "of 5 face-free images" in ran.stdout


def test_the_training_curve_adds_up_the_cpu_hours_of_every_run_in_the_order_trained(trained_run, tmp_path):
    """The curve #25's "done when" reads: validation against the CPU-hours spent so far, run after run."""
    log, figure = tmp_path / "training_log_test.csv", tmp_path / "curve.png"
    first = run_process("benchmarks/training_curve.py", "--append", trained_run, "--stage", "first", "--cpu-hours", 1.5,
                        "--log", log, "--figure", figure)
    assert first.returncode == 0, first.stderr[-2000:]
    ran = run_process("benchmarks/training_curve.py", "--append", trained_run, "--stage", "second", "--cpu-hours", 0.5,
                      "--log", log, "--figure", figure, "--per-epoch")
    assert ran.returncode == 0, ran.stderr[-2000:]
    validation = float(next(csv.DictReader((trained_run / "history.csv").open()))["val_accuracy"])
    rows = table_rows(ran.stdout)
    assert rows["first"][-2:] == ["1.5", "1.5"] and rows["second"][-2:] == ["0.5", "2.0"]
    assert rows["second"][3] == f"{validation:.1%}"  # its last (and best) epoch
    assert "| 1 | 1.50 |" in ran.stdout and "| 1 | 2.00 |" in ran.stdout  # each epoch at the hours spent by its end
    assert figure.stat().st_size > 0 and f"figure: {figure}" in ran.stdout
    again = run_process("benchmarks/training_curve.py", "--append", trained_run, "--stage", "first", "--log", log,
                        "--figure", figure)
    assert again.returncode != 0 and "already in" in again.stderr
