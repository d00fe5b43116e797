"""Predict: the genre of an uploaded file, a browser recording or a dataset clip."""
from __future__ import annotations

import streamlit as st

from genre import plots
from genre.ui import cache, navigation, state, widgets


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
        widgets.prediction_view(prediction, config=analysis.config, key="predict")
    with right:
        st.subheader("Audio")
        widgets.play(clip)
        widgets.decode_info(prediction.decoded)
        frames = analysis.frames
        st.markdown(f"**Mel spectrogram** (first {frames.n_frames * frames.hop_length / frames.sr:.0f} s)")
        st.plotly_chart(plots.mel_spectrogram(frames.log_mel, sr=frames.sr, hop_length=frames.hop_length),
                        key="predict_mel")
        st.caption("Energy per pitch band over time, in dB: bright = loud. Low notes at the bottom.")
    st.caption(f"Predicted by model {analysis.model} ({analysis.config.kind} features).")


navigation.run_page(main)
