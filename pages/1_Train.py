"""Train: pick data and a recipe, train in the background, watch it, keep the result."""

from collections import Counter
from pathlib import Path

import pandas as pd
import streamlit as st

import dashboard
from core.background import TrainingBusyError, cancel_training, current_training, read_progress, start_training
from core.data import DatasetError, resolve_data_path, save_upload
from core.models import ARCHITECTURES
from core.paths import DATA_DIR, RUNS_DIR, SHIPPED_MODEL_DIR
from core.runs import ModelError, active_model_dir, list_runs, read_metadata, set_active
from core.training import FINE_TUNE, recipe

dashboard.page_setup("Train", ":material/model_training:")

GET_FER2013 = """
**No dataset found in `data/`.** emovoice trains on FER2013 (35,887 faces, 48x48, seven emotions).
Get one of:

* the Kaggle copy **[msambare/fer2013](https://www.kaggle.com/datasets/msambare/fer2013)** — a zip of
  `train/` and `test/` class folders, or
* the original **`fer2013.csv`** (columns `emotion`, `pixels`, `Usage`).

Put the zip, the unzipped folder or the csv into `{data_dir}` and type its name below, or upload it
under *Upload a zip or csv*. The bundled sample (140 test faces) only shows that training works.
"""


def datasets_in_data_folder() -> list[str]:
    """Names in data/ that look like a dataset, so the path box can suggest one."""
    found = [p for p in sorted(DATA_DIR.glob("*")) if p.suffix.lower() in (".zip", ".csv") or p.is_dir()]
    return [p.name for p in found if not p.name.startswith(".")]


def chosen_data_source(kind: str) -> Path | None:
    """The dataset the run will read, or None (with the reason shown) when there is none yet."""
    if kind == "Bundled sample":
        st.caption(f"`{dashboard.SAMPLE_ZIP.name}`: 20 FER2013 test faces per emotion. Enough to see "
                   "training run end to end, far too few for a useful model.")
        return dashboard.SAMPLE_ZIP
    if kind == "Path on the server":
        candidates = datasets_in_data_folder()
        if not candidates:
            st.info(GET_FER2013.format(data_dir=DATA_DIR))
        typed = st.text_input("Dataset path (inside data/)", key="data_path", value=candidates[0] if candidates else "",
                              placeholder="fer2013.zip, fer2013/ or fer2013.csv",
                              help="Relative paths are read inside data/; other folders must be listed in EMOVOICE_DATA_ROOTS.")
        if not typed.strip():
            return None
        try:
            return resolve_data_path(typed)
        except DatasetError as error:
            st.error(str(error))
            return None
    upload = st.file_uploader("FER2013 zip or fer2013.csv", type=["zip", "csv"])
    if upload is None:
        return None
    try:
        return save_upload(upload.name, upload.getvalue())
    except DatasetError as error:
        st.error(str(error))
        return None


def show_history(history: list[dict]) -> None:
    """Loss and accuracy per epoch, training against validation."""
    if not history:
        return
    frame = pd.DataFrame(history).set_index("epoch")
    loss_chart, accuracy_chart = st.columns(2)
    for chart, metric in ((loss_chart, "loss"), (accuracy_chart, "accuracy")):
        chart.caption(metric.capitalize())
        curves = frame.rename(columns={metric: "training", f"val_{metric}": "validation"})
        chart.line_chart(curves[[c for c in ("training", "validation") if c in curves]], x_label="epoch", height=220)


def show_running(run_dir: Path, progress: dict) -> None:
    st.markdown(f"**Training `{run_dir.name}`** — {progress.get('status', 'starting')}")
    epochs_total = progress.get("epochs") or 1
    if progress.get("status") == "training":
        epoch, batch, batches = progress.get("epoch", 1), progress.get("batch"), progress.get("batches") or 1
        done = (epoch - 1 + (batch or batches) / batches) / epochs_total
        logs = progress.get("logs") or {}
        text = (f"Epoch {epoch}/{epochs_total}" + (f" · batch {batch}/{batches}" if batch else "")
                + f" · loss {logs.get('loss', 0):.3f} · accuracy {logs.get('accuracy', 0):.1%}"
                + f" · elapsed {dashboard.duration(progress.get('elapsed_s'))} · ETA {dashboard.duration(progress.get('eta_s'))}")
        st.progress(min(max(done, 0.0), 1.0), text=text)
    elif progress.get("total"):
        st.progress(progress.get("loaded", 0) / progress["total"],
                    text=f"Reading the {progress.get('reading', 'dataset')}: {progress.get('loaded', 0)} of {progress['total']} files")
    else:
        st.progress(0.0, text="Starting: loading TensorFlow and the data…")
    show_history(progress.get("history") or [])
    if st.button("Cancel", icon=":material/stop:", key="cancel"):
        cancel_training()
        st.toast("Cancelling after the current batch…")


