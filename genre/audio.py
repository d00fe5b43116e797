"""Decode audio from a path or raw bytes to mono float32 at a target rate.

Every failure becomes one :class:`AudioError` whose message says what is wrong and what works.
Decoding streams the file block by block (downmix, then resample), so memory stays bounded by
the mono output, and tracks longer than ``max_seconds`` are cut there (``Decoded.truncated``).
"""
from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

LIBSNDFILE_FORMATS = ("wav", "flac", "ogg", "opus", "mp3", "au", "aiff")
"""File types libsndfile reads (the uploader also takes their aliases ``oga`` and ``aif``)."""
PYAV_FORMATS = {
    "m4a": ("mov", ("aac",)),
    "aac": ("aac", ("aac",)),
    "mp4": ("mov", ("aac",)),
    "webm": ("matroska", ("opus", "libopus", "vorbis")),
    "mka": ("matroska", ("opus", "libopus", "vorbis")),
    "wma": ("asf", ("wmav2", "wmav1")),
    "caf": ("caf", ("alac",)),
    "3gp": ("mov", ("amrnb", "libopencore_amrnb")),
}
"""File types read through PyAV's FFmpeg: extension -> (FFmpeg demuxer, decoders of the audio
such files carry, any one of which will do)."""


def pyav_extensions() -> tuple[str, ...]:
    """The :data:`PYAV_FORMATS` extensions whose demuxer and at least one decoder the installed
    PyAV has (what a PyAV wheel bundles changes between releases); () without PyAV."""
    try:
        import av
    except ImportError:
        return ()

    def has(make, name: str) -> bool:
        try:
            make(name, "r")
        except (ValueError, av.FFmpegError):  # UnknownCodecError is a ValueError
            return False
        return True

    return tuple(ext for ext, (demuxer, decoders) in PYAV_FORMATS.items()
                 if has(av.format.ContainerFormat, demuxer) and any(has(av.codec.Codec, d) for d in decoders))


SUPPORTED_FORMATS = LIBSNDFILE_FORMATS + pyav_extensions()
"""File types that decode (listed in messages; the uploader accepts ``UPLOAD_EXTENSIONS``)."""
UPLOAD_EXTENSIONS = LIBSNDFILE_FORMATS + ("oga", "aif") + pyav_extensions()
"""Every file extension whose audio decodes here (soundfile, then PyAV/FFmpeg); computed from
the installed PyAV's demuxers and decoders. tests/test_formats.py round-trips each one."""
CONVERT_HINT = "Convert it to WAV, FLAC, MP3 or Ogg (e.g. `ffmpeg -i input-file out.wav`)."
MIN_SECONDS = 1.0
DEFAULT_MAX_SECONDS = 900.0
SILENCE_RMS = 1e-4
_BLOCK_SECONDS = 30.0


class AudioError(ValueError):
    """Audio that cannot be used; ``str(err)`` is a message for a person."""


@dataclass(frozen=True)
class AudioInfo:
    """What a decoding gave, without the samples: analysed at ``sr`` Hz for ``seconds`` s, from
    a file of ``source_seconds`` s at ``source_sr`` Hz with ``channels`` channels; ``truncated``
    if the file was longer than what was decoded."""

    sr: int
    seconds: float
    source_sr: int
    channels: int
    source_seconds: float
    truncated: bool


@dataclass(frozen=True)
class Decoded:
    """A decoded clip: ``y`` is mono float32 of shape (n_samples,) at ``sr`` Hz."""

    y: np.ndarray
    sr: int
    source_sr: int
    channels: int
    source_seconds: float
    truncated: bool

    @property
    def seconds(self) -> float:
        return len(self.y) / self.sr

    @property
    def info(self) -> AudioInfo:
        """This decoding without its samples (small enough to cache by the thousand)."""
        return AudioInfo(self.sr, self.seconds, self.source_sr, self.channels, self.source_seconds, self.truncated)


def _container_hint(head: bytes) -> str | None:
    """Name a container from its first bytes, if recognisable (for messages about files that
    could not be decoded)."""
    if head[4:8] == b"ftyp":
        return "an MP4/M4A (AAC) file"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "a WebM/Matroska file"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "an image"
    if head[:4] in (b"%PDF", b"\x89PNG") or head[:3] == b"\xff\xd8\xff":
        return "a document or image"
    return None


@dataclass
class _Reader:
    """Blocks of float32 samples, shape (n_frames, channels), at ``source_sr`` Hz;
    ``total``: the declared length in frames (None if unknown)."""

    source_sr: int
    channels: int
    total: int | None
    blocks: Callable[[int], Iterator[np.ndarray]]
    """blocks(limit) yields blocks until ``limit`` frames were read or the file ends."""
    errors: tuple[type[BaseException], ...]
    close: Callable[[], None]


