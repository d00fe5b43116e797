"""Fit a model on cached features with callbacks that report every epoch to any listener.

Training happens on segments (every segment of a training clip is one example, class-weighted
so rare genres count as much as common ones); validation metrics are per clip, averaging the
segment probabilities, on the validation side only.
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.utils.class_weight import compute_class_weight

from genre.dataset import Split
from genre.evaluate import classification_report
from genre.features import FeatureConfig
from genre.clip import ClipFeatures
from genre.models import ModelCard, ModelSpec, build_cnn, build_logistic, build_mlp

EpochListener = Callable[[int, dict], None]
"""listener(epoch_number_from_1, logs) with loss, accuracy, val_loss, val_accuracy."""


@dataclass
class SegmentTable:
    """Stacked examples of some clips: ``x`` (n_segments, ...) float32, ``y`` label index per
    segment, ``clip`` row position (in the dataset table) per segment."""

    x: np.ndarray
    y: np.ndarray
    clip: np.ndarray


def stack_segments(df: pd.DataFrame, features: dict[str, ClipFeatures], rows: Sequence[int],
                   labels: Sequence[str], *, input: str = "rows") -> SegmentTable:
    """Stack the segments of table rows ``rows`` that have features (others are skipped)."""
    index = {lab: i for i, lab in enumerate(labels)}
    xs, ys, clips = [], [], []
    for r in rows:
        feats = features.get(df.iloc[r]["path"])
        if feats is None:
            continue
        x = feats.rows if input == "rows" else feats.log_mel
        xs.append(np.asarray(x, dtype=np.float32))
        ys.append(np.full(len(x), index[df.iloc[r]["label"]]))
        clips.append(np.full(len(x), r))
    if not xs:
        raise ValueError("no clip on this side of the split has features")
    return SegmentTable(np.concatenate(xs), np.concatenate(ys), np.concatenate(clips))


def clip_probabilities(segment_probs: np.ndarray, clip: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean segment probabilities per clip: (unique clip ids, (n_clips, n_classes))."""
    ids, inverse = np.unique(clip, return_inverse=True)
    sums = np.zeros((len(ids), segment_probs.shape[1]))
    np.add.at(sums, inverse, segment_probs)
    return ids, sums / np.bincount(inverse)[:, None]