def show_finished(run_dir: Path, progress: dict) -> None:
    status = progress.get("status")
    if status == "failed":
        st.error(f"Run `{run_dir.name}` failed: {progress.get('error', 'see worker.log in its folder')}")
        return
    if status == "cancelled":
        st.warning(f"Run `{run_dir.name}` was cancelled; the best epoch so far is kept if there was one.")
    else:
        st.success(f"Run `{run_dir.name}` finished.")
    metrics = progress.get("metrics") or {}
    test, validation = metrics.get("test") or {}, metrics.get("validation") or {}
    columns = st.columns(3)
    columns[0].metric("Validation accuracy", dashboard.percent(validation.get("accuracy")))
    columns[1].metric("Test accuracy", dashboard.percent(test.get("accuracy")))
    columns[2].metric("5-emotion test accuracy", dashboard.percent(test.get("accuracy_5class")))
    show_history(progress.get("history") or [])
    if (run_dir / "model.keras").is_file() and active_model_dir().resolve() != run_dir.resolve():
        if st.button("Make active", icon=":material/check_circle:", key="make_active_latest",
                     help="Try it and Home will use this model"):
            make_active(run_dir)


def make_active(model_dir: Path | None) -> None:
    try:
        set_active(model_dir)
    except ModelError as error:
        st.error(str(error))
        return
    st.rerun()  # the whole page (runs table, active marker) reflects the change


@st.fragment(run_every=2)
def training_status() -> None:
    """Re-drawn every 2 s from the run's progress file, so it survives page switches and reloads."""
    running = current_training()
    if running is not None:
        st.session_state.watched_run = running["run_dir"]
        show_running(running["run_dir"], running["progress"])
        return
    watched = st.session_state.get("watched_run")
    if watched is None:
        st.caption("No run in progress.")
        return
    if st.session_state.get("shown_finished") != str(watched):
        # The run just ended while this fragment watched it: redraw the whole page once (runs table).
        st.session_state.shown_finished = str(watched)
        st.rerun()
    show_finished(Path(watched), read_progress(watched))


def as_percent(fraction: float | None) -> float | None:
    return None if fraction is None else 100 * fraction


def run_row(run: dict, active: Path) -> dict:
    """One finished run as a row of the runs table."""
    metrics = run.get("metrics") or {}
    validation, test = metrics.get("validation") or {}, metrics.get("test") or {}
    return {
        "active": Path(run["path"]).resolve() == active,
        "run": run["name"],
        "architecture": run["architecture"],
        "emotions": len(run["classes"]),
        "epochs": run.get("epochs_trained"),
        "validation acc.": as_percent(validation.get("accuracy")),
        "test acc.": as_percent(test.get("accuracy")),
        "5-emotion test acc.": as_percent(test.get("accuracy_5class")),
        "minutes": round((run.get("training_seconds") or 0) / 60, 1),
        "data": Path(str((run.get("dataset") or {}).get("source", ""))).name,
        "status": run.get("status"),
    }


st.title(":material/model_training: Train a model")
st.caption("Training runs in its own process: switch pages or close the tab, it carries on. One run at a time.")

# -- 1. data ---------------------------------------------------------------------------------------
st.subheader("1 · Data")
data_kind = st.segmented_control("Train on", ["Bundled sample", "Path on the server", "Upload a zip or csv"],
                                 default="Path on the server" if datasets_in_data_folder() else "Bundled sample",
                                 required=True, key="data_kind")
data_source = chosen_data_source(data_kind)

# -- 2. recipe -------------------------------------------------------------------------------------
st.subheader("2 · Recipe")
active = active_model_dir()
try:
    active_metadata = read_metadata(active)
except ModelError:  # Home and Try it say what is wrong with it
    active_metadata = {}
