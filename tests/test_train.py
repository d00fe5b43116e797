"""genre.train: a small MLP and a small CNN learn the tiny synthetic genres from cached features,
report every epoch, stop on request, and describe themselves in a complete model card."""
from __future__ import annotations

import threading
from dataclasses import replace

import numpy as np
import pytest

from genre.dataset import Split, discover, split_stratified
from genre.features import FeatureConfig
from genre.models import ModelSpec
from genre.store import FeatureStore
from genre.train import SegmentTable, clip_probabilities, few_clip_lift, stack_segments, train_model

CONFIG = FeatureConfig()
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn.t accept a copy keyword:DeprecationWarning")

LABELS = ["beats", "buzz", "tones"]


@pytest.fixture(scope="module")
def data(tiny_dataset, tmp_path_factory):
    df = discover(tiny_dataset)
    result = FeatureStore(tmp_path_factory.mktemp("train-cache")).build(df["path"], CONFIG, n_jobs=1)
    assert not result.failed
    return df, result.features, split_stratified(df, valid_fraction=0.34, seed=0)


@pytest.fixture(scope="module")
def mlp(data):
    df, feats, split = data
    epochs = []
    trained = train_model(df, feats, split, CONFIG, ModelSpec(hidden=(32,), epochs=10, batch_size=8, patience=10),
                          listener=lambda e, logs: epochs.append((e, logs)), data_info={"root": "tiny"})
    return trained, epochs


def test_mlp_learns_the_tiny_genres(data, mlp):
    df, _, split = data
    trained, epochs = mlp
    report = trained.report
    assert report["n"] == len(split.valid) == 7
    assert report["labels"] == LABELS
    assert report["accuracy"] >= 6 / 7  # three very different sounds: near-perfect on held-out clips
    assert set(report) >= {"n", "accuracy", "balanced_accuracy", "per_class", "labels", "confusion"}
    assert set(report["per_class"]) == set(LABELS)
    for m in report["per_class"].values():
        assert set(m) == {"precision", "recall", "f1", "support"} and 0 <= m["f1"] <= 1
    assert sum(m["support"] for m in report["per_class"].values()) == 7
    confusion = np.array(report["confusion"])
    assert confusion.shape == (3, 3) and confusion.sum() == 7
    assert np.trace(confusion) / 7 == pytest.approx(report["accuracy"])


def test_every_epoch_is_reported(mlp):
    trained, epochs = mlp
    assert [e for e, _ in epochs] == list(range(1, 11))
    assert all({"loss", "accuracy", "val_loss", "val_accuracy"} <= set(logs) for _, logs in epochs)
    assert all(isinstance(v, float) for _, logs in epochs for v in logs.values())
    assert epochs[-1][1]["loss"] < epochs[0][1]["loss"]  # it learned something
    assert trained.card.history["loss"] == [logs["loss"] for _, logs in epochs]
    assert not trained.stopped_early


def test_the_card_describes_the_model(data, mlp):
    df, feats, split = data
    card = mlp[0].card
    assert card.labels == LABELS and card.input == "rows"
    assert card.feature_config == CONFIG.to_dict() and card.config == CONFIG
    assert card.spec["hidden"] == [32] and card.spec["family"] == "mlp"
    assert card.feature_names == feats[df["path"][0]].names and len(card.feature_names) == 359
    assert sorted(card.split["train_clip_ids"]) == sorted(df.iloc[split.train]["clip_id"])
    assert sorted(card.split["valid_clip_ids"]) == sorted(df.iloc[split.valid]["clip_id"])
    assert card.split["kind"] == "stratified"
    assert card.metrics["validation"] == mlp[0].report and card.metrics["epochs_run"] == 10
    assert card.data == {"root": "tiny"}
    assert {"keras", "librosa", "numpy"} <= set(card.versions)


def test_normalisation_is_adapted_on_the_training_side_only(data, mlp):
    df, feats, split = data
    norm = mlp[0].keras_model.get_layer("normalize")
    train_rows = stack_segments(df, feats, split.train, LABELS).x
    all_rows = stack_segments(df, feats, np.arange(len(df)), LABELS).x
    mean = np.asarray(norm.mean).reshape(-1)
    assert np.allclose(mean, train_rows.mean(axis=0), rtol=1e-4, atol=1e-3)
    assert not np.allclose(mean, all_rows.mean(axis=0), rtol=1e-4, atol=1e-3)


