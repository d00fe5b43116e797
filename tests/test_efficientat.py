"""EfficientAT mn04_as port: network parity with the ONNX export, the front end against torch /
torchaudio, what it hears on synthesised audio, window alignment, and the weight files.

The fixture comes from tools/mn04_reference.py (torch + torchaudio's kaldi.py + onnxruntime, none
of which these tests need); the converted weights are committed in models/backbones/. Tests on
the original ONNX file and a real GTZAN clip run only when ../shared and onnx / onnxruntime are
there (MN04_SOURCE may point at another efficientat-mn04 folder).
"""
from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import GTZAN, SHARED
from genre.backbones import efficientat
from genre.backbones.efficientat import (
    DEFAULT_WEIGHTS_DIR, FEATURE_DIM, FRAMES_PER_SECOND, N_MELS, NUM_CLASSES, SAMPLE_RATE,
    Mn04Backbone, Mn04WeightsError, build_mn04, front_end, kaldi_mel_banks, window_starts,
)

FIXTURE = Path(__file__).parent / "fixtures" / "mn04_reference.npz"
SOURCE = Path(os.environ.get("MN04_SOURCE", SHARED / "backbones" / "efficientat-mn04"))
MUSIC = 137  # AudioSet "Music"
MUSICAL = {"Music", "Musical instrument", "Organ", "Hammond organ", "Electronic organ",
           "Keyboard (musical)", "Piano", "Electric piano", "Synthesizer"}
NOISE = {"Static", "White noise", "Noise", "Pink noise"}


@pytest.fixture(scope="module")
def backbone() -> Mn04Backbone:
    return Mn04Backbone.load()


@pytest.fixture(scope="module")
def reference() -> dict[str, np.ndarray]:
    with np.load(FIXTURE, allow_pickle=False) as data:
        return dict(data)


def chord(seconds: float) -> np.ndarray:
    """A-major triad (A3, C#4, E4) with 5 decaying harmonics, re-struck every second."""
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    y = sum(np.sin(2 * np.pi * f * h * t) * 0.6 ** (h - 1)
            for f in (220.0, 277.18, 329.63) for h in range(1, 6))
    return (0.1 * y * (0.6 + 0.4 * np.exp(-(t % 1.0) * 3))).astype(np.float32)


