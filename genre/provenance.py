"""Was a clip part of a model's training data? Answered from the split its card records.

A card's ``split`` lists the clip ids a model was trained on (``train_clip_ids``) and those it
was validated on (``valid_clip_ids``: not trained on, but early stopping chose the epoch by
them). Clip ids are the files' stems (``jazz.00012``), which name a GTZAN clip wherever the
dataset folder lies.
"""
from __future__ import annotations

from collections.abc import Mapping

TRAINED, VALIDATED = "train", "valid"


def clip_role(split: Mapping, clip_id: str) -> str | None:
    """:data:`TRAINED` if ``split`` (a model card's) lists ``clip_id`` among the training clips,
    :data:`VALIDATED` if among the validation clips, else None (the model never saw it, as far
    as its card says)."""
    if clip_id in set(split.get("train_clip_ids") or ()):
        return TRAINED
    if clip_id in set(split.get("valid_clip_ids") or ()):
        return VALIDATED
    return None
