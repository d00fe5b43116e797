"""Predict: the genre of an uploaded file, a browser recording or a dataset clip."""
from __future__ import annotations

from collections import Counter

import streamlit as st

from genre import examples, plots, runs
from genre.models import DEFAULT_MODEL_DIR, ModelError, read_card
from genre.provenance import TRAINED, VALIDATED, clip_role
from genre.ui import cache, navigation, state, teach, widgets


def truth(path: str, analysis: cache.Analysis) -> None:
    """For a dataset clip: its true genre (the folder's label) and whether the model that
    predicted it was trained or validated on it, as its card says."""
    clips = cache.dataset()
    rows = clips[clips["path"] == path] if clips is not None else None
    if rows is None or rows.empty:
        return
    label, clip_id = rows["label"].iloc[0], rows["clip_id"].iloc[0]
    if label not in analysis.card.labels:
        verdict = f" · this model does not know {label}; it answers one of its {len(analysis.card.labels)} genres"
    else:
        said = analysis.prediction.genre
        verdict = " · the model agrees" if said == label else f" · the model says {said}"
    st.markdown(f"True genre: **{label}** (the clip's folder){verdict}")
    role = clip_role(analysis.card.split, clip_id)
    if role == TRAINED:
        st.info(f"**This model was trained on this clip** ({clip_id}), so a right answer here shows what it "
                "remembers, not how it does on music it has never heard.")
    elif role == VALIDATED:
        st.info(f"**This clip was among its validation clips** ({clip_id}): not trained on, but used to choose "
                "when training stopped.")


def retrain_offer() -> None:
    """Once the person has kept examples: train the active model's recipe on the dataset plus
    the examples, as a server-side run, and follow it on the Train page."""
    folder = teach.examples_folder(say_why=False)  # the teach box above has said it
    kept = examples.list_examples(folder) if folder is not None else []
    if not kept:
        return
    counts = Counter(example.label for example in kept)
    dataset = state.dataset_dir()
    model_dir = state.active_model_dir()
    try:
        card = read_card(model_dir)
    except ModelError:  # a broken active model: predictions use the shipped one, and so does this
        model_dir, card = DEFAULT_MODEL_DIR, read_card(DEFAULT_MODEL_DIR)
    st.subheader("Retrain with my examples")
    mine = ", ".join(f"{label} {n}" for label, n in sorted(counts.items()))
    if dataset is None or dataset == folder:
        where = "your examples alone (no dataset folder is open, so the new model knows only their genres)"
    else:
        where = f"the dataset `{dataset}` plus your {len(kept)} example{'s' * (len(kept) != 1)}"
    st.caption(f"Your examples: {mine}. Retraining fits model **{model_dir.name}**'s recipe "
               f"({card.spec['family']} on {card.config.kind} features) on {where}, as a training run on the "
               "server. The Train page then shows it live, compares it with this model on the validation clips, "
               "and saves it.")
    if len(counts) < 2 and (dataset is None or dataset == folder):
        st.info("A model needs at least two genres: keep examples of another genre, or open a dataset folder.")
        return
    if st.button("Retrain with my examples", key="predict_retrain", icon=":material/model_training:"):
        request = runs.retrain_request(card, root=dataset or folder, examples_root=folder, compare_with=str(model_dir))
        registry = runs.shared_registry()
        same = next((s for s in registry.list() if s.active and s.request == request), None)
        try:
            run_id = same.id if same else registry.submit(request)[0]
        except runs.RunError as err:
            st.warning(f"{err}.")
            return
        st.switch_page("pages/train.py", query_params={**st.query_params.to_dict(), "run": run_id})


def main() -> None:
    st.title("Predict")
    st.caption(f"Model **{state.active_model_dir().name}** (change it in the sidebar) · uploads: "
               f"{widgets.upload_limit_note()}. Recordings are resampled to the model's rate.")
    clip = widgets.audio_source("predict", sources=("upload", "record", "dataset"))
    if clip is None:
        st.info("Upload a clip, record a few seconds in the browser, or pick a clip from the dataset.")
        return
    analysis = cache.predict_bytes(clip.data, name=clip.name)
    if analysis is None:
        return
    prediction = analysis.prediction
    left, right = st.columns([1, 1], gap="large")
    with left:
        st.subheader("Genre")
        if clip.path:
            truth(clip.path, analysis)
        music = prediction.verdict is None or prediction.verdict.is_music
        # music: the genre over time gets the page's full width below; otherwise it stays folded with the genre
        widgets.prediction_view(prediction, config=analysis.config, key="predict", timeline=not music)
        clips = cache.dataset()
        known = set(analysis.card.labels) | (set(clips["label"]) if clips is not None else set())
        teach.teach(clip.data, clip.name, labels=sorted(known), prediction=prediction, model=analysis.model,
                    key="predict")
    with right:
        st.subheader("Audio")
        widgets.play(clip)
        widgets.decode_info(prediction.audio)
        sr, hop = prediction.audio.sr, analysis.hop_length
        st.markdown(f"**Mel spectrogram** (first {analysis.log_mel.shape[1] * hop / sr:.0f} s)")
        st.plotly_chart(plots.mel_spectrogram(analysis.log_mel, sr=sr, hop_length=hop), key="predict_mel")
        st.caption("Energy per pitch band over time, in dB: bright = loud. Low notes at the bottom.")
    if music:
        widgets.timeline_view(prediction, config=analysis.config, key="predict")
    st.caption(f"Predicted by model {analysis.model} ({analysis.config.kind} features).")
    retrain_offer()


navigation.run_page(main)
