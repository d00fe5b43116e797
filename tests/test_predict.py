"""genre.predict: a trained model classifies audio bytes segment by segment with probabilities that
sum to 1, refuses silence and mismatched features, and a 10-minute track costs bounded memory."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from conftest import ROOT, SR, synth
from genre.audio import AudioError
from genre.dataset import discover, split_stratified
from genre.features import FeatureConfig
from genre.models import ModelError, ModelSpec, load_model, save_model
from genre.predict import predict_features, predict_source
from genre.store import FeatureStore
from genre.train import train_model

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn.t accept a copy keyword:DeprecationWarning")

CONFIG = FeatureConfig()
LABELS = ["beats", "buzz", "tones"]


@pytest.fixture(scope="module")
def trained(tiny_dataset, tmp_path_factory):
    df = discover(tiny_dataset)
    feats = FeatureStore(tmp_path_factory.mktemp("predict-cache")).build(df["path"], CONFIG, n_jobs=1).features
    split = split_stratified(df, valid_fraction=0.34, seed=0)
    models = tmp_path_factory.mktemp("models")
    mlp = train_model(df, feats, split, CONFIG, ModelSpec(hidden=(32,), epochs=10, batch_size=8))
    cnn = train_model(df, feats, split, CONFIG, ModelSpec(family="cnn", hidden=(4, 8), epochs=2, batch_size=8))
    return (save_model(mlp.keras_model, mlp.card, models / "mlp"),
            save_model(cnn.keras_model, cnn.card, models / "cnn"))


@pytest.fixture(scope="module")
def model(trained):
    return load_model(trained[0])


def wav_bytes(y: np.ndarray, sr: int = SR) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, y, sr, format="WAV", subtype="PCM_16")
    return buf.getvalue()


@pytest.mark.parametrize("seconds, segments", [(10.0, 3), (7.0, 2), (2.0, 1), (4.6, 2)])
def test_bytes_give_one_row_per_3_second_segment(model, seconds, segments):
    pred = predict_source(model, wav_bytes(synth("tones", seconds=seconds, seed=9)), name="upload.wav")
    assert pred.labels == LABELS
    assert pred.probs.shape == (3,) and pred.probs.sum() == pytest.approx(1.0, abs=1e-5)
    assert pred.segment_probs.shape == (segments, 3)
    assert np.allclose(pred.segment_probs.sum(axis=1), 1.0, atol=1e-5)
    assert np.allclose(pred.probs, pred.segment_probs.mean(axis=0))
    assert np.allclose(pred.starts, np.arange(segments) * 129 * 512 / SR)
    assert pred.audio.seconds == pytest.approx(seconds, abs=1e-3)
    top = pred.top(3)
    assert [p for _, p in top] == sorted(pred.probs.tolist(), reverse=True)
    assert pred.genre == top[0][0] and pred.confidence == pytest.approx(top[0][1])
    assert pred.unsure == (pred.confidence < 0.5)


@pytest.mark.parametrize("kind", ["tones", "beats", "buzz"])
def test_unseen_clips_get_their_genre(model, kind):
    pred = predict_source(model, wav_bytes(synth(kind, seconds=6.0, seed=42)))  # seeds 0-5 trained
    assert pred.genre == kind and pred.confidence > 0.5


def test_another_rate_and_stereo_are_converted_first(model):
    y = synth("buzz", seconds=6.0, sr=44100, seed=7)
    pred = predict_source(model, wav_bytes(np.stack([y, y], axis=1), 44100))
    assert pred.audio.source_sr == 44100 and pred.audio.channels == 2
    assert pred.genre == "buzz" and pred.segment_probs.shape == (2, 3)


def test_the_cnn_classifies_log_mel_patches(trained):
    cnn = load_model(trained[1])
    assert cnn.card.input == "log_mel"
    pred = predict_source(cnn, wav_bytes(synth("beats", seconds=10.0, seed=3)))
    assert pred.segment_probs.shape == (3, 3) and pred.probs.sum() == pytest.approx(1.0, abs=1e-5)


def test_silence_and_garbage_are_refused(model):
    with pytest.raises(AudioError, match="silent"):
        predict_source(model, wav_bytes(np.zeros(4 * SR, np.float32)), name="quiet.wav")
    with pytest.raises(AudioError, match="upload.wav is not audio"):
        predict_source(model, b"hello" * 1000, name="upload.wav")


def test_features_that_differ_from_training_are_refused(model, trained):
    feats = predict_source(model, wav_bytes(synth("tones", seconds=4.0))).features
    model.card.feature_names = list(reversed(model.card.feature_names))
    try:
        with pytest.raises(ModelError, match="differ from the ones it was trained on"):
            predict_features(model, feats)
    finally:
        model.card.feature_names = list(reversed(model.card.feature_names))
    predict_features(model, feats)  # fine again
    cnn = load_model(trained[1])
    feats.log_mel = None
    with pytest.raises(ModelError, match="needs log-mel patches"):
        predict_features(cnn, feats)


TEN_MINUTES = r"""
import re, sys, tracemalloc
from pathlib import Path
from genre.models import load_model
from genre.predict import predict_source

def status(key):  # kB in /proc/self/status
    return int(re.search(rf"{key}:\s+(\d+) kB", Path("/proc/self/status").read_text())[1])

model = load_model(sys.argv[1])
predict_source(model, sys.argv[3])  # warm-up: TensorFlow, librosa and numba allocate their own
before = status("VmRSS")
Path("/proc/self/clear_refs").write_text("5")  # reset the peak (VmHWM) to the current RSS
tracemalloc.start()
pred = predict_source(model, sys.argv[2])
traced_peak = tracemalloc.get_traced_memory()[1]
print((status("VmHWM") - before) / 1024, traced_peak / 2**20, len(pred.segment_probs), pred.audio.seconds,
      float(pred.probs.sum()))
"""


def test_a_ten_minute_track_predicts_with_bounded_memory(trained, tmp_path):
    long, short = tmp_path / "ten-minutes.wav", tmp_path / "short.wav"
    block = synth("beats", seconds=30.0, seed=1)
    with sf.SoundFile(long, "w", SR, 1, subtype="PCM_16") as fh:
        for _ in range(20):
            fh.write(block)
    sf.write(short, synth("beats", seconds=5.0), SR)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run([sys.executable, "-c", TEN_MINUTES, str(trained[0]), str(long), str(short)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    rss_growth, traced_peak, segments, seconds, total = done.stdout.split()
    assert float(seconds) == pytest.approx(600.0, abs=0.01)
    assert int(segments) == 200 and float(total) == pytest.approx(1.0, abs=1e-5)
    # The decoded track alone is 53 MB (held while it is featurised). Measured: ~150 MB growth in
    # chunks of 30 s; featurising the whole track at once (CHUNK_SECONDS = inf) grows by ~620 MB
    # RSS / ~570 MB of numpy allocations, so these bounds tell the two apart.
    print(json.dumps({"peak_rss_growth_mb": float(rss_growth), "traced_peak_mb": float(traced_peak)}))
    assert float(rss_growth) < 400, f"peak RSS grew by {rss_growth} MB"
    assert float(traced_peak) < 400, f"allocations peaked at {traced_peak} MB"
