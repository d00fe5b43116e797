"""Widgets shared by the pages: where a clip comes from, and how a prediction is shown."""
from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import streamlit as st

from genre import plots
from genre.audio import DEFAULT_MAX_SECONDS, UPLOAD_EXTENSIONS, AudioError, AudioInfo, decode
from genre.backbones import embeddings
from genre.features import FeatureConfig
from genre.predict import Prediction
from genre.ui import cache

UPLOAD_TYPES = UPLOAD_EXTENSIONS
"""Exactly the file types that decode (libsndfile's, then PyAV's FFmpeg)."""
SOURCES = {"handed": "The clip from Home", "upload": "Upload a file", "record": "Record", "dataset": "Dataset clip"}
HANDED_CLIP = "handed_clip"
"""Session key of a clip another page handed over (Home's quick prediction -> Predict)."""
RECORD_RATE = 44100


class Clip(NamedTuple):
    """A clip chosen by the user: its file bytes, a name for display (never used as a path)
    and, for a dataset clip, its path in the dataset."""

    data: bytes
    name: str
    path: str | None = None


BROWSER_FORMATS = {".wav", ".mp3", ".ogg", ".oga", ".opus", ".flac"}
PLAYBACK_RATE = 22050
_MIME = {".mp3": "audio/mpeg", ".ogg": "audio/ogg", ".oga": "audio/ogg", ".opus": "audio/ogg",
         ".flac": "audio/flac", ".au": "audio/basic"}


def mime_type(name: str) -> str:
    """Audio MIME type from a display name's extension (for ``st.audio``); WAV by default."""
    return _MIME.get(Path(name).suffix.lower(), "audio/wav")


def upload_limit_note() -> str:
    """One line on what can be uploaded: formats, size limit (server.maxUploadSize), length."""
    return (f"{', '.join(UPLOAD_TYPES)} · up to {st.get_option('server.maxUploadSize')} MB · "
            f"only the first {DEFAULT_MAX_SECONDS / 60:.0f} min are analysed")


def upload_clip(key: str, *, label: str = "Drop a clip here") -> Clip | None:
    """A file uploader for one audio file."""
    file = st.file_uploader(label, type=list(UPLOAD_TYPES), key=key, help=upload_limit_note())
    return Clip(file.getvalue(), file.name) if file is not None else None


def record_clip(key: str) -> Clip | None:
    """Two browser recorders: Streamlit's ``st.audio_input`` and the compact
    audio-recorder-streamlit button (with raw capture: :mod:`genre.ui.recorder`). The newest
    recording of either wins."""
    from genre.ui import recorder

    left, right = st.columns([3, 1])
    with left:
        recorded = st.audio_input("Record", sample_rate=RECORD_RATE, key=f"{key}_mic")
    quick = None
    with right:
        if recorder.available():
            st.caption("…or the hands-free recorder (stops after a pause)")
            quick = recorder.hands_free_recorder(pause_threshold=2.0, sample_rate=RECORD_RATE, key=f"{key}_recorder")
        else:
            st.caption("The hands-free recorder is off: this version of audio-recorder-streamlit cannot be "
                       "made to record without the browser's voice processing.")
    candidates = {"mic": recorded.getvalue() if recorded is not None else None, "recorder": quick}
    fresh = {which: cache.digest(data) for which, data in candidates.items() if data}
    seen = st.session_state.setdefault(f"{key}_seen", {})
    for which, digest in fresh.items():
        if seen.get(which) != digest:
            seen[which], seen["latest"] = digest, which
    latest = seen.get("latest") if seen.get("latest") in fresh else next(iter(fresh), None)
    return Clip(candidates[latest], "recording.wav") if latest else None


def clip_label(row: pd.Series) -> str:
    """'blues.00012 · artist — title' (whatever of that is known)."""
    who = " — ".join(v for v in (row["artist"], row["title"]) if isinstance(v, str) and v)
    return f"{row['clip_id']} · {who}" if who else str(row["clip_id"])


def dataset_clip(key: str, clips: pd.DataFrame, *, default_genre: int = 0) -> Clip | None:
    """Genre and clip pickers over a discover() table; reads the chosen file's bytes."""
    genres = sorted(clips["label"].unique())
    left, right = st.columns([1, 2])
    genre = left.selectbox("Genre", genres, index=min(default_genre, len(genres) - 1), key=f"{key}_genre")
    rows = clips[clips["label"] == genre]
    labels = dict(zip(rows["path"], (clip_label(r) for _, r in rows.iterrows())))
    path = right.selectbox("Clip", list(labels), format_func=labels.get, key=f"{key}_clip_{genre}")
    try:
        return Clip(Path(path).read_bytes(), Path(path).name, path)
    except OSError as err:
        st.error(f"{Path(path).name} cannot be read: {err.strerror or err}.")
        return None


