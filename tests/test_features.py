"""genre.features: group shapes from one STFT, the config's validation and round trip, stable
names, segments, and agreement of every hand-written fast path with the librosa call it replaces."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import librosa
import numpy as np
import pytest

from conftest import ROOT, SR, synth
from genre import features
from genre.features import (
    CONFIG_VERSION, FEATURE_GROUPS, FeatureConfig, extract, feature_names, log_mel_segments,
    segment_bounds, segment_matrix, summarize,
)
from genre.pipeline import clip_features

ROWS = {"mfcc": 20, "mel": 128, "chroma": 12, "tonnetz": 6, "contrast": 7, "centroid": 1,
        "bandwidth": 1, "rolloff": 1, "flatness": 1, "zcr": 1, "rms": 1}
CONFIG = FeatureConfig()


@pytest.fixture(scope="module")
def clips() -> dict[str, np.ndarray]:
    """10 s of each synthetic kind, plus a clip that starts with a second of digital silence."""
    out = {kind: synth(kind, seconds=10.0, seed=3) for kind in ("tones", "beats", "buzz")}
    out["gap"] = np.concatenate([np.zeros(SR, np.float32), synth("tones", seconds=4.0)])
    return out


@pytest.fixture(scope="module")
def frames(clips):
    return {name: extract(y, CONFIG) for name, y in clips.items()}


def test_every_group_has_its_rows_and_the_same_frames(clips, frames):
    f = frames["tones"]
    n = 1 + len(clips["tones"]) // CONFIG.hop_length  # centred STFT: 431 frames for 10 s
    assert n == 431 and f.n_frames == n
    assert set(f.matrices) == set(ROWS)
    for group, rows in ROWS.items():
        m = f.matrices[group]
        assert m.shape == (rows, n), group
        assert m.dtype == np.float32 and np.isfinite(m).all(), group
    assert f.log_mel.shape == (CONFIG.n_mels, n) and f.log_mel.dtype == np.float32
    assert np.array_equal(f.matrices["mel"], f.log_mel)
    assert f.times()[1] == pytest.approx(CONFIG.hop_length / SR)


def test_a_subset_of_groups_and_other_sizes():
    config = FeatureConfig(groups=("rms", "mfcc", "tempo"), n_mfcc=13, n_mels=64)
    assert config.groups == ("mfcc", "rms", "tempo")  # canonical order, whatever was given
    f = extract(synth("buzz", seconds=5.0), config)
    assert set(f.matrices) == {"mfcc", "rms"}
    assert f.matrices["mfcc"].shape[0] == 13 and f.log_mel.shape[0] == 64
    names = feature_names(f, config)
    assert names == ([f"mfcc_{i:02d}_mean" for i in range(1, 14)] + [f"mfcc_{i:02d}_std" for i in range(1, 14)]
                     + ["rms_mean", "rms_std", "tempo_bpm"])


def test_the_log_mel_view_is_extracts_log_mel(clips, frames):
    """What the Predict page draws, computed alone (no other group, no tempo): extract's log-mel."""
    for name, y in clips.items():
        view = features.log_mel_spectrogram(y, CONFIG)
        assert view.dtype == np.float32
        np.testing.assert_array_equal(view, frames[name].log_mel, err_msg=name)
    other = FeatureConfig(sr=16000, n_mels=64)
    y = synth("beats", seconds=3.0, sr=16000)
    np.testing.assert_array_equal(features.log_mel_spectrogram(y, other), extract(y, other).log_mel)


def test_silence_and_very_short_clips_give_finite_features():
    silent = extract(np.zeros(2 * SR, np.float32), CONFIG)
    assert silent.tempo == 0.0 and len(silent.beat_frames) == 0
    assert all(np.isfinite(m).all() for m in silent.matrices.values())
    short = extract(synth("tones", seconds=0.5), CONFIG)
    assert short.n_frames == 1 + int(0.5 * SR) // 512
    assert all(m.shape[1] == short.n_frames for m in short.matrices.values())