def epoch_callback(listener: EpochListener | None, stop: threading.Event | None):
    """A Keras callback that forwards each epoch's logs to ``listener`` and ends training
    after the current epoch once ``stop`` is set."""
    import keras

    class EpochReporter(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if listener:
                listener(epoch + 1, {k: float(v) for k, v in (logs or {}).items()})
            if stop is not None and stop.is_set():
                self.model.stop_training = True

    return EpochReporter()


def few_clip_lift(table: SegmentTable, classes: np.ndarray) -> np.ndarray:
    """Logit lift per class of ``classes`` (label indices present in ``table``): log(median / n)
    for a class of n training clips below the median clip count of the classes, else 0.
    E.g. nine genres of 12-50 clips (median 16) and a new one of 5 clips: +1.16 for the new one."""
    clips = np.array([len(np.unique(table.clip[table.y == c])) for c in classes], dtype=float)
    return np.maximum(0.0, np.log(np.median(clips) / clips))


def fit_logistic(train: SegmentTable, valid: SegmentTable | None, n_classes: int, spec: ModelSpec,
                 *, seed: int = 0):
    """Fit a class-weighted (if ``spec.class_weight``) multinomial logistic regression on
    standardised rows with scikit-learn and return it as a Keras model (see
    :func:`genre.models.build_logistic`) with a one-entry Keras-style history of segment-level
    ``loss``, ``accuracy`` (and ``val_loss``, ``val_accuracy`` with a validation side).

    With ``spec.logit_adjust`` the intercepts of labels with few clips are raised afterwards
    (:func:`few_clip_lift`): measured by ``benchmarks/fewshot.py``, a genre taught from 5 clips is
    recalled on 0.66 of other artists' clips instead of 0.56, the other genres unchanged."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(train.x)
    c = 1.0 / (2 * spec.l2 * len(train.x)) if spec.l2 else 1e6
    clf = LogisticRegression(C=c, class_weight="balanced" if spec.class_weight else None, max_iter=spec.epochs,
                             random_state=seed).fit(scaler.transform(train.x), train.y)
    coef = np.zeros((n_classes, train.x.shape[1]))
    intercept = np.full(n_classes, -30.0)  # a genre absent from training is never predicted
    coef[clf.classes_], intercept[clf.classes_] = clf.coef_, clf.intercept_
    if spec.logit_adjust:
        intercept[clf.classes_] += few_clip_lift(train, clf.classes_)
    model = build_logistic(mean=scaler.mean_, variance=scaler.scale_ ** 2, coef=coef, intercept=intercept, spec=spec)
    history = {}
    for prefix, table in (("", train), ("val_", valid)):
        if table is not None:
            probs = model.predict(table.x, batch_size=1024, verbose=0)
            history[f"{prefix}loss"] = [float(log_loss(table.y, probs, labels=range(n_classes)))]
            history[f"{prefix}accuracy"] = [float(np.mean(probs.argmax(1) == table.y))]
    return model, history


@dataclass
class TrainResult:
    keras_model: object
    card: ModelCard
    report: dict
    stopped_early: bool


def train_model(df: pd.DataFrame, features: dict[str, ClipFeatures], split: Split, config: FeatureConfig,
                spec: ModelSpec, *, listener: EpochListener | None = None, stop: threading.Event | None = None,
                seed: int = 0, data_info: dict | None = None,
                phase: Callable[[str], None] | None = None) -> TrainResult:
    """Train ``spec`` on the training side of ``split``; early-stop on validation loss (best
    weights restored); return the model, its card and the clip-level validation report.
    With an empty validation side (a final fit on all data) it runs ``spec.epochs`` epochs and
    the report is empty. ``phase(name)`` is told when the network is built and the epochs begin
    ('training') or, for a logistic regression, when its fit begins ('fitting')."""
    import keras

    keras.utils.set_random_seed(seed)
    split.check_disjoint(df)
    labels = sorted(df.iloc[np.concatenate([split.train, split.valid])]["label"].unique())
    input_kind = "log_mel" if spec.family == "cnn" else "rows"
    train = stack_segments(df, features, split.train, labels, input=input_kind)
    valid = stack_segments(df, features, split.valid, labels, input=input_kind) if len(split.valid) else None
    present = np.unique(train.y)
    weights = compute_class_weight("balanced", classes=present, y=train.y)
    class_weight = {int(c): float(w) for c, w in zip(present, weights)}
    if spec.family == "logreg":
        if phase:
            phase("fitting")
        model, logs = fit_logistic(train, valid, len(labels), spec, seed=seed)
        if listener:
            listener(1, {k: v[0] for k, v in logs.items()})
        history = keras.callbacks.History()
        history.history = logs
    else:
        if spec.family == "cnn":
            model = build_cnn(train.x.shape[1:], len(labels), spec, train_patches=train.x)
        else:
            model = build_mlp(train.x.shape[1], len(labels), spec, train_rows=train.x)
        callbacks = [epoch_callback(listener, stop)]
        if phase:
            phase("training")
        if valid is not None:
            callbacks.insert(0, keras.callbacks.EarlyStopping(monitor="val_loss", patience=spec.patience,
                                                              restore_best_weights=True))
        history = model.fit(train.x, train.y, validation_data=(valid.x, valid.y) if valid is not None else None,
                            epochs=spec.epochs, batch_size=spec.batch_size, verbose=0,
                            class_weight=class_weight if spec.class_weight else None,
                            callbacks=callbacks)
    report, valid_ids = {}, []
    if valid is not None:
        probs = model.predict(valid.x, batch_size=256, verbose=0)
        ids, clip_probs = clip_probabilities(probs, valid.clip)
        report = classification_report(df.iloc[ids]["label"].tolist(),
                                       [labels[i] for i in clip_probs.argmax(1)], labels)
        valid_ids = df.iloc[ids]["clip_id"].tolist()
    epochs_run = spec.epochs if spec.family == "logreg" else len(history.history.get("loss", []))
    first = next(iter(features.values()))
    card = ModelCard(
        labels=labels, feature_config=config.to_dict(), spec=spec.to_dict(), input=input_kind,
        split={**split.info, "train_clip_ids": df.iloc[np.unique(train.clip)]["clip_id"].tolist(),
               "valid_clip_ids": valid_ids},
        metrics={"validation": report, "epochs_run": epochs_run,
                 "best_epoch": (int(np.argmin(history.history["val_loss"])) + 1
                                if valid is not None and spec.family != "logreg" else epochs_run),
                 "stopped_by_user": bool(stop is not None and stop.is_set())},
        history={k: [float(v) for v in vals] for k, vals in history.history.items()},
        data=data_info or {}, feature_names=first.names if input_kind == "rows" else [],
    )
    return TrainResult(model, card, report, stopped_early=epochs_run < spec.epochs)
