"""What every feature set produces for one clip, and where its segments lie in time.

This module sits below both the pipeline and the backbones (it imports neither), so they can
share :class:`ClipFeatures` without importing each other.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass
class ClipFeatures:
    """Features of one clip. ``rows``: (n_segments, n_features) float32, ``starts``: segment
    start times (s), ``names``: feature names, ``log_mel``: (n_segments, n_mels, frames) float16
    patches (hand-crafted kind only), ``extras``: other per-segment arrays, e.g. a backbone's
    ``tags`` (n_segments, 50) or ``audioset`` (n_segments, 527) probabilities."""

    rows: np.ndarray
    starts: np.ndarray
    names: list[str]
    seconds: float
    log_mel: np.ndarray | None = None
    extras: dict[str, np.ndarray] | None = None


def segment_starts(seconds: float, *, segment_seconds: float) -> np.ndarray:
    """Start times (s) of the fixed-length segments that cover a clip of ``seconds``.

    Whole segments from 0 s without overlap; a tail of at least half a segment gets one more
    segment that ends at the clip's end (so it overlaps the one before); a clip shorter than
    one segment is one segment starting at 0. Returns (n_segments,) float64, n_segments >= 1.
    """
    if seconds <= 0 or segment_seconds <= 0:
        raise ValueError("seconds and segment_seconds must be positive")
    whole = int(math.floor(seconds / segment_seconds + 1e-9))
    starts = [k * segment_seconds for k in range(whole)]
    tail = seconds - whole * segment_seconds
    if whole == 0:
        starts = [0.0]
    elif tail >= segment_seconds / 2:
        starts.append(seconds - segment_seconds)
    return np.asarray(starts, dtype=np.float64)
