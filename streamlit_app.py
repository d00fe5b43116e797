"""genre dashboard: entry point and Home page. Run with ``streamlit run streamlit_app.py``.

Home paints without TensorFlow: the model card is read as JSON; Keras loads only when a clip
is dropped on the quick predictor.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from genre import backbones
from genre.dataset import describe_training_data
from genre.models import DEFAULT_MODEL_DIR
from genre.ui import cache, navigation, state, widgets

ROOT = Path(__file__).resolve().parent
PAGES = (
    ("pages/dataset.py", "Dataset", ":material/library_music:"),
    ("pages/features.py", "Features", ":material/equalizer:"),
    ("pages/train.py", "Train", ":material/model_training:"),
    ("pages/predict.py", "Predict", ":material/psychology:"),
    ("pages/similar.py", "Similar", ":material/hub:"),
    ("pages/review.py", "Review", ":material/fact_check:"),
)


def _model_card() -> None:
    """The active model's card, after a cheap check that it loads (the zip and its config
    against the card, no TensorFlow); for a broken model, the Predict page's warning and the
    default model's card, since that is what predictions then use."""
    path, heading = state.active_model_dir(), ""
    card, problem = cache.checked_model(path)
    if problem and path != DEFAULT_MODEL_DIR:
        st.subheader(f"Model · {path.name}")
        st.warning(cache.fallback_warning(problem))
        path, heading = DEFAULT_MODEL_DIR, " (used instead)"
        card, problem = cache.checked_model(path)
    st.subheader(f"Model · {path.name}{heading}")
    if problem:
        st.error(cache.broken_default_error(problem))
        return
    validation = card.metrics.get("validation") or {}
    cv = card.metrics.get("cross_validation") or {}
    left, right = st.columns(2)
    if "accuracy" in validation:
        where = card.metrics.get("validation_note") or f"{card.split.get('kind', 'unknown')} split"
        left.metric("Validation accuracy", f"{validation['accuracy']:.0%}",
                    help=f"On {validation.get('n', '?')} held-out clips ({where}).")
        balanced = validation.get("balanced_accuracy")
        right.metric("Balanced accuracy", f"{balanced:.0%}" if balanced is not None else "—",
                     help="Mean recall over genres: not flattered by common genres.")
        if "balanced_accuracy" in cv:
            ba = cv["balanced_accuracy"]
            spread = (f"95 % interval {ba['ci95'][0]:.0%}-{ba['ci95'][1]:.0%}" if "ci95" in ba
                      else f"± {ba['std']:.0%}")
            repeats = f" x {len(cv['seeds'])} seeds" if cv.get("seeds") else ""
            st.caption(f"Cross-validated balanced accuracy: **{ba['mean']:.0%}** ({spread}) over "
                       f"{cv.get('folds', '?')} folds{repeats} grouped by {cv.get('grouping', '?')} (no artist on "
                       "both sides): what to expect on artists it never heard.")
    else:
        st.info("This model's card has no validation metrics, so its accuracy is unknown.")
    if card.notes:
        st.caption(card.notes)
    trained_on = describe_training_data(card.data or {})
    st.markdown(
        f"- **Features:** {backbones.title(card.config.kind)} ({card.input})\n"
        f"- **Trained:** {card.created[:10]} on {trained_on}\n"
        f"- **Genres ({len(card.labels)}):** {', '.join(card.labels)}"
    )


def _dataset_status() -> None:
    st.subheader("Dataset")
    root = state.dataset_dir()
    clips = cache.discover(root) if root else None
    if clips is None:
        refusal = state.dataset_refusal()
        if refusal:
            st.error(refusal)
        else:
            st.info(f"No clips in `{state.chosen_dataset()}` yet: put GTZAN under data/ or set the folder in the "
                    "sidebar (one sub-folder of audio files per genre).")
        return
    counts = clips["label"].value_counts().sort_index()
    st.markdown(f"`{root}` · **{len(clips)} clips** in {len(counts)} genres")
    table = pd.DataFrame({"genre": counts.index, "clips": counts.to_numpy()})
    st.dataframe(table, hide_index=True, height=min(400, 38 + 35 * len(table)))


def home() -> None:
    st.title("🎵 genre")
    st.markdown(
        "Classify music by genre. Point the app at a folder of labelled clips (such as GTZAN), look at "
        "the audio **features** a model hears, **train** a model, **predict** the genre of any clip "
        "or recording, and find **similar** clips in the dataset."
    )
    left, right = st.columns(2, gap="large")
    with left:
        _model_card()
    with right:
        _dataset_status()
    st.divider()
    st.subheader("Quick prediction")
    clip = widgets.upload_clip("home_upload")
    if clip is not None:
        analysis = cache.predict_bytes(clip.data, name=clip.name)
        if analysis is not None:
            player, result = st.columns([1, 2])
            with player:
                widgets.play(clip)
                st.caption(f"Model: {analysis.model}.")
                if st.button("Open in Predict", key="home_to_predict", icon=":material/arrow_forward:",
                             help="The same clip and answer on the Predict page, with its spectrogram, "
                                  "the genre over time and the teach box."):
                    widgets.hand_over(clip, "pages/predict.py", key="predict")
            with result:
                widgets.prediction_view(analysis.prediction, config=analysis.config, k=3, key="home")


st.set_page_config(page_title="genre", page_icon="🎵", layout="wide")
state.render_sidebar()
pages = [st.Page(home, title="Home", icon=":material/home:", default=True)]
pages += [st.Page(path, title=title, icon=icon) for path, title, icon in PAGES if (ROOT / path).exists()]
navigation.run(pages)
