"""Formats beyond libsndfile, decoded through PyAV's FFmpeg: M4A/AAC, MP4 (with a video track),
WebM/Opus, Matroska, WMA, raw AAC, CAF/ALAC and 3GP/AMR. Every file is encoded here with PyAV from
a synthetic wav-like signal and must decode to the same samples within the codec's tolerance
(aligned for the encoder's priming delay); damaged or audio-less files get one clear message.

What a PyAV wheel bundles changes between releases (18.1.1 dropped the AMR-NB encoder), so no
test assumes an encoder: a format whose encoder this PyAV lacks is read from its committed fixture
(``tests/fixtures/``, made by ``python tests/test_formats.py --write-fixture EXT`` with a PyAV
that has the encoder), or skipped with the reason. Decoders are another matter: the uploader
offers exactly the formats this PyAV decodes (``genre.audio.UPLOAD_EXTENSIONS``), and each of
those must round-trip here."""
from __future__ import annotations

import io
import sys
from pathlib import Path

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
FIXTURES = Path(__file__).resolve().parent / "fixtures"
ROUND_TRIP_SECONDS = 4.0


def fixture_path(ext: str) -> Path:
    """The committed file of ``synth('tones', seconds=ROUND_TRIP_SECONDS)`` encoded as ``ext``."""
    return FIXTURES / f"tones-4s.{ext}"


def missing_encoder(ext: str) -> str | None:
    """Why this PyAV cannot write ``ext`` files (no encoder or no muxer), or None if it can."""
    container, codec = CODECS[ext][:2]
    try:
        av.codec.Codec(codec, "w")
    except av.codec.codec.UnknownCodecError:
        return f"PyAV {av.__version__} has no {codec} encoder"
    try:
        av.format.ContainerFormat(container, "w")
    except ValueError:
        return f"PyAV {av.__version__} cannot write {container} files"
    return None


def round_trip_source(ext: str) -> bytes:
    """``synth('tones', seconds=ROUND_TRIP_SECONDS)`` as an ``ext`` file: encoded here when this
    PyAV can, else the committed fixture; skips the calling test, with the reason, if neither."""
    reason = missing_encoder(ext)
    if reason is None:
        return encode_av(synth("tones", seconds=ROUND_TRIP_SECONDS), ext, video=ext == "mp4")
    if fixture_path(ext).is_file():
        return fixture_path(ext).read_bytes()
    pytest.skip(f"{reason} and tests/fixtures has no {fixture_path(ext).name}")


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
    if ext not in audio.UPLOAD_EXTENSIONS:
        pytest.skip(f"PyAV {av.__version__} cannot decode .{ext}, so the uploader does not offer it")
    y = synth("tones", seconds=ROUND_TRIP_SECONDS)
    data = round_trip_source(ext)
    path = tmp_path / f"clip.{ext}"
    path.write_bytes(data)
    for source in (path, data):
        decoded = decode(source, sr=SR, name=path.name)
        _, _, rate, channels, min_snr = CODECS[ext]
        assert (decoded.sr, decoded.source_sr, decoded.channels) == (SR, rate, channels)
        assert decoded.y.dtype == np.float32 and np.isfinite(decoded.y).all()
        assert abs(decoded.seconds - ROUND_TRIP_SECONDS) < 0.15, decoded.seconds
        snr, lag = aligned_snr(y, decoded.y)
        assert snr > min_snr, (ext, snr, lag)
    assert decode(path, sr=16000).sr == 16000  # any target rate, as for libsndfile's formats


def test_every_offered_format_is_round_tripped_here():
    """Each extension the uploader offers is libsndfile's (tests/test_audio.py,
    tests/test_bad_input.py) or one of CODECS, encoded here or read from its fixture: an offered
    format is never untested."""
    libsndfile = {"wav", "flac", "ogg", "oga", "opus", "mp3", "au", "aiff", "aif"}
    offered = set(audio.UPLOAD_EXTENSIONS)
    assert libsndfile <= offered and offered <= libsndfile | set(CODECS), offered
    assert set(audio.SUPPORTED_FORMATS) <= offered
    untestable = [ext for ext in offered - libsndfile if missing_encoder(ext) and not fixture_path(ext).is_file()]
    assert not untestable, f"offered, but neither encodable here nor in tests/fixtures: {untestable}"


def test_the_offer_follows_what_this_pyav_decodes(monkeypatch):
    """A format is offered when FFmpeg has its demuxer and one of its decoders: with the AMR-NB
    decoders reported missing, 3GP is not offered and the rest stays."""
    assert set(audio.pyav_extensions()) == set(CODECS)  # this PyAV decodes all of them
    real_codec = av.codec.Codec

    def without_amr(name, mode="r"):
        if "amrnb" in name:
            raise av.codec.codec.UnknownCodecError(name)
        return real_codec(name, mode)

    monkeypatch.setattr(av.codec, "Codec", without_amr)
    assert set(audio.pyav_extensions()) == set(CODECS) - {"3gp"}


def test_a_missing_encoder_means_the_fixture_or_a_skip_never_an_error(monkeypatch):
    """With an encoder reported missing, the round-trip source is the committed fixture (3GP/AMR)
    or the test is skipped with the reason (M4A/AAC has no fixture)."""
    monkeypatch.setattr(av.codec, "Codec", lambda name, mode="r": (_ for _ in ()).throw(
        av.codec.codec.UnknownCodecError(name)))
    assert missing_encoder("3gp") and missing_encoder("m4a")
    assert round_trip_source("3gp") == fixture_path("3gp").read_bytes()
    with pytest.raises(pytest.skip.Exception, match="has no aac encoder and tests/fixtures has no tones-4s.m4a"):
        round_trip_source("m4a")


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


if __name__ == "__main__":  # python tests/test_formats.py --write-fixture EXT  (run from the project folder)
    if len(sys.argv) != 3 or sys.argv[1] != "--write-fixture" or sys.argv[2] not in CODECS:
        sys.exit(f"usage: python tests/test_formats.py --write-fixture {{{','.join(CODECS)}}}")
    fixture_path(sys.argv[2]).write_bytes(encode_av(synth("tones", seconds=ROUND_TRIP_SECONDS), sys.argv[2]))
    print(fixture_path(sys.argv[2]))