def audio_source(key: str, *, sources: tuple[str, ...] = ("upload", "record", "dataset"),
                 default_genre: int = 0) -> Clip | None:
    """Pick a clip from any of ``sources`` ('upload', 'record', 'dataset'; the dataset one only
    when the sidebar folder holds clips), or the clip handed over by :func:`hand_over` (offered
    first while this session has one). Returns ``(bytes, display name, dataset path)``."""
    clips = cache.dataset() if "dataset" in sources else None
    handed = st.session_state.get(HANDED_CLIP)
    available = ["handed"] * (handed is not None) + [s for s in sources if s != "dataset" or clips is not None]
    if st.session_state.get(f"{key}_source") not in (None, *available):
        del st.session_state[f"{key}_source"]
    source = available[0]
    if len(available) > 1:
        source = st.radio("Source", available, format_func=SOURCES.get, horizontal=True, key=f"{key}_source",
                          label_visibility="collapsed")
    if source == "handed":
        st.caption(f"**{handed.name}**, handed over from Home.")
        return handed
    if source == "upload":
        return upload_clip(f"{key}_upload")
    if source == "record":
        return record_clip(key)
    return dataset_clip(key, clips, default_genre=default_genre)


def hand_over(clip: Clip, page: str, *, key: str) -> None:
    """Open ``page`` (e.g. 'pages/predict.py') with ``clip`` chosen as its source (its source
    radio keyed ``key``_source); the URL's query parameters go along."""
    st.session_state[HANDED_CLIP] = clip
    st.session_state[f"{key}_source"] = "handed"
    st.switch_page(page, query_params=st.query_params.to_dict())


@st.cache_data(show_spinner=False, max_entries=16)
def _playable(data: bytes, name: str) -> tuple[bytes | np.ndarray, str, int | None]:
    """(data, MIME type, sample rate) for ``st.audio``: formats browsers play pass as bytes;
    others (GTZAN's .au, AIFF) are decoded to mono samples at PLAYBACK_RATE."""
    if Path(name).suffix.lower() in BROWSER_FORMATS:
        return data, mime_type(name), None
    return decode(data, sr=PLAYBACK_RATE, name=name).y, "audio/wav", PLAYBACK_RATE


def play(clip: Clip, *, autoplay: bool = False) -> None:
    """An audio player for a clip's bytes (an error message instead if it cannot be decoded);
    with ``autoplay`` it starts playing as soon as it is shown."""
    try:
        data, mime, rate = _playable(clip.data, clip.name)
    except AudioError as err:
        st.error(f"Cannot play {clip.name}: {err}")
        return
    st.audio(data, format=mime, sample_rate=rate, autoplay=autoplay)


def decode_info(audio: AudioInfo) -> None:
    """Original rate, channels and duration of a decoded clip, and a note if it was cut."""
    top, bottom = st.columns(2), st.columns(2)
    top[0].metric("Original rate", f"{audio.source_sr / 1000:g} kHz")
    top[1].metric("Channels", {1: "mono", 2: "stereo"}.get(audio.channels, str(audio.channels)))
    bottom[0].metric("Duration", f"{audio.source_seconds:.1f} s")
    bottom[1].metric("Analysed at", f"{audio.sr / 1000:g} kHz", help="Resampled to the model's rate, mixed to mono.")
    if audio.truncated:
        st.info(f"Long track: only the first {audio.seconds / 60:.0f} min were analysed.")


def _votes(prediction: Prediction) -> str:
    """'7 of 10 segments voted rock, 3 metal.' (silent segments are counted apart: they do not vote)."""
    silent = prediction.features.silent()
    winners = np.argmax(prediction.segment_probs[~silent], axis=1)
    counts = np.bincount(winners, minlength=len(prediction.labels))
    order = [i for i in np.argsort(counts)[::-1] if counts[i]]
    n, quiet = len(winners), int(silent.sum())
    left_out = f" {quiet} silent segment{'s' if quiet > 1 else ''} did not vote." if quiet else ""
    lead, tail_silence = prediction.features.trimmed()
    ends = [f"the first {lead:.1f} s"] * (lead > 0) + [f"the last {tail_silence:.1f} s"] * (tail_silence > 0)
    if ends:
        left_out += f" Silence left out: {' and '.join(ends)}."
    if n == 1:
        return "The clip was heard as one segment." + left_out
    first, *rest = order
    tail = "".join(f", {counts[i]} {prediction.labels[i]}" for i in rest[:3])
    return f"{counts[first]} of {n} segments voted {prediction.labels[first]}{tail}.{left_out}"


