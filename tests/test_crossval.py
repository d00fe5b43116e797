"""Repeated artist-grouped cross-validation: every clip measured once per seed, never while fitting."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from genre.clip import ClipFeatures
from genre.crossval import CVResult, cross_validate, inner_split
from genre.features import FeatureConfig
from genre.models import ModelSpec

LABELS = ("a", "b", "c")


def _table(n_per_label: int = 10, seed: int = 0):
    """Clips of three labels whose segment rows sit around label-specific centres; two clips per artist."""
    rng = np.random.default_rng(seed)
    rows, features = [], {}
    for li, label in enumerate(LABELS):
        for k in range(n_per_label):
            path = f"/x/{label}/{k}.wav"
            rows.append({"path": path, "label": label, "clip_id": f"{label}.{k:05d}", "artist": f"{label}-{k // 2}",
                         "title": None})
            centre = np.eye(4, dtype=np.float32)[li] * 3
            features[path] = ClipFeatures(centre + rng.normal(0, 1, (3, 4)).astype(np.float32), np.arange(3) * 3.0,
                                          [f"f{i}" for i in range(4)], 9.0)
    return pd.DataFrame(rows), features


def test_inner_split_stays_inside_the_training_side_and_keeps_artists_apart():
    df, _ = _table()
    train = np.arange(0, 30, 1)[::2]
    split = inner_split(df, train, seed=0)
    assert set(split.train) | set(split.valid) == set(train) and not set(split.train) & set(split.valid)
    assert not set(df.iloc[split.train]["artist"]) & set(df.iloc[split.valid]["artist"])


def test_cross_validation_repeats_folds_per_seed_and_reports_an_interval():
    df, features = _table()
    spec = ModelSpec(hidden=(), dropout=0.0, learning_rate=0.05, epochs=40, patience=5, batch_size=16)
    result = cross_validate(df, features, FeatureConfig(), spec, n_splits=2, seeds=(0, 1))
    assert len(result.accuracy) == len(result.balanced_accuracy) == len(result.best_epochs) == 4
    assert min(result.accuracy) > 0.7  # well-separated labels
    assert set(result.recall) == set(LABELS) and all(0 <= r <= 1 for r in result.recall.values())
    mean, low, high = CVResult.interval(result.balanced_accuracy)
    assert low <= mean <= high
    data = result.to_dict()
    assert data["seeds"] == [0, 1] and data["folds"] == 2 and len(data["accuracy"]["per_fold"]) == 4
    assert data["balanced_accuracy"]["ci95"] == pytest.approx([low, high])
    assert "95 % interval" in result.summary()


def test_chance_level_features_give_chance_level_scores():
    df, features = _table()
    rng = np.random.default_rng(1)
    noise = {p: ClipFeatures(rng.normal(0, 1, f.rows.shape).astype(np.float32), f.starts, f.names, 9.0)
             for p, f in features.items()}
    spec = ModelSpec(hidden=(), dropout=0.0, learning_rate=0.05, epochs=20, patience=3, batch_size=16)
    result = cross_validate(df, noise, FeatureConfig(), spec, n_splits=2, seeds=(0,))
    assert np.mean(result.accuracy) < 0.75  # nothing to learn: no leak from the measured clips
