"""The emotions emovoice knows, the names other datasets give them, and the faces it reads."""

from __future__ import annotations

# FER2013's label order (the `emotion` column of fer2013.csv): every model and
# dataset array in emovoice indexes emotions in this order.
EMOTIONS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")

# FER2013's faces are 48x48 grayscale crops: the input of every model. (Said here rather than with
# the face detector so that training needs neither OpenCV nor TensorFlow.)
INPUT_SIZE = 48

# The student project's five classes; its 5-class accuracy is still reported.
SEED_EMOTIONS: tuple[str, ...] = ("angry", "fear", "happy", "sad", "surprise")

_ALIASES: dict[str, str] = {
    "angry": "angry", "anger": "angry", "ang": "angry", "mad": "angry",
    "disgust": "disgust", "disgusted": "disgust", "dis": "disgust",
    "fear": "fear", "fearful": "fear", "afraid": "fear", "scared": "fear", "fea": "fear",
    "happy": "happy", "happiness": "happy", "joy": "happy", "hap": "happy",
    "sad": "sad", "sadness": "sad",
    "surprise": "surprise", "surprised": "surprise", "sur": "surprise",
    "neutral": "neutral", "neu": "neutral", "calm": "neutral",
}


def canonical_emotion(name: str) -> str | None:
    """The emotion a folder or label name stands for, or None if it is not one."""
    key = name.strip().lower().replace("_", "").replace("-", "").replace(" ", "")
    key = key.split(".", 1)[-1] if key[:1].isdigit() else key  # "3.happy", "3happy"
    return _ALIASES.get(key.lstrip("0123456789"))


def emotions_option(emotions: list[str] | tuple[str, ...]) -> str:
    """The --emotions value that names `emotions`: "all", "seed", or the list."""
    chosen = emotion_set(list(emotions))
    return "all" if chosen == EMOTIONS else "seed" if chosen == SEED_EMOTIONS else ",".join(chosen)


def emotion_set(name_or_list: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Resolve "all"/"7", "seed"/"5" or an explicit list to emotions in canonical order."""
    if isinstance(name_or_list, str):
        key = name_or_list.strip().lower()
        if key in ("all", "7", "seven"):
            return EMOTIONS
        if key in ("seed", "5", "five"):
            return SEED_EMOTIONS
        name_or_list = key.split(",")
    wanted = set()
    for name in name_or_list:
        emotion = canonical_emotion(name)
        if emotion is None:
            raise ValueError(f"unknown emotion {name!r}; known: {', '.join(EMOTIONS)}")
        wanted.add(emotion)
    return tuple(e for e in EMOTIONS if e in wanted)
