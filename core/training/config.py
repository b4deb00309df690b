"""What decides a training run (TrainConfig) and the named recipes in recipes/, one plain file per run.

No Keras here: scripts build their flags from TrainConfig's fields before importing anything heavy.
"""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, field, fields, replace

from core.emotions import emotion_set
from core.paths import RECIPES_DIR

# The validation faces are the same for every run, whatever its --seed: a warm start from another run's
# model must never be scored on faces that model trained on (a seed-2 split once did, and read 3 points high).
VALIDATION_SEED = 1
# Test-time views a trained model may keep (core.tta also has ten-crop: five times the time per face).
TTA_CHOICES = ("flip", "none")


def _option(default, help: str, choices: tuple[str, ...] | None = None):
    """A TrainConfig field with the words its command-line flag shows (scripts/train.py)."""
    return field(default=default, metadata={"help": help, "choices": choices})


@dataclass
class TrainConfig:
    """Everything that decides a training run. The defaults are the vgg recipe's (recipes/vgg.toml); the shipped
    model is recipes/ferplus_adam_long.toml, then fine_tune.toml."""

    architecture: str = _option("vgg", "network (core.models)", ("vgg", "vgg64", "seed"))
    emotions: str = _option("all", "'all' (7), 'seed' (5) or a comma-separated list")
    epochs: int = _option(60, "epochs to train")
    batch_size: int = _option(128, "faces per batch")
    # SGD with Nesterov momentum beat Adam by 1-2 points on FER2013's labels; on FER+ votes Adam led at 20 epochs
    # (docs/experiments.md), and recipes/ferplus_adam_long.toml asks whether it still does over 60.
    optimizer: str = _option("sgd", "optimizer", ("sgd", "adam"))
    learning_rate: float = _option(0.02, "peak learning rate")
    weight_decay: float = _option(5e-4, "decoupled weight decay")
    schedule: str = _option("cosine", "cosine: warm-up then anneal within the epochs; plateau: halve on a stall",
                            ("cosine", "plateau", "none"))
    label_smoothing: float = _option(0.1, "label smoothing of the loss")
    augment: bool = _option(True, "mirror, shift, rotate, zoom, relight and erase the training faces")
    class_balance: float = _option(0.0, "weight emotions by (1 / count) ** POWER: 0 off, 0.5 lifts rare ones, 1 balances")
    photo_repeat: int = _option(4, "times each face of --photos trains an epoch")
    # A warm start's share in the finished model: its weights and the best epoch's are averaged so (0 = off).
    # Fine-tuning on photos forgets some FER2013; the average keeps most of both (Wortsman et al., WiSE-FT).
    keep_start: float = _option(0.0, "with --init: average this share of the starting model's weights into the result")
    label_share: float = _option(0.0, "with votes: mix this share of the dataset's own label into each vote distribution")
    # Distillation (Hinton et al. 2015): a stronger model's answers, an ensemble's above all, teach one net of
    # the product's size. Its calibrated probabilities on each training face are mixed into the targets.
    teacher: str = _option("", "a model folder (an ensemble from scripts/ensemble.py too) whose answers are mixed into the targets")
    teacher_share: float = _option(0.0, "with --teacher: the teacher's share of each target (the rest: votes or labels)")
    tta: str = _option("flip", "test-time augmentation used at inference", TTA_CHOICES)
    # carved out of train/, stratified (VALIDATION_SEED); test/ never trains
    validation_fraction: float = _option(0.1, "share of train/ held out to pick the best epoch")
    patience: int = _option(15, "stop after this many epochs without a better validation accuracy")
    seed: int = _option(1, "initialisation, shuffling and augmentation")

    @classmethod
    def from_json(cls, data: dict) -> TrainConfig:
        """A config saved by any version (metadata.json's recipe, state.json): unknown keys are ignored."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def to_json(self) -> dict:
        return asdict(self)

    def out_of_range(self) -> str | None:
        """What makes these values untrainable, in one line naming the flag (None when nothing does)."""
        checks = [
            (self.epochs >= 1, f"--epochs must be at least 1, not {self.epochs}"),
            (self.batch_size >= 1, f"--batch-size must be at least 1, not {self.batch_size}"),
            (self.learning_rate > 0, f"--lr must be above 0, not {self.learning_rate}"),
            (self.photo_repeat >= 1, f"--photo-repeat must be at least 1, not {self.photo_repeat}"),
            (0 <= self.keep_start < 1, f"--keep-start must be at least 0 and below 1, not {self.keep_start}"),
            (0 <= self.label_share <= 1, f"--label-share must be from 0 to 1, not {self.label_share}"),
            (0 < self.validation_fraction < 1, f"--validation-fraction must be above 0 and below 1, not "
                                               f"{self.validation_fraction}"),
            (0 <= self.label_smoothing < 1, f"--label-smoothing must be at least 0 and below 1, not {self.label_smoothing}"),
            (self.weight_decay >= 0, f"--weight-decay must be at least 0, not {self.weight_decay}"),
            (self.class_balance >= 0, f"--class-balance must be at least 0, not {self.class_balance}"),
            (0 <= self.teacher_share <= 1, f"--teacher-share must be from 0 to 1, not {self.teacher_share}"),
            (self.patience >= 1, f"--patience must be at least 1, not {self.patience}"),
        ]
        try:
            emotion_set(self.emotions)
        except ValueError as error:
            checks.insert(0, (False, f"--emotions: {error}"))
        return next((message for fine, message in checks if not fine), None)


@dataclass
class Recipe:
    """A named recipe file: TrainConfig values, and whether it trains on FER+ votes."""

    name: str
    values: dict  # TrainConfig fields it sets
    train_on_votes: bool = False


class RecipeError(ValueError):
    pass


def recipe_names() -> list[str]:
    return sorted(path.stem for path in RECIPES_DIR.glob("*.toml"))


def read_recipe(name: str) -> Recipe:
    path = RECIPES_DIR / f"{name}.toml"
    if not path.is_file():
        raise RecipeError(f"no recipe {name!r}; the recipes are {', '.join(recipe_names())} (in {RECIPES_DIR})")
    values = tomllib.loads(path.read_text())
    votes = bool(values.pop("train_on_votes", False))
    unknown = set(values) - {f.name for f in fields(TrainConfig)}
    if unknown:
        raise RecipeError(f"{path.name} sets {', '.join(sorted(unknown))}, which TrainConfig does not have")
    return Recipe(name, values, votes)


def recipe(architecture: str, /, **overrides) -> TrainConfig:
    """The architecture's recipe (recipes/ARCHITECTURE.toml, else the defaults), with some values changed
    (None leaves a value as it is)."""
    base = RECIPES[architecture] if architecture in RECIPES else TrainConfig(architecture=architecture)
    return replace(base, **{k: v for k, v in overrides.items() if v is not None})


def config_of(named: Recipe, base_architecture: str | None = None, **overrides) -> TrainConfig:
    """A named recipe as a config, with some values changed: a recipe that names no architecture (fine_tune)
    sits on top of `base_architecture`'s own recipe."""
    base = overrides.get("architecture") or named.values.get("architecture") or base_architecture or "vgg"
    return recipe(base, **{**named.values, **{k: v for k, v in overrides.items() if v is not None}})


RECIPES = {name: TrainConfig(**read_recipe(name).values) for name in ("vgg", "seed")}
# Teaching a trained model new photos: the changes on top of its architecture's recipe (recipes/fine_tune.toml).
FINE_TUNE = read_recipe("fine_tune").values
