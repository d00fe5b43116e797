"""Silence does not vote: room tone before and after a song is left out before segmenting,
silent segments inside a clip are marked and left out of the clip's probabilities, the verdict
and the "why" sentence, and a clip that is quiet throughout is still heard."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import SR, synth, write_wav
from genre.clip import SILENT_DBFS, segment_levels, silent_segments, sounding_span
from genre.features import FeatureConfig
from genre.models import DEFAULT_MODEL_DIR, load_model
from genre.pipeline import clip_features
from genre.predict import predict_source

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn.t accept a copy keyword:DeprecationWarning")


def room_tone(seconds: float, *, dbfs: float = -65.0, sr: int = SR, seed: int = 1) -> np.ndarray:
    """White noise at an RMS level of ``dbfs``: the hiss of a quiet room or a tape's lead-in."""
    return (10 ** (dbfs / 20) * np.random.default_rng(seed).standard_normal(int(seconds * sr))).astype(np.float32)


def test_the_rules_absolute_relative_and_never_all_silent():
    assert silent_segments(np.array([-20.0, -55.0, -20.0])).tolist() == [False, True, False]  # below -50 dBFS
    assert silent_segments(np.array([-5.0, -48.0, -30.0])).tolist() == [False, True, False]  # 43 dB under the loudest
    quiet = np.array([-62.0, -58.0, -60.0])  # a very quiet recording: only the relative rule applies
    assert not silent_segments(quiet).any()
    assert silent_segments(np.array([-62.0, -110.0])).tolist() == [False, True]
    assert silent_segments(np.array([])).shape == (0,)


def test_segment_levels_in_dbfs():
    sine = (0.5 * np.sin(2 * np.pi * 440 * np.arange(SR) / SR)).astype(np.float32)  # RMS 0.354 = -9.0 dBFS
    y = np.concatenate([sine, np.zeros(SR, np.float32), room_tone(1.0)])
    levels = segment_levels(y, SR, np.array([0.0, 1.0, 2.0]), 1.0)
    assert levels[0] == pytest.approx(-9.03, abs=0.05)
    assert levels[1] <= -119 and levels[2] == pytest.approx(-65, abs=0.5)
    assert levels[2] < SILENT_DBFS


def test_sounding_span_cuts_silence_of_a_second_or_more_only():
    music = synth("beats", seconds=6.0)
    first, stop = sounding_span(np.concatenate([room_tone(5.0), music, room_tone(20.0)]), SR)
    assert abs(first / SR - 5.0) < 0.15 and abs(stop / SR - 11.0) < 0.15
    short_lead = np.concatenate([room_tone(0.4), music])
    assert sounding_span(short_lead, SR) == (0, len(short_lead))  # a short lead-in stays: segments as before
    assert sounding_span(music, SR) == (0, len(music))


def test_features_leave_out_the_silent_ends_and_mark_a_silent_middle():
    music = synth("beats", seconds=9.0)
    padded = np.concatenate([room_tone(5.0), music, room_tone(20.0)])
    feats = clip_features(padded, FeatureConfig())
    lead, tail = feats.trimmed()
    assert 4.8 < lead <= 5.0 and 19.8 < tail <= 20.0 and feats.seconds == pytest.approx(len(padded) / SR)
    assert feats.starts[0] == pytest.approx(lead) and feats.starts[-1] < 5.0 + 9.0
    assert not feats.silent().any()
    plain = clip_features(music, FeatureConfig())
    assert len(plain.rows) == len(feats.rows)  # the song itself is segmented as without the room tone
    assert np.corrcoef(plain.rows.ravel(), feats.rows.ravel())[0, 1] > 0.99

    gap = np.concatenate([music, room_tone(9.0), music])  # a pause between two songs of a recording
    feats = clip_features(gap, FeatureConfig())
    assert feats.trimmed() == (0.0, 0.0)
    silent = feats.silent()
    assert silent.sum() >= 2 and not silent[0] and not silent[-1]
    assert np.all((feats.starts[silent] > 9.0 - 1.5) & (feats.starts[silent] < 18.0))  # mostly within the pause
    assert len(feats.sounding(feats.rows)) == (~silent).sum()


@pytest.fixture(scope="module")
def shipped():
    return load_model(DEFAULT_MODEL_DIR)


def test_room_tone_around_a_clip_keeps_its_answer(shipped, tmp_path):
    """The check of the issue through the shipped model: 5 s of -65 dBFS room tone before a clip
    and 20 s after it change neither the genre nor the probability (by more than 0.03)."""
    music = synth("buzz", seconds=12.0, seed=3)
    alone = predict_source(shipped, write_wav(tmp_path / "alone.wav", music))
    padded = predict_source(shipped, write_wav(tmp_path / "padded.wav",
                                               np.concatenate([room_tone(5.0), music, room_tone(20.0)])))
    assert padded.genre == alone.genre
    assert abs(padded.confidence - alone.confidence) <= 0.03
    assert abs(padded.verdict.music - alone.verdict.music) <= 0.03


def test_silent_segments_do_not_vote(shipped, tmp_path):
    from genre.ui.widgets import _votes

    music = synth("buzz", seconds=9.0, seed=3)
    gapped = predict_source(shipped, write_wav(tmp_path / "gap.wav", np.concatenate([music, room_tone(12.0), music])))
    silent = gapped.features.silent()
    assert silent.sum() >= 3
    assert np.allclose(gapped.probs, gapped.segment_probs[~silent].mean(axis=0))
    assert f"{silent.sum()} silent segments did not vote" in _votes(gapped)
    assert f"of {(~silent).sum()} segments voted" in _votes(gapped)
    padded = predict_source(shipped, write_wav(tmp_path / "padded.wav", np.concatenate([room_tone(4.0), music])))
    assert "Silence left out: the first" in _votes(padded)


def test_a_quiet_recording_is_still_heard(shipped, tmp_path):
    """Music at -56 dBFS throughout (a distant microphone): quiet, not silent; every segment votes."""
    music = synth("buzz", seconds=9.0, seed=3)
    quiet = music / np.sqrt(np.mean(music ** 2)) * 10 ** (-56 / 20)
    prediction = predict_source(shipped, write_wav(tmp_path / "quiet.wav", quiet))
    assert not prediction.features.silent().any() and prediction.features.trimmed() == (0.0, 0.0)


def test_the_verdict_of_a_hand_crafted_model_hears_the_same_segments():
    """Without AudioSet outputs in its features, mn04 is run on the audio over the clip's own
    segments: room tone around the clip changes the verdict as little as for the shipped model."""
    from genre.backbones.embeddings import music_verdict_of

    music = synth("buzz", seconds=9.0, seed=3)
    padded = np.concatenate([room_tone(5.0), music, room_tone(20.0)])
    verdicts = [music_verdict_of(clip_features(y, FeatureConfig()), y, FeatureConfig()) for y in (music, padded)]
    assert abs(verdicts[0].music - verdicts[1].music) <= 0.03
