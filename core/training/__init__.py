"""Training: the recipe (config), augmentation (augment), the faces and targets (faces), the loop (fit) and
the finish (finalize); a run planned from the terminal (plan) or sized to a time budget (budget).

    from core.training import TrainConfig, recipe, train

TrainConfig and the recipes load without Keras, so a script can parse its arguments first; the names
from the other modules import Keras the first time one is used.
"""

from __future__ import annotations

import importlib

from core.training.config import (
    FINE_TUNE, RECIPES, RECIPES_DIR, VALIDATION_SEED, Recipe, RecipeError, TrainConfig, config_of, read_recipe,
    recipe, recipe_names,
)

_LAZY = {
    "augment": ("RandomWarp", "augmenter", "class_weights", "sharpness", "Batches"),
    "faces": ("Faces", "split_faces", "training_and_validation", "training_targets",
              "validation_targets", "validation_faces"),
    "fit": ("train", "Cancelled", "NothingToResume", "EpochProgress", "STATE_FILE", "CHECKPOINT_FILE"),
    "finalize": ("save_ensemble", "final_metrics", "totals"),
    "budget": ("sized_to_budget",),
}
_MODULE_OF = {name: module for module, names in _LAZY.items() for name in names}

__all__ = ["FINE_TUNE", "RECIPES", "RECIPES_DIR", "VALIDATION_SEED", "Recipe", "RecipeError", "TrainConfig",
           "config_of", "read_recipe", "recipe", "recipe_names", *_MODULE_OF]


def __getattr__(name: str):
    if name not in _MODULE_OF:
        raise AttributeError(f"module 'core.training' has no attribute {name!r}")
    return getattr(importlib.import_module(f"core.training.{_MODULE_OF[name]}"), name)
