"""genre.audio: every format soundfile writes here, at 8-96 kHz and 1/2/6 channels, decodes from a
path and from bytes to mono float32 at 22050 Hz with the right length and content; unusable input
raises one AudioError with a message a person understands."""
from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile as sf

from conftest import SR, synth
from genre.audio import AudioError, decode, ensure_audible

SECONDS = 2.0
TONE_HZ = 440.0
AMPLITUDE = 0.3

# extension: (soundfile format, subtype, rates the encoder accepts, most channels it accepts).
# libsndfile's Opus encoder only takes 8/12/16/24/48 kHz and its MP3 (LAME) encoder at most
# 48 kHz and 2 channels; those combinations cannot be written, so they are not tested.
FORMATS = {
    "wav": ("WAV", "PCM_16", None, 6),
    "flac": ("FLAC", "PCM_16", None, 6),
    "ogg": ("OGG", "VORBIS", None, 6),
    "opus": ("OGG", "OPUS", {8000, 16000, 48000}, 6),
    "mp3": ("MP3", "MPEG_LAYER_III", {8000, 16000, 44100, 48000}, 2),
    "au": ("AU", "PCM_16", None, 6),
}
LOSSY = {"ogg", "opus", "mp3"}
RATES = (8000, 16000, 44100, 48000, 96000)
CHANNELS = (1, 2, 6)
CASES = [
    pytest.param(ext, rate, ch, id=f"{ext}-{rate // 1000 if rate % 1000 == 0 else rate / 1000}k-{ch}ch")
    for ext, (_, _, rates, max_ch) in FORMATS.items()
    for rate in RATES if rates is None or rate in rates
    for ch in CHANNELS if ch <= max_ch
]


def tone(rate: int, channels: int, seconds: float = SECONDS, hz: float = TONE_HZ) -> np.ndarray:
    """(n, channels) float32: the same sine in every channel, so the mono mix is that sine."""
    t = np.arange(int(seconds * rate)) / rate
    y = (AMPLITUDE * np.sin(2 * np.pi * hz * t)).astype(np.float32)
    return np.repeat(y[:, None], channels, axis=1)


def encode(y: np.ndarray, rate: int, ext: str) -> bytes:
    fmt, subtype, _, _ = FORMATS[ext]
    buf = io.BytesIO()
    sf.write(buf, y, rate, format=fmt, subtype=subtype)
    return buf.getvalue()


def peak_hz(y: np.ndarray, sr: int) -> float:
    spectrum = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    return float(np.fft.rfftfreq(len(y), 1 / sr)[np.argmax(spectrum)])


def rms(y: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(y, dtype=np.float64))))


@pytest.mark.parametrize("ext, rate, channels", CASES)
def test_every_format_rate_and_layout_decodes_to_mono_22050(ext, rate, channels, tmp_path):
    data = encode(tone(rate, channels), rate, ext)
    path = tmp_path / f"tone.{ext}"
    path.write_bytes(data)
    for source in (path, data):
        d = decode(source)
        assert d.y.dtype == np.float32 and d.y.ndim == 1
        assert d.sr == SR and d.source_sr == rate and d.channels == channels
        assert not d.truncated
        # length: exact for PCM up to the resampler's rounding; codecs add a little padding
        slack = 0.12 if ext in LOSSY else 0.01
        assert abs(d.seconds - SECONDS) <= slack, d.seconds
        assert abs(d.source_seconds - SECONDS) <= slack
        # content: still a 440 Hz sine of the same level after downmix and resampling
        assert abs(peak_hz(d.y, SR) - TONE_HZ) < 3.0
        level = rms(d.y) / (AMPLITUDE / np.sqrt(2))
        # Vorbis and Opus treat channel 4 of 6 as LFE and low-pass it: 440 Hz survives in 5 of 6
        low = 5 / 6 * 0.9 if ext in LOSSY and channels == 6 else 0.9
        assert low <= level <= 1.1, level
        assert np.abs(d.y).max() < 1.0


