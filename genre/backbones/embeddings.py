"""Pretrained-backbone embeddings as a feature set, like the hand-crafted one.

One row per ~3 s MusiCNN patch: the backbone outputs named in ``config.groups``
(``penultimate`` 200, ``pooled`` 1506, ``tags`` 50 probabilities), concatenated. The tag
probabilities are always kept in ``extras['tags']`` to describe a clip in words.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from genre.backbones import musicnn
from genre.features import FeatureConfig
from genre.pipeline import ClipFeatures

DEFAULT_GROUPS = ("penultimate",)


def backbone_config(name: str = "MSD_musicnn", *, groups: tuple[str, ...] = DEFAULT_GROUPS) -> FeatureConfig:
    """The FeatureConfig of a MusiCNN backbone (16 kHz, STFT 512 / hop 256, 96 mels, 187-frame patches)."""
    return FeatureConfig(kind=name, sr=musicnn.SAMPLE_RATE, n_fft=musicnn.N_FFT, hop_length=musicnn.HOP,
                         n_mels=musicnn.N_MELS, n_mfcc=0,
                         segment_seconds=musicnn.PATCH_FRAMES * musicnn.HOP / musicnn.SAMPLE_RATE,
                         groups=groups)


@lru_cache(maxsize=2)
def load_backbone(name: str) -> musicnn.MusicnnBackbone:
    """The backbone, loaded once per process."""
    return musicnn.MusicnnBackbone.load(name)


def tag_labels(config: FeatureConfig) -> list[str]:
    return load_backbone(config.kind).tag_labels


def _names(config: FeatureConfig, outputs: dict[str, np.ndarray]) -> list[str]:
    prefix = config.kind.split("_")[0].lower()
    return [f"{prefix}_{group}_{i:04d}" for group in config.groups for i in range(outputs[group].shape[1])]


def clip_features(y: np.ndarray, config: FeatureConfig) -> ClipFeatures:
    """Embed mono ``y`` (16 kHz) patch by patch: rows (n_patches, n_features)."""
    outputs = load_backbone(config.kind).describe(y)
    rows = np.concatenate([outputs[g] for g in config.groups], axis=1).astype(np.float32)
    starts = np.arange(len(rows), dtype=np.float32) * config.segment_seconds
    return ClipFeatures(rows, starts, _names(config, outputs), len(y) / config.sr,
                        extras={"tags": outputs["tags"]})


def top_tags(feats: ClipFeatures, config: FeatureConfig, *, k: int = 5) -> list[tuple[str, float]]:
    """The clip's ``k`` most probable MusiCNN tags (mean over patches), e.g. ('guitar', 0.41);
    empty for features without backbone tags."""
    tags = (feats.extras or {}).get("tags")
    if tags is None or config.kind == "handcrafted" or not len(tags):
        return []
    mean = np.asarray(tags).mean(axis=0)
    labels = tag_labels(config)
    return [(labels[i], float(mean[i])) for i in np.argsort(mean)[::-1][:k]]
