"""What the Train page offers and how it describes training runs, in plain text (no Streamlit).

The runs themselves (records, worker processes, the queue) live in :mod:`genre.runs`; this
module holds the choices the page offers (feature sets, layer sizes), the one-line summaries
of a run's settings, state and score, and what a running one is doing and how long it takes.
"""
from __future__ import annotations

import statistics
import time

import numpy as np

from genre import backbones, eta, runs
from genre.backbones import embeddings
from genre.features import FeatureConfig
from genre.models import ModelSpec
from genre.runs import TrainRequest

HANDCRAFTED, FUSED = backbones.HANDCRAFTED, embeddings.DEFAULT_KIND
SPLITS = {"artist": "By artist", "stratified": "Stratified random", "lists": "List files (splits/)"}


def describe(request: TrainRequest) -> str:
    """One line on everything a run trains with."""
    spec, config = request.spec, request.config
    features = (f"hand-crafted features, {config.segment_seconds:g} s segments" if config.kind == HANDCRAFTED
                else f"{config.kind} embeddings")
    split = SPLITS.get(request.split, request.split) + (
        "" if request.split == "lists" else f", {request.valid_fraction:.0%} held out")
    if spec.family == "logreg":
        model = f"logistic regression · L2 {spec.l2:g}"
    else:
        model = (f"{spec.family.upper()} {','.join(map(str, spec.hidden))} · dropout {spec.dropout:g} · "
                 f"learning rate {spec.learning_rate:g} · L2 {spec.l2:g} · batch {spec.batch_size}")
    return f"{features} · {model} · {split} · seed {request.seed}"


def summary(request: TrainRequest) -> str:
    """A short line for the list of runs: features, model, split, epochs."""
    spec, config = request.spec, request.config
    features = f"hand-crafted {config.segment_seconds:g} s" if config.kind == HANDCRAFTED else config.kind
    model = ("logistic regression" if spec.family == "logreg"
             else f"{spec.family.upper()} {','.join(map(str, spec.hidden))} · {spec.epochs} epochs")
    return f"{features} · {model} · {request.split} split · seed {request.seed}"


def ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def state_label(snap: runs.RunSnapshot) -> str:
    """Where a run is: 'queued (2nd in line)', 'training · epoch 12 of 60', 'done · not saved'…"""
    if snap.state == runs.QUEUED:
        return f"queued ({ordinal(snap.queue_position)} in line)"
    if snap.state == runs.RUNNING:
        if snap.phase == "training":
            return f"training · epoch {len(snap.history)} of {snap.total_epochs}"
        if snap.phase == "features":
            done, total = snap.progress
            return f"extracting features {done}/{total or '?'}"
        return {"loading": "loading TensorFlow", "building": "building the network",
                "fitting": "fitting the logistic regression"}.get(snap.phase, "starting")
    if snap.state == runs.STOPPING:
        return "stopping after this epoch"
    if snap.state == runs.DONE:
        return f"done · saved as {', '.join(snap.saved_as)}" if snap.saved_as else "done · not saved"
    return snap.state


def phase_text(snap: runs.RunSnapshot, *, threads: int, typical: float | None = None,
               now: float | None = None) -> tuple[str, float | None]:
    """What an active run is doing now and how long that takes, and its progress in [0, 1] when
    known (None otherwise). ``typical``: seconds the same phase took last time; ``threads``: the
    worker's CPU threads; ``now``: Unix time (default: the clock)."""
    now = time.time() if now is None else now
    elapsed = eta.duration(max(0.0, now - (snap.phase_started or snap.started or snap.created)))
    usual = f"; took {eta.duration(typical)} last time" if typical is not None else ""
    spec = snap.request.spec
    if snap.phase == "features":
        done, total = snap.progress
        info = snap.extraction
        missing, computed = int(info.get("missing", 0)), int(info.get("computed", 0))
        line = eta.extraction_line(features_title(snap.request.config.kind), done=done, total=total, missing=missing,
                                   kind=snap.request.config.kind, computed=computed, rate=info.get("rate", 0.0),
                                   eta=info.get("eta"))
        return line, (computed / missing if missing else done / max(total, 1))
    if snap.phase == "loading":
        return f"Loading TensorFlow and Keras in the training process… {elapsed} so far{usual}.", None
    if snap.phase == "building":
        return f"Stacking the training segments and building the network… {elapsed} so far{usual}.", None
    if snap.phase == "fitting":
        return (f"Fitting the logistic regression exactly (scikit-learn, up to {spec.epochs} solver iterations)… "
                f"{elapsed} so far{usual}.", None)
    if snap.phase == "training":
        k = len(snap.history)
        seconds = [h["seconds"] for h in snap.history if "seconds" in h]
        line = f"Epoch {k + 1} of at most {snap.total_epochs} running" if k < snap.total_epochs else "Finishing"
        if seconds:
            per = statistics.median(seconds[-10:])
            line += (f" · {per:.1f} s per epoch · at most {eta.duration(per * (snap.total_epochs - k))} left; "
                     f"early stopping ends it once the validation loss has not improved for {spec.patience} epochs")
        else:
            line += f"… {elapsed} so far"
        return line + ".", None
    return (f"Starting the training process (lower priority, {threads} CPU "
            f"thread{'s' if threads > 1 else ''})… {elapsed} so far.", None)


