"""genre.models: builders, the model directory (model.keras + card.json) written atomically and
read back identically, safe names, and clear errors for cards this code cannot honour."""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from genre.features import CONFIG_VERSION, FeatureConfig
from genre.models import (
    CARD_FILE, MODEL_FILE, ModelCard, ModelError, ModelSpec, build_cnn, build_mlp, list_models, load_model,
    read_card, sanitize_name, save_model,
)

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn.t accept a copy keyword:DeprecationWarning")

LABELS = ["beats", "buzz", "tones"]
RNG = np.random.default_rng(0)
ROWS = (RNG.standard_normal((40, 12)) * [1, 5, 10, 50, 1, 1, 2, 3, 4, 5, 6, 100] + 7).astype(np.float32)


def _card(**changes) -> ModelCard:
    base = dict(labels=LABELS, feature_config=FeatureConfig().to_dict(), spec=ModelSpec(hidden=(8,)).to_dict(),
                feature_names=[f"f{i}" for i in range(12)], metrics={"validation": {"accuracy": 0.5}})
    return ModelCard(**{**base, **changes})


@pytest.fixture(scope="module")
def mlp():
    return build_mlp(12, 3, ModelSpec(hidden=(16, 8), dropout=0.1), train_rows=ROWS)


@pytest.fixture
def saved(mlp, tmp_path) -> Path:
    return save_model(mlp, _card(), tmp_path / "models" / "first")


def test_builders_give_softmax_networks(mlp):
    probs = mlp.predict(ROWS, verbose=0)
    assert probs.shape == (40, 3) and np.allclose(probs.sum(axis=1), 1, atol=1e-5)
    norm = mlp.get_layer("normalize")  # adapted on the rows it was given
    assert np.allclose(np.asarray(norm.mean).reshape(-1), ROWS.mean(axis=0), rtol=1e-4)
    assert [layer.name for layer in mlp.layers if layer.name.startswith("dense")] == ["dense_0", "dense_1"]
    patches = RNG.standard_normal((6, 32, 20)).astype(np.float32)
    cnn = build_cnn((32, 20), 4, ModelSpec(family="cnn", hidden=(4, 8)), train_patches=patches)
    assert cnn.predict(patches, verbose=0).shape == (6, 4)
    with pytest.raises(ValueError, match="unknown model family 'rnn'"):
        ModelSpec(family="rnn")
    assert ModelSpec(hidden=[3.0, 2]).hidden == (3, 2)


def test_save_writes_a_model_directory_and_load_round_trips(mlp, saved):
    assert sorted(p.name for p in saved.iterdir()) == sorted([MODEL_FILE, CARD_FILE])
    assert not [p for p in saved.parent.iterdir() if p.name.startswith(".")]  # no temporary left
    stored = json.loads((saved / CARD_FILE).read_text())
    assert stored == json.loads(json.dumps(asdict(_card()) | {"created": stored["created"],
                                                              "versions": stored["versions"]}))
    loaded = load_model(saved)
    assert loaded.labels == LABELS and loaded.name == "first" and loaded.path == saved
    assert loaded.card.config == FeatureConfig()
    assert np.array_equal(loaded.keras_model.predict(ROWS, verbose=0), mlp.predict(ROWS, verbose=0))
    assert read_card(saved).labels == LABELS


def test_save_refuses_to_overwrite_unless_asked(mlp, saved):
    with pytest.raises(ModelError, match="'first' already exists"):
        save_model(mlp, _card(labels=["a", "b", "c"]), saved)
    assert read_card(saved).labels == LABELS
    save_model(mlp, _card(labels=["a", "b", "c"]), saved, overwrite=True)
    assert read_card(saved).labels == ["a", "b", "c"]
    assert sorted(p.name for p in saved.parent.iterdir()) == ["first"]  # old copy cleaned up


