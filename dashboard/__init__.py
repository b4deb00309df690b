"""Shared pieces of the Streamlit pages: page set-up, cached loaders, small display helpers.

Every real operation lives in `core`; this package only decides what is cached and how results look.
`dashboard.train_page`, `evaluate_page`, `try_it_page`, `label_page` and `live_page` hold the parts of the
pages, so that each page reads top to bottom in one screen. (It sits at the repository root, not in pages/,
because Streamlit turns every .py file in pages/ into a page.)
"""

from __future__ import annotations

# Before anything loads TensorFlow: WebRTC's pylibsrtp segfaults when first imported into a process that holds
# TensorFlow (see streamlit_app.py). Every page imports this module, so a page opened directly (a deep link to
# a fresh server, before any session ran the navigation) is covered too.
import streamlit_webrtc  # noqa: F401, I001

import gc
import os
import threading
import time
from pathlib import Path

import numpy as np
import streamlit as st

from core.data import Dataset, DatasetError, load_dataset, resolve_data_path
from core.evaluation import Evaluation, evaluate
from core.explain import heatmaps
from core.paths import SAMPLES_DIR, SEED_MODEL_DIR, SHIPPED_MODEL_DIR, VOICES_DIR
from core.recognise import Classifier, Recognition, load_classifier, recognise
from core.records import RunMetadata
from core.runs import METADATA_FILE, MODEL_FILE, active_model_dir, list_runs, read_run
from core.training.jobs import percent  # the pages format with dashboard.percent too: one definition
from core.voices import VoiceBank, load_voice_bank

SAMPLE_ZIP = SAMPLES_DIR / "fer2013-sample.zip"  # what Evaluate scores: 20 FER2013 test/ faces per emotion, votes beside
TRAIN_SAMPLE_ZIP = SAMPLES_DIR / "fer2013-train-sample.zip"  # what Train trains on: 30 train/ faces per emotion, none of those
# Material icons ship with Streamlit, so they look the same in every browser (emoji need a colour
# emoji font, which many Linux machines lack). Use them in Markdown text: f"{ICON['sad']} sad".
ICON = {emotion: f":material/{name}:" for emotion, name in {
    "angry": "sentiment_frustrated", "disgust": "sick", "fear": "sentiment_worried", "happy": "sentiment_very_satisfied",
    "sad": "sentiment_sad", "surprise": "sentiment_excited", "neutral": "sentiment_neutral"}.items()}


# -- cached loaders ------------------------------------------------------------------------------
# Each public loader computes a cheap stamp (mtime, size) of what it reads and passes it to a
# cached function as an argument: a new model or dataset on disk means a new cache key, so the
# dashboard never serves a stale one, and an unchanged one is never loaded twice.


def file_stamp(path: Path) -> tuple[int, int]:
    """(mtime_ns, size) of a file; of a folder, the latest mtime of it and every folder inside it (a file added,
    removed or renamed anywhere in a dataset's class folders changes its folder's), and how many; (0, 0) if missing."""
    try:
        if not path.is_dir():
            stat = path.stat()
            return stat.st_mtime_ns, stat.st_size
        folders = [path, *(Path(top) / name for top, names, _ in os.walk(path) for name in names)]
        stats = [folder.stat() for folder in folders]
    except OSError:
        return (0, 0)
    return max(s.st_mtime_ns for s in stats), len(stats)


def model_stamp(model_dir: Path) -> tuple[tuple[int, int], tuple[int, int]]:
    """Stamps of a model's weights and metadata: a new temperature (core.calibration) is a new model too."""
    return file_stamp(Path(model_dir) / MODEL_FILE), file_stamp(Path(model_dir) / METADATA_FILE)


# After every script run Streamlit collects garbage in full, twice (runner.postScriptGC and Keras' clear_session).
# With TensorFlow and a model loaded that scans ~400k long-lived objects, 0.2-0.5 s of CPU per click; frozen
# (gc.freeze), they leave every later collection. Frozen objects are never freed, so: a load asks for a freeze,
# a released model unfreezes everything so that it can go, and the next page run that asks for a model
# collects the garbage and then freezes what survives.
_freeze_due = threading.Event()


def _unfreeze(_released: Classifier) -> None:
    gc.unfreeze()
    _freeze_due.set()


