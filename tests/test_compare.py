"""genre.compare: a run's model and another model scored on the run's own validation clips, with
how many of them the other model trained on; and genre.eta's extraction clock and durations."""
from __future__ import annotations

import pytest

from genre import eta
from genre.compare import compare_on_validation, scores
from genre.dataset import discover, make_split
from genre.features import FeatureConfig
from genre.models import ModelSpec, save_model
from genre.store import FeatureStore
from genre.train import train_model

SPEC = ModelSpec(family="logreg", hidden=(), l2=1e-2, epochs=200)


def trained(tiny_dataset, folder, *, seed: int, labels=None):
    """A logistic regression on the tiny dataset (stratified split by ``seed``), saved to ``folder``."""
    df = discover(tiny_dataset)
    if labels:
        df = df[df["label"].isin(labels)].reset_index(drop=True)
    features = FeatureStore().build(df["path"], FeatureConfig(), n_jobs=1).features
    result = train_model(df, features, make_split(df, "stratified", valid_fraction=0.34, seed=seed), FeatureConfig(),
                         SPEC, seed=seed)
    return save_model(result.keras_model, result.card, folder), result.card


def test_both_models_on_the_runs_validation_clips(warm_cache, tiny_dataset, tmp_path):
    run_dir, run_card = trained(tiny_dataset, tmp_path / "run", seed=0)
    other_dir, other_card = trained(tiny_dataset, tmp_path / "other", seed=1)
    result = compare_on_validation(run_dir, other_dir, roots=[tiny_dataset])
    valid = set(run_card.split["valid_clip_ids"])
    overlap = len(valid & set(other_card.split["train_clip_ids"]))
    assert result["model"] == "other" and result["n_valid"] == result["n"] == len(valid) and not result["failed"]
    assert result["trained_on"] == overlap and 0 < overlap < len(valid)  # the seeds' splits differ
    report = run_card.metrics["validation"]  # the run's own score, computed the same way by train_model
    assert result["this_run"] == pytest.approx({"accuracy": report["accuracy"],
                                                "balanced_accuracy": report["balanced_accuracy"]})
    assert result["unseen"]["n"] == len(valid) - overlap
    assert 0 <= result["other"]["accuracy"] <= 1 and result["unknown_labels"] == []

    itself = compare_on_validation(run_dir, run_dir, roots=[tiny_dataset])
    assert itself["trained_on"] == 0 and itself["other"] == itself["this_run"] and itself["unseen"] is None


def test_genres_the_other_model_does_not_know_are_left_out(warm_cache, tiny_dataset, tmp_path):
    run_dir, run_card = trained(tiny_dataset, tmp_path / "run", seed=0)
    two, _ = trained(tiny_dataset, tmp_path / "two", seed=0, labels=["beats", "tones"])
    result = compare_on_validation(run_dir, two, roots=[tiny_dataset])
    assert result["unknown_labels"] == ["buzz"]
    assert result["n"] == result["n_valid"] - len([c for c in run_card.split["valid_clip_ids"] if "buzz" in c])


def test_scores_are_clip_shares():
    assert scores(["a", "a", "b", "b"], ["a", "b", "b", "b"], ["a", "b"]) == {"accuracy": 0.75,
                                                                              "balanced_accuracy": 0.75}


def test_extraction_clock_rate_and_time_left():
    now = [0.0]
    clock = eta.ExtractionClock(total=10, missing=4, kind="handcrafted", clock=lambda: now[0])
    assert clock.update(0) == {"computed": 0, "rate": 0.0, "eta": eta.extraction_seconds(4, "handcrafted")}
    now[0] = 1.0
    assert clock.update(6)["computed"] == 0  # the 6 cached clips come first and quickly
    now[0] = 3.0
    assert clock.update(8) == {"computed": 2, "rate": 1.0, "eta": 2.0}
    now[0] = 5.0
    assert clock.update(10) == {"computed": 4, "rate": 1.0, "eta": 0.0}

    slow_start = eta.ExtractionClock(total=8, missing=8, kind="MSD_musicnn", clock=lambda: now[0])
    now[0] = 15.0  # the first 2 clips took 10 s: loading the network
    assert slow_start.update(2) == {"computed": 2, "rate": 0.2, "eta": 30.0}
    now[0] = 17.0  # then 1 clip/s, which is what the rest will take
    assert slow_start.update(4) == {"computed": 4, "rate": 1.0, "eta": 4.0}


def test_missing_clips_and_durations(tiny_dataset, warm_cache):
    paths = discover(tiny_dataset)["path"]
    assert eta.missing_clips(paths, FeatureConfig()) == 0
    assert eta.missing_clips(paths, FeatureConfig(segment_seconds=2.0)) == 18
    assert eta.missing_clips([str(tiny_dataset / "nowhere.wav")], FeatureConfig()) == 0
    assert [eta.duration(s) for s in (0.2, 50, 95, 3600, 3900)] == ["1 s", "50 s", "2 min", "1 h", "1 h 5 min"]
    assert eta.seconds_per_clip("MSD_musicnn+mn04") > 0 and eta.extraction_seconds(10, "mn04", threads=2) == \
        pytest.approx(5 * eta.seconds_per_clip("mn04"))
