"""Decode audio from a path or raw bytes to mono float32 at a target rate.

Every failure becomes one :class:`AudioError` whose message says what is wrong and what works.
Decoding streams the file block by block (downmix, then resample), so memory stays bounded by
the mono output, and tracks longer than ``max_seconds`` are cut there (``Decoded.truncated``).
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

SUPPORTED_FORMATS = ("wav", "flac", "ogg", "opus", "mp3", "au", "aiff")
CONVERT_HINT = "Convert it to WAV, FLAC, MP3 or Ogg (e.g. `ffmpeg -i in.m4a out.wav`)."
MIN_SECONDS = 1.0
DEFAULT_MAX_SECONDS = 900.0
SILENCE_RMS = 1e-4
_BLOCK_SECONDS = 30.0


class AudioError(ValueError):
    """Audio that cannot be used; ``str(err)`` is a message for a person."""


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


def _container_hint(head: bytes) -> str | None:
    """Name a known-but-unsupported container from its first bytes, if recognisable."""
    if head[4:8] == b"ftyp":
        return "an MP4/M4A (AAC) file"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "a WebM/Matroska file"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "an image"
    if head[:4] in (b"%PDF", b"\x89PNG") or head[:3] == b"\xff\xd8\xff":
        return "a document or image"
    return None


def _open(source: str | Path | bytes, name: str) -> tuple[sf.SoundFile, bytes]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        if not data:
            raise AudioError(f"{name} is empty (0 bytes). Upload an audio file ({', '.join(SUPPORTED_FORMATS)}).")
        head, handle = data[:16], io.BytesIO(data)
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
        handle = path
    try:
        return sf.SoundFile(handle), head
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as err:
        kind = _container_hint(head)
        if kind:
            raise AudioError(f"{name} is {kind}, an unsupported format. {CONVERT_HINT}") from err
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

    Channels are averaged; the rate is converted with soxr (high quality). Only the first
    ``max_seconds`` are decoded. ``name`` is used in messages only (never as a path).
    Raises :class:`AudioError` for empty, undecodable, damaged, too short or non-finite audio.
    """
    name = name or (Path(source).name if isinstance(source, (str, Path)) else "The file")
    handle, _ = _open(source, name)
    with handle:
        source_sr, channels = handle.samplerate, handle.channels
        total = handle.frames if handle.frames and handle.frames > 0 else None
        limit = int(max_seconds * source_sr)
        resampler = None if source_sr == sr else soxr.ResampleStream(source_sr, sr, 1, dtype="float32")
        parts, read = [], 0
        blocksize = int(_BLOCK_SECONDS * source_sr)
        try:
            # handle.read, not handle.blocks: blocks() hands back its whole np.empty buffer when a
            # damaged file (e.g. a truncated MP3) ends before its declared length, i.e. garbage.
            while read < limit:
                block = handle.read(min(blocksize, limit - read), dtype="float32", always_2d=True)
                if not len(block):
                    break
                read += len(block)
                if not np.isfinite(block).all():
                    raise AudioError(f"{name} contains NaN or infinite samples; re-export it as 16-bit PCM WAV.")
                with np.errstate(over="ignore", invalid="ignore"):
                    mono = block.mean(axis=1, dtype=np.float32)
                parts.append(resampler.resample_chunk(mono) if resampler else mono)
        except (sf.LibsndfileError, RuntimeError) as err:
            if not parts:
                raise AudioError(f"{name} is damaged and could not be decoded ({err}). {CONVERT_HINT}") from err
        if resampler is not None:
            parts.append(resampler.resample_chunk(np.zeros(0, np.float32), last=True))
    y = np.concatenate(parts).astype(np.float32, copy=False) if parts else np.zeros(0, np.float32)
    source_seconds = (total or read) / source_sr
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


def ensure_audible(y: np.ndarray, *, name: str = "The clip") -> None:
    """Raise :class:`AudioError` if ``y`` is (near) silence: nothing to classify."""
    rms = float(np.sqrt(np.mean(np.square(y, dtype=np.float64)))) if len(y) else 0.0
    if rms < SILENCE_RMS:
        raise AudioError(f"{name} is silent (RMS {rms:.1e}); there is nothing to classify.")
