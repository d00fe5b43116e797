"""Features: what a model hears in a clip, with a second clip side by side for comparison."""
from __future__ import annotations

import streamlit as st

from genre import plots
from genre.ui import cache, navigation, widgets

TITLES = {
    "waveform": "Waveform · loudness over time (orange lines: beats)",
    "mel": "Mel spectrogram · energy per pitch band, as the ear hears it (dB)",
    "mfcc": "MFCC · timbre: the overall shape of the spectrum",
    "chroma": "Chroma · energy of each of the 12 pitch classes (harmony)",
    "tonnetz": "Tonnetz · harmonic relations: fifths and thirds",
    "contrast": "Spectral contrast · peaks vs valleys per band (tones vs noise)",
}


def main() -> None:
    st.title("Features")
    st.caption(f"Frame-level features of the first {cache.VIEW_SECONDS:.0f} s of each clip, computed from one "
               "shared STFT (22.05 kHz, hop 512). Zoom in one plot and the time axis follows in all rows.")
    columns = st.columns(2, gap="large")
    clips = []
    for i, column in enumerate(columns):
        with column:
            st.subheader(f"Clip {'AB'[i]}")
            clips.append(widgets.audio_source(f"features_{i}", sources=("dataset", "upload"), default_genre=i))
    results = [cache.clip_frames(c.data, name=c.name) if c else None for c in clips]
    x_max = max((d.seconds for d, _ in filter(None, results)), default=cache.VIEW_SECONDS)
    for i, (column, clip, result) in enumerate(zip(columns, clips, results)):
        with column:
            if clip is None:
                st.info("Pick a dataset clip or upload one.")
                continue
            widgets.play(clip)
            if result is None:
                continue
            decoded, frames = result
            beats = frames.times()[frames.beat_frames]
            a, b = st.columns(2)
            a.metric("Tempo", f"{frames.tempo:.0f} BPM", help="Estimated from the onset strength envelope.")
            b.metric("Beats", len(beats), help=f"Detected in the first {decoded.seconds:.0f} s.")
            figure = plots.feature_panel(decoded.y, decoded.sr, frames.matrices, hop_length=frames.hop_length,
                                         beat_times=beats, titles=TITLES, x_max=x_max)
            st.plotly_chart(figure, key=f"features_panel_{i}")


navigation.run_page(main)