def _top_tags(prediction: Prediction, config: FeatureConfig | None, k: int = 5) -> list[str]:
    """Top MusiCNN tags of the clip, when the model's features come from that backbone."""
    if config is None:
        return []
    return [tag for tag, _ in embeddings.top_tags(prediction.features, config, k=k)]


def percentages(pairs, k: int = 3) -> str:
    """'Speech 85 %, Bird 4 %' from (label, probability) pairs."""
    return ", ".join(f"{label} {p:.0%}" for label, p in list(pairs)[:k])


def verdict_view(prediction: Prediction) -> bool:
    """Say plainly whether the clip sounds like music; returns whether to show the genre as an
    answer (True for music, and when no verdict could be had)."""
    verdict = prediction.verdict
    if verdict is None:
        st.caption("Could not tell whether this is music (the AudioSet backbone did not load).")
        return True
    if verdict.is_music:
        return True
    st.error(f"**This doesn't sound like music** (AudioSet's Music: {verdict.music:.0%}). "
             f"It sounds like: {percentages(verdict.sounds_like)}.")
    return False


def _genre_answer(prediction: Prediction, *, config: FeatureConfig | None, k: int | None, key: str,
                  timeline: bool) -> None:
    st.markdown(f"#### {prediction.genre} · {prediction.confidence:.0%}")
    if prediction.unsure:
        second = prediction.top(2)[-1][0]
        st.warning(f"Not sure: the best guess has only {prediction.confidence:.0%}. "
                   f"It may be a mix (next: {second}) or a genre this model does not know.")
    st.plotly_chart(plots.probability_bars(prediction.labels, prediction.probs, k=k), key=f"{key}_bars")
    why = _votes(prediction)
    tags = _top_tags(prediction, config)
    if tags:
        why += f" MusiCNN hears: {', '.join(tags)}."
    if prediction.verdict is not None:
        verdict = prediction.verdict
        why += f" AudioSet hears: {percentages(verdict.sounds_like, k=5)} (Music {verdict.music:.0%})"
        why += f"; mood: {percentages(verdict.moods, k=2)}." if verdict.moods else "."
    st.caption(f"Why: {why}")
    if timeline:
        timeline_view(prediction, config=config, key=key)


def timeline_view(prediction: Prediction, *, config: FeatureConfig | None = None, key: str = "prediction") -> None:
    """The genre over time, for clips of several segments: every segment's probabilities (with a
    zoom slider for long clips) and, for clips over ~2 min, the genre of each stretch."""
    if len(prediction.segment_probs) < 2:
        return
    st.markdown("**Genre over time**")
    silent = prediction.features.silent()
    if len(prediction.segment_probs) > plots.LONG_TIMELINE_SEGMENTS:
        st.plotly_chart(plots.binned_timeline(prediction.segment_probs, prediction.starts, prediction.labels,
                                              silent=silent), key=f"{key}_bins")
        st.caption("Each bar: the genre most segments of that stretch voted, as solid as their mean probability "
                   "(hover for the votes). Below, every segment; drag the slider under it to zoom into a stretch.")
    st.plotly_chart(plots.segment_timeline(prediction.segment_probs, prediction.starts, prediction.labels,
                                           segment_seconds=config.segment_seconds if config else None,
                                           silent=silent, trimmed=prediction.features.trimmed(),
                                           seconds=prediction.features.seconds),
                    key=f"{key}_timeline")


def prediction_view(prediction: Prediction, *, config: FeatureConfig | None = None, k: int | None = None,
                    key: str = "prediction", timeline: bool = True) -> None:
    """The music verdict, then the top genre, probability bars (top ``k``, all if None), a 'not
    sure' note, a short 'why' and, for clips of several segments, the genre over time (unless
    ``timeline`` is False: the page shows :func:`timeline_view` elsewhere). For a clip that is
    not music the genre part stays folded away ("If it were music: ...")."""
    if verdict_view(prediction):
        _genre_answer(prediction, config=config, k=k, key=key, timeline=timeline)
        return
    with st.expander(f"If it were music: {prediction.genre} {prediction.confidence:.0%} (not a real answer)"):
        _genre_answer(prediction, config=config, k=k, key=key, timeline=timeline)
