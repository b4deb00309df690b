"""The Train page's parts: what to train on, the recipe's widgets, the run's progress, and making a run active.

Each function draws one part and returns what the visitor chose; the page (pages/1_Train.py) lays them out
in order and starts the run. Nothing here trains: that is core.training.jobs, in its own process.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import altair as alt
import pandas as pd
import streamlit as st

import dashboard
from core.background import cancel_requested, cancel_training, current_training, read_status
from core.data import DatasetError
from core.models import ARCHITECTURES
from core.paths import DATA_DIR, RUNS_DIR, SHIPPED_MODEL_DIR
from core.records import CANCELLED, FAILED, FINISHED, INTERRUPTED, RunMetadata, TrainingStatus
from core.runs import MODEL_FILE, ModelError, active_model_dir, list_runs, read_run, set_active
from core.training import FINE_TUNE, TrainConfig, config_of, read_recipe, recipe
from core.training.jobs import (
    RunRow, Upload, activation_warning, check_upload, datasets_in, face_counts, preview_upload, run_rows,
)
from core.votes import votes_beside

GET_FER2013 = """
**No dataset found in `data/`.** emovoice trains on FER2013 (35,887 faces, 48x48, seven emotions).
Get one of:

* the Kaggle copy **[msambare/fer2013](https://www.kaggle.com/datasets/msambare/fer2013)** — a zip of
  `train/` and `test/` class folders, or
* the original **`fer2013.csv`** (columns `emotion`, `pixels`, `Usage`).

Put the zip, the unzipped folder or the csv into `{data_dir}` and type its name below, or upload a zip
under *Upload a zip or csv* (zip `fer2013.csv` first: at 300 MB it is over the 200 MB an upload may be).
The bundled sample (210 training faces) only shows that training works.
"""
NOT_OPERATOR = ("Making a run active changes the model every visitor of this server uses, so only the server's "
                "operator may: start the server with `EMOVOICE_OPERATOR=1` (or bound to localhost) to allow it, "
                "or run `python scripts/train.py --activate` there.")
DATA_KINDS = ["Bundled sample", "Path on the server", "Upload a zip or csv"]


# -- 1. data -----------------------------------------------------------------------------------------

def chosen_upload(label: str, kinds: tuple[str, ...], key: str) -> Upload | None:
    """A file chosen in an uploader, checked by its own name and kept in memory only: it is saved when
    Train uses it, and deleted once the run has read it."""
    upload = st.file_uploader(label, type=[kind.lstrip(".") for kind in kinds], key=key)
    if upload is None:
        return None
    chosen = Upload(upload.name, upload.getvalue())
    try:
        check_upload(chosen, kinds)
    except DatasetError as error:
        st.error(str(error))
        return None
    return chosen


def chosen_data() -> Path | Upload | None:
    """The dataset the run will read, or None (with the reason shown) when there is none yet."""
    kind = st.segmented_control("Train on", DATA_KINDS, required=True, key="data_kind",
                                default="Path on the server" if datasets_in(DATA_DIR) else "Bundled sample")
    if kind == "Bundled sample":
        st.caption(f"`{dashboard.TRAIN_SAMPLE_ZIP.name}`: 30 FER2013 training faces per emotion with their FER+ "
                   "votes, none of the faces Evaluate's sample scores. Enough to see training run end to end, far "
                   "too few for a useful model.")
        return dashboard.TRAIN_SAMPLE_ZIP
    if kind == "Path on the server":
        candidates = datasets_in(DATA_DIR)
        if not candidates:
            st.info(GET_FER2013.format(data_dir=DATA_DIR))
        typed = st.text_input("Dataset path (inside data/)", key="data_path", value=candidates[0] if candidates else "",
                              placeholder="fer2013.zip, fer2013/ or fer2013.csv",
                              help="Relative paths are read inside data/; other folders must be listed in EMOVOICE_DATA_ROOTS.")
        return dashboard.typed_data_path(typed)
    return chosen_upload("FER2013 zip, or a csv (fer2013.csv is over the upload limit: zip it)", (".zip", ".csv"),
                         "data_upload")


def chosen_votes(data: Path | Upload | None) -> Path | Upload | None:
    """FER+ votes to train on: uploaded, typed, or found beside the data; None to train on the labels."""
    found = votes_beside(data) if isinstance(data, Path) else None
    with st.expander("FER+ votes (optional)", expanded=found is not None):
        st.caption("Ten people's reading of each FER2013 face (microsoft/FERPlus): the model learns their "
                   "spread of votes and is scored on their majority. " + (f"Found `{found.name}` beside the data."
                                                                          if found else ""))
        votes: Path | Upload | None = chosen_upload("ferplus.csv or fer2013new.csv", (".csv",), "votes_upload")
        typed = st.text_input("or its path (inside data/)", key="votes_path")
        if votes is None:
            votes = dashboard.typed_data_path(typed)
        votes = votes or found
        if votes is None:
            return None
        use = st.toggle("Train on FER+ votes", True, key="train_on_votes")
    return votes if use else None


def chosen_photos() -> Upload | None:
    """Labelled photos to learn beside the data, with their face counts shown; None when none (or unusable)."""
    photos = chosen_upload("Your own labelled photos, learned beside the data (optional)", (".zip",), "photos")
    if photos is None:
        return None
    previews = st.session_state.setdefault("photo_previews", {})  # read once per file, not on every redraw
    key = (photos.name, len(photos.data), hash(photos.data))
    try:
        if key not in previews:
            previews.clear()
            previews[key] = preview_upload(photos)
        report = previews[key]
    except DatasetError as error:
        st.error(f"Photos not usable: {error}")
        return None
    except OSError as error:  # no room, or no right, to write the scratch copy it is read from
        st.error(f"Photos not readable here: {error.strerror or error}")
        return None
    st.caption("Faces to learn: " + ", ".join(f"{emotion} {n}" for emotion, n in face_counts(report).items())
               + "".join(f"; {warning}" for warning in report.warnings()))
    return photos


# -- 2. recipe ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Start:
    """Where a run starts: from scratch, or from the active model (`init_model`), and the recipe it offers."""

    defaults: TrainConfig | None  # None: the active model is not one network that can go on training
    init_model: Path | None = None
    # The recipe widgets' key suffix, one per recipe: a keyed slider keeps its value when its default changes,
    # so turning the votes on (the vgg recipe, SGD at 0.02, becomes the FER+ one, Adam at 0.001) needs new keys.
    variant: str = ""

    @property
    def warm(self) -> bool:
        return self.init_model is not None


def chosen_start(with_votes: bool) -> Start:
    """Scratch (an architecture and emotions) or the active model (its own network and emotions)."""
    active = active_model_dir()
    try:
        active_run = read_run(active)
    except ModelError:  # Home and Try it say what is wrong with it
        active_run = None
    warm = st.radio("Start from", ["scratch", "active"], horizontal=True, key="start",
                    format_func={"scratch": "scratch", "active": f"the active model, {active.name}"}.get,
                    help="The active model goes on learning: a few epochs teach it new faces, such as your photos "
                         "below.") == "active"
    if warm:
        if active_run is None or active_run.architecture not in ARCHITECTURES:  # an ensemble is not one network
            st.warning(f"The active model ({active_run.architecture if active_run else 'unreadable'}) is not one "
                       "network that can go on training; make a trained run active to continue it.")
            return Start(None, active)
        st.caption(f"Its {active_run.architecture} network and its {len(active_run.classes)} emotions; "
                   "the defaults are the recipe that taught it real photos (recipes/fine_tune.toml).")
        defaults = recipe(active_run.architecture, **FINE_TUNE)
        return Start(replace(defaults, emotions=",".join(active_run.classes)), active, f"{active_run.architecture}_warm")
    architecture = st.radio(
        "Architecture", ["vgg", "seed"], horizontal=True, key="architecture",
        format_func={"vgg": "vgg — the shipped model's network", "seed": "seed — the student project's CNN"}.get,
    )
    # Widget keys carry the architecture: switching it shows that architecture's own recipe defaults.
    defaults, variant = recipe(architecture), architecture
    if with_votes and architecture == "vgg":
        defaults = config_of(read_recipe("ferplus_adam_long"))  # the shipped model's base recipe, on FER+ votes
        variant = "vgg_votes"
    emotions = st.radio("Emotions", ["all", "seed"], horizontal=True, key=f"emotions_{architecture}",
                        index=["all", "seed"].index(defaults.emotions),
                        format_func={"all": "all seven", "seed": "the seed's five (no disgust, no neutral)"}.get)
    return Start(replace(defaults, emotions=emotions), variant=variant)


def chosen_config(start: Start) -> TrainConfig:
    """The recipe's defaults with the visitor's epochs, batch size, learning rate, augmentation and share kept."""
    defaults, variant = start.defaults, start.variant
    epochs_column, batch_column, rate_column = st.columns(3)
    epochs = epochs_column.slider("Epochs", 1, 100, defaults.epochs, key=f"epochs_{variant}")
    batch_size = batch_column.select_slider("Batch size", [16, 32, 64, 128, 256], defaults.batch_size,
                                            key=f"batch_{variant}")
    learning_rate = rate_column.select_slider("Learning rate", [1e-4, 3e-4, 1e-3, 3e-3, 0.01, 0.02, 0.05, 0.1],
                                              defaults.learning_rate, key=f"rate_{variant}",
                                              help=f"{defaults.optimizer} optimizer")
    augment = st.toggle("Augment the training faces (mirror, shift, rotate, zoom, lighting)", defaults.augment,
                        key=f"augment_{variant}")
    keep_start = st.slider(
        "Share of the active model kept", 0.0, 0.9, defaults.keep_start, step=0.05, key="keep_start",
        help="At the end its weights and the new ones are averaged: what it knew is mostly kept while it "
             "learns the new faces.") if start.warm else 0.0
    return replace(defaults, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate, augment=augment,
                   keep_start=keep_start)


# -- 3. progress -------------------------------------------------------------------------------------

def show_history(history: list[dict]) -> None:
    """Loss and accuracy per epoch, training against validation; each epoch a point, so one epoch shows."""
    if not history:
        return
    frame = pd.DataFrame(history)
    for chart, metric in zip(st.columns(2), ("loss", "accuracy")):
        curves = frame.melt("epoch", [c for c in (metric, f"val_{metric}") if c in frame], "curve", "value")
        curves["curve"] = curves["curve"].map({metric: "training", f"val_{metric}": "validation"})
        chart.altair_chart(alt.Chart(curves, title=metric.capitalize(), height=220).mark_line(point=True).encode(
            x=alt.X("epoch:Q", axis=alt.Axis(format="d", tickMinStep=1), scale=alt.Scale(domainMin=1)),
            y=alt.Y("value:Q", title=metric), color="curve:N"))


def show_running(run_dir: Path, status: TrainingStatus, visitor: str | None, may_cancel: bool) -> None:
    """The run in progress: what it is doing, its curves so far, and Cancel for the visitor who started it (and
    for the operator: `visitor` None)."""
    st.markdown(f"**Training `{run_dir.name}`** — {status.status}")
    if status.status == "training":
        logs = status.logs
        text = (f"Epoch {status.epoch}/{status.epochs}" + (f" · batch {status.batch}/{status.batches}" if status.batch else "")
                + f" · loss {logs.get('loss', 0):.3f} · accuracy {logs.get('accuracy', 0):.1%}"
                + f" · elapsed {dashboard.duration(status.elapsed_s)} · ETA {dashboard.duration(status.eta_s)}")
        st.progress(status.fraction_done, text=text)
    elif status.total:
        st.progress((status.loaded or 0) / status.total,
                    text=f"Reading the {status.reading}: {status.loaded or 0} of {status.total} files")
    else:
        st.progress(0.0, text="Starting: loading TensorFlow and the data…")
    show_history(status.history)
    if not may_cancel:
        st.caption("Started in another browser session: only that session, or the server's operator, can cancel it.")
    elif cancel_requested(run_dir):
        st.caption("Cancelling: the run stops after its current batch, or the file it is reading.")
    elif st.button("Cancel", icon=":material/stop:", key="cancel"):
        cancel_training(visitor=visitor)
        st.toast("Cancelling after the current batch…")


def show_finished(run_dir: Path, status: TrainingStatus, operator: bool) -> None:
    """How the watched run ended, its scores and curves, and "Make active" when it finished well."""
    if status.status == FAILED:
        st.error(f"Run `{run_dir.name}` failed: {status.error or 'see worker.log in its folder'}")
        return
    if status.status == INTERRUPTED:
        st.warning(f"Run `{run_dir.name}` stopped: {status.error}")
    elif status.status == CANCELLED:
        st.warning(f"Run `{run_dir.name}` was cancelled; the best epoch so far is kept if there was one.")
    elif status.status == FINISHED:
        st.success(f"Run `{run_dir.name}` finished.")
    else:  # its progress file is gone or damaged: the folder was deleted or edited since
        st.warning(f"Run `{run_dir.name}` can no longer be read: its folder is missing or damaged.")
        return
    columns = st.columns(3)
    columns[0].metric("Validation accuracy", dashboard.percent(status.accuracy("validation")))
    columns[1].metric("Test accuracy", dashboard.percent(status.accuracy("test")))
    columns[2].metric("5-emotion test accuracy", dashboard.percent(status.accuracy("test", five_emotions=True)))
    show_history(status.history)
    if status.status == FINISHED and (run_dir / MODEL_FILE).is_file() and active_model_dir().resolve() != run_dir.resolve():
        try:
            run = read_run(run_dir)
        except ModelError as error:
            st.error(str(error))
            return
        offer_activation(run, "make_active_latest", operator)


@st.fragment(run_every=2)
def training_status(visitor: str, operator: bool) -> None:
    """Re-drawn every 2 s from the run's progress file, so it survives page switches and reloads."""
    running = current_training()
    if running is not None:
        st.session_state.watched_run = running.run_dir
        # The operator may cancel any run: a visitor who reloads the page is a new session and cannot.
        show_running(running.run_dir, running.status, None if operator else visitor, operator or running.owned_by(visitor))
        return
    watched = st.session_state.get("watched_run")
    if watched is None:
        st.caption("No run in progress.")
        return
    if st.session_state.get("shown_finished") != str(watched):
        # The run just ended while this fragment watched it: redraw the whole page once (runs table).
        st.session_state.shown_finished = str(watched)
        st.rerun()
    show_finished(Path(watched), read_status(watched, alive=False), operator)


# -- runs and the active model -----------------------------------------------------------------------

def shipped_metadata() -> RunMetadata | None:
    try:
        return read_run(SHIPPED_MODEL_DIR)
    except ModelError:
        return None


def offer_activation(run: RunMetadata, key: str, operator: bool) -> None:
    """"Make active", for the operator only, with a second click where the run looks worse than the shipped model."""
    if not operator:
        st.caption(NOT_OPERATOR)
        return
    warning = activation_warning(run, shipped_metadata())
    confirmed = True
    if warning:
        st.warning(warning, icon=":material/warning:")
        confirmed = st.checkbox("Make it active anyway", key=f"{key}_{run.name}_confirm")  # this run's, not the last one's
    if st.button("Make active", icon=":material/check_circle:", key=key, disabled=not confirmed,
                 help="Try it, Live, Label and Home will use this model, for every visitor"):
        make_active(Path(run.path))


def make_active(model_dir: Path | None) -> None:
    try:
        set_active(model_dir)
    except ModelError as error:
        st.error(str(error))
        return
    st.rerun()  # the whole page (runs table, active marker) reflects the change


def show_runs(operator: bool) -> None:
    """Every finished run in a table, one to make active, and a way back to the shipped model."""
    runs = list_runs()
    if not runs:
        st.caption(f"No finished runs yet in `{RUNS_DIR}`.")
        return
    active = active_model_dir()
    table = pd.DataFrame([row.__dict__ for row in run_rows(runs, active)]).rename(columns=RunRow.COLUMNS)
    st.dataframe(table, hide_index=True, column_config={"status": st.column_config.TextColumn(width="medium")})
    choose_column, activate_column, shipped_column = st.columns([3, 1, 1], vertical_alignment="bottom")
    chosen_run = choose_column.selectbox("Run", [run.name for run in runs], key="chosen_run")  # holds as runs are added
    if not operator:
        st.caption(NOT_OPERATOR)
        return
    with activate_column:
        offer_activation(next(run for run in runs if run.name == chosen_run), "make_active_chosen", operator)
    if shipped_column.button("Use the shipped model", disabled=active.resolve() == SHIPPED_MODEL_DIR.resolve()):
        make_active(None)
