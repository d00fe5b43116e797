"""genre.provenance: was a clip in a model's training or validation data (its card's split)?"""
from __future__ import annotations

import json

from genre.models import DEFAULT_MODEL_DIR
from genre.provenance import TRAINED, VALIDATED, clip_role


def test_clip_role_reads_the_cards_split():
    split = {"kind": "artist", "train_clip_ids": ["jazz.00001", "rock.00002"], "valid_clip_ids": ["jazz.00003"]}
    assert clip_role(split, "rock.00002") == TRAINED
    assert clip_role(split, "jazz.00003") == VALIDATED
    assert clip_role(split, "jazz.00004") is None
    assert clip_role({}, "jazz.00001") is None  # a card without a split knows nothing


def test_the_shipped_model_was_trained_on_every_held_clip():
    split = json.loads((DEFAULT_MODEL_DIR / "card.json").read_text())["split"]
    assert clip_role(split, "blues.00000") == TRAINED and clip_role(split, "rock.00010") is None  # not in the subset we hold