can_continue = active_metadata.get("architecture") in ARCHITECTURES  # an ensemble is not one network to train
start = st.radio("Start from", ["scratch", "active"], horizontal=True, key="start",
                 format_func={"scratch": "scratch", "active": f"the active model, {active.name}"}.get,
                 help="The active model goes on learning: a few epochs teach it new faces, such as your photos below.")
warm = start == "active"
if warm:
    architecture, emotions = active_metadata.get("architecture"), ",".join(active_metadata.get("classes", []))
    defaults = recipe(architecture, **FINE_TUNE) if can_continue else None
    if can_continue:
        st.caption(f"Its {architecture} network and its {len(active_metadata['classes'])} emotions; "
                   "the defaults are the recipe that taught it real photos (README, *Real photos*).")
    else:
        st.warning(f"The active model ({active_metadata.get('architecture', 'unreadable')}) is not one network "
                   "that can go on training; make a trained run active to continue it.")
else:
    architecture = st.radio(
        "Architecture", ["vgg", "seed"], horizontal=True, key="architecture",
        format_func={"vgg": "vgg — the shipped model's network", "seed": "seed — the student project's CNN"}.get,
    )
    # Widget keys carry the architecture: switching it shows that architecture's own recipe defaults.
    defaults = recipe(architecture)
    emotions = st.radio("Emotions", ["all", "seed"], horizontal=True, key=f"emotions_{architecture}",
                        index=["all", "seed"].index(defaults.emotions),
                        format_func={"all": "all seven", "seed": "the seed's five (no disgust, no neutral)"}.get)
photos_upload = st.file_uploader(
    "Your own labelled photos, learned beside the data (optional)", type=["zip"], key="photos",
    help="A zip of class folders (angry/, happy/, neutral/, …) of photos. Each photo's face is found and cut "
         "as Try it cuts it, and trains several times an epoch.")
photos_source = None
if photos_upload is not None:
    try:
        photos_source = save_upload(photos_upload.name, photos_upload.getvalue())
        photos_report = dashboard.dataset_at(photos_source).report  # read now: a bad zip is told before training
        counts = Counter()  # over every split: a zip of train/ and test/ photos trains all of them
        for split_counts in photos_report.counts.values():
            counts.update(split_counts)
        st.caption("Faces to learn: " + ", ".join(f"{emotion} {n}" for emotion, n in counts.items())
                   + "".join(f"; {warning}" for warning in photos_report.warnings()))
    except DatasetError as error:
        st.error(f"Photos not usable: {error}")
        photos_source = None
if defaults is not None:
    variant = f"{architecture}_warm" if warm else architecture
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
             "learns the new faces.") if warm else 0.0

# -- 3. run ----------------------------------------------------------------------------------------
ready = data_source is not None and defaults is not None and (photos_upload is None or photos_source is not None)
if st.button("Train", type="primary", icon=":material/play_arrow:", key="train", disabled=not ready):
    config = recipe(architecture, emotions=emotions, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
                    augment=augment, photo_repeat=defaults.photo_repeat, keep_start=keep_start)
    try:
        st.session_state.watched_run = start_training(config, str(data_source), init_model=active if warm else None,
                                                      photos=photos_source)
        st.toast("Training started")
    except TrainingBusyError as error:
        # Another tab (or another person) got there first: say so; the progress below is theirs.
        st.error(f"Not started: {error}.", icon=":material/block:")


st.subheader("3 · Progress")
training_status()

# -- past runs -------------------------------------------------------------------------------------
st.subheader("Runs")

runs = list_runs()
active = active.resolve()
if not runs:
    st.caption(f"No finished runs yet in `{RUNS_DIR}`.")
else:
    table = pd.DataFrame([run_row(run, active) for run in runs])
    percent_column = st.column_config.NumberColumn(format="%.1f%%")
    st.dataframe(table, hide_index=True, column_config={
        "validation acc.": percent_column, "test acc.": percent_column, "5-emotion test acc.": percent_column})
    choose_column, activate_column, shipped_column = st.columns([3, 1, 1], vertical_alignment="bottom")
    chosen_run = choose_column.selectbox("Run", [run["name"] for run in runs])
    if activate_column.button("Make active", key="make_active_chosen"):
        make_active(next(Path(run["path"]) for run in runs if run["name"] == chosen_run))
    if shipped_column.button("Use the shipped model", disabled=active == SHIPPED_MODEL_DIR.resolve()):
        make_active(None)