@st.cache_resource(show_spinner="Loading the model…", max_entries=4, on_release=_unfreeze)
def _classifier(model_dir: str, model_stamp: tuple) -> Classifier:
    classifier = load_classifier(Path(model_dir))
    _freeze_due.set()
    return classifier


def _freeze_if_due() -> None:
    """Called after every public function that may load (or so release) a model: classifier_for (which
    heatmaps_of calls first), evaluation_of and recognition_of."""
    if _freeze_due.is_set():
        _freeze_due.clear()
        gc.collect()
        gc.freeze()


def classifier_for(model_dir: Path) -> Classifier:
    """The model in `model_dir`, loaded once per version of its model.keras and metadata.json."""
    classifier = _classifier(str(model_dir), model_stamp(model_dir))
    _freeze_if_due()
    return classifier


@st.cache_resource(show_spinner="Reading the voice bank…")
def _voice_bank(folder: str, folder_stamp: tuple[int, int]) -> VoiceBank:
    return load_voice_bank(folder)


def voice_bank(folder: Path = VOICES_DIR) -> VoiceBank:
    return _voice_bank(str(folder), voice_bank_stamp(folder))


def voice_bank_stamp(folder: Path = VOICES_DIR) -> tuple[int, int]:
    """Changes when a clip is added, removed or renamed, or the bank is rebuilt: a voice drawn before is stale."""
    return _tree_stamp(folder)


def _tree_stamp(folder: Path) -> tuple[int, int]:
    # Clips sit one folder deep (voices/happy/x.mp3), and a folder's mtime changes whenever a clip is
    # added, removed or renamed in it: the folders' own stats are enough, and cheap on every click.
    try:
        stats = [sub.stat() for sub in [folder, *folder.iterdir()] if sub.is_dir()]
    except OSError:
        return (0, 0)
    return max(s.st_mtime_ns for s in stats), len(stats)


@st.cache_resource(max_entries=2, show_spinner="Reading the dataset and its votes (the first time takes a while "
                                                "for a full FER2013)…")
def _voted_dataset(path: str, votes: str | None, stamps: tuple) -> Dataset:
    # cache_resource, not cache_data: a dataset is tens of MB of arrays, shared read-only, never copied.
    from core.votes import attach_found_votes

    dataset = load_dataset(path)
    attach_found_votes(dataset, votes)
    return dataset


def voted_dataset_at(path: Path) -> Dataset:
    """A dataset with the FER+ votes found beside it (core.votes.votes_beside), cached until either file changes."""
    from core.votes import votes_beside

    votes = votes_beside(path)
    return _voted_dataset(str(path), str(votes) if votes else None,
                          (file_stamp(Path(path)), file_stamp(votes) if votes else None))


@st.cache_data(show_spinner="Scoring the model on the test set…", max_entries=8)
def _evaluation(model_dir: str, model_stamp: tuple, data_stamp: tuple, _dataset: Dataset) -> Evaluation:
    # `_dataset` is left out of the cache key (leading underscore); `data_stamp` stands in for it.
    return evaluate(_classifier(model_dir, model_stamp), _dataset)


def evaluation_of(model_dir: Path, dataset: Dataset) -> Evaluation:
    """The model's scores on the dataset, computed once per (model version, dataset content, votes file)."""
    votes = Path(dataset.votes_source) if dataset.votes_source else None
    data_stamp = (dataset.fingerprint, str(votes), file_stamp(votes) if votes else None)
    evaluation = _evaluation(str(model_dir), model_stamp(model_dir), data_stamp, dataset)
    _freeze_if_due()
    return evaluation


# Recognition is CPU-bound, and OpenCV and TensorFlow each spread one call over every core. With many
# visitors at once, running all their photos together only thrashes the cores: they queue here instead.
_recognition_slots = threading.BoundedSemaphore(os.cpu_count() or 1)


@st.cache_data(show_spinner="Looking for faces…", max_entries=8)
def _recognition(photo: bytes, whole_image: bool, model_dir: str, model_stamp: tuple) -> Recognition:
    # Streamlit hashes the photo's bytes: the same photo is never recognised twice.
    # An ImageError is raised, not cached, so a bad photo costs only a quick re-decode.
    classifier = _classifier(model_dir, model_stamp)
    with _recognition_slots:
        return recognise(classifier, photo, whole_image=whole_image)


