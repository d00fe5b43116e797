"""Formats beyond libsndfile, decoded through PyAV's FFmpeg: M4A/AAC, MP4 (with a video track),
WebM/Opus, Matroska, WMA, raw AAC, CAF/ALAC and 3GP/AMR. Every file is encoded here with PyAV from
a synthetic wav-like signal and must decode to the same samples within the codec's tolerance
(aligned for the encoder's priming delay); damaged or audio-less files get one clear message."""
from __future__ import annotations

import io

import numpy as np
import pytest
import soxr
from scipy.signal import correlate

from conftest import SR, errors_besides_the_verdict, synth
from genre import audio
from genre.audio import AudioError, decode

av = pytest.importorskip("av")

# extension: (container, codec, encoder rate, channels, minimum SNR in dB after alignment)
CODECS = {
    "m4a": ("ipod", "aac", SR, 2, 25),
    "mp4": ("mp4", "aac", SR, 2, 25),
    "webm": ("webm", "libopus", 48000, 2, 20),
    "mka": ("matroska", "libopus", 48000, 2, 20),
    "wma": ("asf", "wmav2", 44100, 2, 20),
    "aac": ("adts", "aac", SR, 2, 25),
    "caf": ("caf", "alac", SR, 2, 60),
    "3gp": ("3gp", "libopencore_amrnb", 8000, 1, 6),
}
MAX_LAG = 2200  # samples at 22.05 kHz: AAC priming (1024-2112), WMA's first frame, AMR's look-ahead


