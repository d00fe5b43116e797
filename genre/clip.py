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
    ``tags`` (n_segments, 50) or ``audioset`` (n_segments, 527) probabilities, and
    ``segment_db`` (n_segments,) the segments' RMS levels in dBFS (see :func:`segment_levels`)."""

    rows: np.ndarray
    starts: np.ndarray
    names: list[str]
    seconds: float
    log_mel: np.ndarray | None = None
    extras: dict[str, np.ndarray] | None = None

    def silent(self) -> np.ndarray:
        """(n_segments,) bool: the segments too quiet to vote (:func:`silent_segments`); all
        False when the levels were not measured (features cached by an older version)."""
        levels = (self.extras or {}).get("segment_db")
        if levels is None or len(levels) != len(self.rows):
            return np.zeros(len(self.rows), dtype=bool)
        return silent_segments(levels)

    def trimmed(self) -> tuple[float, float]:
        """Seconds of silence left out before the first segment and after the last (0, 0 when
        none was, or for features cached by an older version): see :func:`sounding_span`."""
        span = (self.extras or {}).get("span")
        if span is None or len(span) != 2:
            return 0.0, 0.0
        return float(span[0]), max(0.0, self.seconds - float(span[1]))

    def sounding(self, per_segment: np.ndarray) -> np.ndarray:
        """The rows of ``per_segment`` (n_segments, ...) that belong to sounding segments."""
        silent = self.silent()
        per_segment = np.asarray(per_segment)
        return per_segment[~silent] if len(per_segment) == len(silent) else per_segment


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


SILENT_DBFS = -50.0
"""A segment whose RMS level is below this (dB relative to full scale) is silent..."""
SILENT_BELOW_LOUDEST_DB = 40.0
"""... and so is one this many dB below the clip's loudest segment (room tone between loud
songs). When every segment of a clip is below ``SILENT_DBFS`` (a very quiet recording), only the
relative rule applies, so a clip always keeps at least one sounding segment."""


def segment_levels(y: np.ndarray, sr: int, starts: np.ndarray, segment_seconds: float) -> np.ndarray:
    """RMS level of each segment of mono ``y`` (``starts`` in s, ``segment_seconds`` long, cut
    at the clip's end) in dBFS (full scale = 0 dB; digital silence = -120 dB).
    Returns (n_segments,) float32."""
    length = max(1, int(round(segment_seconds * sr)))
    levels = []
    for start in np.asarray(starts, dtype=float):
        a = min(int(round(start * sr)), max(len(y) - 1, 0))
        piece = np.asarray(y[a:a + length], dtype=np.float64)
        rms = float(np.sqrt(np.mean(np.square(piece)))) if len(piece) else 0.0
        levels.append(20 * np.log10(max(rms, 1e-6)))
    return np.asarray(levels, dtype=np.float32)


def silent_segments(levels_db: np.ndarray) -> np.ndarray:
    """Which segments are silent, from their :func:`segment_levels`: (n_segments,) bool, never
    all True (see ``SILENT_DBFS`` and ``SILENT_BELOW_LOUDEST_DB``)."""
    levels_db = np.asarray(levels_db, dtype=float)
    if not len(levels_db):
        return np.zeros(0, dtype=bool)
    loudest = float(levels_db.max())
    relative = levels_db < loudest - SILENT_BELOW_LOUDEST_DB
    return relative if loudest < SILENT_DBFS else relative | (levels_db < SILENT_DBFS)


TRIM_AT_LEAST_SECONDS = 1.0
"""Silence at a clip's start or end is cut off before segmenting when it lasts at least this
long (shorter lead-ins are part of a track and stay, so such clips are segmented as before)."""


def sounding_span(y: np.ndarray, sr: int) -> tuple[int, int]:
    """(first, stop) sample indices of ``y`` without its silent start and end, by the levels of
    ~93 ms frames (2048 samples at 22.05 kHz, scaled to ``sr``) and the rules of
    :func:`silent_segments`; a silent stretch shorter than ``TRIM_AT_LEAST_SECONDS`` is kept.
    The whole clip, (0, len(y)), when nothing is silent."""
    import librosa

    frame = int(2 ** round(np.log2(max(256, 2048 * sr / 22050))))
    hop = frame // 4
    if len(y) < 2 * frame:
        return 0, len(y)
    rms = librosa.feature.rms(y=np.asarray(y, dtype=np.float32), frame_length=frame, hop_length=hop, center=False)[0]
    silent = silent_segments(20 * np.log10(np.maximum(rms, 1e-6)))
    sounding = np.flatnonzero(~silent)
    first, stop = int(sounding[0]) * hop, min(len(y), int(sounding[-1]) * hop + frame)
    keep_at_least = int(TRIM_AT_LEAST_SECONDS * sr)
    return (first if first >= keep_at_least else 0), (stop if len(y) - stop >= keep_at_least else len(y))
