"""The backbone registry, segment timing and the fused feature kind (MusiCNN-MSD + mn04)."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import synth
from genre import backbones
from genre.backbones.embeddings import DEFAULT_KIND, backbone_config, top_labels, top_tags
from genre.clip import segment_starts
from genre.features import FeatureConfig
from genre.pipeline import clip_features, select_groups, storage_config


def test_registry_kinds_groups_and_titles():
    assert [b.name for b in backbones.parts("MSD_musicnn+mn04")] == ["MSD_musicnn", "mn04"]
    assert backbones.parts(backbones.HANDCRAFTED) == ()
    assert backbones.groups_of("MSD_musicnn+mn04") == ("penultimate", "pooled", "tags", "embedding", "audioset")
    assert backbones.default_groups("mn04") == ("embedding", "audioset")
    assert backbones.title("MSD_musicnn+mn04") == "MusiCNN (Million Song Dataset tags) + EfficientAT mn04 (AudioSet)"
    for bad in ("mn05", "mn04+mn04", "MSD_musicnn+MTT_musicnn", ""):
        with pytest.raises(ValueError):
            backbones.parts(bad)


def test_loading_a_backbone_leaves_numpy_and_scipy_one_blas_thread():
    """OpenBLAS's extra worker busy-waits after each small matrix product and took a core from
    TensorFlow's pool (a 30 s clip through both backbones 0.38 -> 0.27 s with one BLAS thread)."""
    from threadpoolctl import threadpool_info

    backbones.load("mn04")
    blas = [info for info in threadpool_info() if info["user_api"] == "blas"]
    assert blas, "no BLAS library found to limit"
    assert {info["num_threads"] for info in blas} == {1}, blas


def test_feature_config_of_a_fused_kind():
    config = backbone_config(DEFAULT_KIND)
    assert config.sr == 32000 and config.segment_seconds == pytest.approx(2.992)
    assert config.groups == ("penultimate", "embedding", "audioset")
    assert FeatureConfig.from_dict(config.to_dict()) == config
    assert storage_config(config).groups == backbones.groups_of(DEFAULT_KIND)
    with pytest.raises(ValueError, match="unknown feature groups"):
        FeatureConfig(kind="mn04", groups=("penultimate",))
    with pytest.raises(ValueError, match="window is fixed"):
        backbone_config("MSD_musicnn", window_seconds=5.0)


def test_an_old_card_config_still_loads():
    old = {"kind": "MSD_musicnn", "sr": 16000, "n_fft": 512, "hop_length": 256, "n_mels": 96, "n_mfcc": 0,
           "segment_seconds": 2.992, "groups": ["penultimate"], "version": 1}
    config = FeatureConfig.from_dict(old)
    assert config.window_seconds == 0.0 and config.version == 1


@pytest.mark.parametrize("seconds, expected", [
    (30.0, [0, 3, 6, 9, 12, 15, 18, 21, 24, 27]),
    (8.1, [0, 3, 5.1]),      # a 2.1 s tail (>= half a segment) is classified, ending at the clip's end
    (7.4, [0, 3]),           # a 1.4 s tail is dropped
    (1.5, [0]), (3.0, [0]),
])
def test_segment_starts(seconds, expected):
    assert segment_starts(seconds, segment_seconds=3.0) == pytest.approx(expected)


def test_segment_starts_refuses_nonsense():
    with pytest.raises(ValueError):
        segment_starts(0.0, segment_seconds=3.0)


@pytest.fixture(scope="module")
def fused():
    config = backbone_config(DEFAULT_KIND)
    y = np.concatenate([synth("tones", seconds=6.0, sr=32000), synth("beats", seconds=4.6, sr=32000)])
    return config, clip_features(y, config)


def test_fused_rows_are_aligned_segments_of_both_backbones(fused):
    config, feats = fused
    assert feats.seconds == pytest.approx(10.6)  # 3 whole segments and a 1.6 s tail
    assert feats.starts == pytest.approx(segment_starts(10.6, segment_seconds=config.segment_seconds))
    assert feats.rows.shape == (4, 200 + 384 + 527) and feats.rows.dtype == np.float32
    assert feats.names[0] == "msd_penultimate_0000" and feats.names[200] == "mn04_embedding_0000"
    assert feats.names[-1] == "mn04_audioset_0526"
    assert feats.extras["tags"].shape == (4, 50) and feats.extras["audioset"].shape == (4, 527)
    assert np.isfinite(feats.rows).all()
    # AudioSet probabilities are the audioset group's columns, window by window
    assert np.allclose(feats.rows[:, -527:], feats.extras["audioset"])


def test_fused_groups_can_be_selected_from_storage(fused):
    config, _ = fused
    y = synth("buzz", seconds=4.0, sr=32000)
    stored = clip_features(y, storage_config(config))
    only_mn04 = select_groups(stored, backbone_config(DEFAULT_KIND, groups=("embedding",)))
    assert only_mn04.rows.shape == (len(stored.starts), 384)
    assert all(name.startswith("mn04_embedding_") for name in only_mn04.names)


def test_words_that_describe_a_fused_clip(fused):
    config, feats = fused
    tags = top_tags(feats, config, k=3)
    audioset = top_labels(feats, config, group="audioset", k=3, exclude=("Music",))
    assert len(tags) == 3 and len(audioset) == 3
    assert all(label != "Music" for label, _ in audioset)
    assert tags[0][1] >= tags[1][1] >= tags[2][1]
    assert top_tags(feats, FeatureConfig(), k=3) == []  # hand-crafted features have no tags


def test_a_short_clip_is_one_segment_of_each_backbone():
    config = backbone_config(DEFAULT_KIND)
    feats = clip_features(synth("tones", seconds=1.5, sr=32000), config)
    assert feats.rows.shape == (1, 200 + 384 + 527)
