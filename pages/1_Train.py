"""Train: pick data and a recipe, train in the background, watch it, keep the result."""

import uuid

import streamlit as st

from core.background import TrainingBusyError
from core.data import DatasetError
from core.training.jobs import is_operator, start_run
from dashboard import train_page

visitor = st.session_state.setdefault("visitor", uuid.uuid4().hex)  # whose runs this tab may cancel
operator = is_operator(server_address=st.get_option("server.address"))

st.title(":material/model_training: Train a model")
st.caption("Training runs in its own process: switch pages or close the tab, it carries on. One run at a time, "
           "for everyone using this server; only the visitor who started a run, or the server's operator, can cancel it.")

st.subheader("1 · Data")
data = train_page.chosen_data()
votes = train_page.chosen_votes(data)

st.subheader("2 · Recipe")
start = train_page.chosen_start(with_votes=votes is not None)
photos = train_page.chosen_photos()
config = train_page.chosen_config(start) if start.defaults is not None else None

photos_refused = st.session_state.get("photos") is not None and photos is None
if st.button("Train", type="primary", icon=":material/play_arrow:", key="train",
             disabled=data is None or config is None or photos_refused):
    try:
        st.session_state.watched_run = start_run(config, data, votes, photos, init_model=start.init_model,
                                                 owner=visitor)
        st.toast("Training started")
    except TrainingBusyError as error:
        # Another tab (or another person) got there first: say so; the progress below is theirs.
        st.error(f"Not started: {error}.", icon=":material/block:")
    except (DatasetError, OSError) as error:  # an upload that cannot be saved (a full disk): nothing is left behind
        st.error(f"Not started: {getattr(error, 'strerror', None) or error}", icon=":material/block:")

st.subheader("3 · Progress")
train_page.training_status(visitor, operator)

st.subheader("Runs")
train_page.show_runs(operator)
