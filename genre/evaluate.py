"""Classification metrics on a held-out side: accuracy, balanced accuracy, per-class
precision/recall/F1 and the confusion matrix, as a JSON-ready dict and as text."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support


def classification_report(y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str]) -> dict:
    """Metrics of predicted vs true label names. ``confusion[i][j]`` counts true ``labels[i]``
    predicted as ``labels[j]``; per-class entries hold precision, recall, f1 and support."""
    labels = list(labels)
    y_true, y_pred = np.asarray(y_true, dtype=object), np.asarray(y_pred, dtype=object)
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0)
    present = [i for i, lab in enumerate(labels) if support[i] > 0]
    return {
        "n": int(len(y_true)),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "balanced_accuracy": float(np.mean([recall[i] for i in present])) if present else 0.0,
        "per_class": {
            lab: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
                  "support": int(support[i])}
            for i, lab in enumerate(labels)
        },
        "labels": labels,
        "confusion": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
    }


def format_report(report: dict) -> str:
    """Plain-text table of a :func:`classification_report`."""
    lines = [f"clips: {report['n']}   accuracy: {report['accuracy']:.3f}   "
             f"balanced accuracy: {report['balanced_accuracy']:.3f}", "",
             f"{'genre':<12}{'precision':>10}{'recall':>8}{'f1':>8}{'support':>9}"]
    for lab, m in report["per_class"].items():
        lines.append(f"{lab:<12}{m['precision']:>10.3f}{m['recall']:>8.3f}{m['f1']:>8.3f}{m['support']:>9d}")
    labels = report["labels"]
    lines += ["", "confusion (rows: true, columns: predicted)", " " * 12 + "".join(f"{lab[:5]:>6}" for lab in labels)]
    for lab, row in zip(labels, report["confusion"]):
        lines.append(f"{lab:<12}" + "".join(f"{v:>6d}" for v in row))
    return "\n".join(lines)