def test_exactly_one_stft_per_clip(monkeypatch):
    calls = []
    original = librosa.stft

    def counting_stft(*args, **kwargs):
        calls.append(kwargs.get("n_fft"))
        return original(*args, **kwargs)

    # patch every librosa module that holds a reference to stft, so internal calls count too
    for name, module in list(sys.modules.items()):
        if (name == "librosa" or name.startswith("librosa.")) and getattr(module, "stft", None) is original:
            monkeypatch.setattr(module, "stft", counting_stft)
    extract(synth("tones", seconds=6.0), CONFIG)
    assert calls == [CONFIG.n_fft]
    calls.clear()
    librosa.feature.chroma_stft(y=synth("tones", seconds=2.0), sr=SR)  # the counter does see librosa's own calls
    assert len(calls) >= 1


# --- FeatureConfig -----------------------------------------------------------------------------


def test_config_validation():
    with pytest.raises(ValueError, match="unknown feature groups.*loudness"):
        FeatureConfig(groups=("mfcc", "loudness"))
    for bad in ({"segment_seconds": 0}, {"sr": -1}, {"hop_length": 0}):
        with pytest.raises(ValueError, match="positive"):
            FeatureConfig(**bad)
    assert FeatureConfig(segment_seconds=3.0).segment_frames == 129  # round(3 * 22050 / 512)


def test_config_round_trip_and_digest():
    config = FeatureConfig(segment_seconds=2.0, n_mfcc=13, groups=("zcr", "mfcc"))
    data = config.to_dict()
    assert data["groups"] == ["mfcc", "zcr"] and data["version"] == CONFIG_VERSION
    again = FeatureConfig.from_dict(json.loads(json.dumps(data)))  # as stored in card.json
    assert again == config and again.digest() == config.digest()
    assert FeatureConfig.from_dict(FeatureConfig().to_dict()) == FeatureConfig()
    digest = FeatureConfig().digest()
    assert len(digest) == 16 and int(digest, 16) >= 0
    assert FeatureConfig().digest() == digest  # stable across instances
    changed = {FeatureConfig(segment_seconds=2.5).digest(), FeatureConfig(n_mfcc=13).digest(),
               FeatureConfig(groups=("mfcc",)).digest(), FeatureConfig(hop_length=256).digest()}
    assert digest not in changed and len(changed) == 4


def test_config_refuses_what_this_code_cannot_reproduce():
    data = FeatureConfig().to_dict()
    with pytest.raises(ValueError, match="does not know.*pcen_gain"):
        FeatureConfig.from_dict({**data, "pcen_gain": 0.98})
    with pytest.raises(ValueError, match=f"version {CONFIG_VERSION + 1} is newer"):
        FeatureConfig.from_dict({**data, "version": CONFIG_VERSION + 1})
    with pytest.raises(ValueError, match="unknown feature groups"):
        FeatureConfig.from_dict({**data, "groups": ["mfcc", "wavelets"]})
    older = dict(data)
    older.pop("version")
    assert FeatureConfig.from_dict(older) == FeatureConfig()


# --- names and summaries -----------------------------------------------------------------------


def test_names_are_stable_and_readable(frames):
    f = frames["tones"]
    vector, names = summarize(f, CONFIG)
    assert len(names) == len(set(names)) == len(vector) == 2 * sum(ROWS.values()) + 1 == 359
    assert names[:3] == ["mfcc_01_mean", "mfcc_02_mean", "mfcc_03_mean"]
    assert names[20] == "mfcc_01_std" and names[-1] == "tempo_bpm"
    for name in ("mfcc_05_mean", "mfcc_20_std", "mel_128_mean", "chroma_12_std", "tonnetz_06_mean",
                 "contrast_07_std", "centroid_mean", "bandwidth_std", "rolloff_mean", "flatness_std",
                 "zcr_mean", "rms_std"):
        assert name in names
    # each value is the statistic its name says, over the whole clip
    value = dict(zip(names, vector))
    assert value["mfcc_05_mean"] == pytest.approx(f.matrices["mfcc"][4].mean(), rel=1e-5)
    assert value["mfcc_05_std"] == pytest.approx(f.matrices["mfcc"][4].std(), rel=1e-5)
    assert value["rms_std"] == pytest.approx(f.matrices["rms"][0].std(), rel=1e-5)
    assert value["chroma_12_mean"] == pytest.approx(f.matrices["chroma"][11].mean(), rel=1e-5)
    assert value["tempo_bpm"] == pytest.approx(f.tempo)
    assert vector.dtype == np.float32


