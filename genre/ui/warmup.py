"""Warm the server at start, so the first visitor's prediction does not pay for it.

In a daemon thread, once per process: import TensorFlow/Keras (~3-5 s), load the default model
into the shared model LRU (``genre.ui.cache.MODELS``) with its MusiCNN backbone, and classify
30 s of synthetic audio once (decoder, librosa's kernels and the networks' graph tracing,
another ~2 s). Nothing waits for it: Home, Dataset and Features never need TensorFlow, and a
page that needs the model earlier simply shares the load (the LRU loads each model once).

``genre.ui.serve`` (what ``./run.sh`` starts) calls :func:`start` before the server runs;
``GENRE_WARM=0`` turns the warm-up off (to compare, or to save memory on a server that only
explores datasets).
"""
from __future__ import annotations

import io
import os
import threading
import time
from pathlib import Path

import numpy as np

from streamlit.logger import get_logger

WARM_SECONDS = 30.0
"""Length (s) of the synthetic clip classified once: the length of a GTZAN clip."""

_LOG = get_logger(__name__)
_lock = threading.Lock()
_thread: threading.Thread | None = None
_status = "not started"


def enabled() -> bool:
    """False when ``$GENRE_WARM`` is ``0``."""
    return os.environ.get("GENRE_WARM", "1") != "0"


def status() -> str:
    """``not started``, ``running``, ``done in N.N s`` or ``failed: reason``."""
    return _status


def default_model_dir() -> Path:
    """The model a new session starts with: ``default`` in the models folder (``$GENRE_MODELS_DIR``
    or ``models/``) if it is there, else the shipped ``models/default``."""
    from genre.models import DEFAULT_MODEL_DIR, available_models

    return available_models()[DEFAULT_MODEL_DIR.name]


def synthetic_clip(*, seconds: float = WARM_SECONDS, sr: int = 22050) -> bytes:
    """A WAV (16-bit, mono, ``sr`` Hz) of ``seconds`` s of a plucked-tone pattern with noise:
    audible, so every step of a real prediction runs."""
    import soundfile as sf

    t = np.arange(int(seconds * sr)) / sr
    envelope = np.exp(-6.0 * (t % 0.5))
    y = 0.3 * envelope * np.sin(2 * np.pi * 220.0 * t) + 0.01 * np.random.default_rng(0).standard_normal(len(t))
    buf = io.BytesIO()
    sf.write(buf, y.astype(np.float32), sr, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def warm(model_dir: str | Path) -> float:
    """Import Keras, load ``model_dir`` into ``genre.ui.cache.MODELS`` (and its backbone) and
    classify :func:`synthetic_clip` once; returns the seconds it took. Raises what loading or
    predicting raises (``ModelError``, ``AudioError``)."""
    from genre.predict import predict_source
    from genre.ui import cache

    t0 = time.perf_counter()
    model = cache.MODELS.get(model_dir, mtime=cache.card_mtime(Path(model_dir)))  # imports Keras
    predict_source(model, synthetic_clip(), name="warm-up clip")
    return time.perf_counter() - t0


def _run(model_dir: Path) -> None:
    global _status
    try:
        seconds = warm(model_dir)
    except Exception as err:  # noqa: BLE001 - a failed warm-up only means a slower first prediction
        _status = f"failed: {err}"
        _LOG.warning("warm-up of model %s failed (the first prediction will load it): %s", model_dir.name, err)
        return
    _status = f"done in {seconds:.1f} s"
    _LOG.info("warm-up done in %.1f s: TensorFlow and model %s are loaded", seconds, model_dir.name)


def start(*, model_dir: str | Path | None = None) -> threading.Thread | None:
    """Start the warm-up of ``model_dir`` (default: :func:`default_model_dir`) in a daemon
    thread, once per process: later calls return the same thread. None if it is turned off."""
    global _thread, _status
    if not enabled():
        return None
    with _lock:
        if _thread is None:
            folder = Path(model_dir) if model_dir is not None else default_model_dir()
            _status = "running"
            _thread = threading.Thread(target=_run, args=(folder,), name="genre-warmup", daemon=True)
            _thread.start()
        return _thread