def test_channels_are_averaged(tmp_path):
    t = np.arange(int(SECONDS * 48000)) / 48000
    left, right = 0.3 * np.sin(2 * np.pi * 440 * t), 0.3 * np.sin(2 * np.pi * 1000 * t)
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([left, right], axis=1), 48000, subtype="FLOAT")
    y = decode(path).y
    spectrum = np.abs(np.fft.rfft(y)) / (len(y) / 2)
    freqs = np.fft.rfftfreq(len(y), 1 / SR)
    for hz in (440, 1000):  # each channel's tone at half its level
        assert spectrum[np.argmin(np.abs(freqs - hz))] == pytest.approx(0.15, rel=0.05)
    # opposite channels cancel: the mix is silence, which prediction refuses
    sf.write(path, np.stack([left, -left], axis=1), 48000, subtype="FLOAT")
    silent = decode(path).y
    assert rms(silent) < 1e-6
    with pytest.raises(AudioError, match="silent"):
        ensure_audible(silent)


def test_decode_to_another_rate():
    d = decode(encode(tone(44100, 2), 44100, "flac"), sr=16000)
    assert d.sr == 16000 and len(d.y) == pytest.approx(SECONDS * 16000, abs=16)
    assert abs(peak_hz(d.y, 16000) - TONE_HZ) < 3.0


def test_pcm_at_the_target_rate_is_passed_through_unchanged(tmp_path):
    y = synth("buzz", seconds=3.0)
    path = tmp_path / "clip.wav"
    sf.write(path, y, SR, subtype="FLOAT")
    assert np.array_equal(decode(path).y, y)


@pytest.mark.parametrize("data, words", [
    (b"", "empty"),
    (np.random.default_rng(1).bytes(50_000), "not audio"),
    (b"These are my notes, not a song.\n" * 300, "not audio"),
    (b"\x00\x00\x00\x18ftypM4A \x00\x00\x02\x00isomiso2" + bytes(2000), "MP4"),
], ids=["empty", "random-bytes", "text", "m4a"])
def test_unusable_bytes_raise_one_clear_error(data, words, tmp_path):
    with pytest.raises(AudioError, match=words) as err:
        decode(data, name="upload.wav")
    assert "upload.wav" in str(err.value)  # the name labels the message ...
    assert "\n" not in str(err.value)
    path = tmp_path / "song.wav"  # ... and the same bytes on disk fail the same way
    path.write_bytes(data)
    with pytest.raises(AudioError, match=words) as err:
        decode(path)
    assert "song.wav" in str(err.value)


def test_a_missing_file_is_an_audio_error(tmp_path):
    with pytest.raises(AudioError, match="cannot be read"):
        decode(tmp_path / "nowhere.wav")


def test_minimum_length(tmp_path):
    short = tmp_path / "short.wav"
    sf.write(short, synth("tones", seconds=0.5), SR)
    with pytest.raises(AudioError, match=r"too short \(0\.50 s"):
        decode(short)
    assert decode(short, min_seconds=0.25).seconds == pytest.approx(0.5, abs=1e-3)
    one = tmp_path / "one.wav"
    sf.write(one, synth("tones", seconds=1.0), SR)
    assert decode(one).seconds == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize("rate", [SR, 44100])
def test_max_seconds_truncates_and_says_so(rate, tmp_path):
    path = tmp_path / "long.flac"
    sf.write(path, tone(rate, 2, seconds=7.0), rate)
    cut = decode(path, max_seconds=3.0)
    assert cut.truncated
    assert cut.seconds == pytest.approx(3.0, abs=0.01)
    assert cut.source_seconds == pytest.approx(7.0, abs=0.01)
    whole = decode(path, max_seconds=10.0)
    assert not whole.truncated and whole.seconds == pytest.approx(7.0, abs=0.01)
    assert np.allclose(cut.y[: SR], whole.y[: SR], atol=1e-4)  # the kept part is the beginning
    info = cut.info  # what the dashboard keeps of a decoding
    assert (info.truncated, info.seconds, info.source_seconds, info.channels, info.source_sr, info.sr) == (
        True, cut.seconds, cut.source_seconds, 2, rate, cut.sr)


def test_ensure_audible():
    with pytest.raises(AudioError, match="silent"):
        ensure_audible(np.zeros(SR, np.float32), name="quiet.wav")
    with pytest.raises(AudioError, match="quiet.wav"):
        ensure_audible(1e-6 * np.ones(SR, np.float32), name="quiet.wav")
    with pytest.raises(AudioError, match="silent"):
        ensure_audible(np.zeros(0, np.float32))
    ensure_audible(synth("tones"))  # no exception
    ensure_audible(np.full(SR, 1e-3, np.float32))
