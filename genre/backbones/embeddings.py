"""Pretrained-backbone embeddings as a feature set, like the hand-crafted one.

One row per segment of the clip (:func:`genre.clip.segment_starts`, ~3 s): the outputs named in
``config.groups`` of every backbone of ``config.kind``, side by side, all for the same stretch of
audio, so a fused kind such as ``MSD_musicnn+mn04`` keeps the genre timeline. Each backbone's
describing probabilities (MusiCNN ``tags``, mn04 ``audioset``) are also kept in ``extras`` to
describe a clip in words and to tell music from other sounds.
"""
from __future__ import annotations

import logging

import numpy as np
import soxr

from genre import backbones
from genre.clip import ClipFeatures, segment_starts
from genre.features import FeatureConfig
from genre.verdict import MusicVerdict, music_verdict

MUSICNN_SEGMENT_SECONDS = backbones.BACKBONES["MSD_musicnn"].window_seconds
DEFAULT_KIND = "MSD_musicnn+mn04"


def backbone_config(kind: str = "MSD_musicnn", *, groups: tuple[str, ...] | None = None,
                    window_seconds: float = 0.0) -> FeatureConfig:
    """The FeatureConfig of a backbone kind: decoded at the highest rate its backbones hear,
    segments of one MusiCNN patch (~2.99 s, so every kind shares the genre timeline); ``groups``
    default to each backbone's defaults; ``window_seconds`` (s) sets mn04's window (0: 3 s)."""
    parts = backbones.parts(kind)
    if not parts:
        raise ValueError(f"{kind!r} is not a backbone kind")
    if window_seconds and all(b.fixed_window for b in parts):
        raise ValueError(f"{kind}: its window is fixed; window_seconds does not apply")
    return FeatureConfig(kind=kind, sr=max(b.sr for b in parts), n_fft=0, hop_length=1, n_mels=0, n_mfcc=0,
                         segment_seconds=MUSICNN_SEGMENT_SECONDS,
                         groups=groups or backbones.default_groups(kind), window_seconds=window_seconds)


def describing_labels(name: str) -> list[str]:
    """Labels of backbone ``name``'s describing outputs (MusiCNN tags, AudioSet classes)."""
    return backbones.load(name).labels


def clip_features(y: np.ndarray, config: FeatureConfig) -> ClipFeatures:
    """Embed mono ``y`` (at ``config.sr``) segment by segment: rows (n_segments, n_features)."""
    seconds = len(y) / config.sr
    starts = segment_starts(seconds, segment_seconds=config.segment_seconds)
    rows, names, extras = [], [], {}
    for backbone in backbones.parts(config.kind):
        heard = y if backbone.sr == config.sr else soxr.resample(y, config.sr, backbone.sr).astype(np.float32)
        outputs = backbones.load(backbone.name).embed(
            heard, starts=starts, segment_seconds=config.segment_seconds,
            window_seconds=config.window_seconds or backbone.window_seconds)
        for group in backbone.groups:
            if group in config.groups:
                rows.append(outputs[group])
                names += [f"{backbone.prefix}_{group}_{i:04d}" for i in range(outputs[group].shape[1])]
        extras[backbone.describe_group] = outputs[backbone.describe_group]
    return ClipFeatures(np.concatenate(rows, axis=1).astype(np.float32), starts.astype(np.float32), names,
                        seconds, extras=extras)


def _describing_backbone(config: FeatureConfig, group: str) -> str | None:
    if config.kind == backbones.HANDCRAFTED:
        return None
    return next((b.name for b in backbones.parts(config.kind) if b.describe_group == group), None)


def top_labels(feats: ClipFeatures, config: FeatureConfig, *, group: str = "tags", k: int = 5,
               exclude: tuple[str, ...] = ()) -> list[tuple[str, float]]:
    """The clip's ``k`` most probable labels of a describing group (mean over sounding segments), e.g.
    MusiCNN ``tags`` ('guitar', 0.41) or ``audioset`` ('Happy music', 0.12); empty when the
    features have no such group. Labels in ``exclude`` are skipped."""
    probs = (feats.extras or {}).get(group)
    name = _describing_backbone(config, group)
    if probs is None or name is None or not len(probs):
        return []
    mean = feats.sounding(probs).mean(axis=0)
    labels = describing_labels(name)
    ranked = [(labels[i], float(mean[i])) for i in np.argsort(mean)[::-1] if labels[i] not in exclude]
    return ranked[:k]


def top_tags(feats: ClipFeatures, config: FeatureConfig, *, k: int = 5) -> list[tuple[str, float]]:
    """The clip's ``k`` most probable MusiCNN tags, e.g. ('guitar', 0.41); empty without them."""
    return top_labels(feats, config, group="tags", k=k)


VERDICT_BACKBONE = "mn04"


def music_verdict_of(feats: ClipFeatures, y: np.ndarray | None = None,
                     config: FeatureConfig | None = None) -> MusicVerdict | None:
    """Whether the clip is music (over its sounding segments), from the AudioSet probabilities in
    ``feats`` or, for features without them, from mn04 run on ``y`` (mono, at ``config.sr``; ~0.05 s
    of CPU per 30 s) over the same segments. None without either, or (with a logged warning) if
    mn04's weights cannot be loaded."""
    backbone = backbones.BACKBONES[VERDICT_BACKBONE]
    probs = (feats.extras or {}).get(backbone.describe_group)
    if probs is None and (y is None or config is None):
        return None
    try:
        labels = describing_labels(VERDICT_BACKBONE)
        if probs is None:
            heard = y if config.sr == backbone.sr else soxr.resample(y, config.sr, backbone.sr).astype(np.float32)
            starts = np.asarray(feats.starts, dtype=float)  # the clip's own segments (silent ends left out)
            probs = backbones.load(VERDICT_BACKBONE).embed(
                heard, starts=starts, segment_seconds=config.segment_seconds,
                window_seconds=backbone.window_seconds)[backbone.describe_group]
    except (OSError, RuntimeError) as err:
        logging.getLogger(__name__).warning("no music verdict: %s", err)
        return None
    return music_verdict(feats.sounding(probs), labels)