def test_small_cnn_on_log_mel_patches(data):
    df, feats, split = data
    trained = train_model(df, feats, split, CONFIG, ModelSpec(family="cnn", hidden=(4, 8), epochs=3, batch_size=8))
    assert trained.card.input == "log_mel" and trained.card.feature_names == []
    assert trained.keras_model.inputs[0].shape[1:] == (128, 129)
    assert trained.report["n"] == 7 and len(trained.card.history["loss"]) == 3
    probs = trained.keras_model.predict(feats[df["path"][0]].log_mel.astype(np.float32), verbose=0)
    assert probs.shape == (1, 3) and probs.sum() == pytest.approx(1.0, abs=1e-5)


def test_stop_ends_training_after_the_current_epoch(data):
    df, feats, split = data
    stop = threading.Event()
    seen = []

    def listener(epoch, logs):
        seen.append(epoch)
        if epoch == 2:
            stop.set()

    trained = train_model(df, feats, split, CONFIG, ModelSpec(hidden=(8,), epochs=50, batch_size=8),
                          listener=listener, stop=stop)
    assert seen == [1, 2] and trained.stopped_early
    assert trained.card.metrics["stopped_by_user"] and trained.card.metrics["epochs_run"] == 2


def test_a_leaky_split_is_refused(data):
    df, feats, _ = data
    with pytest.raises(ValueError, match="both sides"):
        train_model(df, feats, Split(np.arange(10), np.arange(8, 18)), CONFIG, ModelSpec(epochs=1))


def test_stack_segments_and_clip_probabilities(data):
    df, feats, _ = data
    table = stack_segments(df, feats, [0, 7, 13], LABELS)
    assert table.x.shape == (3, 359) and table.clip.tolist() == [0, 7, 13]
    assert [LABELS[i] for i in table.y] == df.iloc[[0, 7, 13]]["label"].tolist()
    with pytest.raises(ValueError, match="no clip on this side"):
        stack_segments(df, {}, [0, 1], LABELS)

    probs = np.array([[1.0, 0.0], [0.0, 1.0], [0.2, 0.8], [0.6, 0.4]])
    ids, per_clip = clip_probabilities(probs, np.array([5, 5, 2, 5]))
    assert ids.tolist() == [2, 5]
    assert np.allclose(per_clip, [[0.2, 0.8], [1.6 / 3, 1.4 / 3]])


def test_few_clip_lift_raises_only_labels_under_the_median():
    """log(median / clips) for a label of fewer clips than the median label, per clip not segment."""
    clips = np.repeat(np.arange(40), 10)  # 40 clips of 10 segments: 16, 16, 3 and 5 clips per label
    y = np.repeat([0] * 16 + [1] * 16 + [2] * 3 + [3] * 5, 10)
    lift = few_clip_lift(SegmentTable(np.zeros((len(y), 1)), y, clips), np.arange(4))
    assert np.allclose(lift, [0, 0, np.log(10.5 / 3), np.log(10.5 / 5)])
    even = SegmentTable(np.zeros((40, 1)), np.repeat([0, 1], 20), np.repeat(np.arange(8), 5))
    assert np.allclose(few_clip_lift(even, np.array([0, 1])), 0)


def test_logistic_regression_is_sklearns_fit_inside_a_keras_model(data, tmp_path):
    from scipy.special import softmax
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    from genre.models import load_model, read_card, save_model

    df, feats, split = data
    spec = ModelSpec(family="logreg", hidden=(), l2=1e-2, epochs=500)
    reported = []
    trained = train_model(df, feats, split, CONFIG, spec, listener=lambda e, logs: reported.append((e, logs)))
    assert trained.report["accuracy"] == 1.0
    assert [e for e, _ in reported] == [1] and set(reported[0][1]) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    train = stack_segments(df, feats, split.train, LABELS)
    scaler = StandardScaler().fit(train.x)
    reference = LogisticRegression(C=1 / (2 * spec.l2 * len(train.x)), class_weight="balanced", max_iter=500)
    reference.fit(scaler.transform(train.x), train.y)
    valid = stack_segments(df, feats, split.valid, LABELS)
    ours = trained.keras_model.predict(valid.x, verbose=0)
    lifted = reference.decision_function(scaler.transform(valid.x)) + few_clip_lift(train, reference.classes_)
    assert np.allclose(ours, softmax(lifted, axis=1), atol=1e-4)
    plain = train_model(df, feats, split, CONFIG, replace(spec, logit_adjust=False)).keras_model
    assert np.allclose(plain.predict(valid.x, verbose=0), reference.predict_proba(scaler.transform(valid.x)), atol=1e-4)
    saved = save_model(trained.keras_model, trained.card, tmp_path / "logreg")
    assert np.allclose(load_model(saved).keras_model.predict(valid.x, verbose=0), ours, atol=1e-6)
    assert read_card(saved).spec["family"] == "logreg"