def encode_av(y: np.ndarray, ext: str, *, sr: int = SR, video: bool = False) -> bytes:
    """Encode mono float32 ``y`` (at ``sr``) as a file of type ``ext`` with PyAV (see CODECS);
    ``video`` adds a small black MPEG-4 video track before the audio track."""
    container, codec, rate, channels, _ = CODECS[ext]
    z = soxr.resample(y, sr, rate).astype(np.float32) if rate != sr else y
    planar = np.stack([z] * channels)
    buf = io.BytesIO()
    with av.open(buf, "w", format=container) as out:
        picture = None
        if video:
            picture = out.add_stream("mpeg4", rate=10)
            picture.width = picture.height = 32
            picture.pix_fmt = "yuv420p"
        stream = out.add_stream(codec, rate=rate)
        stream.layout = "stereo" if channels == 2 else "mono"
        stream.bit_rate = 12200 if "amr" in codec else 128000
        convert = av.AudioResampler(format=stream.codec_context.codec.audio_formats[0].name,
                                    layout=stream.layout, rate=rate)
        step = stream.codec_context.frame_size or 1024
        for start in range(0, planar.shape[1], step):
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(planar[:, start:start + step]), format="fltp",
                                               layout=stream.layout.name)
            frame.sample_rate = rate
            for part in convert.resample(frame):
                out.mux(stream.encode(part))
            if picture is not None and start % (rate // 10) < step:
                out.mux(picture.encode(av.VideoFrame.from_ndarray(np.zeros((32, 32, 3), np.uint8), format="rgb24")))
        for part in convert.resample(None):
            out.mux(stream.encode(part))
        out.mux(stream.encode(None))
        if picture is not None:
            out.mux(picture.encode(None))
    return buf.getvalue()


def aligned_snr(reference: np.ndarray, decoded: np.ndarray, *, max_lag: int = MAX_LAG) -> tuple[float, int]:
    """(SNR in dB, lag in samples) of ``decoded`` against ``reference`` at the best lag."""
    n = min(len(reference), len(decoded)) - 2 * max_lag
    ref = reference[max_lag:max_lag + n].astype(np.float64)
    window = decoded[:n + 2 * max_lag].astype(np.float64)
    scores = correlate(window, ref, mode="valid", method="fft")  # scores[i]: lag i - max_lag
    lag = int(np.argmax(scores)) - max_lag
    error = decoded[max_lag + lag:max_lag + lag + n] - ref
    return float(10 * np.log10(np.sum(ref ** 2) / np.sum(error ** 2))), lag


@pytest.mark.parametrize("ext", CODECS)
def test_decodes_to_the_source_samples_within_codec_tolerance(ext, tmp_path):
    y = synth("tones", seconds=4.0)
    data = encode_av(y, ext, video=ext == "mp4")
    path = tmp_path / f"clip.{ext}"
    path.write_bytes(data)
    for source in (path, data):
        decoded = decode(source, sr=SR, name=path.name)
        _, _, rate, channels, min_snr = CODECS[ext]
        assert (decoded.sr, decoded.source_sr, decoded.channels) == (SR, rate, channels)
        assert decoded.y.dtype == np.float32 and np.isfinite(decoded.y).all()
        assert abs(decoded.seconds - 4.0) < 0.15, decoded.seconds
        snr, lag = aligned_snr(y, decoded.y)
        assert snr > min_snr, (ext, snr, lag)
    assert decode(path, sr=16000).sr == 16000  # any target rate, as for libsndfile's formats


def test_every_accepted_extension_decodes():
    """The uploader accepts exactly ``audio.UPLOAD_EXTENSIONS``; each one is either libsndfile's
    (tests/test_audio.py, tests/test_bad_input.py) or round-tripped above."""
    libsndfile = {"wav", "flac", "ogg", "oga", "opus", "mp3", "au", "aiff", "aif"}
    assert set(audio.UPLOAD_EXTENSIONS) == libsndfile | set(CODECS)
    assert set(audio.SUPPORTED_FORMATS) <= set(audio.UPLOAD_EXTENSIONS)


def test_long_m4a_is_cut_at_max_seconds():
    decoded = decode(encode_av(synth("beats", seconds=6.0), "m4a"), max_seconds=2.0)
    assert decoded.truncated and decoded.seconds == pytest.approx(2.0, abs=0.01)
    assert decoded.source_seconds == pytest.approx(6.0, abs=0.15)


@pytest.mark.parametrize("ext", ["m4a", "webm"])
def test_a_file_cut_in_half_keeps_what_decodes_or_says_it_is_damaged(ext):
    data = encode_av(synth("beats", seconds=8.0), ext)
    try:
        decoded = decode(data[: len(data) // 2], name=f"half.{ext}")
    except AudioError as err:  # an M4A whose index (moov) was at the end cannot be read at all
        assert f"half.{ext}" in str(err) and "damaged" in str(err) and "\n" not in str(err)
    else:
        assert 2.0 < decoded.seconds < 6.0 and np.isfinite(decoded.y).all()


@pytest.mark.parametrize("ext", ["m4a", "webm"])
def test_damaged_containers_get_one_clear_message(ext):
    data = encode_av(synth("beats", seconds=4.0), ext)
    broken = data[:64] + bytes(len(data) - 64)  # header kept, everything after it zeroed
    with pytest.raises(AudioError) as err:
        decode(broken, name=f"broken.{ext}")
    message = str(err.value)
    assert f"broken.{ext}" in message and "\n" not in message and "Convert it to WAV" in message, message


def test_a_video_without_sound_says_so():
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        picture = out.add_stream("mpeg4", rate=10)
        picture.width = picture.height = 32
        picture.pix_fmt = "yuv420p"
        for _ in range(20):
            out.mux(picture.encode(av.VideoFrame.from_ndarray(np.zeros((32, 32, 3), np.uint8), format="rgb24")))
        out.mux(picture.encode(None))
    with pytest.raises(AudioError, match="without an audio track") as err:
        decode(buf.getvalue(), name="silent-film.mp4")
    assert "silent-film.mp4" in str(err.value)


def test_headers_of_an_m4a_are_read_without_decoding(tmp_path):
    from genre.dataset import audio_info, discover

    path = tmp_path / "rock" / "song.m4a"
    path.parent.mkdir()
    path.write_bytes(encode_av(synth("beats", seconds=4.0), "m4a"))
    info = audio.probe(path)
    assert info.samplerate == SR and info.channels == 2 and abs(info.seconds - 4.0) < 0.15
    assert "aac" in info.format
    assert audio_info([path])["error"].isna().all()
    assert discover(tmp_path)["path"].tolist() == [str(path)]  # collections of m4a files are found


def test_predict_page_accepts_an_m4a(tmp_path, monkeypatch):
    from streamlit import config
    from streamlit.testing.v1 import AppTest

    from conftest import ROOT

    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("GENRE_DATA_DIR", str(tmp_path))  # no dataset
    config.get_config_options(force_reparse=True)
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=120).run()
    at.switch_page("pages/predict.py").run()
    uploader = at.file_uploader[0]
    assert {"m4a", "mp4", "webm", "wma"} <= {t.lstrip(".") for t in uploader.proto.type}
    data = encode_av(synth("beats", seconds=7.0), "m4a")
    at = uploader.set_value(("voice-memo.m4a", data, "audio/mp4")).run()
    assert not at.exception and not errors_besides_the_verdict(at), errors_besides_the_verdict(at)
    assert at.get("plotly_chart")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Original rate"] == "22.05 kHz" and metrics["Channels"] == "stereo"
