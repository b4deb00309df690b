"""Run records: old run folders still load, a dead run is not "training" for ever, killed writers leave no
litter, and the recipes and train.py's flags are TrainConfig's fields. No training here: all fast."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from dataclasses import fields

import pytest

from core.background import LOCK_FILE, PROGRESS_FILE, current_training, read_status
from core.paths import RECIPES_DIR, SEED_MODEL_DIR, SHIPPED_MODEL_DIR
from core.records import ResumeState, RunMetadata, SplitScore, TrainingStatus
from core.runs import METADATA_FILE, MODEL_FILE, ModelError, list_runs, read_run, write_atomic, write_json
from core.training import TrainConfig, config_of, read_recipe, recipe, recipe_names
from support.training import copy_run
from core.training.jobs import (ORPHANED_AFTER_S, STAGING_PREFIX, activation_warning, is_operator,
                                remove_orphaned_staging, run_rows)


@pytest.fixture
def dead_pid() -> int:
    """The pid of a process that has ended (and been reaped)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


@pytest.mark.parametrize("folder", [SHIPPED_MODEL_DIR, SEED_MODEL_DIR], ids=["shipped", "seed"])
def test_the_shipped_folders_load_as_records_and_write_back_what_they_held(folder):
    original = json.loads((folder / METADATA_FILE).read_text())
    record = read_run(folder)
    assert record.classes == original["classes"] and record.architecture == original["architecture"]
    assert record.accuracy("test") == original["metrics"]["test"]["accuracy"]
    assert _held(original, record.to_json())  # nothing lost, nothing changed (keys it lacked take defaults)


def _held(original, written) -> bool:
    if isinstance(original, dict) and isinstance(written, dict):
        return all(key in written and _held(value, written[key]) for key, value in original.items())
    return original == written


def test_progress_and_state_files_of_the_old_format_load():
    old_progress = {"status": "training", "epochs": 3, "history": [{"epoch": 1, "val_accuracy": 0.5}], "epoch": 2,
                    "batch": 5, "batches": 10, "logs": {"loss": 1.0}, "elapsed_s": 3.0, "eta_s": 9.0}
    status = TrainingStatus.from_json(old_progress)
    assert status.fraction_done == pytest.approx((1 + 5 / 10) / 3) and status.in_flight
    assert TrainingStatus.from_json({"status": "starting", "epochs": 2, "history": []}).fraction_done == 0
    state = ResumeState.from_json({"config": {"architecture": "seed", "retired_option": 1}, "epoch": 4, "history": []})
    assert TrainConfig.from_json(state.config).architecture == "seed"  # a key this version dropped is ignored


def test_a_run_whose_worker_died_is_interrupted_not_finished_nor_training(tmp_path, dead_pid):
    runs = tmp_path / "runs"
    run = runs / "20261206-101010-seed"
    run.mkdir(parents=True)
    write_json(run / PROGRESS_FILE, {"status": "training", "epochs": 3, "epoch": 1, "batch": 4, "batches": 9})
    write_json(runs / LOCK_FILE, {"pid": dead_pid, "run_dir": str(run)})
    assert current_training(runs) is None and not (runs / LOCK_FILE).exists()  # the stale lock is cleared
    status = read_status(run)
    assert status.status == "interrupted" and "--resume" in status.error  # before: "training", shown as finished

    metadata = RunMetadata("20261206-101010-seed", "seed", ["happy", "sad"], status="training", worker_pid=dead_pid)
    write_json(run / METADATA_FILE, metadata.to_json())
    (run / MODEL_FILE).write_bytes(b"the best epoch so far")
    [listed] = list_runs(runs)
    assert listed.status == "interrupted"  # not "training" for ever
    alive = RunMetadata("x", "seed", ["happy", "sad"], status="training", worker_pid=os.getpid())
    write_json(run / METADATA_FILE, alive.to_json())
    assert read_run(run).status == "training"


def test_staged_uploads_are_removed_only_once_no_visitor_can_be_saving_them(tmp_path):
    """A dead worker's staged uploads go; another visitor's, being saved before their run claims the lock, stay."""
    dead, saving = tmp_path / f"{STAGING_PREFIX}dead", tmp_path / f"{STAGING_PREFIX}saving"
    for folder in (dead, saving):
        folder.mkdir()
        (folder / "fer2013.zip").write_bytes(b"an upload")
    now = saving.stat().st_mtime
    os.utime(dead, (now - ORPHANED_AFTER_S - 1, now - ORPHANED_AFTER_S - 1))
    remove_orphaned_staging(tmp_path, now=now)
    assert not dead.exists() and (saving / "fer2013.zip").read_bytes() == b"an upload"


def test_orphaned_partial_files_of_killed_writers_are_removed_by_the_next_save(tmp_path, dead_pid):
    target = tmp_path / MODEL_FILE
    orphan = tmp_path / f".model.{dead_pid}.partial.keras"
    orphan.write_bytes(b"half a model from a killed run")
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"]) as writer:
        in_progress = tmp_path / f".model.{writer.pid}.partial.keras"  # a live writer's file is left alone
        in_progress.write_bytes(b"being written")
        write_atomic(target, lambda tmp: tmp.write_bytes(b"a whole model"))
        writer.kill()
    assert target.read_bytes() == b"a whole model"
    assert not orphan.exists() and in_progress.exists()


