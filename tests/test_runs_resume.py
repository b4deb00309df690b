"""train.py --resume on the runs a kill leaves: stopped in the first epoch, warm-started from elsewhere."""

from __future__ import annotations

import json
import zipfile

import keras

from core.paths import PROJECT_ROOT, SEED_MODEL_DIR
from core.runs import METADATA_FILE, MODEL_FILE, STATE_FILE, load_model, read_run
from core.training import recipe, train
from support.photos import SAMPLE_ZIP
from support.scripts import error_lines, run_main
from support.training import copy_run


def test_resume_of_a_run_killed_in_its_first_epoch_trains_it_again(sample, tmp_path, capsys):
    run = tmp_path / "run"
    calls = []
    train(recipe("seed", epochs=1, batch_size=32), sample, run, should_stop=lambda: calls.append(1) or len(calls) > 2)
    metadata = json.loads((run / METADATA_FILE).read_text())
    (run / METADATA_FILE).write_text(json.dumps({**metadata, "status": "training"}))  # as a SIGKILL leaves it
    assert not (run / STATE_FILE).exists()

    assert run_main("train", "--resume", run, "--quiet") == 0  # before: FileNotFoundError (state.json)
    assert "again from the start" in capsys.readouterr().err
    assert read_run(run).status == "finished" and load_model(run)


def test_a_run_killed_and_resumed_counts_the_time_of_every_epoch(sample, trained_run, tmp_path):
    """Training budgets are CPU-hours: a kill must not lose the time of the epochs saved before it."""
    run = copy_run(trained_run, tmp_path / "run")  # seed net, 1 epoch, batch 32
    metadata = json.loads((run / METADATA_FILE).read_text())
    killed = {**metadata, "status": "training", "training_seconds": None, "training_cpu_seconds": None}
    (run / METADATA_FILE).write_text(json.dumps(killed))  # as a SIGKILL leaves it: times come at the end

    resumed = train(recipe("seed", epochs=2, batch_size=32), sample, run, resume=True)
    history = json.loads((run / STATE_FILE).read_text())["history"]
    assert [row["epoch"] for row in history] == [1, 2] and all(row["cpu_seconds"] > 0 for row in history)
    assert resumed.training_cpu_seconds >= sum(row["cpu_seconds"] for row in history)  # before: epoch 2's alone
    assert resumed.training_seconds >= sum(row["seconds"] for row in history)
    assert resumed.total_cpu_hours == round(resumed.training_cpu_seconds / 3600, 4)


def test_resume_on_other_data_is_refused_in_one_line(trained_run, sample_zip, tmp_path, capsys):
    """Other data splits other validation faces: the epochs so far were chosen by different ones."""
    run = copy_run(trained_run, tmp_path / "run")  # trained on the sample
    other = tmp_path / "other.zip"
    other.write_bytes(sample_zip.read_bytes())  # the same data, moved: it may go on
    assert run_main("train", "--resume", run, "--data", other, "--epochs", "2", "--quiet") == 0
    changed = tmp_path / "changed.zip"
    with zipfile.ZipFile(sample_zip) as source, zipfile.ZipFile(changed, "w") as target:
        for name in source.namelist()[1:]:  # one face fewer
            target.writestr(name, source.read(name))
    assert run_main("train", "--resume", run, "--data", changed, "--epochs", "3", "--quiet") == 2
    [line] = error_lines(capsys.readouterr().err)
    assert "changed.zip is not the data run trained on" in line
    assert read_run(run).epochs_trained == 2
    # A run recorded by an earlier reader of the same data (its fingerprint names the reader's version) goes on.
    from core.data import BUILDER_VERSION, source_fingerprint

    metadata = json.loads((run / METADATA_FILE).read_text())
    metadata["dataset"]["fingerprint"] = source_fingerprint(other, BUILDER_VERSION - 1)
    (run / METADATA_FILE).write_text(json.dumps(metadata))
    assert run_main("train", "--resume", run, "--data", other, "--epochs", "3", "--quiet") == 0