def _soundfile_reader(handle) -> _Reader:
    """libsndfile: WAV, FLAC, Ogg Vorbis/Opus, MP3, AU, AIFF. Raises if it cannot open the file."""
    sfile = sf.SoundFile(handle)
    blocksize = int(_BLOCK_SECONDS * sfile.samplerate)

    def blocks(limit: int) -> Iterator[np.ndarray]:
        # sfile.read, not sfile.blocks: blocks() hands back its whole np.empty buffer when a
        # damaged file (e.g. a truncated MP3) ends before its declared length, i.e. garbage.
        read = 0
        while read < limit:
            block = sfile.read(min(blocksize, limit - read), dtype="float32", always_2d=True)
            if not len(block):
                return
            read += len(block)
            yield block

    total = sfile.frames if sfile.frames and sfile.frames > 0 else None
    return _Reader(sfile.samplerate, sfile.channels, total, blocks, (sf.LibsndfileError, RuntimeError), sfile.close)


def _av_reader(handle, name: str, kind: str | None) -> _Reader:
    """PyAV (the FFmpeg its wheels bundle): M4A/AAC, MP4, WebM/Matroska, WMA and the rest FFmpeg
    reads. Decodes the first audio track; raises av.error.FFmpegError or AudioError."""
    import av

    container = av.open(handle, mode="r", metadata_errors="ignore")
    stream = next((s for s in container.streams if s.type == "audio"), None)
    if stream is None or not stream.codec_context.sample_rate:
        container.close()
        what = kind or f"a file ({container.format.long_name or container.format.name})"
        raise AudioError(f"{name} is {what} without an audio track; there is nothing to listen to.")
    context = stream.codec_context
    source_sr, channels = context.sample_rate, context.layout.nb_channels
    if stream.duration and stream.time_base:
        total = int(stream.duration * stream.time_base * source_sr)
    elif container.duration:
        total = int(container.duration / av.time_base * source_sr)
    else:
        total = None

    to_float = av.AudioResampler(format="fltp")  # keeps each frame's rate and layout

    def blocks(limit: int) -> Iterator[np.ndarray]:
        read = 0
        for frame in container.decode(stream):
            planar = [frame] if frame.format.name == "fltp" else to_float.resample(frame)
            if not planar:
                continue
            # (channels, n) planar float32 -> (n, channels)
            block = np.ascontiguousarray(np.concatenate([f.to_ndarray() for f in planar], axis=1).T[: limit - read])
            if block.shape[1] != channels:  # a layout change mid-stream: fold to the first layout's width
                block = np.repeat(block.mean(axis=1, keepdims=True), channels, axis=1)
            read += len(block)
            yield block
            if read >= limit:
                return

    return _Reader(source_sr, channels, total, blocks, (av.error.FFmpegError, ValueError), container.close)


def _open(source: str | Path | bytes, name: str) -> _Reader:
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        if not data:
            raise AudioError(f"{name} is empty (0 bytes). Upload an audio file ({', '.join(SUPPORTED_FORMATS)}).")
        head = data[:16]

        def handle():
            return io.BytesIO(data)
    else:
        path = Path(source)
        try:
            size = path.stat().st_size
            with open(path, "rb") as fh:
                head = fh.read(16)
        except OSError as err:
            raise AudioError(f"{name} cannot be read: {err.strerror or err}.") from err
        if size == 0:
            raise AudioError(f"{name} is empty (0 bytes). Use an audio file ({', '.join(SUPPORTED_FORMATS)}).")

        def handle():
            return str(path)
    try:
        return _soundfile_reader(handle())
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError):
        pass
    import av  # only for what libsndfile cannot read

    kind = _container_hint(head)
    try:
        return _av_reader(handle(), name, kind)
    except (av.error.FFmpegError, ValueError, IndexError, OSError) as err:
        if isinstance(err, AudioError):
            raise
        if kind and "audio" not in kind and "MP4" not in kind and "WebM" not in kind:
            raise AudioError(f"{name} is {kind}, not audio. Use an audio file ({', '.join(SUPPORTED_FORMATS)}).") from err
        if kind:
            raise AudioError(f"{name} is {kind} but it is damaged and could not be decoded. {CONVERT_HINT}") from err
        raise AudioError(
            f"{name} is not audio in a supported format ({', '.join(SUPPORTED_FORMATS)}), "
            f"or it is damaged. {CONVERT_HINT}"
        ) from err


