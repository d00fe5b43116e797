"""The sidebar's two choices shared by every page, the dataset folder and the active model, kept
in the URL (``?data=<folder>&model=<name>``) so that a reload, a bookmark, a new tab or a shared
link opens the same view.

Each run of the entry script (:func:`render_sidebar`) reconciles three places:

- the URL (``st.query_params``): it wins when it differs from what this session last wrote
  there, i.e. on a session's first render, when a link or the browser's Back button brings
  other values;
- ``st.session_state[DATASET_KEY]`` / ``[MODEL_KEY]``: the values the pages read (plain keys,
  which Streamlit never drops, unlike a widget's own key on a page without that widget);
- the sidebar widgets, which write to the plain keys when changed.

Then the values are written back to the URL, since following a page link drops the query
string. A ``?model=`` that names no saved model falls back to ``default`` with a warning and the
URL is corrected. A dataset folder outside the allowed roots (:mod:`genre.access`) is refused:
:func:`dataset_dir` is None, so nothing is listed or read, and :func:`dataset_refusal` says why.
"""
from __future__ import annotations

import os
from pathlib import Path

import streamlit as st

from genre.access import AccessError, check_dataset_folder
from genre.locations import HOME
from genre.models import DEFAULT_MODEL_DIR, available_models

DATASET_KEY, MODEL_KEY = "dataset_dir", "model_name"
DATA_PARAM, MODEL_PARAM = "data", "model"
_IN_URL = "state_in_url"
"""Session-state key of the {param: value} this session last wrote to the URL."""


def default_dataset_dir() -> str:
    """``$GENRE_DATA_DIR``, else ``data/`` in the clone (under :data:`genre.locations.HOME`
    when installed)."""
    return os.environ.get("GENRE_DATA_DIR") or str(HOME / "data")


def chosen_dataset() -> str:
    """The dataset folder as typed in the sidebar or given by ``?data=`` (not yet checked)."""
    return str(st.session_state.get(DATASET_KEY) or default_dataset_dir())


def _refusal() -> AccessError | None:
    try:
        check_dataset_folder(chosen_dataset())
    except AccessError as err:
        return err
    return None


def dataset_refusal() -> str | None:
    """Why the chosen dataset folder may not be read (outside the allowed roots), or None."""
    err = _refusal()
    return str(err) if err else None


def dataset_dir() -> Path | None:
    """The chosen dataset folder, resolved, if it lies under the allowed roots and exists;
    else None (the pages then list and read nothing)."""
    try:
        path = check_dataset_folder(chosen_dataset())
    except AccessError:
        return None
    return path if path.is_dir() else None


def model_names() -> list[str]:
    """The models to pick from (:func:`genre.models.available_models`), ``default`` first."""
    return list(available_models())


def active_model_dir() -> Path:
    """Directory of the model picked in the sidebar (the shipped default if none)."""
    name = st.session_state.get(MODEL_KEY)
    return available_models().get(name, DEFAULT_MODEL_DIR)


def open_dataset(folder: str) -> None:
    """Make ``folder`` the dataset of this session (the sidebar and the URL follow on the next
    run; the allowed roots are checked as for a typed folder)."""
    st.session_state[DATASET_KEY] = folder


def _keep(key: str) -> None:
    """Copy a sidebar widget's value to its plain session-state key."""
    st.session_state[key] = st.session_state[f"sidebar_{key}"]


def _from_url(names: list[str]) -> str | None:
    """Adopt the URL's ``data`` and ``model`` where they differ from what this session last
    wrote there; returns a warning if ``?model=`` names no saved model."""
    written = st.session_state.get(_IN_URL, {})
    data, model = st.query_params.get(DATA_PARAM), st.query_params.get(MODEL_PARAM)
    if data and data != written.get(DATA_PARAM):
        st.session_state[DATASET_KEY] = data
    if model and model != written.get(MODEL_PARAM):
        if model in names:
            st.session_state[MODEL_KEY] = model
        else:
            st.session_state[MODEL_KEY] = names[0]
            return (f"The link asks for model `{model}`, which is not a saved model under models/; "
                    f"showing `{names[0]}` instead.")
    return None


def _to_url() -> None:
    """Write the current choices to the URL (only what changed; other parameters stay)."""
    wanted = {DATA_PARAM: chosen_dataset()}
    if st.session_state.get(MODEL_KEY):
        wanted[MODEL_PARAM] = st.session_state[MODEL_KEY]
    changed = {k: v for k, v in wanted.items() if st.query_params.get(k) != v}
    if changed:
        st.query_params.update(changed)
    st.session_state[_IN_URL] = wanted


def render_sidebar() -> None:
    """Dataset folder input and model picker, in step with the URL; their values persist
    across pages, reloads and shared links."""
    names = model_names()
    warning = _from_url(names)
    st.session_state.setdefault(DATASET_KEY, default_dataset_dir())
    if st.session_state.get(MODEL_KEY) not in names:
        st.session_state[MODEL_KEY] = names[0]
    _to_url()
    # The widgets show the plain keys' values (set before each widget is drawn, so a value
    # from the URL reaches the box even after the widget existed).
    st.session_state[f"sidebar_{DATASET_KEY}"] = st.session_state[DATASET_KEY]
    with st.sidebar:
        st.text_input("Dataset folder", key=f"sidebar_{DATASET_KEY}", on_change=_keep, args=(DATASET_KEY,),
                      help="A folder with one sub-folder of audio clips per genre (GTZAN layout), "
                           "inside the folders this server allows (GENRE_DATA_ROOTS).")
        refused = _refusal()
        if refused:
            allowed = ", ".join(f"`{root}`" for root in refused.roots)
            st.error(f"Not allowed: a dataset folder must be inside {allowed}.")
        st.session_state[f"sidebar_{MODEL_KEY}"] = st.session_state[MODEL_KEY]
        st.selectbox("Model", names, key=f"sidebar_{MODEL_KEY}", on_change=_keep, args=(MODEL_KEY,),
                     help="Models under models/; 'default' ships with the app.")
    if warning:
        st.warning(warning)
