"""Features: what a model hears in a clip, alone or beside a second clip for comparison."""
from __future__ import annotations

import streamlit as st

from genre import plots
from genre.ui import cache, navigation, widgets

TITLES = {
    "waveform": "Waveform · loudness over time (orange lines: beats)",
    "mel": "Mel spectrogram · energy per pitch band, as the ear hears it (dB)",
    "mfcc": "MFCC · timbre: the overall shape of the spectrum (each row: its deviation from its mean, in sd)",
    "chroma": "Chroma · energy of each of the 12 pitch classes (harmony)",
    "tonnetz": "Tonnetz · harmonic relations: fifths and thirds",
    "contrast": "Spectral contrast · peaks vs valleys per band, tones vs noise (each row: its deviation from its "
                "mean, in sd)",
}
LAYOUTS = {"stacked": "A above B", "columns": "Side by side", "one": "One clip"}


def main() -> None:
    st.title("Features")
    st.caption(f"Frame-level features of the first {cache.VIEW_SECONDS:.0f} s of each clip, computed from one "
               "shared STFT (22.05 kHz, hop 512). Zoom in one plot and the time axis follows in all rows; "
               "hover a cell for its time, frequency or pitch class and value.")
    layout = st.segmented_control("Layout", list(LAYOUTS), format_func=LAYOUTS.get, default="stacked",
                                  key="features_layout", help="A above B: every view full width, clip B's row under "
                                  "clip A's. Side by side: the two clips in columns. One clip: clip A alone.") or "stacked"
    names = "A" if layout == "one" else "AB"
    panel = []
    for column, name in zip(st.columns(2, gap="large"), names):
        with column:
            st.subheader(f"Clip {name}")
            clip = widgets.audio_source(f"features_{'AB'.index(name)}", sources=("dataset", "upload"),
                                        default_genre="AB".index(name))
            if clip is None:
                st.info("Pick a dataset clip or upload one.")
                continue
            widgets.play(clip)
            result = cache.clip_frames(clip.data, name=clip.name)
            if result is None:
                continue
            decoded, frames = result
            beats = frames.times()[frames.beat_frames]
            a, b = st.columns(2)
            a.metric("Tempo", f"{frames.tempo:.0f} BPM", help="Estimated from the onset strength envelope.")
            b.metric("Beats", len(beats), help=f"Detected in the first {decoded.seconds:.0f} s.")
            panel.append(plots.PanelClip(decoded.y, decoded.sr, frames.matrices, frames.hop_length, beats, name))
    if panel:
        arrangement = "columns" if layout == "columns" else "stacked"
        st.plotly_chart(plots.feature_panel(panel, arrangement=arrangement, titles=TITLES), key="features_panel")


navigation.run_page(main)