def score(snap: runs.RunSnapshot) -> str:
    """Best score so far: clip-level validation accuracy once done, else the best epoch's."""
    validation = (snap.card.metrics.get("validation") or {}) if snap.card else {}
    if "accuracy" in validation:
        return f"{validation['accuracy']:.0%} accuracy, {validation['balanced_accuracy']:.0%} balanced (clips)"
    best = snap.best_val_accuracy()
    return f"{best:.0%} validation accuracy (segments)" if best is not None else "—"


def when(timestamp: float | None, *, now: float | None = None) -> str:
    """'14:02:31' today, '2026-11-30 14:02' on another day, '—' for None (local time)."""
    if timestamp is None:
        return "—"
    today = time.strftime("%Y-%m-%d", time.localtime(now))
    day = time.strftime("%Y-%m-%d", time.localtime(timestamp))
    return time.strftime("%H:%M:%S" if day == today else "%Y-%m-%d %H:%M", time.localtime(timestamp))


def features_title(kind: str) -> str:
    """What to call a feature set before the word 'features': 'hand-crafted', 'MusiCNN (Million
    Song Dataset tags)'."""
    return "hand-crafted" if kind == HANDCRAFTED else backbones.title(kind)


def feature_kinds() -> list[str]:
    """Feature sets offered for training: hand-crafted, every registered backbone alone, and
    the fused kind of the shipped model."""
    return [HANDCRAFTED, *backbones.BACKBONES, FUSED]


def feature_config(kind: str, *, segment_seconds: float = 3.0) -> FeatureConfig:
    """The FeatureConfig of a feature set from :func:`feature_kinds`."""
    if kind == HANDCRAFTED:
        return FeatureConfig(segment_seconds=segment_seconds)
    return embeddings.backbone_config(kind)


def parse_units(text: str) -> tuple[int, ...]:
    """'256, 128' -> (256, 128); ValueError unless one or more positive whole numbers."""
    parts = [p for p in text.replace(";", ",").replace(" ", ",").split(",") if p]
    try:
        units = tuple(int(p) for p in parts)
    except ValueError:
        raise ValueError(f"layer sizes must be whole numbers separated by commas, not {text!r}") from None
    if not units or min(units) < 1:
        raise ValueError("give at least one layer size, each 1 or more (e.g. 256,128)")
    return units


RECOMMENDED_SEGMENT_SECONDS = 3.0
"""The hand-crafted segment length the recommended settings were cross-validated with."""


def is_recommended(kind: str, spec: ModelSpec | None, segment_seconds: float, recommendation) -> bool:
    """Whether features ``kind`` (hand-crafted ones cut into ``segment_seconds`` segments) and
    ``spec`` are exactly the settings of ``recommendation`` (a
    :class:`genre.train_defaults.Recommendation`), so its cross-validated figure applies."""
    return spec == recommendation.spec and (kind != HANDCRAFTED or segment_seconds == RECOMMENDED_SEGMENT_SECONDS)


def largest_confusion(report: dict) -> str | None:
    """'12 of 21 blues clips were taken for rock': the biggest off-diagonal cell of a validation
    report's confusion matrix (rows: true genre), or None when nothing was confused."""
    confusion, labels = np.asarray(report.get("confusion") or [[0]]), report.get("labels") or []
    off = confusion * (1 - np.eye(len(confusion), dtype=confusion.dtype))
    if not off.size or off.max() == 0:
        return None
    true, said = np.unravel_index(int(off.argmax()), off.shape)
    return f"{off[true, said]} of {confusion[true].sum()} {labels[true]} clips were taken for {labels[said]}"


def against_expectation(report: dict, request: TrainRequest, recommendation) -> str | None:
    """Where a finished run's validation accuracy falls against the cross-validated figure of
    its settings (a :class:`genre.train_defaults.Recommendation`); None when there is no figure
    for exactly these settings."""
    cv = recommendation.cv
    if cv is None or not is_recommended(request.config.kind, request.spec, request.config.segment_seconds,
                                        recommendation):
        return None
    run, mean, spread = 100 * report["accuracy"], 100 * cv.accuracy, 100 * cv.accuracy_sd
    figure = f"the cross-validated {mean:.0f} % ± {spread:.0f} of these settings (GTZAN's development clips)"
    if abs(run - mean) <= spread:
        return f"This run's {run:.0f} % is within the usual spread of {figure}."
    if run > mean:
        return f"This run's {run:.0f} % is above {figure}: this split's validation artists were easy ones."
    confused = largest_confusion(report)
    return (f"This run's {run:.0f} % is below {figure}: one split of a few artists can be a hard one"
            + (f"; here {confused}." if confused else "."))
