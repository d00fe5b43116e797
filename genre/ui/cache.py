"""Streamlit caches over the core: models, dataset tables, predictions, features, neighbours.

Loaded models live in one process-wide LRU (``MODELS``, at most ``MAX_MODELS``), so memory
stays bounded however often people switch models. Uploaded clips are keyed by the SHA-256 of
their bytes, so a clip is decoded and featurised once per model. Functions that can fail on a
person's input show ``st.error`` and return None; cached functions themselves never draw
anything (Streamlit would replay it on every hit).
"""
from __future__ import annotations

import hashlib
import math
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import streamlit as st

from genre import dataset as ds
from genre import plots
from genre.audio import AudioError, Decoded, decode
from genre.features import FeatureConfig, Frames, extract, log_mel_spectrogram
from genre.models import (CARD_FILE, DEFAULT_MODEL_DIR, MODEL_FILE, LoadedModel, ModelCard, ModelError,
                          check_model, load_model)
from genre.pipeline import features_of
from genre.predict import Prediction, predict_decoded
from genre.ui import state
from genre.verdict import MusicVerdict

if TYPE_CHECKING:  # genre.similar imports scikit-learn (~2 s): only the Similar page pays for it
    from genre.similar import NeighbourIndex

VIEW_SECONDS = 30.0
"""Length (s) of audio shown as frame-level features and spectrograms."""


def view_hop_length(sr: int, *, seconds: float = VIEW_SECONDS, step: int = FeatureConfig.hop_length) -> int:
    """Hop (samples, a multiple of ``step``) of the Predict page's spectrogram of ``seconds`` s at
    ``sr`` Hz: the smallest giving at most ``plots.MAX_COLUMNS`` frames, so no STFT frame is
    computed only to be averaged away by the figure (30 s at 32 kHz: 1536, ~1/3 of the work of
    512), and a short clip keeps the finest hop."""
    return step * max(1, math.ceil(seconds * sr / step / (plots.MAX_COLUMNS - 1)))


_MAX_INDEXES = 4


def digest(data: bytes) -> str:
    """SHA-256 (hex) of a clip's bytes: the cache key of everything computed from it."""
    return hashlib.sha256(data).hexdigest()


def card_mtime(path: Path) -> float:
    """Modification time of a model directory's card (0 if missing): part of every model key."""
    try:
        return (Path(path) / CARD_FILE).stat().st_mtime
    except OSError:
        return 0.0


MAX_MODELS = 3
"""Loaded models kept in memory at most (the backbones they share are kept apart, once each, by
``genre.backbones.load``)."""