def test_a_warm_start_from_a_killed_run_counts_the_epochs_it_saved(sample, trained_run, tmp_path):
    """A kill leaves no totals in the run's metadata (they come at the end): its saved epochs say them."""
    killed = copy_run(trained_run, tmp_path / "killed")  # 1 epoch saved
    metadata = json.loads((killed / METADATA_FILE).read_text())
    history = json.loads((killed / STATE_FILE).read_text())["history"]
    unfinished = {"status": "training", "epochs_trained": None, "total_epochs": None, "total_cpu_hours": None,
                  "training_cpu_seconds": None}
    (killed / METADATA_FILE).write_text(json.dumps({**metadata, **unfinished}))
    child = train(recipe("seed", epochs=1, batch_size=32), sample, tmp_path / "child", init_model=killed)
    assert child.lineage.epochs == 1 and child.total_epochs == 2
    assert child.lineage.cpu_hours == round(sum(row["cpu_seconds"] for row in history) / 3600, 4) > 0


def test_resume_of_a_folder_that_never_began_is_one_line(tmp_path, capsys):
    (tmp_path / "empty-run").mkdir()
    assert run_main("train", "--resume", tmp_path / "empty-run") == 2
    assert len(error_lines(capsys.readouterr().err)) == 1


def test_resume_of_a_warm_started_run_works_from_another_folder(sample, tmp_path, monkeypatch, capsys):
    """A run started from models/seed, typed relative to the project (as older runs recorded it), resumed
    from another working folder, still finds its start model to average in."""
    run = tmp_path / "warm"
    monkeypatch.chdir(PROJECT_ROOT)
    config = recipe("seed", epochs=1, batch_size=32, keep_start=0.5)
    train(config, sample, run, init_model=SEED_MODEL_DIR.relative_to(PROJECT_ROOT))
    metadata = json.loads((run / METADATA_FILE).read_text())
    assert metadata["initialised_from"] == str(SEED_MODEL_DIR)  # recorded absolute now
    (run / METADATA_FILE).write_text(json.dumps({**metadata, "initialised_from": "models/seed"}))  # as before

    monkeypatch.chdir(tmp_path)
    assert run_main("train", "--resume", run, "--epochs", "2", "--quiet") == 0  # before: ModelError
    capsys.readouterr()
    resumed = read_run(run)
    assert resumed.epochs_trained == 2 and resumed.start_kept.share == 0.5 and (run / MODEL_FILE).is_file()


def test_a_minutes_budget_sizes_the_epochs_from_the_first_one(tmp_path, capsys):
    runs = tmp_path / "runs"
    assert run_main("train", "--data", SAMPLE_ZIP, "--recipe", "seed", "--epochs", "50", "--batch-size", "32",
                    "--minutes", "0.01", "--runs-dir", runs, "--quiet") == 0
    assert "1 of the 50 epochs fit in 0.01 minutes" in capsys.readouterr().err  # 0.6 s: only the timed epoch fits
    [run] = runs.iterdir()
    metadata = read_run(run)
    assert metadata.status == "finished" and metadata.epochs_trained == 1 and metadata.recipe["epochs"] == 1


def test_a_kill_between_the_checkpoint_and_its_state_file_neither_repeats_nor_skips_an_epoch(sample, tmp_path):
    """The checkpoint holds its own epoch: state.json, written after it, may lag one epoch behind after a kill."""
    run = tmp_path / "run"
    train(recipe("seed", epochs=2, batch_size=32), sample, run)
    state = json.loads((run / STATE_FILE).read_text())
    (run / STATE_FILE).write_text(json.dumps({**state, "epoch": 1, "history": state["history"][:1]}))  # epoch 2's lost
    resumed = train(recipe("seed", epochs=3, batch_size=32), sample, run, resume=True)
    steps = -(-resumed.dataset.train_images // 32)
    trained = keras.saving.load_model(run / "checkpoint.keras").optimizer.iterations  # the steps trained in all
    assert [row["epoch"] for row in json.loads((run / STATE_FILE).read_text())["history"]] == [1, 2, 3]
    assert int(keras.ops.convert_to_numpy(trained)) == 3 * steps  # before: epoch 2 trained twice, 4 epochs' steps
