"""Faults: a dataset with broken and junk files, broken or foreign models (and the dashboard's
fallback to the shipped default), training stopped or killed halfway, a save killed halfway,
and no pickle anywhere. Whatever happens, every saved model stays intact and loadable."""
from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import ROOT, SR, synth, write_wav
from genre import models
from genre.dataset import discover
from genre.features import FeatureConfig
from genre.models import (CARD_FILE, DEFAULT_MODEL_DIR, MODEL_FILE, ModelError, ModelSpec, copy_model, list_models,
                          load_model, read_card, sanitize_name, save_model, save_target, unknown_labels)
from genre.store import FeatureStore

CARD = json.loads((DEFAULT_MODEL_DIR / CARD_FILE).read_text())

NOT_MUSIC = "**This doesn't sound like music**"
"""The verdict on the synthetic test audio: the only error a working prediction may show."""


def _tree_digest(folder: Path) -> dict[str, str]:
    """SHA-256 of every file under ``folder`` (following a top-level symlink), by relative path."""
    folder = folder.resolve()
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("GENRE_DEBUG", "GENRE_NATIVE_STDERR")}
    return {**env, "TF_CPP_MIN_LOG_LEVEL": "2", **extra}


# ---------------------------------------------------------------------------------------------
# Datasets with broken files and junk