def white_noise(seconds: float, *, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (0.1 * rng.standard_normal(int(seconds * SAMPLE_RATE))).astype(np.float32)


def top(backbone: Mn04Backbone, probabilities: np.ndarray, k: int) -> list[str]:
    return [backbone.class_labels[i] for i in np.argsort(probabilities)[::-1][:k]]


# ----------------------------------------------------------------------------- parity


@pytest.mark.parametrize("suffix", ["", "_short"])
def test_network_matches_onnx(backbone, reference, suffix):
    """Keras == the ONNX export (onnxruntime) within 1e-4 on logits and features, for a
    (2, 128, 200) batch and a single odd-length (1, 128, 37) window."""
    spec = reference[f"spec{suffix}"]
    logits, features = backbone.model(spec[..., None], training=False)
    logits, features = np.asarray(logits), np.asarray(features)
    assert logits.shape == (len(spec), NUM_CLASSES) and features.shape == (len(spec), FEATURE_DIM)
    assert np.abs(logits - reference[f"logits{suffix}"]).max() <= 1e-4
    assert np.abs(features - reference[f"features{suffix}"]).max() <= 1e-4
    out = backbone.embed_windows(spec)
    expected = 1 / (1 + np.exp(-reference[f"logits{suffix}"].astype(np.float64)))
    assert out["audioset"].dtype == out["features"].dtype == np.float32
    assert np.abs(out["audioset"] - expected).max() <= 1e-5
    assert np.abs(out["features"] - reference[f"features{suffix}"]).max() <= 1e-4


def test_model_reloads_in_safe_mode(tmp_path):
    import keras

    model = build_mn04()
    path = tmp_path / "mn04.keras"
    model.save(path)
    again = keras.saving.load_model(path, safe_mode=True)
    x = np.random.default_rng(1).uniform(-2, 1, (2, N_MELS, 45, 1)).astype(np.float32)
    for a, b in zip(model(x, training=False), again(x, training=False)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-6)


# ----------------------------------------------------------------------------- front end


def test_front_end_matches_torch_reference(reference):
    """Our numpy front end == EfficientAT's AugmentMelSTFT run with torch.stft and torchaudio's
    Kaldi mel banks (float32 rounding of two FFT and log implementations: measured 2.5e-5)."""
    spec = front_end(reference["audio"])
    assert spec.shape == (N_MELS, 200) and spec.dtype == np.float32
    assert np.abs(spec - reference["spec"][0]).max() <= 1e-4


def test_mel_banks_match_torchaudio(reference):
    assert kaldi_mel_banks().shape == reference["mel_banks"].shape == (N_MELS, 512)
    assert np.abs(kaldi_mel_banks() - reference["mel_banks"]).max() <= 1e-4


def test_mel_banks_are_kaldi_triangles():
    """An independent float64 derivation: 130 edges equally spaced on 1127 ln(1 + f / 700)
    between 0 and 15000 Hz, filter m a triangle from edge m to m + 2 peaking at m + 1."""
    banks = kaldi_mel_banks().astype(np.float64)
    mel = 1127 * np.log1p(np.arange(512) * SAMPLE_RATE / 1024 / 700)
    edges = np.linspace(0, 1127 * math.log1p(15000 / 700), N_MELS + 2)
    for m in range(N_MELS):
        left, centre, right = edges[m:m + 3]
        expected = np.clip(np.minimum((mel - left) / (centre - left),
                                      (right - mel) / (right - centre)), 0, None)
        assert np.abs(banks[m] - expected).max() <= 1e-4, m
        assert int(np.argmax(banks[m])) == int(np.argmin(np.abs(mel - centre))), m
    assert (banks >= 0).all() and banks.max() <= 1
    assert not banks[:, 0].any()  # 0 Hz is the lowest edge
    assert not banks[:, mel > edges[-1]].any()  # nothing above 15 kHz


def test_front_end_frames_scale_and_silence():
    for samples in (514, 32000, 32001, 32321, 10 * SAMPLE_RATE):
        assert front_end(np.zeros(samples, np.float32)).shape == (N_MELS, 1 + (samples - 1) // 320)
    # silence: every bin is (ln(1e-5) + 4.5) / 5
    np.testing.assert_allclose(front_end(np.zeros(4000, np.float32)),
                               (math.log(1e-5) + 4.5) / 5, rtol=0, atol=1e-6)


def test_front_end_places_a_tone_in_its_mel_band():
    """A 1 kHz sine peaks in the band whose Kaldi centre is nearest 1 kHz; a 15.6 kHz sine
    (above the top band, below Nyquist) leaves every band near the silence floor."""
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    centres_hz = 700 * np.expm1(np.linspace(0, 1127 * math.log1p(15000 / 700), N_MELS + 2)[1:-1] / 1127)
    spec = front_end((0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32))
    assert int(np.argmax(spec[:, 50])) == int(np.argmin(np.abs(centres_hz - 1000)))
    high = front_end((0.5 * np.sin(2 * np.pi * 15600 * t)).astype(np.float32))
    low = front_end((0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32))
    assert high[:, 10:-10].max() < low[:, 10:-10].max() - 1.0


def test_front_end_rejects_bad_audio():
    with pytest.raises(ValueError, match="too short"):
        front_end(np.zeros(513, np.float32))
    with pytest.raises(ValueError, match="mono"):
        front_end(np.zeros((2, 4000), np.float32))
    y = np.zeros(4000, np.float32)
    y[100] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        front_end(y)


# ----------------------------------------------------------------------------- what it hears


def test_chord_is_music_noise_is_not(backbone):
    """Measured (10 s, one window): chord Music 0.19 (top: Organ 0.24, Music, Keyboard);
    white noise Music 0.018-0.019 over 3 seeds (top: Static 0.32, White noise 0.21)."""
    out = backbone.describe(chord(10.0), centres=np.array([5.0]), window_seconds=10.0)
    probabilities = out["audioset"][0]
    assert top(backbone, probabilities, 1)[0] in MUSICAL
    assert "Music" in top(backbone, probabilities, 3)
    assert probabilities[MUSIC] > 0.15
    for seed in range(3):
        noise = backbone.describe(white_noise(10.0, seed=seed), centres=np.array([5.0]),
                                  window_seconds=10.0)["audioset"][0]
        assert noise[MUSIC] < 0.05
        assert top(backbone, noise, 1)[0] in NOISE
        assert probabilities[MUSIC] > 5 * noise[MUSIC]


def test_describe_aligns_windows_with_centres(backbone):
    """10 s of noise then 10 s of chord, 3 s windows centred every 3 s: each row is the slice
    of the clip's one front end centred on its centre, so Music is low left and high right."""
    y = np.concatenate([white_noise(10.0), chord(10.0)])
    centres = np.arange(1.5, 20.0, 3.0)  # 1.5, 4.5, ..., 19.5 (the last one shifted inside)
    out = backbone.describe(y, centres=centres, window_seconds=3.0)
    assert out["features"].shape == (7, FEATURE_DIM) and out["audioset"].shape == (7, NUM_CLASSES)
    assert out["features"].dtype == out["audioset"].dtype == np.float32
    music = out["audioset"][:, MUSIC]
    assert (music[:3] < 0.05).all() and (music[4:] > 0.15).all()  # 10.5 s straddles both

    spec = front_end(y)
    starts = window_starts(spec.shape[1], centres=centres, window_frames=300)
    np.testing.assert_array_equal(starts, [1, 301, 601, 901, 1201, 1501, 1700])
    expected = backbone.embed_windows(np.stack([spec[:, s:s + 300] for s in starts]))
    for key in out:
        np.testing.assert_allclose(out[key], expected[key], atol=1e-5)


def test_window_starts_edges():
    centres = np.array([0.0, 5.0, 9.99, 100.0, -3.0])
    np.testing.assert_array_equal(window_starts(1000, centres=centres, window_frames=300),
                                  [0, 351, 700, 700, 0])
    # a window of W frames starting at s is centred at (s + (W - 1) / 2) / 100 s
    (start,) = window_starts(2000, centres=np.array([7.0]), window_frames=201)
    assert (start + 100) / FRAMES_PER_SECOND == 7.0
    np.testing.assert_array_equal(window_starts(300, centres=centres, window_frames=300), 0)


def test_short_clip_is_one_whole_window(backbone):
    y = chord(1.5)
    out = backbone.describe(y, centres=np.array([0.75, 1.2]), window_seconds=3.0)
    assert out["features"].shape == (2, FEATURE_DIM) and out["audioset"].shape == (2, NUM_CLASSES)
    np.testing.assert_array_equal(out["audioset"][0], out["audioset"][1])
    whole = backbone.embed_windows(front_end(y)[None])
    np.testing.assert_allclose(out["audioset"][:1], whole["audioset"], atol=1e-6)
    assert out["audioset"][0, MUSIC] > 0.15  # measured 0.32


def test_describe_without_centres_and_bad_arguments(backbone):
    y = chord(4.0)
    out = backbone.describe(y, centres=np.zeros(0), window_seconds=3.0)
    assert out["features"].shape == (0, FEATURE_DIM) and out["audioset"].shape == (0, NUM_CLASSES)
    with pytest.raises(ValueError, match="window_seconds"):
        backbone.describe(y, centres=np.array([1.0]), window_seconds=0.0)
    with pytest.raises(ValueError, match="centres"):
        backbone.describe(y, centres=np.array([[1.0]]), window_seconds=3.0)
    with pytest.raises(ValueError, match="centres"):
        backbone.describe(y, centres=np.array([np.nan]), window_seconds=3.0)
    with pytest.raises(ValueError, match="windows of shape"):
        backbone.embed_windows(np.zeros((2, 64, 100), np.float32))


# ----------------------------------------------------------------------------- weight files


@pytest.fixture
def weights_copy(tmp_path) -> Path:
    for name in (efficientat.WEIGHTS_FILE, efficientat.CARD_FILE, efficientat.LABELS_FILE):
        shutil.copy(DEFAULT_WEIGHTS_DIR / name, tmp_path)
    return tmp_path


def test_labels_are_audioset(backbone):
    assert len(backbone.class_labels) == NUM_CLASSES
    assert backbone.class_labels[0] == "Speech" and backbone.class_labels[MUSIC] == "Music"
    assert backbone.class_labels[1] == "Male speech, man speaking"  # quoted comma in the CSV


def test_missing_files_named_in_error(weights_copy):
    for name in (efficientat.WEIGHTS_FILE, efficientat.LABELS_FILE, efficientat.CARD_FILE):
        (weights_copy / name).unlink()
        with pytest.raises(Mn04WeightsError, match=f"mn04 file missing: .*{name}") as info:
            Mn04Backbone.load(weights_dir=weights_copy)
        assert info.value.path == weights_copy / name
        shutil.copy(DEFAULT_WEIGHTS_DIR / name, weights_copy)


def test_corrupt_weights_named_in_error(weights_copy):
    weights = weights_copy / efficientat.WEIGHTS_FILE
    data = bytearray(weights.read_bytes())
    data[len(data) // 2: len(data) // 2 + 64] = bytes(64)
    weights.write_bytes(bytes(data))
    with pytest.raises(Mn04WeightsError, match="corrupt mn04 weights file") as info:
        Mn04Backbone.load(weights_dir=weights_copy)
    assert info.value.path == weights
    # a damaged file whose checksum was updated to match still fails clearly
    weights.write_bytes(b"not an HDF5 file")
    card_path = weights_copy / efficientat.CARD_FILE
    card = json.loads(card_path.read_text())
    card["sha256"]["weights"] = efficientat.sha256(weights)
    card_path.write_text(json.dumps(card))
    with pytest.raises(Mn04WeightsError, match="corrupt mn04 weights file"):
        Mn04Backbone.load(weights_dir=weights_copy)


def test_corrupt_card_and_labels_named_in_error(weights_copy):
    labels = weights_copy / efficientat.LABELS_FILE
    card_path = weights_copy / efficientat.CARD_FILE
    labels.write_text("index,mid,display_name\n0,/m/x,Speech\n", encoding="utf-8")
    with pytest.raises(Mn04WeightsError, match="corrupt mn04 labels file"):
        Mn04Backbone.load(weights_dir=weights_copy)
    card = json.loads(card_path.read_text())
    card["sha256"]["labels"] = efficientat.sha256(labels)
    card_path.write_text(json.dumps(card))
    with pytest.raises(Mn04WeightsError, match="527"):
        Mn04Backbone.load(weights_dir=weights_copy)
    card_path.write_text("{not json")
    with pytest.raises(Mn04WeightsError, match="corrupt mn04 card"):
        Mn04Backbone.load(weights_dir=weights_copy)


def test_parse_labels_rejects_bad_csv():
    assert efficientat.parse_labels('index,mid,display_name\n0,/m/a,"A, b"\n1,/m/c,C\n') == ["A, b", "C"]
    with pytest.raises(ValueError, match="header"):
        efficientat.parse_labels("a,b\n1,2\n")
    with pytest.raises(ValueError, match="expected index 1"):
        efficientat.parse_labels("index,mid,display_name\n0,/m/a,A\n2,/m/c,C\n")


# ----------------------------------------------------------------------------- original files


requires_source = pytest.mark.skipif(
    not (SOURCE / "mn04_as.onnx").is_file(),
    reason=f"the EfficientAT mn04 ONNX export was not found at {SOURCE} (../shared is absent)")


@requires_source
def test_convert_reproduces_committed_weights(tmp_path):
    pytest.importorskip("onnx", reason="the converter needs onnx (the [dev] extra; in the lock)")
    assert efficientat.main(["convert", str(SOURCE), "--out", str(tmp_path)]) == 0
    for name in (efficientat.LABELS_FILE, efficientat.LICENSE_FILE):
        assert (tmp_path / name).read_text() == (DEFAULT_WEIGHTS_DIR / name).read_text()
    fresh = json.loads((tmp_path / efficientat.CARD_FILE).read_text())
    committed = json.loads((DEFAULT_WEIGHTS_DIR / efficientat.CARD_FILE).read_text())
    assert fresh["source"] == committed["source"]
    new = Mn04Backbone.load(weights_dir=tmp_path).model.get_weights()
    old = Mn04Backbone.load().model.get_weights()
    assert len(new) == len(old) == 2 * 64  # 46 convolutions, 8 x 2 SE + 2 classifier layers
    for a, b in zip(new, old):
        np.testing.assert_array_equal(a, b)


@requires_source
def test_convert_refuses_altered_source(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    for name in (*efficientat.SOURCE_FILES, efficientat.SOURCE_LICENSE):
        (source / name).symlink_to(SOURCE / name)
    (source / "audioset_class_labels_indices.csv").unlink()
    (source / "audioset_class_labels_indices.csv").write_text("index,mid,display_name\n")
    with pytest.raises(SystemExit) as info:
        efficientat.main(["convert", str(source), "--out", str(tmp_path / "out")])
    assert info.value.code == 2
    assert not (tmp_path / "out").exists()


@requires_source
@pytest.mark.skipif(not (GTZAN / "rock").is_dir(), reason=f"real GTZAN clips not found at {GTZAN}")
def test_real_clip_matches_onnx_and_sounds_like_music(backbone):
    """rock.00000, 30 s in one window: Keras == onnxruntime within 1e-4; Music on top."""
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime is a dev-only dependency")
    from genre.audio import decode

    spec = front_end(decode(GTZAN / "rock" / "rock.00000.ogg", sr=SAMPLE_RATE).y)
    session = ort.InferenceSession(str(SOURCE / "mn04_as.onnx"),
                                   providers=["CPUExecutionProvider"])
    logits, features = session.run(["logits", "features"], {"spec": spec[None, None]})
    ours_logits, ours_features = backbone.model(spec[None, :, :, None], training=False)
    assert np.abs(np.asarray(ours_logits) - logits).max() <= 1e-4
    assert np.abs(np.asarray(ours_features) - features).max() <= 1e-4
    probabilities = backbone.embed_windows(spec[None])["audioset"][0]
    assert top(backbone, probabilities, 1) == ["Music"] and probabilities[MUSIC] > 0.5