def recognition_of(photo: bytes, whole_image: bool, model_dir: Path) -> Recognition:
    recognition = _recognition(photo, whole_image, str(model_dir), model_stamp(model_dir))
    _freeze_if_due()
    return recognition


@st.cache_data(show_spinner="Working out what the model looked at…", max_entries=32)
def _heatmaps(faces: np.ndarray, class_indexes: tuple[int, ...], model_dir: str, model_stamp: tuple) -> np.ndarray:
    classifier = _classifier(model_dir, model_stamp)
    with _recognition_slots:
        return heatmaps(classifier.loaded.model, faces, np.array(class_indexes))


def heatmaps_of(faces: np.ndarray, emotions: list[str], model_dir: Path) -> np.ndarray:
    """Grad-CAM maps (core.explain) of 48x48 faces for the named emotions, computed once per faces and model."""
    classes = classifier_for(model_dir).classes
    return _heatmaps(np.asarray(faces), tuple(classes.index(e) for e in emotions), str(model_dir), model_stamp(model_dir))


# -- models --------------------------------------------------------------------------------------


def model_choices() -> dict[str, Path]:
    """Every model that can be evaluated, label -> folder: shipped, seed (if present), then runs."""
    choices = {"Shipped model (models/emovoice-vgg)": SHIPPED_MODEL_DIR}
    if (SEED_MODEL_DIR / MODEL_FILE).is_file():
        choices["Seed model (models/seed)"] = SEED_MODEL_DIR
    for run in list_runs():
        choices[f"Run {run.name} ({run.architecture}, {len(run.classes)} emotions)"] = Path(run.path)
    return choices


def marking_active(models: dict[str, Path]):
    """A selectbox's format_func that puts "· active" after the active model's label. The options stay the
    same labels when the operator changes the active model, so a visitor's choice holds."""
    active = active_model_dir().resolve()
    return lambda label: f"{label} · active" if label in models and models[label].resolve() == active else label


def model_facts(metadata: RunMetadata) -> dict[str, str]:
    """What a person wants to know about a model, as short display strings."""
    test = metadata.metrics.get("test")
    return {
        "Architecture": metadata.architecture,
        "Emotions": ", ".join(metadata.classes),
        "Agrees with people": percent(metadata.accuracy("test_ferplus")),
        "Test accuracy": percent(metadata.accuracy("test")) + (f" on {test.n} faces" if test else ""),
        "5-emotion accuracy": percent(metadata.accuracy("test", five_emotions=True)),
        "Trained": (metadata.created or "?").replace("T", " ")[:16],
        "Training data": (Path(metadata.dataset.source).name or "?") + photos_taught(metadata),
    }


def photos_taught(metadata: RunMetadata) -> str:
    """" and N labelled photos (NAME)" for a model that learned real photos beside its dataset, else ""."""
    photos = metadata.photos
    return f" and {photos.faces:,} labelled photos ({Path(photos.source).name})" if photos and photos.faces else ""


def active_metadata() -> tuple[Path, RunMetadata | None]:
    folder = active_model_dir()
    try:
        return folder, read_run(folder)
    except Exception:  # ModelError: a missing or damaged model is reported by the caller
        return folder, None


# -- formatting ----------------------------------------------------------------------------------


VOICE_GENDERS = {"Any voice": None, "Female": "female", "Male": "male"}  # label -> core.voices gender


def voice_gender_choice() -> str | None:
    """The listener's choice of voice, shared by Try it and Live. A widget's own value belongs to its page and
    is dropped on a switch to another, so the choice is kept in the session under a key of its own."""
    label = st.segmented_control("Voice", list(VOICE_GENDERS), default=st.session_state.get("voice_gender_chosen",
                                 "Any voice"), required=True, key="voice_gender",
                                 help="Whose voice answers, when the voice bank says (RAVDESS does).")
    st.session_state.voice_gender_chosen = label
    return VOICE_GENDERS[label]


def typed_data_path(typed: str) -> Path | None:
    """A dataset path typed by a visitor, resolved inside the data folders; None when blank, or refused with
    the reason shown (outside the data folders, missing)."""
    if not typed.strip():
        return None
    try:
        return resolve_data_path(typed)
    except DatasetError as error:
        st.error(str(error))
        return None


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    seconds = int(seconds)
    return time.strftime("%H:%M:%S" if seconds >= 3600 else "%M:%S", time.gmtime(seconds))