def test_segments_of_a_10_second_and_a_2_second_clip(clips, frames):
    rows, starts = segment_matrix(frames["tones"], CONFIG)
    # 431 frames = 3 whole segments of 129 + a 44-frame tail (< half a segment: dropped)
    assert segment_bounds(431, 129) == [(0, 129), (129, 258), (258, 387)]
    assert rows.shape == (3, 359) and rows.dtype == np.float32
    assert np.allclose(starts, [0.0, 129 * 512 / SR, 258 * 512 / SR])
    names = feature_names(frames["tones"], CONFIG)
    rms_mean = names.index("rms_mean")
    for i, (a, b) in enumerate(segment_bounds(431, 129)):
        assert rows[i, rms_mean] == pytest.approx(frames["tones"].matrices["rms"][0, a:b].mean(), rel=1e-5)
    assert segment_bounds(431 + 21, 129) == [(0, 129), (129, 258), (258, 387), (387, 452)]  # 65-frame tail kept

    two = extract(synth("tones", seconds=2.0), CONFIG)
    rows2, starts2 = segment_matrix(two, CONFIG)
    assert rows2.shape == (1, 359) and starts2.tolist() == [0.0]
    # the same through the pipeline (chunking, patches)
    feats = clip_features(clips["tones"], CONFIG)
    assert feats.rows.shape == (3, 359) and feats.names == names
    assert np.allclose(feats.rows, rows, rtol=1e-5, atol=1e-5)
    assert clip_features(synth("tones", seconds=2.0), CONFIG).rows.shape == (1, 359)


def test_log_mel_segments(frames):
    patches = log_mel_segments(frames["tones"], CONFIG)
    assert patches.shape == (3, 128, 129) and patches.dtype == np.float32
    assert np.array_equal(patches[1], frames["tones"].log_mel[:, 129:258])
    short = extract(synth("tones", seconds=2.0), CONFIG)  # 87 frames, padded by wrapping to 129
    one = log_mel_segments(short, CONFIG)
    assert one.shape == (1, 128, 129)
    assert np.array_equal(one[0, :, :87], short.log_mel)
    assert np.array_equal(one[0, :, 87:], short.log_mel[:, :42])


@pytest.mark.parametrize("bpm", [90, 120, 140])
def test_tempo_of_a_click_track(bpm):
    y = librosa.clicks(times=np.arange(0, 10, 60 / bpm), sr=SR, length=10 * SR).astype(np.float32)
    f = extract(y, CONFIG)
    # librosa's tempo is quantised by the autocorrelation lag (120 BPM reads as 117.5)
    assert f.tempo == pytest.approx(bpm, rel=0.04)
    intervals = np.diff(librosa.frames_to_time(f.beat_frames, sr=SR, hop_length=CONFIG.hop_length))
    assert np.median(intervals) == pytest.approx(60 / bpm, rel=0.05)


# --- the fast paths give librosa's values ---------------------------------------------------------


def _librosa_reference(y: np.ndarray) -> dict[str, np.ndarray]:
    S = np.abs(librosa.stft(y, n_fft=2048, hop_length=512))
    return {
        "centroid": librosa.feature.spectral_centroid(S=S, sr=SR),
        "bandwidth": librosa.feature.spectral_bandwidth(S=S, sr=SR),
        "rolloff": librosa.feature.spectral_rolloff(S=S, sr=SR),
        "flatness": librosa.feature.spectral_flatness(S=S),
        "contrast": librosa.feature.spectral_contrast(S=S, sr=SR),
        "zcr": librosa.feature.zero_crossing_rate(y, frame_length=2048, hop_length=512),
        "chroma": librosa.feature.chroma_stft(S=S**2, sr=SR),  # with librosa's own tuning estimate
        "mfcc": librosa.feature.mfcc(S=librosa.power_to_db(librosa.feature.melspectrogram(S=S**2, sr=SR))),
        "rms": librosa.feature.rms(y=y),
    }


