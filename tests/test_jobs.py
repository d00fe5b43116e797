"""genre.ui.jobs: what the Train page offers and how it describes runs."""
from __future__ import annotations

import time
from dataclasses import replace

import pytest

from genre import backbones, runs
from genre.features import FeatureConfig
from genre.models import ModelCard, ModelSpec
from genre.ui import jobs

REQUEST = runs.TrainRequest(root="/data/gtzan", spec=ModelSpec(hidden=(64, 32), epochs=40), split="artist",
                            valid_fraction=0.25, seed=3)


def test_describe_and_summary():
    assert jobs.describe(REQUEST) == ("hand-crafted features, 3 s segments · MLP 64,32 · dropout 0.3 · learning rate "
                                      "0.001 · batch 64 · By artist, 25% held out · seed 3")
    assert jobs.summary(REQUEST) == "hand-crafted 3 s · MLP 64,32 · artist split · 40 epochs · seed 3"
    lists = replace(REQUEST, split="lists", config=jobs.feature_config("MSD_musicnn"))
    assert jobs.describe(lists).startswith("MSD_musicnn embeddings") and jobs.describe(lists).endswith(
        "List files (splits/) · seed 3")


def test_state_labels_and_scores():
    snap = runs.RunSnapshot(id="0123456789", request=REQUEST)
    assert jobs.state_label(replace(snap, queue_position=2)) == "queued (2nd in line)"
    assert jobs.state_label(replace(snap, state=runs.RUNNING)) == "starting"
    assert jobs.state_label(replace(snap, state=runs.RUNNING, phase="features", progress=(5, 18))) == \
        "extracting features 5/18"
    history = ({"epoch": 1, "val_accuracy": 0.4}, {"epoch": 2, "val_accuracy": 0.55}, {"epoch": 3, "val_accuracy": 0.5})
    training = replace(snap, state=runs.RUNNING, phase="training", history=history)
    assert jobs.state_label(training) == "training · epoch 3 of 40"
    assert jobs.score(training) == "55% validation accuracy (segments)" and jobs.score(snap) == "—"
    assert jobs.state_label(replace(training, state=runs.STOPPING)) == "stopping after this epoch"
    card = ModelCard(labels=["a", "b"], feature_config=FeatureConfig().to_dict(), spec={},
                     metrics={"validation": {"accuracy": 0.625, "balanced_accuracy": 0.5}})
    done = replace(training, state=runs.DONE, card=card)
    assert jobs.state_label(done) == "done · not saved" and done.unsaved
    assert jobs.score(done) == "62% accuracy, 50% balanced (clips)"
    assert jobs.state_label(replace(done, saved_as=("x", "y"))) == "done · saved as x, y"
    assert jobs.state_label(replace(snap, state=runs.FAILED)) == "failed"


def test_when():
    now = time.mktime((2026, 11, 30, 15, 0, 0, 0, 0, -1))
    assert jobs.when(now - 60, now=now) == "14:59:00"
    assert jobs.when(now - 2 * 86400, now=now) == "2026-11-28 15:00"
    assert jobs.when(None) == "—"


@pytest.mark.parametrize("n, text", [(1, "1st"), (2, "2nd"), (3, "3rd"), (4, "4th"), (11, "11th"), (12, "12th"),
                                     (13, "13th"), (21, "21st"), (102, "102nd")])
def test_ordinal(n, text):
    assert jobs.ordinal(n) == text


def test_parse_units():
    assert jobs.parse_units("256,128") == (256, 128)
    assert jobs.parse_units(" 64 ; 32 ") == (64, 32)
    for bad in ("", "a,b", "0", "12.5"):
        with pytest.raises(ValueError):
            jobs.parse_units(bad)


def test_split_difference():
    same = {"kind": "artist", "valid_clip_ids": ["a", "b"]}
    assert jobs.split_difference(same, dict(same)) is None
    other = jobs.split_difference(same, {"kind": "lists", "valid_clip_ids": ["b", "c"]})
    assert "artist split vs lists split" in other and "1 of 2" in other
    assert "not directly comparable" in jobs.split_difference(same, {})


def test_feature_kinds_and_configs():
    kinds = jobs.feature_kinds()
    assert kinds == [jobs.HANDCRAFTED, *backbones.BACKBONES, jobs.FUSED]
    assert jobs.feature_config(jobs.HANDCRAFTED, segment_seconds=2.0) == FeatureConfig(segment_seconds=2.0)
    for kind in kinds[1:]:
        assert jobs.feature_config(kind).kind == kind
