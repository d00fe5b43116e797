"""What the Train page offers and how it describes training runs, in plain text (no Streamlit).

The runs themselves (records, worker processes, the queue) live in :mod:`genre.runs`; this
module holds the choices the page offers (feature sets, layer sizes), the one-line summaries of
a run's settings, state and score, and the comparison of two models' validation splits.
"""
from __future__ import annotations

import time

from genre import backbones, runs
from genre.backbones import embeddings
from genre.features import FeatureConfig
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
    return (f"{features} · {spec.family.upper()} {','.join(map(str, spec.hidden))} · dropout {spec.dropout:g} · "
            f"learning rate {spec.learning_rate:g} · batch {spec.batch_size} · {split} · seed {request.seed}")


def summary(request: TrainRequest) -> str:
    """A short line for the list of runs: features, model, split, epochs."""
    spec, config = request.spec, request.config
    features = f"hand-crafted {config.segment_seconds:g} s" if config.kind == HANDCRAFTED else config.kind
    return (f"{features} · {spec.family.upper()} {','.join(map(str, spec.hidden))} · "
            f"{request.split} split · {spec.epochs} epochs · seed {request.seed}")


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
        return "starting"
    if snap.state == runs.STOPPING:
        return "stopping after this epoch"
    if snap.state == runs.DONE:
        return f"done · saved as {', '.join(snap.saved_as)}" if snap.saved_as else "done · not saved"
    return snap.state


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


def split_difference(new: dict, old: dict) -> str | None:
    """Why the validation clips of two model cards' ``split`` differ, or None if identical."""
    new_ids, old_ids = set(new.get("valid_clip_ids", [])), set(old.get("valid_clip_ids", []))
    if new_ids and new_ids == old_ids:
        return None
    kinds = new.get("kind"), old.get("kind")
    shared = len(new_ids & old_ids)
    why = f"{kinds[0]} split vs {kinds[1]} split" if kinds[0] != kinds[1] else f"both {kinds[0]} splits"
    return (f"The validation clips differ ({why}; {shared} of {len(new_ids)} clips in common), "
            "so the numbers are not directly comparable.")