def decode(
    source: str | Path | bytes,
    *,
    sr: int = 22050,
    max_seconds: float = DEFAULT_MAX_SECONDS,
    min_seconds: float = MIN_SECONDS,
    name: str | None = None,
) -> Decoded:
    """Decode ``source`` (a path or the file's bytes) to mono float32 at ``sr`` Hz.

    libsndfile reads what it can (WAV, FLAC, Ogg, MP3, AU, AIFF); anything else goes through
    PyAV's FFmpeg (M4A/AAC, MP4, WebM/Opus, Matroska, WMA ...; the first audio track of a video).
    Channels are averaged; the rate is converted with soxr (high quality). Only the first
    ``max_seconds`` are decoded. ``name`` is used in messages only (never as a path).
    Raises :class:`AudioError` for empty, undecodable, damaged, too short or non-finite audio.
    """
    name = name or (Path(source).name if isinstance(source, (str, Path)) else "The file")
    reader = _open(source, name)
    source_sr, channels, total = reader.source_sr, reader.channels, reader.total
    limit = int(max_seconds * source_sr)
    resampler = None if source_sr == sr else soxr.ResampleStream(source_sr, sr, 1, dtype="float32")
    parts, read = [], 0
    try:
        for block in reader.blocks(limit):
            read += len(block)
            if not np.isfinite(block).all():
                raise AudioError(f"{name} contains NaN or infinite samples; re-export it as 16-bit PCM WAV.")
            with np.errstate(over="ignore", invalid="ignore"):
                mono = block.mean(axis=1, dtype=np.float32)
            parts.append(resampler.resample_chunk(mono) if resampler else mono)
    except reader.errors as err:
        if isinstance(err, AudioError):
            raise
        if not parts:
            raise AudioError(f"{name} is damaged and could not be decoded ({err}). {CONVERT_HINT}") from err
    finally:
        reader.close()
    if resampler is not None:
        parts.append(resampler.resample_chunk(np.zeros(0, np.float32), last=True))
    y = np.concatenate(parts).astype(np.float32, copy=False) if parts else np.zeros(0, np.float32)
    source_seconds = max(total or 0, read) / source_sr
    if len(y) < min_seconds * sr:
        if total and read < 0.9 * min(total, limit):
            raise AudioError(
                f"{name} is truncated or damaged: only {read / source_sr:.2f} s of its "
                f"{total / source_sr:.2f} s could be decoded. {CONVERT_HINT}"
            )
        raise AudioError(
            f"{name} is too short ({len(y) / sr:.2f} s of audio); at least {min_seconds:g} s is needed."
        )
    return Decoded(y, sr, source_sr, channels, source_seconds, truncated=read >= limit and source_seconds > max_seconds)


@dataclass(frozen=True)
class Info:
    """Header facts of an audio file (nothing decoded): duration, rate, channels, format name."""

    seconds: float
    samplerate: int
    channels: int
    format: str


def probe(path: str | Path) -> Info:
    """Read an audio file's header with libsndfile, else PyAV's FFmpeg (first audio track).
    Raises :class:`AudioError` if neither can read it."""
    try:
        info = sf.info(str(path))
        return Info(float(info.duration), info.samplerate, info.channels, info.format)
    except (sf.LibsndfileError, RuntimeError, TypeError):
        pass
    import av

    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            stream = next((s for s in container.streams if s.type == "audio"), None)
            if stream is None or not stream.codec_context.sample_rate:
                raise AudioError(f"{Path(path).name} has no audio track")
            seconds = (float(stream.duration * stream.time_base) if stream.duration and stream.time_base
                       else (container.duration or 0) / av.time_base)
            return Info(seconds, stream.codec_context.sample_rate, stream.codec_context.layout.nb_channels,
                        f"{container.format.name.split(',')[0].upper()} ({stream.codec_context.name})")
    except (av.error.FFmpegError, ValueError, IndexError) as err:
        raise AudioError(f"{Path(path).name} is not audio in a supported format, or it is damaged ({err})") from err


def ensure_audible(y: np.ndarray, *, name: str = "The clip") -> None:
    """Raise :class:`AudioError` if ``y`` is (near) silence: nothing to classify."""
    ensure_level(float(np.sqrt(np.mean(np.square(y, dtype=np.float64)))) if len(y) else 0.0, name=name)


def ensure_level(rms: float, *, name: str = "The clip") -> None:
    """Raise :class:`AudioError` if a clip's RMS level (full scale = 1) is below ``SILENCE_RMS``."""
    if rms < SILENCE_RMS:
        raise AudioError(f"{name} is silent (RMS {rms:.1e}); there is nothing to classify.")
