"""Audio -> per-segment feature rows for any :class:`FeatureConfig` kind.

This is the one path shared by the feature store (training data) and prediction, so a model
always sees features computed exactly as in training. Long audio is processed in chunks of
about 30 s (whole segments), which bounds memory for tracks of any length.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from genre import backbones
from genre.audio import Decoded, decode
from genre.backbones import embeddings
from genre.clip import ClipFeatures, segment_levels, sounding_span
from genre.features import FeatureConfig, extract, feature_names, log_mel_segments, segment_matrix

CHUNK_SECONDS = 30.0


def is_backbone(config: FeatureConfig) -> bool:
    return config.kind != backbones.HANDCRAFTED


def storage_config(config: FeatureConfig) -> FeatureConfig:
    """The config whose features are computed and cached: for a backbone, all its output groups
    (one forward pass gives them all), so choosing other groups later needs no recomputation."""
    return replace(config, groups=backbones.groups_of(config.kind)) if is_backbone(config) else config


def part_configs(config: FeatureConfig) -> list[FeatureConfig]:
    """The storage configs of each backbone of a combined kind (``MSD_musicnn+mn04`` -> the
    ``MSD_musicnn`` and the ``mn04`` one, each at its own rate, with all its groups), as a
    single-backbone extraction would use them, so the two share cache entries; [] for a
    single backbone or hand-crafted features."""
    if not is_backbone(config) or len(backbones.parts(config.kind)) < 2:
        return []
    return [replace(storage_config(config), kind=b.name, sr=b.sr, groups=b.groups,
                    window_seconds=0.0 if b.fixed_window else config.window_seconds)
            for b in backbones.parts(config.kind)]


def join_parts(parts: Sequence[ClipFeatures]) -> ClipFeatures:
    """One backbone's features after another (same segments), as a combined kind computes them."""
    first = parts[0]
    extras = {k: v for feats in parts for k, v in (feats.extras or {}).items()}
    return replace(first, rows=np.concatenate([f.rows for f in parts], axis=1),
                   names=[n for f in parts for n in f.names], extras=extras or None)


def select_groups(feats: ClipFeatures, config: FeatureConfig) -> ClipFeatures:
    """Keep the columns of ``config.groups`` from features computed with :func:`storage_config`
    (backbone names read ``<model>_<group>_<index>``)."""
    if not is_backbone(config) or tuple(config.groups) == backbones.groups_of(config.kind):
        return feats
    keep = [i for i, name in enumerate(feats.names) if name.split("_")[1] in config.groups]
    return replace(feats, rows=feats.rows[:, keep], names=[feats.names[i] for i in keep])


def chunk_bounds(n_samples: int, *, sr: int, segment_seconds: float) -> list[tuple[int, int]]:
    """(start, stop) sample ranges of ~30 s made of whole segments; a last chunk shorter than
    half a segment is dropped unless it is the only one."""
    segment = segment_seconds * sr
    chunk = int(segment * max(1, math.ceil(CHUNK_SECONDS / segment_seconds - 1e-9)))
    bounds = [(s, min(s + chunk, n_samples)) for s in range(0, n_samples, chunk)]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] < segment / 2:
        bounds.pop()
    return bounds


def _handcrafted(y: np.ndarray, config: FeatureConfig) -> ClipFeatures:
    rows, starts, patches, names = [], [], [], None
    for a, b in chunk_bounds(len(y), sr=config.sr, segment_seconds=config.segment_seconds):
        frames = extract(y[a:b], config)
        chunk_rows, chunk_starts = segment_matrix(frames, config)
        rows.append(chunk_rows)
        starts.append(chunk_starts + a / config.sr)
        patches.append(log_mel_segments(frames, config).astype(np.float16))
        names = names or feature_names(frames, config)
    return ClipFeatures(np.concatenate(rows), np.concatenate(starts), names, len(y) / config.sr,
                        log_mel=np.concatenate(patches))


def clip_features(y: np.ndarray, config: FeatureConfig) -> ClipFeatures:
    """Per-segment features of mono ``y`` sampled at ``config.sr``. Silence of a second or more at
    the start or end is left out (segments cover ``extras['span']``, [first, end] in s, of the clip's
    ``seconds``: :func:`genre.clip.sounding_span`); ``extras['segment_db']`` holds each segment's
    level, which marks the silent ones inside."""
    first, stop = sounding_span(y, config.sr)
    heard = y[first:stop]
    feats = embeddings.clip_features(heard, config) if is_backbone(config) else _handcrafted(heard, config)
    starts = feats.starts + np.float32(first / config.sr)
    levels = segment_levels(y, config.sr, starts, config.segment_seconds)
    span = np.array([first / config.sr, stop / config.sr], dtype=np.float64)
    return replace(feats, starts=starts, seconds=len(y) / config.sr,
                   extras={**(feats.extras or {}), "segment_db": levels, "span": span})


def features_of(source, config: FeatureConfig, *, name: str | None = None) -> tuple[ClipFeatures, Decoded]:
    """Decode ``source`` (path or bytes) at the config's rate, then :func:`clip_features`."""
    decoded = decode(source, sr=config.sr, name=name)
    return clip_features(decoded.y, config), decoded
