"""A run planned from the terminal (core.training.plan): votes found or required, and every refusal said before
any data is read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.paths import SEED_MODEL_DIR, SHIPPED_MODEL_DIR
from core.training import TrainConfig, config_of, read_recipe, recipe
from core.training.plan import PlanError, new_run, resumed_run

NO_OVERRIDES: dict = {}


def dataset_with_votes(folder: Path, votes: bool) -> Path:
    data = folder / "fer2013.zip"
    data.write_bytes(b"")  # a plan reads no data: only where it is, and what sits beside it
    if votes:
        (folder / "ferplus.csv").write_text("Image name,neutral,happiness\n")
    return data


def test_votes_beside_the_data_are_found_and_a_votes_recipe_needs_them(tmp_path):
    voted, bare = tmp_path / "voted", tmp_path / "bare"
    voted.mkdir(), bare.mkdir()
    plan = new_run(str(dataset_with_votes(voted, votes=True)), "ferplus", NO_OVERRIDES)
    assert plan.votes == str(voted / "ferplus.csv") and plan.config == config_of(read_recipe("ferplus")) and not plan.resume
    assert new_run(str(dataset_with_votes(voted, votes=True)), "seed", NO_OVERRIDES, no_votes=True).votes is None
    with pytest.raises(PlanError, match=r"put FER\+'s fer2013new.csv beside fer2013.csv"):
        new_run(str(dataset_with_votes(bare, votes=False)), "ferplus", NO_OVERRIDES)
    with pytest.raises(PlanError, match="leave out --no-votes"):
        new_run(str(dataset_with_votes(voted, votes=True)), "ferplus", NO_OVERRIDES, no_votes=True)


def test_overrides_change_the_recipe_and_a_warm_start_takes_its_models_network(tmp_path):
    data = str(dataset_with_votes(tmp_path, votes=False))
    plan = new_run(data, "seed", {"epochs": 3, "learning_rate": None})
    assert (plan.config.architecture, plan.config.epochs) == ("seed", 3)
    plan = new_run(data, "fine_tune", {"keep_start": 0.5}, init_model=SHIPPED_MODEL_DIR)
    assert plan.config.architecture == "vgg" and plan.init_model == SHIPPED_MODEL_DIR


@pytest.mark.parametrize("overrides, init, message", [
    ({"keep_start": 0.5}, None, "--keep-start needs --init MODEL"),
    ({"keep_start": 1.0}, SHIPPED_MODEL_DIR, "--keep-start must be at least 0 and below 1"),
    ({}, Path("no-such-model"), "no-such-model"),
    ({"batch_size": 0}, None, "--batch-size must be at least 1, not 0"),
    ({"epochs": 0}, None, "--epochs must be at least 1, not 0"),
    ({"label_share": 2.0}, None, "--label-share must be from 0 to 1, not 2.0"),
    ({"learning_rate": -0.1}, None, "--lr must be above 0"),
    ({"label_smoothing": 2.0}, None, "--label-smoothing must be at least 0 and below 1, not 2.0"),
    ({"teacher_share": 1.5}, None, "--teacher-share must be from 0 to 1, not 1.5"),
    ({"emotions": "happy,sadd"}, None, "--emotions: unknown emotion 'sadd'"),
])
def test_a_run_that_cannot_start_is_refused_in_one_line(tmp_path, overrides, init, message):
    with pytest.raises(PlanError, match=message) as refused:
        new_run(str(dataset_with_votes(tmp_path, votes=False)), "seed", overrides, init_model=init)
    assert "\n" not in str(refused.value)


def test_only_a_run_folder_with_metadata_can_be_resumed(tmp_path):
    with pytest.raises(PlanError, match="is not a run folder"):
        resumed_run(tmp_path / "missing", NO_OVERRIDES)
    (tmp_path / "empty").mkdir()
    with pytest.raises(PlanError, match="nothing to resume"):
        resumed_run(tmp_path / "empty", NO_OVERRIDES)


def test_without_a_recipe_a_run_takes_its_architectures_own(tmp_path):
    """--arch vgg64 has no recipe file: the defaults for it. --init MODEL alone: the starting model's network."""
    data = str(dataset_with_votes(tmp_path, votes=False))
    assert new_run(data, None, {"architecture": "vgg64"}).config == TrainConfig(architecture="vgg64")
    assert new_run(data, None, NO_OVERRIDES, init_model=SEED_MODEL_DIR).config == recipe("seed")
    assert new_run(data, None, NO_OVERRIDES).config == recipe("vgg")


def test_a_warm_start_learns_the_starting_models_emotions_unless_told_otherwise(tmp_path):
    """The vgg recipe trains seven emotions; a vgg run trained on the seed's five goes on with those five."""
    five = tmp_path / "five-emotion-vgg"
    five.mkdir()
    metadata = json.loads((SHIPPED_MODEL_DIR / "metadata.json").read_text())
    (five / "metadata.json").write_text(json.dumps({**metadata, "classes": ["angry", "fear", "happy", "sad", "surprise"]}))
    data = str(dataset_with_votes(tmp_path, votes=False))
    assert new_run(data, None, NO_OVERRIDES, init_model=five).config.emotions == "seed"
    assert new_run(data, "fine_tune", NO_OVERRIDES, init_model=five).config.emotions == "seed"
    assert new_run(data, None, {"emotions": "all"}, init_model=five).config.emotions == "all"
    assert new_run(data, None, NO_OVERRIDES, init_model=SHIPPED_MODEL_DIR).config.emotions == "all"
