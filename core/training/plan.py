"""What a run from the terminal will do, decided before anything heavy loads: a new run from a recipe, or a
stopped run continued from its checkpoint (scripts/train.py). No Keras here.

Every reason a plan cannot be made is a PlanError with a one-line message, raised before any data is read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from core.emotions import emotions_option
from core.records import ResumeState
from core.runs import STATE_FILE, ModelError, read_run, start_model_path
from core.training.config import Recipe, RecipeError, TrainConfig, config_of, read_recipe, recipe_names
from core.votes import votes_beside


class PlanError(ValueError):
    """A run that cannot start as asked; the message says why, in one line."""


@dataclass(frozen=True)
class RunPlan:
    config: TrainConfig
    data: str  # the dataset: folder, zip or fer2013.csv
    votes: str | None  # FER+ votes to train on; None: the dataset's own labels
    photos: str | None  # labelled photos learned beside the data
    init_model: Path | None  # the model whose weights it starts from
    run_dir: Path | None = None  # None: a new folder under the runs folder
    resume: bool = False  # on from run_dir's checkpoint (state.json)
    # Votes found beside the data, neither given nor needed by the recipe: where they name none of its
    # faces (ferplus.csv beside another dataset), the run trains on the labels, warned.
    votes_found: bool = False


def new_run(data: str, recipe_name: str | None, overrides: dict, votes: str | None = None, no_votes: bool = False,
            photos: str | None = None, init_model: Path | None = None) -> RunPlan:
    """A run of the named recipe with `overrides` (TrainConfig field -> value or None), on `data` and the votes
    given or found beside it. Without a recipe, the architecture's own (--arch, else the starting model's, else
    vgg): its recipe file, or the defaults where it has none (vgg64). A warm start learns the starting model's
    emotions unless --emotions says otherwise."""
    try:
        starting = read_run(init_model) if init_model else None
        architecture = overrides.get("architecture") or (starting.architecture if starting else None)
        own = architecture or "vgg"
        named = read_recipe(recipe_name) if recipe_name else read_recipe(own) if own in recipe_names() else Recipe(own, {})
    except (RecipeError, ModelError) as error:
        raise PlanError(str(error)) from None
    if starting and overrides.get("emotions") is None:
        overrides = {**overrides, "emotions": emotions_option(starting.classes)}
    config = config_of(named, architecture, **overrides)
    if named.train_on_votes and no_votes:
        raise PlanError(f"the {named.name} recipe trains on FER+ votes; leave out --no-votes")
    found = None if no_votes else votes or votes_beside(data)
    if named.train_on_votes and not found:
        raise PlanError(f"the {named.name} recipe trains on FER+ votes: put FER+'s fer2013new.csv beside fer2013.csv "
                        "(or a ferplus.csv beside the data), or give --votes CSV")
    return _checked(RunPlan(config, data, str(found) if found else None, photos, init_model,
                            votes_found=bool(found) and not votes and not named.train_on_votes))


def resumed_run(run_dir: Path, overrides: dict, data: str | None = None, votes: str | None = None,
                no_votes: bool = False, photos: str | None = None, init_model: Path | None = None) -> RunPlan:
    """A stopped run continued from its last checkpoint, with what its metadata recorded (data, votes, photos,
    starting model) unless given again. `overrides` may lengthen it (epochs); the checkpoint's recipe holds.

    A run killed before its first epoch ended has no checkpoint (state.json): it starts again, in its own
    folder, from its recorded recipe with `overrides`.
    """
    if not run_dir.is_dir():
        raise PlanError(f"{run_dir} is not a run folder")
    try:
        earlier = read_run(run_dir)
    except ModelError:
        raise PlanError(f"{run_dir} has nothing to resume: no readable metadata.json (it stopped before training "
                        "began)") from None
    state_file = run_dir / STATE_FILE
    resume = state_file.is_file()
    if resume:
        config = TrainConfig.from_json(ResumeState.from_json(json.loads(state_file.read_text())).config)
        if overrides.get("epochs"):
            config.epochs = overrides["epochs"]
    else:
        config = TrainConfig.from_json({**(earlier.recipe or {}), **{k: v for k, v in overrides.items() if v is not None}})
        init_model = init_model or (start_model_path(earlier.initialised_from) if earlier.initialised_from else None)
    votes = None if no_votes else votes or earlier.dataset.votes
    photos = photos or (earlier.photos.source if earlier.photos else None)
    return _checked(RunPlan(config, data or earlier.dataset.source, votes, photos, init_model, run_dir, resume))


def _checked(plan: RunPlan) -> RunPlan:
    keep_start = plan.config.keep_start
    if keep_start and not (plan.init_model or plan.run_dir):  # a resumed run keeps what it recorded
        raise PlanError("--keep-start needs --init MODEL, the model whose share it keeps")
    problem = plan.config.out_of_range()  # said before the data is read
    if problem:
        raise PlanError(problem)
    return plan
