"""Sidebar choices shared by every page through ``st.session_state``: the dataset folder and
the active model."""
from __future__ import annotations

import os
from pathlib import Path

import streamlit as st

from genre.models import DEFAULT_MODEL_DIR, MODELS_DIR, PROJECT_ROOT, list_models

DATASET_KEY, MODEL_KEY = "dataset_dir", "model_name"


def default_dataset_dir() -> str:
    """``$GENRE_DATA_DIR``, else the project's ``data/`` folder."""
    return os.environ.get("GENRE_DATA_DIR") or str(PROJECT_ROOT / "data")


def dataset_dir() -> Path | None:
    """The chosen dataset folder if it exists, else None."""
    path = Path(st.session_state.get(DATASET_KEY) or default_dataset_dir()).expanduser()
    return path if path.is_dir() else None


def model_names() -> list[str]:
    return [p.name for p in list_models(MODELS_DIR)]


def active_model_dir() -> Path:
    """Directory of the model picked in the sidebar (the shipped default if none)."""
    name = st.session_state.get(MODEL_KEY)
    return MODELS_DIR / name if name in model_names() else DEFAULT_MODEL_DIR


def _keep(key: str) -> None:
    """Copy a sidebar widget's value to its plain session-state key (which, unlike a widget's
    own key, Streamlit never drops when a page without that widget runs)."""
    st.session_state[key] = st.session_state[f"sidebar_{key}"]


def render_sidebar() -> None:
    """Dataset folder input and model picker; their values persist across pages."""
    st.session_state.setdefault(DATASET_KEY, default_dataset_dir())
    names = model_names()
    if st.session_state.get(MODEL_KEY) not in names:
        st.session_state[MODEL_KEY] = names[0] if names else None
    with st.sidebar:
        st.text_input("Dataset folder", value=st.session_state[DATASET_KEY], key=f"sidebar_{DATASET_KEY}",
                      on_change=_keep, args=(DATASET_KEY,),
                      help="A folder with one sub-folder of audio clips per genre (GTZAN layout).")
        if names:
            st.selectbox("Model", names, index=names.index(st.session_state[MODEL_KEY]), key=f"sidebar_{MODEL_KEY}",
                         on_change=_keep, args=(MODEL_KEY,),
                         help="Models under models/; 'default' ships with the app.")
        else:
            st.warning("No model found under models/.")