class ModelLRU:
    """At most ``size`` loaded models, the least recently used dropped first.

    Keyed by the model folder's resolved path (``models/default`` and its absolute path are one
    entry). A card whose modification time differs from the loaded one's (the model was saved
    over) is loaded again and replaces it. Thread-safe: models load one at a time, so sessions
    (and the warm-up thread) asking for the same model share one load."""

    def __init__(self, *, size: int, loader: Callable[[str], LoadedModel] = load_model) -> None:
        if size < 1:
            raise ValueError(f"size must be at least 1, not {size}")
        self.size = size
        self._loader = loader
        self._entries: OrderedDict[str, tuple[float, LoadedModel]] = OrderedDict()
        self._lock = threading.Lock()
        self._load_lock = threading.Lock()

    def _hit(self, key: str, mtime: float) -> LoadedModel | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry[0] != mtime:
                return None
            self._entries.move_to_end(key)
            return entry[1]

    def get(self, path: str | Path, *, mtime: float) -> LoadedModel:
        """The model in folder ``path`` whose card has modification time ``mtime``
        (:func:`card_mtime`), loaded if needed; raises ``ModelError`` like ``load_model``."""
        key = os.path.realpath(path)
        model = self._hit(key, mtime)
        if model is not None:
            return model
        with self._load_lock:
            model = self._hit(key, mtime)  # loaded by another thread while this one waited
            if model is not None:
                return model
            model = self._loader(str(path))
            with self._lock:
                self._entries[key] = (mtime, model)
                self._entries.move_to_end(key)
                while len(self._entries) > self.size:
                    self._entries.popitem(last=False)
        return model

    def folders(self) -> list[str]:
        """Resolved folders of the loaded models, least recently used first."""
        with self._lock:
            return list(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


MODELS = ModelLRU(size=MAX_MODELS)
"""The server's loaded models, shared by every session and the warm-up thread."""


def fallback_warning(err: ModelError | str) -> str:
    """What every page says when the chosen model cannot be used."""
    return f"{err} Using the shipped default model instead."


def broken_default_error(err: ModelError | str) -> str:
    """What every page says when the shipped default model cannot be used."""
    return f"{err} Reinstall models/default (e.g. `git checkout models/default`)."


def active_model() -> LoadedModel:
    """The model chosen in the sidebar (Keras is imported here). If it cannot be loaded, a
    warning says why and the shipped default is used; if that fails too, the page stops."""
    path = state.active_model_dir()
    with st.spinner(f"Loading model {path.name}…"):
        try:
            return MODELS.get(path, mtime=card_mtime(path))
        except ModelError as err:
            if path == DEFAULT_MODEL_DIR:
                st.error(broken_default_error(err))
                st.stop()
            st.warning(fallback_warning(err))
            return MODELS.get(DEFAULT_MODEL_DIR, mtime=card_mtime(DEFAULT_MODEL_DIR))


def _model_stamp(path: Path) -> tuple:
    """(size, mtime) of a model directory's card and model file: changes when either is rewritten."""
    stamp = []
    for name in (CARD_FILE, MODEL_FILE):
        try:
            info = (path / name).stat()
            stamp.append((info.st_size, info.st_mtime_ns))
        except OSError:
            stamp.append(None)
    return tuple(stamp)


@st.cache_data(show_spinner=False, max_entries=16)
def _check_model(path: str, stamp: tuple) -> tuple[ModelCard | None, str | None]:
    try:
        return check_model(path), None
    except ModelError as err:
        return None, str(err)


def checked_model(path: Path) -> tuple[ModelCard | None, str | None]:
    """``(card, None)`` if ``genre.models.check_model`` finds the model directory usable (no
    TensorFlow needed), else ``(None, the reason)``; cached until its files change."""
    return _check_model(str(path), _model_stamp(Path(path)))


def _tree_stamp(root: Path, depth: int = 3) -> tuple:
    """Modification times of the folders under ``root`` down to ``depth`` levels: they change
    when clips are added, removed or renamed."""
    stamp = []
    for folder, dirs, _ in os.walk(root):
        level = len(Path(folder).relative_to(root).parts)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")) if level < depth else []
        try:
            stamp.append((folder, os.stat(folder).st_mtime_ns))
        except OSError:
            continue
    return tuple(stamp)


@st.cache_data(show_spinner=False, max_entries=8)
def _discover(root: str, stamp: tuple) -> pd.DataFrame:
    return ds.discover(root)


def discover(root: str | Path) -> pd.DataFrame | None:
    """``genre.dataset.discover(root)``, cached until a genre folder changes; None if ``root``
    is not a folder or holds no labelled clips."""
    root = Path(root)
    try:
        clips = _discover(str(root), _tree_stamp(root))
    except FileNotFoundError:
        return None
    return clips if len(clips) else None


def dataset() -> pd.DataFrame | None:
    """Clips of the dataset folder chosen in the sidebar, or None."""
    root = state.dataset_dir()
    return discover(root) if root else None


@dataclass
class Analysis:
    """A prediction of one clip and what to show beside it (no decoded samples: a cached analysis
    of a 30 s clip holds ~0.45 MB): ``log_mel`` is the (n_mels, n_frames) log-mel spectrogram in
    dB of its first ``VIEW_SECONDS`` s at ``prediction.audio.sr``, one frame every ``hop_length``
    samples; ``model``/``config`` name what predicted it, ``card`` is that model's
    card (its split names the clips it was trained on)."""

    prediction: Prediction
    log_mel: np.ndarray
    hop_length: int
    model: str
    config: FeatureConfig
    card: ModelCard


@st.cache_data(show_spinner=False, max_entries=32)
def _analyse(key: str, model_path: str, mtime: float, _data: bytes, _name: str) -> Analysis:
    model = MODELS.get(model_path, mtime=mtime)
    config = model.card.config
    decoded = decode(_data, sr=config.sr, name=_name)
    prediction = predict_decoded(model, decoded, name=_name)
    shown = decoded.y[: int(VIEW_SECONDS * decoded.sr)]
    view = FeatureConfig(sr=decoded.sr, hop_length=view_hop_length(decoded.sr, seconds=len(shown) / decoded.sr))
    log_mel = log_mel_spectrogram(shown, view)
    return Analysis(prediction, log_mel, view.hop_length, model.name, config, model.card)


def predict_bytes(data: bytes, *, name: str) -> Analysis | None:
    """Predict a clip given as file bytes with the active model (``name`` labels messages
    only). Cached by (content hash, model path, card mtime); unusable audio shows an error."""
    model = active_model()
    try:
        with st.spinner("Listening… (decoding, features, model)"):
            return _analyse(digest(data), str(model.path), card_mtime(model.path), data, name)
    except (AudioError, ModelError) as err:
        st.error(str(err))
        return None


@st.cache_data(show_spinner=False, max_entries=16)
def _clip_frames(key: str, seconds: float, _data: bytes, _name: str) -> tuple[Decoded, Frames]:
    decoded = decode(_data, max_seconds=seconds, name=_name)
    return decoded, extract(decoded.y, FeatureConfig())


def clip_frames(data: bytes, *, name: str, seconds: float = VIEW_SECONDS) -> tuple[Decoded, Frames] | None:
    """The first ``seconds`` of a clip decoded at 22.05 kHz and every frame-level feature of
    it (``genre.features.extract``); cached by content hash. Errors are shown, then None."""
    try:
        with st.spinner(f"Computing features of {name}…"):
            return _clip_frames(digest(data), seconds, data, name)
    except AudioError as err:
        st.error(str(err))
        return None


@st.cache_data(show_spinner=False, max_entries=32)
def _clip_vector(key: str, config_digest: str, _config: FeatureConfig, _data: bytes, _name: str):
    from genre.backbones.embeddings import music_verdict_of
    from genre.similar import clip_vector

    feats, decoded = features_of(_data, _config, name=_name)
    return clip_vector(feats), music_verdict_of(feats, decoded.y, _config)


def query_features(data: bytes, *, name: str, config: FeatureConfig) -> tuple[np.ndarray, MusicVerdict | None] | None:
    """Mean feature row (n_features,) of a clip under ``config`` and whether it is music (None
    if that could not be told), cached by content hash; errors are shown, then None."""
    try:
        with st.spinner(f"Computing features of {name}…"):
            return _clip_vector(digest(data), config.digest(), config, data, name)
    except AudioError as err:
        st.error(str(err))
        return None


@st.cache_resource(show_spinner=False)
def _indexes() -> dict[tuple[str, str], NeighbourIndex]:
    """Process-wide registry of built neighbour indexes (shared by sessions)."""
    return {}


def _index_key(clips: pd.DataFrame, config: FeatureConfig) -> tuple[str, str]:
    return config.digest(), hashlib.sha256("\n".join(clips["path"]).encode()).hexdigest()


def neighbour_index(clips: pd.DataFrame, config: FeatureConfig, *, build: bool = False) -> NeighbourIndex | None:
    """The nearest-neighbour index of ``clips`` in ``config``'s feature space if it was built
    in this server process; with ``build``, build it now (features come from the on-disk
    feature store, missing ones are extracted with a progress bar). None if not available."""
    registry, key = _indexes(), _index_key(clips, config)
    if key in registry or not build:
        return registry.get(key)
    from genre.similar import NeighbourIndex

    from genre.ui.dataset_cache import extraction_progress

    bar, progress = extraction_progress(clips["path"].tolist(), config)
    try:
        index = NeighbourIndex.build(clips, config, progress=progress)
    except ValueError as err:
        st.error(f"Cannot build the similarity index: {err}")
        return None
    finally:
        bar.empty()
    while len(registry) >= _MAX_INDEXES:
        registry.pop(next(iter(registry)))
    registry[key] = index
    return index
