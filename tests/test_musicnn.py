"""MusiCNN port: numerical parity with the original TF1 graph, front-end helpers, weight files.

The parity fixture comes from tools/musicnn_reference.py (runs the wheel's original graph);
the converted weights are committed in models/backbones/, so these tests need no wheel. The
conversion test runs only when MUSICNN_WHEEL points at musicnn-0.1.0-py3-none-any.whl.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from genre.backbones import musicnn
from genre.backbones.musicnn import (
    DEFAULT_WEIGHTS_DIR, MODEL_NAMES, N_MELS, PATCH_FRAMES, SAMPLE_RATE, MusicnnBackbone,
    MusicnnWeightsError, build_musicnn, log_mel, to_patches,
)

FIXTURE = Path(__file__).parent / "fixtures" / "musicnn_reference.npz"


@pytest.fixture(scope="module", params=MODEL_NAMES)
def backbone(request) -> MusicnnBackbone:
    return MusicnnBackbone.load(request.param)


@pytest.fixture(scope="module")
def reference() -> dict[str, np.ndarray]:
    with np.load(FIXTURE, allow_pickle=False) as data:
        return dict(data)


def square_wave(seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return np.sign(np.sin(2 * np.pi * 220 * t)).astype(np.float32)  # full scale, +-1


# ----------------------------------------------------------------------------- parity


def test_matches_original_graph(backbone, reference):
    name = backbone.name
    out = backbone.embed_patches(reference["inputs"])
    assert backbone.tag_labels and len(backbone.tag_labels) == 50
    for key in ("tags", "penultimate"):
        assert out[key].dtype == np.float32
        assert np.abs(out[key] - reference[f"{name}.{key}"]).max() <= 1e-4, key
    # pooled values reach ~100 and the mid-end batch norms amplify float32 rounding up to ~80x,
    # so pooled is held to 1e-4 relative to max(1, |value|) (measured: < 1e-4 absolute here).
    pooled = np.concatenate([reference[f"{name}.mean_pool"], reference[f"{name}.max_pool"]], 1)
    assert out["pooled"].shape == pooled.shape == (3, 1506)
    assert (np.abs(out["pooled"] - pooled) / np.maximum(1.0, np.abs(pooled))).max() <= 1e-4


def test_describe_shapes(backbone):
    rng = np.random.default_rng(0)
    y = (0.2 * rng.standard_normal(30 * SAMPLE_RATE)).astype(np.float32)
    out = backbone.describe(y)
    assert {k: v.shape for k, v in out.items()} == {
        "tags": (10, 50), "pooled": (10, 1506), "penultimate": (10, 200)}
    assert all(np.isfinite(v).all() for v in out.values())
    assert ((out["tags"] >= 0) & (out["tags"] <= 1)).all()
    assert {k: v.shape[0] for k, v in backbone.describe(y[:SAMPLE_RATE]).items()} == {
        "tags": 1, "pooled": 1, "penultimate": 1}


def test_embed_no_patches(backbone):
    out = backbone.embed_patches(np.zeros((0, PATCH_FRAMES, N_MELS), np.float32))
    assert {k: v.shape for k, v in out.items()} == {
        "tags": (0, 50), "pooled": (0, 1506), "penultimate": (0, 200)}
    with pytest.raises(ValueError, match="patches of shape"):
        backbone.embed_patches(np.zeros((PATCH_FRAMES, N_MELS), np.float32))


def test_model_reloads_in_safe_mode(tmp_path):
    import keras

    model = build_musicnn()
    path = tmp_path / "musicnn.keras"
    model.save(path)
    again = keras.saving.load_model(path, safe_mode=True)
    x = np.random.default_rng(1).uniform(0, 4, (2, PATCH_FRAMES, N_MELS)).astype(np.float32)
    a, b = model(x, training=False), again(x, training=False)
    assert {k: tuple(v.shape) for k, v in a.items()} == {
        "tags": (2, 50), "pooled": (2, 1506), "penultimate": (2, 200)}
    for key in a:
        np.testing.assert_allclose(np.asarray(a[key]), np.asarray(b[key]), atol=1e-6)


# ----------------------------------------------------------------------------- front end


def test_log_mel_is_finite_on_loud_clip():
    import librosa

    y = square_wave(2.0)
    logmel = log_mel(y)
    assert logmel.shape == (1 + len(y) // 256, N_MELS) and logmel.dtype == np.float32
    assert np.isfinite(logmel).all()
    # musicnn's own route (cast the mel power to float16 first) overflows to inf here.
    mel = librosa.feature.melspectrogram(y=y, sr=SAMPLE_RATE, hop_length=256, n_fft=512,
                                         n_mels=N_MELS).T
    with np.errstate(over="ignore"):
        assert np.isinf(np.log10(10000 * mel.astype(np.float16) + 1)).any()


def test_log_mel_rejects_empty_and_stereo():
    with pytest.raises(ValueError, match="empty"):
        log_mel(np.zeros(0, np.float32))
    with pytest.raises(ValueError, match="mono"):
        log_mel(np.zeros((2, 1000), np.float32))


def test_to_patches_shapes():
    rng = np.random.default_rng(2)
    logmel = rng.uniform(0, 4, (2 * PATCH_FRAMES + 5, N_MELS)).astype(np.float32)
    patches = to_patches(logmel)
    assert patches.shape == (2, PATCH_FRAMES, N_MELS) and patches.dtype == np.float32
    np.testing.assert_array_equal(patches[1], logmel[PATCH_FRAMES:2 * PATCH_FRAMES])  # no overlap
    assert to_patches(log_mel(square_wave(30.0))).shape == (10, PATCH_FRAMES, N_MELS)
    assert to_patches(logmel[:PATCH_FRAMES]).shape == (1, PATCH_FRAMES, N_MELS)


def test_to_patches_repeat_pads_short_clip():
    short = log_mel(square_wave(1.0))  # 63 frames, < 3 s
    assert short.shape[0] < PATCH_FRAMES
    (patch,) = to_patches(short)
    n = short.shape[0]
    np.testing.assert_array_equal(patch[:n], short)
    np.testing.assert_array_equal(patch[n:2 * n], short)
    np.testing.assert_array_equal(patch[2 * n:], short[:PATCH_FRAMES - 2 * n])


def test_to_patches_rejects_empty_and_bad_shape():
    with pytest.raises(ValueError, match="empty"):
        to_patches(np.zeros((0, N_MELS), np.float32))
    with pytest.raises(ValueError, match="log-mel"):
        to_patches(np.zeros((200, 40), np.float32))


# ----------------------------------------------------------------------------- weight files


@pytest.fixture
def weights_copy(tmp_path) -> Path:
    for suffix in (".json", ".weights.h5"):
        shutil.copy(DEFAULT_WEIGHTS_DIR / f"MSD_musicnn{suffix}", tmp_path)
    return tmp_path


def test_corrupt_weights_named_in_error(weights_copy):
    weights = weights_copy / "MSD_musicnn.weights.h5"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2: len(data) // 2 + 64] = bytes(64)
    weights.write_bytes(bytes(data))
    with pytest.raises(MusicnnWeightsError, match="corrupt MusiCNN weights file .*MSD_musicnn"):
        MusicnnBackbone.load("MSD_musicnn", weights_dir=weights_copy)


def test_unreadable_weights_named_in_error(weights_copy):
    """A damaged file whose checksum was updated to match still fails with a clear error."""
    weights = weights_copy / "MSD_musicnn.weights.h5"
    weights.write_bytes(b"not an HDF5 file")
    card_path = weights_copy / "MSD_musicnn.json"
    card = json.loads(card_path.read_text())
    card["weights_sha256"] = musicnn.sha256(weights)
    card_path.write_text(json.dumps(card))
    with pytest.raises(MusicnnWeightsError, match="corrupt MusiCNN weights file") as info:
        MusicnnBackbone.load("MSD_musicnn", weights_dir=weights_copy)
    assert info.value.path == weights


def test_missing_and_corrupt_metadata_named_in_error(weights_copy):
    card_path = weights_copy / "MSD_musicnn.json"
    card_path.write_text("{not json")
    with pytest.raises(MusicnnWeightsError, match="corrupt MusiCNN metadata .*MSD_musicnn.json"):
        MusicnnBackbone.load("MSD_musicnn", weights_dir=weights_copy)
    with pytest.raises(MusicnnWeightsError, match="missing: .*MTT_musicnn.json"):
        MusicnnBackbone.load("MTT_musicnn", weights_dir=weights_copy)


def test_convert_from_wheel_reproduces_committed_weights(tmp_path):
    wheel = os.environ.get("MUSICNN_WHEEL", "")
    if not wheel or not Path(wheel).is_file():
        pytest.skip("set MUSICNN_WHEEL to musicnn-0.1.0-py3-none-any.whl "
                    "(pip download --no-deps musicnn==0.1.0) to test the conversion")
    assert musicnn.main(["convert", wheel, "--out", str(tmp_path)]) == 0
    assert ((tmp_path / musicnn.LICENSE_FILE).read_text()
            == (DEFAULT_WEIGHTS_DIR / musicnn.LICENSE_FILE).read_text())
    for name in MODEL_NAMES:
        fresh = json.loads((tmp_path / f"{name}.json").read_text())
        committed = json.loads((DEFAULT_WEIGHTS_DIR / f"{name}.json").read_text())
        assert fresh["tag_labels"] == committed["tag_labels"]
        assert fresh["source"] == committed["source"]
        new = MusicnnBackbone.load(name, weights_dir=tmp_path).model.get_weights()
        old = MusicnnBackbone.load(name).model.get_weights()
        assert len(new) == len(old)
        for a, b in zip(new, old):
            np.testing.assert_array_equal(a, b)