@pytest.fixture(scope="module")
def messy_dataset(tmp_path_factory) -> Path:
    """Two usable genres of two 2-s clips each, plus what real downloads contain: a corrupt clip
    (like GTZAN's jazz.00054.wav), an empty genre folder, a cover image, hidden files, nested
    junk, a macOS resource folder, a symlink loop, a dangling symlink and a stray root file."""
    root = tmp_path_factory.mktemp("messy")
    for label, kind in (("blues", "beats"), ("jazz", "tones")):
        for i in range(2):
            write_wav(root / label / f"{label}.{i:05d}.wav", synth(kind, seconds=2.0, seed=i))
    (root / "jazz" / "jazz.00054.wav").write_bytes(np.random.default_rng(54).bytes(40_000))
    (root / "rock").mkdir()
    (root / "blues" / "cover.jpg").write_bytes(b"\xff\xd8\xff\xe0" + bytes(200))
    (root / "blues" / "README.txt").write_text("liner notes")
    (root / "blues" / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (root / "blues" / "extras" / "deeper").mkdir(parents=True)
    (root / "blues" / "extras" / "deeper" / "junk.bin").write_bytes(b"\x00" * 64)
    (root / "__MACOSX" / "jazz").mkdir(parents=True)
    (root / "__MACOSX" / "jazz" / "._jazz.00000.wav").write_bytes(b"\x00\x05\x16\x07" + bytes(60))
    os.symlink("..", root / "blues" / "loop")
    os.symlink(root / "nowhere.wav", root / "jazz" / "gone.wav")
    (root / "stray.wav").write_bytes(b"RIFF")
    return root


def test_discover_lists_usable_clips_and_why_the_rest_is_ignored(messy_dataset):
    df = discover(messy_dataset)
    names = sorted(Path(p).name for p in df["path"])
    assert names == ["blues.00000.wav", "blues.00001.wav", "gone.wav", "jazz.00000.wav", "jazz.00001.wav",
                     "jazz.00054.wav"]
    assert set(df["label"]) == {"blues", "jazz"}
    ignored = dict(df.attrs["ignored"])
    assert ignored == {
        "stray.wav": "not inside a label folder",
        "blues/cover.jpg": "not an audio file",
        "blues/extras/deeper/junk.bin": "not an audio file",
        "blues/loop": "link to a folder (not followed)",
        "rock/": "empty folder (no audio files)",
        "__MACOSX/jazz/": "empty folder (no audio files)",
    }


def test_extraction_completes_and_says_what_it_skipped(messy_dataset, tmp_path):
    result = FeatureStore(tmp_path).build(discover(messy_dataset)["path"], FeatureConfig(), n_jobs=1)
    assert result.computed == 4 and len(result.features) == 4
    assert {Path(p).name: reason.split(" ")[0] for p, reason in result.failed} == {
        "jazz.00054.wav": "jazz.00054.wav", "gone.wav": "cannot"}
    assert not list(tmp_path.rglob(".tmp-*"))
    # the CLI on the same store: cached clips are read back, the broken ones are listed again
    done = subprocess.run([sys.executable, "-m", "genre", "extract", str(messy_dataset), "--jobs", "1"], cwd=ROOT,
                          capture_output=True, text=True, timeout=180, env=_env(GENRE_CACHE_DIR=str(tmp_path)))
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout.strip() == "4 clips in the feature store (0 computed now, 4 cached), 2 skipped"
    lines = done.stderr.splitlines()
    assert "ignored rock/: empty folder (no audio files)" in lines
    assert "ignored blues/loop: link to a folder (not followed)" in lines
    corrupt = [ln for ln in lines if ln.startswith(f"skipped {messy_dataset / 'jazz' / 'jazz.00054.wav'}: ")]
    assert len(corrupt) == 1 and "not audio in a supported format" in corrupt[0]
    assert any(ln.startswith(f"skipped {messy_dataset / 'jazz' / 'gone.wav'}: cannot read") for ln in lines)


def test_dashboard_shows_broken_dataset_clips_as_errors(messy_dataset, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("GENRE_DATA_DIR", str(messy_dataset))
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=120).run()
    assert not at.exception
    at.switch_page("pages/predict.py").run()
    at.radio[0].set_value("dataset").run()
    at.selectbox[0].set_value("jazz").run()
    for clip, words in (("jazz.00054.wav", "not audio in a supported format"), ("gone.wav", "cannot be read")):
        at.selectbox[1].set_value(str(messy_dataset / "jazz" / clip)).run()
        assert not at.exception, (clip, at.exception)
        assert [e.value for e in at.error] and words in at.error[0].value and len(at.error) == 1, clip
        assert not at.get("plotly_chart")
    at.selectbox[1].set_value(str(messy_dataset / "jazz" / "jazz.00000.wav")).run()
    assert not at.exception and at.get("plotly_chart")
    assert all(e.value.startswith(NOT_MUSIC) for e in at.error)  # synthetic audio: predicted, "not music"
    at.switch_page("pages/dataset.py").run()
    assert not at.exception
    assert any("could not be used" in e.label for e in at.expander), [e.label for e in at.expander]


# ---------------------------------------------------------------------------------------------
# Broken, foreign and unsafe models


def _tiny_keras(n_out: int, *, lam: str | None = None):
    import keras

    inputs = keras.Input((len(CARD["feature_names"]),))
    x = keras.layers.Lambda(eval(lam))(inputs) if lam else inputs  # noqa: S307 - test-made code
    return keras.Model(inputs, keras.layers.Dense(n_out, activation="softmax")(x))


def _with_card(folder: Path, **changes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / CARD_FILE).write_text(json.dumps({**CARD, **changes}))
    return folder


@pytest.fixture(scope="module")
def broken_models(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """A models folder with the shipped default (a link to it) and one model per way to break;
    returns (folder, {model name: words its ModelError must contain})."""
    root = tmp_path_factory.mktemp("models")
    os.symlink(DEFAULT_MODEL_DIR, root / "default")
    weights = (DEFAULT_MODEL_DIR / MODEL_FILE).read_bytes()
    (root / "empty").mkdir()
    _with_card(root / "no-weights")
    (_with_card(root / "truncated") / MODEL_FILE).write_bytes(weights[: len(weights) // 2])
    with zipfile.ZipFile(_with_card(root / "foreign-zip") / MODEL_FILE, "w") as zf:
        zf.writestr("config.json", "{\"hello\": \"not keras\"}")
        zf.writestr("junk.bin", os.urandom(512))
    _tiny_keras(3).save(_with_card(root / "three-outputs") / MODEL_FILE)
    marker = root.parent / "lambda-ran"
    _tiny_keras(len(CARD["labels"]), lam=f"lambda t: t + 0 * len(open({str(marker)!r}, 'a').name)").save(
        _with_card(root / "lambda") / MODEL_FILE)
    marker.unlink(missing_ok=True)  # building the model ran it once; loading must not
    shutil.copy(DEFAULT_MODEL_DIR / MODEL_FILE, _with_card(root / "future-card", card_version=99) / MODEL_FILE)
    shutil.copy(DEFAULT_MODEL_DIR / MODEL_FILE, _with_card(root / "bad-json") / MODEL_FILE)
    (root / "bad-json" / CARD_FILE).write_text("{\"labels\": [\"blues\",")
    shutil.copy(DEFAULT_MODEL_DIR / MODEL_FILE, _with_card(root / "no-labels", labels=[]) / MODEL_FILE)
    expected = {
        "empty": "no card.json", "no-weights": "model.keras is missing", "truncated": "damaged",
        "foreign-zip": "damaged or not a Keras model", "three-outputs": "3 outputs but the card lists 10 labels",
        "lambda": "contains Python code", "future-card": "version 99, newer than this app",
        "bad-json": "not valid JSON", "no-labels": "no valid label list",
    }
    return root, expected


def test_broken_models_raise_a_clear_model_error(broken_models):
    root, expected = broken_models
    for name, words in expected.items():
        with pytest.raises(ModelError) as err:
            load_model(root / name)
        message = str(err.value)
        assert message.startswith(f"{name}: ") and words in message, (name, message)
        assert "\n" not in message
    with pytest.raises(ModelError, match="no card.json"):
        load_model(root / "does-not-exist")
    assert load_model(root / "default").labels == CARD["labels"]


def test_a_lambda_layer_is_never_run_on_load(broken_models, tmp_path):
    """safe_mode=True: the Lambda's code is refused, not executed. (The same file does run it
    when loaded unsafely: the check below can fail.)"""
    import keras

    root, _ = broken_models
    marker = root.parent / "lambda-ran"
    with pytest.raises(ModelError):
        load_model(root / "lambda")
    assert not marker.exists()
    keras.saving.load_model(root / "lambda" / MODEL_FILE, safe_mode=False)
    assert marker.exists()
    marker.unlink()


def test_model_labels_must_overlap_the_dataset():
    assert unknown_labels(CARD["labels"], ["blues", "jazz"]) == []
    assert unknown_labels(CARD["labels"], ["blues", "polka"]) == ["polka"]
    with pytest.raises(ModelError, match="none of them is in this dataset"):
        unknown_labels(CARD["labels"], ["tones", "beats", "buzz"])


def test_list_models_shows_only_complete_models(broken_models):
    root, _ = broken_models
    listed = [p.name for p in list_models(root)]
    assert listed[0] == "default"
    assert "empty" not in listed and "no-weights" not in listed  # missing files: not a model
    assert not [n for n in listed if n.startswith(".")]


def test_dashboard_falls_back_to_the_default_for_every_broken_model(broken_models, monkeypatch, tmp_path):
    from streamlit.testing.v1 import AppTest

    from genre.ui import state

    root, expected = broken_models
    monkeypatch.setattr(models, "MODELS_DIR", root)
    monkeypatch.setenv("GENRE_DATA_DIR", str(tmp_path))
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=120).run()
    assert not at.exception
    listed = at.sidebar.selectbox[0].options
    broken = [name for name in expected if name in listed]
    assert listed[0] == "default" and sorted(broken) == sorted(set(expected) - {"empty", "no-weights"}), listed
    at.switch_page("pages/predict.py").run()
    buf = io.BytesIO()
    sf.write(buf, synth("buzz", seconds=4.0), SR, format="WAV")
    at.file_uploader[0].set_value(("song.wav", buf.getvalue(), "audio/wav")).run()
    assert not [w.value for w in at.warning if "default model instead" in w.value]
    assert at.caption[-1].value.startswith("Predicted by model default")
    for name in broken:
        # pick the model through its state key, as the sidebar's picker does
        at.session_state[state.MODEL_KEY] = name
        at.run()
        assert not at.exception, (name, at.exception)
        assert f"Model **{name}**" in at.caption[0].value, (name, at.caption[0].value)
        warnings = [w.value for w in at.warning]
        assert any(expected[name] in w and "default model instead" in w for w in warnings), (name, warnings)
        assert all(e.value.startswith(NOT_MUSIC) for e in at.error) and at.get("plotly_chart"), name
        assert at.caption[-1].value.startswith("Predicted by model default"), name


# ---------------------------------------------------------------------------------------------
# Model names and half-written or interrupted saves


def test_model_names_are_sanitised():
    assert sanitize_name("  My model: v2/final ") == "My-model-v2-final"
    assert sanitize_name("../../etc/passwd") == "etc-passwd"
    assert sanitize_name("a/../b") == "a-.-b"
    assert sanitize_name(".hidden") == "hidden"
    assert sanitize_name("x" * 200) == "x" * 64
    assert sanitize_name(".tmp-x") == "tmp-x"  # never a hidden (ignored) folder
    for bad in ("", "   ", "../..", "///", "-.-", "default", "DEFAULT"):
        with pytest.raises(ModelError):
            sanitize_name(bad)
    for name in ("a", "../x", "café ☕ mix", "C:\\models\\x", "x\x00y"):
        cleaned = sanitize_name(name)
        assert "/" not in cleaned and "\\" not in cleaned and ".." not in cleaned and not cleaned.startswith(".")


def test_cli_refuses_a_bad_name_before_training(tiny_dataset, tmp_path):
    done = subprocess.run([sys.executable, "-m", "genre", "train", str(tiny_dataset), "--out", "default"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, env=_env(GENRE_MODELS_DIR=str(tmp_path)))
    assert done.returncode == 2 and done.stderr.splitlines() == [
        "error: 'default' is the shipped model; give yours another name."]


@pytest.mark.parametrize("out, reason", [
    ("backbones", "'backbones' holds the pretrained MusiCNN weights that models use; give yours another name."),
    ("BackBones", "'backbones' holds the pretrained MusiCNN weights that models use; give yours another name."),
    ("notes", "'notes' is not a saved model (it has no card.json), so it is never overwritten; choose another name."),
])
def test_cli_never_saves_over_the_weights_or_a_folder_that_is_not_a_model(tiny_dataset, tmp_path, out, reason):
    """`python -m genre train ... --out backbones --overwrite` (and a folder without a card):
    exit code 2, one line, every file untouched, nothing trained."""
    root = tmp_path / "models"
    shutil.copytree(ROOT / "models" / "backbones", root / "backbones")
    (root / "notes").mkdir()
    (root / "notes" / "todo.txt").write_text("keep me")
    before = {name: _tree_digest(root / name) for name in ("backbones", "notes")}
    done = subprocess.run([sys.executable, "-m", "genre", "train", str(tiny_dataset), "--out", out, "--overwrite",
                           "--jobs", "1"], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env=_env(GENRE_MODELS_DIR=str(root), GENRE_CACHE_DIR=str(tmp_path / "cache")))
    assert done.returncode == 2 and done.stderr.splitlines() == [f"error: {reason}"]
    assert {name: _tree_digest(root / name) for name in ("backbones", "notes")} == before
    assert sorted(p.name for p in root.iterdir()) == ["backbones", "notes"] and not (tmp_path / "cache").exists()


def test_save_model_never_replaces_a_folder_that_is_not_a_model(tmp_path):
    model = load_model(DEFAULT_MODEL_DIR)
    weights = tmp_path / "models" / "weights"
    shutil.copytree(ROOT / "models" / "backbones", weights)
    before = _tree_digest(weights)
    link = tmp_path / "models" / "link"
    link.symlink_to(DEFAULT_MODEL_DIR)
    for target, what in ((weights, "not a saved model"), (link, "a link")):
        with pytest.raises(ModelError, match=what):
            save_model(model.keras_model, model.card, target, overwrite=True)
        with pytest.raises(ModelError, match=what):
            copy_model(DEFAULT_MODEL_DIR, target, overwrite=True)
    assert _tree_digest(weights) == before and link.resolve() == DEFAULT_MODEL_DIR.resolve()
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["link", "weights"]
    copy = copy_model(DEFAULT_MODEL_DIR, tmp_path / "models" / "copy")
    assert _tree_digest(copy) == _tree_digest(DEFAULT_MODEL_DIR)
    with pytest.raises(ModelError, match="already exists"):
        save_target("copy", root=tmp_path / "models")
    assert save_target("copy", root=tmp_path / "models", overwrite=True) == copy


def test_half_written_and_interrupted_saves(tmp_path):
    root = tmp_path / "models"
    shutil.copytree(DEFAULT_MODEL_DIR, root / "kept")
    shutil.copytree(DEFAULT_MODEL_DIR, root / ".tmp-new-abc123")  # complete, but never renamed
    (root / ".tmp-half-xyz789").mkdir()
    (root / ".tmp-half-xyz789" / MODEL_FILE).write_bytes(b"PK\x03\x04")
    # an overwrite of 'swapped' killed between its two renames: the previous model waits in .old-*
    shutil.copytree(DEFAULT_MODEL_DIR, root / ".old-swapped-q1w2e3r4" / "model")
    (root / "notes.txt").write_text("not a model")
    assert [p.name for p in list_models(root)] == ["kept", "swapped"]
    assert load_model(root / "swapped").labels == CARD["labels"]
    assert not (root / ".old-swapped-q1w2e3r4").exists()


def test_overwrite_replaces_whole_model_and_a_failed_save_changes_nothing(tmp_path):
    model = load_model(DEFAULT_MODEL_DIR)
    root = tmp_path / "models"
    target = save_model(model.keras_model, model.card, root / "mine")
    before = _tree_digest(target)
    with pytest.raises(ModelError, match="already exists"):
        save_model(model.keras_model, model.card, target)

    class Exploding:
        def save(self, path):
            Path(path).write_bytes(b"half a model")
            raise OSError(28, "No space left on device")

    with pytest.raises(ModelError, match="No space left on device"):
        save_model(Exploding(), model.card, target, overwrite=True)
    readonly = tmp_path / "readonly"
    readonly.mkdir(mode=0o555)
    if not os.access(readonly, os.W_OK):  # (root ignores permissions)
        with pytest.raises(ModelError, match="cannot save a model in"):
            save_model(model.keras_model, model.card, readonly / "x")
    assert _tree_digest(target) == before and sorted(p.name for p in root.iterdir()) == ["mine"]
    model.card.notes = "second version"
    save_model(model.keras_model, model.card, target, overwrite=True)
    assert read_card(target).notes == "second version" and sorted(p.name for p in root.iterdir()) == ["mine"]
    assert oct(target.stat().st_mode & 0o777) == "0o755"


# ---------------------------------------------------------------------------------------------
# Training stopped halfway: by the Stop button, by a failing listener, by SIGKILL


@pytest.fixture(scope="module")
def tiny_features(tiny_dataset, tmp_path_factory):
    """The tiny dataset's features, extracted once into a cache shared with the subprocesses."""
    cache = tmp_path_factory.mktemp("shared-cache")
    df = discover(tiny_dataset)
    result = FeatureStore(cache).build(df["path"], FeatureConfig(), n_jobs=1)
    assert not result.failed
    return df, result.features, cache


@pytest.fixture
def models_dir(tmp_path) -> Path:
    """A models folder holding a previously saved model, and a snapshot of it and of the shipped
    default to compare with after the fault."""
    root = tmp_path / "models"
    shutil.copytree(DEFAULT_MODEL_DIR, root / "previous")
    return root


def _assert_models_intact(root: Path, snapshot: dict) -> None:
    assert [p.name for p in list_models(root)] == ["previous"]
    assert {"previous": _tree_digest(root / "previous"), "default": _tree_digest(DEFAULT_MODEL_DIR)} == snapshot
    for path in (root / "previous", DEFAULT_MODEL_DIR):
        assert load_model(path).labels == CARD["labels"]


def _snapshot(root: Path) -> dict:
    return {"previous": _tree_digest(root / "previous"), "default": _tree_digest(DEFAULT_MODEL_DIR)}


def _train(tiny_features, **kwargs):
    from genre.dataset import make_split
    from genre.train import train_model

    df, features, _ = tiny_features
    split = make_split(df, "stratified", valid_fraction=0.34)
    spec = ModelSpec(hidden=(16,), epochs=50, patience=50, batch_size=16)
    return train_model(df, features, split, FeatureConfig(), spec, **kwargs)


def test_stop_button_ends_training_after_the_epoch(tiny_features, models_dir):
    snapshot, stop, seen = _snapshot(models_dir), threading.Event(), []

    def listener(epoch, logs):
        seen.append(epoch)
        if epoch == 3:
            stop.set()

    result = _train(tiny_features, listener=listener, stop=stop)
    assert seen == [1, 2, 3] and result.stopped_early
    assert result.card.metrics["stopped_by_user"] and result.card.metrics["epochs_run"] == 3
    _assert_models_intact(models_dir, snapshot)


def test_failing_listener_stops_training_and_saves_nothing(tiny_features, models_dir):
    snapshot = _snapshot(models_dir)

    def listener(epoch, logs):
        if epoch == 2:
            raise RuntimeError("the progress display went away")

    with pytest.raises(RuntimeError, match="went away"):
        _train(tiny_features, listener=listener)
    _assert_models_intact(models_dir, snapshot)


def _wait_for(proc: subprocess.Popen, pattern: str, count: int = 1, timeout: float = 150) -> list[str]:
    """Read proc's stderr until ``count`` lines match ``pattern`` (or fail with what it printed)."""
    seen, hits, deadline = [], 0, time.monotonic() + timeout
    while hits < count:
        line = proc.stderr.readline()
        if not line:
            pytest.fail(f"process ended (rc {proc.wait()}) before {count} x {pattern!r}: {''.join(seen)[-3000:]}")
        seen.append(line)
        hits += bool(re.search(pattern, line))
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"timed out waiting for {pattern!r}: {''.join(seen)[-3000:]}")
    return seen


def test_sigkill_during_training_leaves_every_model_intact(tiny_dataset, tiny_features, models_dir):
    """`python -m genre train` killed with SIGKILL after a few epochs: the saved model, the shipped
    default and the models list are as before, and no half-written directory is listed."""
    snapshot = _snapshot(models_dir)
    env = _env(GENRE_MODELS_DIR=str(models_dir), GENRE_CACHE_DIR=str(tiny_features[2]))
    proc = subprocess.Popen([sys.executable, "-m", "genre", "train", str(tiny_dataset), "--out", "x", "--epochs",
                             "400", "--hidden", "16", "--split", "stratified", "--jobs", "1"],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(proc, r"^epoch\s+\d+", count=3)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    assert not (models_dir / "x").exists()
    _assert_models_intact(models_dir, snapshot)


SLOW_SAVE = r"""
import shutil, sys, time
from pathlib import Path
from genre import models

source = Path(sys.argv[2])
card = models.read_card(source)
card.notes = "the new version"


class SlowDisk:  # a Keras model whose save() writes model.keras, then hangs before card.json
    def save(self, path):
        shutil.copy(source / models.MODEL_FILE, path)
        print("model.keras written", file=sys.stderr, flush=True)
        time.sleep(300)


models.save_model(SlowDisk(), card, sys.argv[1], overwrite=True)
"""


def test_sigkill_inside_save_model_leaves_only_an_ignored_tmp_dir(models_dir):
    """Killed while overwriting 'previous': the old 'previous' is still there, untouched; the
    half-written '.tmp-previous-*' is never listed; a later save works."""
    snapshot = _snapshot(models_dir)
    proc = subprocess.Popen([sys.executable, "-c", SLOW_SAVE, str(models_dir / "previous"), str(DEFAULT_MODEL_DIR)],
                            cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(proc, "model.keras written")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        proc.stderr.close()
    leftovers = sorted(p.name for p in models_dir.iterdir() if p.name.startswith("."))
    assert len(leftovers) == 1 and leftovers[0].startswith(".tmp-previous-")
    assert (models_dir / leftovers[0] / MODEL_FILE).is_file() and not (models_dir / leftovers[0] / CARD_FILE).exists()
    _assert_models_intact(models_dir, snapshot)
    loaded = load_model(models_dir / "previous")
    save_model(loaded.keras_model, loaded.card, models_dir / "again")
    assert [p.name for p in list_models(models_dir)] == ["again", "previous"]


# ---------------------------------------------------------------------------------------------
# Nothing is unpickled; models load in safe mode


def test_no_pickle_and_no_unsafe_loading_in_the_app():
    files = sorted([*(ROOT / "genre").rglob("*.py"), *(ROOT / "pages").rglob("*.py"), ROOT / "streamlit_app.py"])
    assert len(files) > 10
    forbidden = re.compile(r"\bpickle\.loads?\(|\bimport pickle\b|\bcloudpickle\b|\bdill\b|allow_pickle\s*=\s*True"
                           r"|joblib\.(dump|load)\(|safe_mode\s*=\s*False|enable_unsafe_deserialization"
                           r"|torch\.load\(|\bshelve\b|pd\.read_pickle|\.to_pickle\(")
    hits = [f"{f.relative_to(ROOT)}:{n}: {line.strip()}" for f in files
            for n, line in enumerate(f.read_text().splitlines(), 1) if forbidden.search(line)]
    assert not hits, hits
    np_loads = [f"{f.relative_to(ROOT)}:{n}" for f in files for n, line in enumerate(f.read_text().splitlines(), 1)
                if "np.load(" in line and "allow_pickle=False" not in line]
    assert not np_loads, f"np.load without allow_pickle=False: {np_loads}"
    keras_loads = [f"{f.relative_to(ROOT)}:{n}" for f in files for n, line in enumerate(f.read_text().splitlines(), 1)
                   if re.search(r"keras\.(saving\.|models\.)?load_model\(", line) and "safe_mode=True" not in line]
    assert not keras_loads, f"Keras load_model without safe_mode=True: {keras_loads}"


def test_models_dir_can_be_redirected(tmp_path):
    code = "import genre.models as m; print(m.MODELS_DIR); print(m.DEFAULT_MODEL_DIR)"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env=_env(GENRE_MODELS_DIR=str(tmp_path)))
    assert done.stdout.splitlines() == [str(tmp_path), str(DEFAULT_MODEL_DIR)]


def _flip_a_weight_byte(folder: Path) -> Path:
    """A copy of the default model with one byte of model.weights.h5 changed inside the zip (the
    zip's structure intact, so only the member's CRC tells)."""
    shutil.copytree(DEFAULT_MODEL_DIR, folder)
    with zipfile.ZipFile(folder / MODEL_FILE) as archive:
        info = archive.getinfo("model.weights.h5")
    assert info.compress_type == zipfile.ZIP_STORED
    data = bytearray((folder / MODEL_FILE).read_bytes())
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    data[start + info.compress_size // 2] ^= 0xFF
    (folder / MODEL_FILE).write_bytes(bytes(data))
    return folder


def test_the_cheap_check_finds_every_broken_model_without_keras(broken_models, tmp_path):
    """check_model (zip integrity, config vs card; no TensorFlow) refuses every broken model with
    load_model's words, and passes the shipped default; a flipped byte in the weights fails the
    CRC check, in load_model too."""
    from genre.models import check_model

    root, expected = broken_models
    for name, words in expected.items():
        with pytest.raises(ModelError) as err:
            check_model(root / name)
        assert str(err.value).startswith(f"{name}: ") and words in str(err.value), (name, str(err.value))
    assert check_model(root / "default").labels == CARD["labels"]
    flipped = _flip_a_weight_byte(tmp_path / "flipped")
    with pytest.raises(ModelError, match="flipped: model.keras is damaged .*model.weights.h5 fails its CRC check"):
        check_model(flipped)
    with pytest.raises(ModelError, match="fails its CRC check"):
        load_model(flipped)
    code = ("import sys; from genre.models import check_model; "
            f"check_model({str(DEFAULT_MODEL_DIR)!r}); print('tensorflow' in sys.modules, 'keras' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.split() == ["False", "False"], out.stderr[-1000:]