def test_recipes_are_files_and_train_py_has_a_flag_for_every_config_field():
    assert set(recipe_names()) >= {"vgg", "seed", "fine_tune", "ferplus", "ferplus_adam_long"}
    assert recipe("vgg") == TrainConfig()  # the vgg recipe is TrainConfig's defaults
    for name in recipe_names():  # each file's values, on top of its architecture's recipe, and nothing else
        declared = tomllib.loads((RECIPES_DIR / f"{name}.toml").read_text())
        named = read_recipe(name)
        assert named.train_on_votes == declared.pop("train_on_votes", False), name
        config, base = config_of(named), recipe(declared.get("architecture", "vgg"))
        assert {key: getattr(config, key) for key in declared} == declared, name
        assert all(getattr(config, f.name) == getattr(base, f.name) for f in fields(TrainConfig) if f.name not in declared)
    assert read_recipe("ferplus_adam_long").train_on_votes  # the shipped base learns the votes
    from scripts.train import parser

    destinations = {action.dest for action in parser()._actions}
    assert {option.name for option in fields(TrainConfig)} <= destinations
    args = parser().parse_args(["--data", "x", "--lr", "0.5", "--label-share", "0.2", "--no-augment", "--recipe", "seed"])
    assert (args.learning_rate, args.label_share, args.augment, args.recipe) == (0.5, 0.2, False, "seed")


def test_architecture_choices_are_the_model_factory():
    from core.models import ARCHITECTURES

    [architecture] = [option for option in fields(TrainConfig) if option.name == "architecture"]
    assert set(architecture.metadata["choices"]) == set(ARCHITECTURES)


def _run(accuracy: float | None, classes: int = 7, status: str = "finished") -> RunMetadata:
    metrics = {"validation": SplitScore(n=100, accuracy=accuracy, per_class={})} if accuracy is not None else {}
    return RunMetadata("r", "vgg", ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"][:classes],
                       status=status, metrics=metrics)


def test_activating_a_run_near_chance_or_below_the_shipped_model_is_warned():
    shipped = _run(0.70)
    assert "near chance" in activation_warning(_run(0.16), shipped)
    assert "shipped model" in activation_warning(_run(0.55), shipped)
    assert "no validation score" in activation_warning(_run(None), shipped)
    assert "interrupted" in activation_warning(_run(0.9, status="interrupted"), shipped)
    assert activation_warning(_run(0.72), shipped) is None


def test_only_the_operator_changes_the_active_model():
    assert not is_operator({})
    assert is_operator({"EMOVOICE_OPERATOR": "1"})
    assert is_operator({}, server_address="localhost")
    assert not is_operator({}, server_address="0.0.0.0")


def test_the_runs_table_says_dash_where_a_value_is_missing(tmp_path):
    run = _run(0.5)
    run.path = tmp_path
    [row] = run_rows([run], active=tmp_path)
    assert row.active and row.validation == "50.0%"
    assert (row.test, row.test_5, row.epochs, row.minutes) == ("–", "–", "–", "–")


def test_staged_uploads_leave_nothing_behind_when_one_is_refused(tmp_path):
    from core.data import DatasetError
    from core.training.jobs import Upload, stage_uploads

    good = Upload("fer2013.csv", b"emotion,pixels,Usage\n")
    bad = Upload("my photos.zip", b"a text file named .zip")
    with pytest.raises(DatasetError, match="my photos.zip is not a readable zip"):
        stage_uploads({"data": good, "photos": bad}, root=tmp_path)
    assert list(tmp_path.iterdir()) == []  # the file saved first is gone too


def test_a_run_that_fails_deletes_its_staged_uploads(tmp_path):
    from core.background import start_training, wait_for
    from core.training.jobs import Upload, stage_uploads

    scratch, staged = stage_uploads({"data": Upload("fer2013.csv", b"not,a,dataset\n1,2,3\n")}, root=tmp_path / "uploads")
    run = start_training(recipe("seed", epochs=1), str(staged["data"]), tmp_path / "runs", scratch=[scratch])
    assert wait_for(run, timeout_s=120, runs_dir=tmp_path / "runs").status == "failed"
    assert not scratch.exists()


@pytest.mark.parametrize("edit", [{"training_seconds": "90"}, {"dataset": {"source": None}}, {"classes": "happy"},
                                  {"epochs_trained": 2.5}, {"lineage": {"epochs": "3"}},
                                  {"metrics": {"test": {"n": 10, "accuracy": "0.9", "per_class": {}}}}])
def test_a_hand_edited_field_of_the_wrong_kind_is_a_damaged_run_not_a_broken_page(trained_run, tmp_path, edit):
    run = copy_run(trained_run, tmp_path / "runs" / "20990101-000000-seed")
    metadata = json.loads((run / METADATA_FILE).read_text())
    (run / METADATA_FILE).write_text(json.dumps({**metadata, **edit}))
    with pytest.raises(ModelError, match=f"metadata.json (is damaged|does not name).*{next(iter(edit))}"):
        read_run(run)
    assert list_runs(tmp_path / "runs") == []  # left out of the runs table, which draws the rest
    assert run_rows(list_runs(SHIPPED_MODEL_DIR.parent), SHIPPED_MODEL_DIR)


def test_a_progress_file_that_is_no_record_reads_unknown(tmp_path):
    for text in ("[]", '"finished"', '{"epochs": "many"}'):
        (tmp_path / PROGRESS_FILE).write_text(text)
        assert read_status(tmp_path, alive=False).status == "unknown"
