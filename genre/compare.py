"""Like-for-like comparison of a training run's model with another model: both scored on the
run's own validation clips (clip level: mean of the segment probabilities), with how many of
those clips the other model was trained on, since its score on them is then inflated; and, for a
run that learned from the person's examples, how each model answers those examples.

Used by the training worker (:mod:`genre.run_worker`), never by a page directly: it loads Keras
models and may extract the other model's features.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from genre.dataset import discover_all
from genre.evaluate import classification_report
from genre.store import FeatureStore


def scores(true: Sequence[str], predicted: Sequence[str], labels: Sequence[str]) -> dict:
    """``accuracy`` and ``balanced_accuracy`` (mean recall over the genres present), in [0, 1]."""
    report = classification_report(list(true), list(predicted), list(labels))
    return {"accuracy": report["accuracy"], "balanced_accuracy": report["balanced_accuracy"]}


def compare_on_validation(run_model_dir: str | Path, other_model_dir: str | Path, *, roots: Sequence[str | Path],
                          threads: int = 1, progress: Callable[[int, int, str], None] | None = None) -> dict:
    """Score the run's model (``run_model_dir``) and another saved model on the run's validation
    clips found under ``roots`` (the run's dataset folders). ``progress(done, total, path)``
    follows the other model's feature extraction (cached clips are quick).

    Returns ``model`` (the other's name), ``n_valid`` (validation clips found), ``unknown_labels``
    (their genres the other model does not know: those clips are left out), ``failed`` (clips
    either model's features failed for), ``n`` (clips scored by both), ``trained_on`` (how many of
    them the other model's card lists as training clips), ``this_run`` and ``other`` (see
    :func:`scores`) and ``unseen``: the same two scores on the clips the other model never trained
    on (``None`` unless some clips are of each kind). ``n`` is 0 when the other model knows none of
    these genres. Raises ModelError for a model that cannot be loaded, ValueError if none of the
    validation clips is under ``roots`` any more."""
    from genre.models import load_model
    from genre.predict import predict_features

    run, other = load_model(run_model_dir), load_model(other_model_dir)
    clips = discover_all(roots)
    valid = clips[clips["clip_id"].isin(set(run.card.split.get("valid_clip_ids", [])))]
    if valid.empty:
        raise ValueError(f"none of this run's validation clips is in {' or '.join(map(str, roots))} any more")
    known = valid[valid["label"].isin(other.labels)]
    result = {"model": other.name, "n_valid": len(valid),
              "unknown_labels": sorted(set(valid["label"]) - set(other.labels)), "failed": 0,
              "n": 0, "trained_on": 0, "this_run": None, "other": None, "unseen": None}
    if known.empty:
        return result
    store = FeatureStore()
    ours = store.build(known["path"], run.card.config, n_jobs=threads).features
    theirs = store.build(known["path"], other.card.config, n_jobs=threads, progress=progress).features
    usable = known[known["path"].isin(ours) & known["path"].isin(theirs)]
    result["failed"] = len(known) - len(usable)
    if usable.empty:
        return result
    true = usable["label"].tolist()
    by_run = [predict_features(run, ours[p]).genre for p in usable["path"]]
    by_other = [predict_features(other, theirs[p]).genre for p in usable["path"]]
    trained = usable["clip_id"].isin(set(other.card.split.get("train_clip_ids", []))).to_numpy()
    labels = run.labels
    result.update(n=len(usable), trained_on=int(trained.sum()), this_run=scores(true, by_run, labels),
                  other=scores(true, by_other, labels))
    if trained.any() and not trained.all():
        unseen = [i for i, seen in enumerate(trained) if not seen]
        true_unseen = [true[i] for i in unseen]
        result["unseen"] = {"n": len(unseen), "this_run": scores(true_unseen, [by_run[i] for i in unseen], labels),
                            "other": scores(true_unseen, [by_other[i] for i in unseen], labels)}
    return result


def compare_on_examples(run_model_dir: str | Path, other_model_dir: str | Path, *, examples_root: str | Path,
                        threads: int = 1) -> dict:
    """How both models answer the person's examples (the clips under ``examples_root``): for
    each model, how many it answers with the person's genre. The run trained on most of them, so
    the clips it never trained on (its validation side) are counted apart: ``n`` examples,
    ``trained_on`` by the run, ``this_run`` / ``other`` answered as taught (all examples),
    ``this_run_unseen`` / ``other_unseen`` on the ``n_unseen`` examples the run never trained on.
    ``other`` counts an example of a genre the other model does not know as not answered."""
    from genre.models import load_model
    from genre.predict import predict_features

    run, other = load_model(run_model_dir), load_model(other_model_dir)
    clips = discover_all([examples_root])
    store = FeatureStore()
    ours = store.build(clips["path"], run.card.config, n_jobs=threads).features
    theirs = store.build(clips["path"], other.card.config, n_jobs=threads).features
    usable = clips[clips["path"].isin(ours) & clips["path"].isin(theirs)]
    trained = usable["clip_id"].isin(set(run.card.split.get("train_clip_ids", []))).to_numpy()
    as_taught_run = [predict_features(run, ours[p]).genre == label for p, label in zip(usable["path"], usable["label"])]
    as_taught_other = [predict_features(other, theirs[p]).genre == label
                       for p, label in zip(usable["path"], usable["label"])]
    unseen = ~trained
    return {"n": len(usable), "trained_on": int(trained.sum()), "this_run": int(sum(as_taught_run)),
            "other": int(sum(as_taught_other)), "n_unseen": int(unseen.sum()),
            "this_run_unseen": int(sum(a for a, u in zip(as_taught_run, unseen) if u)),
            "other_unseen": int(sum(a for a, u in zip(as_taught_other, unseen) if u))}
