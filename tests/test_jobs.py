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
                                      "0.001 · L2 0.0001 · batch 64 · By artist, 25% held out · seed 3")
    assert jobs.summary(REQUEST) == "hand-crafted 3 s · MLP 64,32 · 40 epochs · artist split · seed 3"
    linear = replace(REQUEST, config=jobs.feature_config("mn04"), spec=ModelSpec(family="logreg", hidden=(), l2=3e-3))
    assert jobs.describe(linear) == ("mn04 embeddings · logistic regression · L2 0.003 · By artist, 25% held out · "
                                     "seed 3")
    assert jobs.summary(linear) == "mn04 · logistic regression · artist split · seed 3"
    lists = replace(REQUEST, split="lists", config=jobs.feature_config("MSD_musicnn"))
    assert jobs.describe(lists).startswith("MSD_musicnn embeddings") and jobs.describe(lists).endswith(
        "List files (splits/) · seed 3")


def test_state_labels_and_scores():
    snap = runs.RunSnapshot(id="0123456789", request=REQUEST)
    assert jobs.state_label(replace(snap, queue_position=2)) == "queued (2nd in line)"
    assert jobs.state_label(replace(snap, state=runs.RUNNING)) == "starting"
    assert jobs.state_label(replace(snap, state=runs.RUNNING, phase="features", progress=(5, 18))) == \
        "extracting features 5/18"
    assert jobs.state_label(replace(snap, state=runs.RUNNING, phase="loading")) == "loading TensorFlow"
    assert jobs.state_label(replace(snap, state=runs.RUNNING, phase="fitting")) == "fitting the logistic regression"
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


def test_feature_kinds_and_configs():
    kinds = jobs.feature_kinds()
    assert kinds == [jobs.HANDCRAFTED, *backbones.BACKBONES, jobs.FUSED]
    assert jobs.feature_config(jobs.HANDCRAFTED, segment_seconds=2.0) == FeatureConfig(segment_seconds=2.0)
    for kind in kinds[1:]:
        assert jobs.feature_config(kind).kind == kind


def test_phase_text_says_what_a_run_does_and_how_long_it_takes():
    now = 1_000_000.0
    snap = runs.RunSnapshot(id="0123456789", request=REQUEST, state=runs.RUNNING, created=now - 100, started=now - 90)
    text, fraction = jobs.phase_text(snap, threads=1, now=now)
    assert text.startswith("Starting the training process") and "1 CPU thread)" in text and fraction is None

    extracting = replace(snap, phase="features", phases=(("features", now - 20),), progress=(130, 370),
                         extraction={"missing": 120, "computed": 0, "rate": 0.0, "eta": 96.0})
    text, fraction = jobs.phase_text(extracting, threads=1, now=now)
    assert "features of 120 clips (250 more are cached): 0/120" in text and "about 2 min left (estimated from" in text
    assert fraction == 0.0
    going = replace(extracting, progress=(310, 370), extraction={"missing": 120, "computed": 60, "rate": 1.5,
                                                                  "eta": 40.0})
    text, fraction = jobs.phase_text(going, threads=1, now=now)
    assert "60/120 · 1.50 clips/s · about 40 s left" in text and fraction == 0.5
    assert text.startswith("Extracting hand-crafted features of 120 clips")
    cached = replace(extracting, extraction={"missing": 0}, progress=(185, 370))
    assert jobs.phase_text(cached, threads=1, now=now)[0] == \
        "Reading the cached hand-crafted features of 370 clips… 185/370"

    loading = replace(snap, phase="loading", phases=(("features", now - 60), ("loading", now - 12)))
    text, _ = jobs.phase_text(loading, threads=1, typical=30.0, now=now)
    assert text == "Loading TensorFlow and Keras in the training process… 12 s so far; took 30 s last time."
    fitting = replace(snap, phase="fitting", phases=(("fitting", now - 5),),
                      request=replace(REQUEST, spec=ModelSpec(family="logreg", hidden=(), epochs=500)))
    assert "up to 500 solver iterations)… 5 s so far." in jobs.phase_text(fitting, threads=1, now=now)[0]

    history = tuple({"epoch": i, "loss": 1.0, "seconds": 1.5} for i in range(1, 11))
    training = replace(snap, phase="training", phases=(("training", now - 15),), history=history)
    text, _ = jobs.phase_text(training, threads=1, now=now)
    assert text.startswith("Epoch 11 of at most 40 running · 1.5 s per epoch · at most 45 s left")
    assert "not improved for 10 epochs" in text


def test_phase_durations():
    snap = runs.RunSnapshot(id="0123456789", request=REQUEST, state=runs.DONE, finished=130.0,
                            phases=(("features", 100.0), ("loading", 110.0), ("training", 125.0)))
    assert snap.phase_seconds() == {"features": 10.0, "loading": 15.0, "training": 5.0}
    assert replace(snap, state=runs.RUNNING, finished=None).phase_seconds() == {"features": 10.0, "loading": 15.0}


def test_the_dataset_maps_extraction_bar_says_phase_rate_and_time_left(tmp_path, monkeypatch):
    """The Dataset map and Similar's index wait with the same words as a training run: reading the
    cache, or extracting N clips with the rate and time left once clips come."""
    from conftest import synth, write_wav
    from genre.store import FeatureStore
    from genre.ui import dataset_cache

    texts = []

    class Bar:
        def progress(self, value, text):
            texts.append(text)

    monkeypatch.setattr(dataset_cache.st, "progress", lambda value, text: (texts.append(text), Bar())[1])
    paths = [str(write_wav(tmp_path / f"{i}.wav", synth("tones", seed=i))) for i in range(3)]
    store = FeatureStore(tmp_path / "cache")
    store.build(paths[:1], FeatureConfig(), n_jobs=1)
    _, progress = dataset_cache.extraction_progress(paths, FeatureConfig(), store=store)
    assert texts[0].startswith("Extracting hand-crafted features of 2 clips (1 more are cached): 0/2 · about")
    store.build(paths, FeatureConfig(), n_jobs=1, progress=progress)
    assert "clips/s" in texts[-1] and texts[-1].endswith("They are cached for next time.")
    _, progress = dataset_cache.extraction_progress(paths, FeatureConfig(), store=store)
    assert texts[-1] == "Reading the cached hand-crafted features of 3 clips… 0/3"