def test_list_models_ignores_temporary_and_incomplete_dirs(mlp, saved):
    root = saved.parent
    save_model(mlp, _card(), root / "default")
    save_model(mlp, _card(), root / "another")
    (root / ".tmp-half-written-abc").mkdir()
    (root / ".tmp-half-written-abc" / CARD_FILE).write_text(json.dumps(asdict(_card())))
    (root / ".tmp-half-written-abc" / MODEL_FILE).write_bytes(b"partial")
    (root / "no-weights").mkdir()
    (root / "no-weights" / CARD_FILE).write_text(json.dumps(asdict(_card())))
    (root / "notes.txt").write_text("not a model")
    assert [p.name for p in list_models(root)] == ["default", "another", "first"]
    assert list_models(root / "missing") == []


@pytest.mark.parametrize("given, expected", [
    ("my model", "my-model"),
    ("../../etc/passwd", "etc-passwd"),
    ("../evil", "evil"),
    ("a/b\\c", "a-b-c"),
    ("  Rock & Roll v2!  ", "Rock-Roll-v2"),
    ("..hidden", "hidden"),
    ("x" * 100, "x" * 64),
    ("näive", "n-ive"),
])
def test_sanitize_name(given, expected):
    name = sanitize_name(given)
    assert name == expected
    assert "/" not in name and "\\" not in name and ".." not in name and not name.startswith(".")


@pytest.mark.parametrize("bad", ["", "   ", "../..", "///", "..."])
def test_sanitize_name_refuses_nothing_usable(bad):
    with pytest.raises(ModelError, match="at least one letter or digit"):
        sanitize_name(bad)


def _edit_card(path: Path, change) -> None:
    data = json.loads((path / CARD_FILE).read_text())
    change(data)
    (path / CARD_FILE).write_text(json.dumps(data))


def test_a_feature_config_this_code_cannot_reproduce_is_refused(saved):
    _edit_card(saved, lambda d: d["feature_config"].update(harmonic_ratio=0.5))
    with pytest.raises(ModelError) as err:
        load_model(saved)
    assert "first: this code cannot reproduce the model's features" in str(err.value)
    assert "harmonic_ratio" in str(err.value)

    _edit_card(saved, lambda d: (d["feature_config"].pop("harmonic_ratio"),
                                 d["feature_config"].update(version=CONFIG_VERSION + 1)))
    with pytest.raises(ModelError, match=f"version {CONFIG_VERSION + 1} is newer than this code"):
        read_card(saved)

    _edit_card(saved, lambda d: d["feature_config"].update(version=CONFIG_VERSION, groups=["mfcc", "chords"]))
    with pytest.raises(ModelError, match="unknown feature groups"):
        read_card(saved)


@pytest.mark.parametrize("damage, words", [
    (lambda p: (p / CARD_FILE).write_text("{not json"), "not valid JSON"),
    (lambda p: (p / CARD_FILE).write_text("[1, 2]"), "does not describe a model"),
    (lambda p: (p / CARD_FILE).unlink(), "no card.json"),
    (lambda p: _edit_card(p, lambda d: d.update(card_version=99)), "version 99, newer"),
    (lambda p: _edit_card(p, lambda d: d.update(labels=["a", "a", "b"])), "no valid label list"),
    (lambda p: _edit_card(p, lambda d: d.update(labels=["a", "b"])), "3 outputs but the card lists 2"),
    (lambda p: (p / MODEL_FILE).unlink(), "model.keras is missing"),
    (lambda p: (p / MODEL_FILE).write_bytes(b"PK\x03\x04 not really a zip"), "damaged or not a Keras model"),
], ids=["bad-json", "not-a-dict", "no-card", "newer-card", "duplicate-labels", "label-count", "no-weights",
        "corrupt-weights"])
def test_damaged_model_directories_raise_model_error(saved, damage, words):
    damage(saved)
    with pytest.raises(ModelError, match=words) as err:
        load_model(saved)
    assert str(err.value).startswith("first")  # names the model, one line
    assert "\n" not in str(err.value)
