"""Repeated artist-grouped cross-validation of a recipe (features + model spec), honestly.

Each outer fold's clips are never seen while fitting: early stopping watches an inner artist-grouped
split of the outer training side (a logistic regression, fitted without epochs, uses all of it), and the model of that fit is then measured on the outer fold
(clip level: mean of its segment probabilities). Repeating the folds with several seeds gives
``n_splits x len(seeds)`` estimates; their mean and a 95 % interval (mean +- 1.96 sd / sqrt(n), an
approximation: folds of one dataset are not independent) describe what to expect on unseen artists.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from genre.clip import ClipFeatures
from genre.dataset import Split, grouped_folds
from genre.evaluate import classification_report
from genre.features import FeatureConfig
from genre.models import ModelSpec
from genre.train import clip_probabilities, stack_segments, train_model


@dataclass
class CVResult:
    """Per-fold ``accuracy`` and ``balanced_accuracy`` (n_splits x n_seeds values, seed-major),
    ``best_epochs`` of each fit, and ``recall``: per genre, the recall over all clips (each clip is
    in exactly one outer fold per seed), averaged over seeds."""

    accuracy: list[float] = field(default_factory=list)
    balanced_accuracy: list[float] = field(default_factory=list)
    best_epochs: list[int] = field(default_factory=list)
    recall: dict[str, float] = field(default_factory=dict)
    n_splits: int = 0
    seeds: tuple[int, ...] = ()

    @staticmethod
    def interval(values: Sequence[float]) -> tuple[float, float, float]:
        """(mean, low, high): the mean and its approximate 95 % interval."""
        v = np.asarray(values, dtype=float)
        half = 1.96 * v.std(ddof=1) / np.sqrt(len(v)) if len(v) > 1 else float("nan")
        return float(v.mean()), float(v.mean() - half), float(v.mean() + half)

    def summary(self, key: str = "balanced_accuracy") -> str:
        """'0.786 (95 % interval 0.763-0.809, sd 0.045, 15 folds)'."""
        values = getattr(self, key)
        mean, low, high = self.interval(values)
        return f"{mean:.3f} (95 % interval {low:.3f}-{high:.3f}, sd {np.std(values):.3f}, {len(values)} folds)"

    def to_dict(self) -> dict:
        out = {"folds": self.n_splits, "seeds": list(self.seeds), "grouping": "artist",
               "early_stopping": "inner artist-grouped split of each training side", "recall": self.recall}
        for key in ("accuracy", "balanced_accuracy"):
            mean, low, high = self.interval(getattr(self, key))
            out[key] = {"mean": mean, "ci95": [low, high], "std": float(np.std(getattr(self, key))),
                        "per_fold": list(getattr(self, key))}
        return out


def inner_split(df: pd.DataFrame, train: np.ndarray, *, seed: int, spec: ModelSpec | None = None,
                n_splits: int = 5) -> Split:
    """What a fit on the rows ``train`` (positions in ``df``) uses: an artist-grouped split of them
    for early stopping, or all of them for a family fitted without epochs ('logreg')."""
    if spec is not None and spec.family == "logreg":
        return Split(train, np.array([], dtype=int), {"kind": "whole training side", "seed": seed})
    fold = grouped_folds(df.iloc[train].reset_index(drop=True), n_splits=n_splits, seed=seed)[0]
    return Split(train[fold.train], train[fold.valid], {"kind": "inner artist fold", "seed": seed})


def predict_clips(model, df: pd.DataFrame, features: Mapping[str, ClipFeatures], rows: np.ndarray,
                  labels: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(row positions, (n_clips, n_labels) clip probabilities) of ``model`` on table rows ``rows``."""
    table = stack_segments(df, features, rows, labels)
    probs = model.predict(table.x, batch_size=512, verbose=0)
    return clip_probabilities(probs, table.clip)


def cross_validate(df: pd.DataFrame, features: Mapping[str, ClipFeatures], config: FeatureConfig, spec: ModelSpec,
                   *, n_splits: int = 5, seeds: Sequence[int] = (0, 1, 2), progress=None) -> CVResult:
    """Repeated artist-grouped CV of ``spec`` on ``features`` (see the module docstring).
    ``progress(done, total)`` is called after each fit."""
    labels = sorted(df["label"].unique())
    result = CVResult(n_splits=n_splits, seeds=tuple(seeds))
    recalls = []
    total = n_splits * len(seeds)
    for seed in seeds:
        true, pred = [], []
        for fold in grouped_folds(df, n_splits=n_splits, seed=seed):
            fit = train_model(df, dict(features), inner_split(df, fold.train, seed=seed, spec=spec), config, spec,
                              seed=seed)
            ids, probs = predict_clips(fit.keras_model, df, features, fold.valid, fit.card.labels)
            fold_true = df.iloc[ids]["label"].tolist()
            fold_pred = [fit.card.labels[i] for i in probs.argmax(1)]
            report = classification_report(fold_true, fold_pred, labels)
            result.accuracy.append(report["accuracy"])
            result.balanced_accuracy.append(report["balanced_accuracy"])
            result.best_epochs.append(int(fit.card.metrics["best_epoch"]))
            true += fold_true
            pred += fold_pred
            if progress:
                progress(len(result.accuracy), total)
        recalls.append({lab: m["recall"] for lab, m in classification_report(true, pred, labels)["per_class"].items()})
    result.recall = {lab: float(np.mean([r[lab] for r in recalls])) for lab in labels}
    return result