@pytest.mark.parametrize("name", ["tones", "beats", "buzz", "gap"])
def test_features_equal_librosa_reference(name, clips, frames):
    y, f = clips[name], frames[name]
    for group, expected in _librosa_reference(y).items():
        ours = f.matrices[group]
        scale = float(np.abs(expected).max()) or 1.0
        assert np.allclose(ours, expected, rtol=1e-4, atol=1e-5 * scale), (group, np.abs(ours - expected).max())
    tempo, beats = librosa.beat.beat_track(y=None, onset_envelope=librosa.onset.onset_strength(
        S=f.log_mel, sr=SR), sr=SR)
    assert f.tempo == pytest.approx(float(np.atleast_1d(tempo)[0]))
    assert np.array_equal(f.beat_frames, beats)


@pytest.mark.parametrize("name", ["tones", "beats", "buzz", "gap"])
def test_tuning_estimate_equals_librosa(name, clips):
    power = np.abs(librosa.stft(clips[name])) ** 2
    ours = features._estimate_tuning(power, freq=librosa.fft_frequencies(sr=SR, n_fft=2048), sr=SR, n_fft=2048)
    assert ours == pytest.approx(librosa.estimate_tuning(S=power, sr=SR, bins_per_octave=12))


def test_detuned_tones_shift_the_tuning_estimate():
    t = np.arange(4 * SR) / SR
    sharp = sum(np.sin(2 * np.pi * 440 * 2 ** (k / 12 + 0.3 / 12) * t) for k in (0, 4, 7)).astype(np.float32)
    power = np.abs(librosa.stft(sharp)) ** 2
    tuning = features._estimate_tuning(power, freq=librosa.fft_frequencies(sr=SR, n_fft=2048), sr=SR, n_fft=2048)
    assert tuning == pytest.approx(0.3, abs=0.05)
    assert tuning == pytest.approx(librosa.estimate_tuning(S=power, sr=SR))


def test_groups_differ_between_kinds(frames):
    """The three synthetic kinds are told apart by the features they are built to differ in."""
    def mean(name, group, row=0):
        return float(frames[name].matrices[group][row].mean())

    def chroma_top3(name):
        c = np.sort(frames[name].matrices["chroma"].mean(axis=1))[::-1]
        return c[:3].sum() / c.sum()

    assert mean("beats", "flatness") > 10 * mean("tones", "flatness")  # noise bursts are flat
    assert mean("beats", "zcr") > 5 * mean("tones", "zcr") and mean("beats", "centroid") > 1.5 * mean("buzz", "centroid")
    assert frames["beats"].matrices["rms"].std() > 5 * frames["tones"].matrices["rms"].std()  # bursts vs steady
    assert chroma_top3("tones") > 2 * chroma_top3("beats")  # a chord's three pitch classes vs noise
    assert set(FEATURE_GROUPS) == set(ROWS) | {"tempo"}


def test_extraction_does_not_import_librosa_beat():
    """librosa.beat compiles its numba code at import (seconds per process: every CLI command,
    every extraction worker); extraction needs only the tempo, beats are computed on demand."""
    code = ("import sys, numpy as np; from genre.pipeline import features_of; from genre.features import extract; "
            "f = extract(np.random.default_rng(0).standard_normal(3 * 22050).astype(np.float32)); "
            "print('librosa.beat' in sys.modules, f.tempo > 0); f.beat_frames; print('librosa.beat' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.stdout.split() == ["False", "True", "True"], done.stderr[-2000:]


def test_feature_labels_say_what_and_in_which_unit():
    from genre.features import feature_label

    assert feature_label("centroid_mean") == "spectral centroid, mean over the segment (Hz)"
    assert feature_label("mfcc_02_std") == "MFCC 2, standard deviation over the segment"
    assert feature_label("contrast_07_mean") == "spectral contrast band 7, mean over the segment (dB)"
    assert feature_label("tempo_bpm") == "tempo (BPM)"
    assert feature_label("msd_penultimate_0007") == "msd_penultimate_0007"
    names = feature_names(extract(synth("tones", seconds=3.0), FeatureConfig()), FeatureConfig())
    assert all(feature_label(n) != n for n in names)
