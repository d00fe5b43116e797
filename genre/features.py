"""Hand-crafted audio features from ONE shared STFT per clip, and their summaries.

``extract(y, config)`` returns frame-level matrices (rows x frames) for every feature group;
``summarize`` turns them into a named vector of statistics per clip, ``segment_matrix`` into one
row per fixed-length segment. Names are stable and readable: ``mfcc_05_mean``, ``rms_std``.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

import librosa
import numpy as np

FEATURE_GROUPS = (
    "mfcc", "mel", "chroma", "tonnetz", "contrast",
    "centroid", "bandwidth", "rolloff", "flatness", "zcr", "rms", "tempo",
)
KINDS = ("handcrafted", "MSD_musicnn", "MTT_musicnn")
BACKBONE_GROUPS = ("penultimate", "pooled", "tags")
"""Outputs of a pretrained backbone usable as features (see genre.backbones.embeddings)."""
STATS = ("mean", "std")
CONFIG_VERSION = 1


@dataclass(frozen=True)
class FeatureConfig:
    """How audio becomes features. Saved in every model card; prediction uses the same one.

    ``kind`` is ``"handcrafted"`` (the groups below) or a backbone name such as
    ``"MSD_musicnn"`` (pretrained embeddings; then ``sr`` and the segment length are the
    backbone's own). Rates in Hz, lengths in samples, ``segment_seconds`` in seconds.
    """

    kind: str = "handcrafted"
    sr: int = 22050
    n_fft: int = 2048
    hop_length: int = 512
    n_mels: int = 128
    n_mfcc: int = 20
    segment_seconds: float = 3.0
    groups: tuple[str, ...] = field(default=FEATURE_GROUPS)
    version: int = CONFIG_VERSION

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown feature kind {self.kind!r}; known: {', '.join(KINDS)}")
        known = FEATURE_GROUPS if self.kind == "handcrafted" else BACKBONE_GROUPS
        unknown = set(self.groups) - set(known)
        if unknown:
            raise ValueError(f"unknown feature groups {sorted(unknown)} for {self.kind}; known: {', '.join(known)}")
        if self.segment_seconds <= 0 or self.sr <= 0 or self.hop_length <= 0:
            raise ValueError("sr, hop_length and segment_seconds must be positive")
        object.__setattr__(self, "groups", tuple(g for g in known if g in self.groups))

    @property
    def segment_frames(self) -> int:
        """Frames per segment (at least 1)."""
        return max(1, int(round(self.segment_seconds * self.sr / self.hop_length)))

    def to_dict(self) -> dict:
        return {**asdict(self), "groups": list(self.groups)}

    @classmethod
    def from_dict(cls, data: dict) -> "FeatureConfig":
        """Rebuild a config saved by :meth:`to_dict`; ``ValueError`` if this code cannot reproduce it."""
        data = dict(data)
        version = data.get("version", CONFIG_VERSION)
        if version > CONFIG_VERSION:
            raise ValueError(f"feature config version {version} is newer than this code ({CONFIG_VERSION}); update genre")
        known = set(cls.__dataclass_fields__)
        extra = set(data) - known
        if extra:
            raise ValueError(f"feature config has settings this code does not know: {sorted(extra)}")
        if "groups" in data:
            data["groups"] = tuple(data["groups"])
        return cls(**data)

    def digest(self) -> str:
        """Short stable hash of the config, used to key the feature cache."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class Frames:
    """Frame-level features of one clip: ``matrices[group]`` is (rows, n_frames) float32.

    ``tempo`` is in BPM, ``beat_frames`` are frame indices of detected beats, and
    ``log_mel`` is the (n_mels, n_frames) log-power mel spectrogram in dB.
    """

    matrices: dict[str, np.ndarray]
    log_mel: np.ndarray
    tempo: float
    beat_frames: np.ndarray
    sr: int
    hop_length: int

    @property
    def n_frames(self) -> int:
        return self.log_mel.shape[1]

    def times(self) -> np.ndarray:
        """Frame centre times in seconds, shape (n_frames,)."""
        return librosa.frames_to_time(np.arange(self.n_frames), sr=self.sr, hop_length=self.hop_length)


def extract(y: np.ndarray, config: FeatureConfig = FeatureConfig()) -> Frames:
    """Compute every feature group of ``config`` from mono ``y`` at ``config.sr`` Hz.

    One STFT (n_fft, hop_length, Hann, centred) feeds the mel spectrogram, MFCC, chroma,
    spectral shape and flatness; tonnetz comes from that chroma, tempo and beats from the
    mel-based onset envelope. Only ZCR and RMS use the waveform frames (no FFT).
    """
    sr, n_fft, hop = config.sr, config.n_fft, config.hop_length
    magnitude = np.abs(librosa.stft(y, n_fft=n_fft, hop_length=hop))
    power = magnitude**2
    mel = librosa.feature.melspectrogram(S=power, sr=sr, n_mels=config.n_mels)
    log_mel = librosa.power_to_db(mel)
    onset_env = librosa.onset.onset_strength(S=log_mel, sr=sr, hop_length=hop)
    tempo, beats = librosa.beat.beat_track(onset_envelope=onset_env, sr=sr, hop_length=hop)
    groups = set(config.groups)
    out: dict[str, np.ndarray] = {}
    if "mfcc" in groups:
        out["mfcc"] = librosa.feature.mfcc(S=log_mel, n_mfcc=config.n_mfcc)
    if "mel" in groups:
        out["mel"] = log_mel
    if groups & {"chroma", "tonnetz"}:
        chroma = librosa.feature.chroma_stft(S=power, sr=sr, n_fft=n_fft, hop_length=hop)
        if "chroma" in groups:
            out["chroma"] = chroma
        if "tonnetz" in groups:
            out["tonnetz"] = librosa.feature.tonnetz(chroma=chroma, sr=sr)
    if "contrast" in groups:
        out["contrast"] = librosa.feature.spectral_contrast(S=magnitude, sr=sr, n_fft=n_fft, hop_length=hop)
    if "centroid" in groups:
        out["centroid"] = librosa.feature.spectral_centroid(S=magnitude, sr=sr, n_fft=n_fft, hop_length=hop)
    if "bandwidth" in groups:
        out["bandwidth"] = librosa.feature.spectral_bandwidth(S=magnitude, sr=sr, n_fft=n_fft, hop_length=hop)
    if "rolloff" in groups:
        out["rolloff"] = librosa.feature.spectral_rolloff(S=magnitude, sr=sr, n_fft=n_fft, hop_length=hop)
    if "flatness" in groups:
        out["flatness"] = librosa.feature.spectral_flatness(S=magnitude, n_fft=n_fft, hop_length=hop)
    if "zcr" in groups:
        out["zcr"] = librosa.feature.zero_crossing_rate(y, frame_length=n_fft, hop_length=hop)
    if "rms" in groups:
        out["rms"] = librosa.feature.rms(y=y, frame_length=n_fft, hop_length=hop)
    n = log_mel.shape[1]
    matrices = {k: np.asarray(v[:, :n], dtype=np.float32) for k, v in out.items()}
    return Frames(matrices, log_mel.astype(np.float32), float(np.atleast_1d(tempo)[0]),
                  np.asarray(beats, dtype=np.int64), sr, hop)


def feature_names(frames: Frames, config: FeatureConfig) -> list[str]:
    """Names of the summary vector, in order: ``<group>[_<row>]_<stat>`` and ``tempo_bpm``."""
    names = []
    for group in config.groups:
        if group == "tempo":
            names.append("tempo_bpm")
            continue
        rows = frames.matrices[group].shape[0]
        for stat in STATS:
            if rows == 1:
                names.append(f"{group}_{stat}")
            else:
                names.extend(f"{group}_{i:02d}_{stat}" for i in range(1, rows + 1))
    return names


def segment_bounds(n_frames: int, segment_frames: int) -> list[tuple[int, int]]:
    """Non-overlapping (start, stop) frame ranges; a tail shorter than half a segment is dropped,
    except that a clip shorter than one segment yields one segment of all its frames."""
    bounds = [(s, min(s + segment_frames, n_frames)) for s in range(0, n_frames, segment_frames)]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] < segment_frames / 2:
        bounds.pop()
    return bounds or [(0, n_frames)]


def _stats_over(matrix: np.ndarray) -> np.ndarray:
    """(rows, frames) -> (rows * len(STATS),) stats in ``feature_names`` order."""
    return np.concatenate([matrix.mean(axis=1), matrix.std(axis=1)])


def _summary(frames: Frames, config: FeatureConfig, start: int, stop: int) -> np.ndarray:
    parts = []
    for group in config.groups:
        if group == "tempo":
            parts.append(np.array([frames.tempo], dtype=np.float32))
        else:
            parts.append(_stats_over(frames.matrices[group][:, start:stop]))
    return np.concatenate(parts).astype(np.float32)


def summarize(frames: Frames, config: FeatureConfig) -> tuple[np.ndarray, list[str]]:
    """Whole-clip summary: (n_features,) float32 vector and its names."""
    return _summary(frames, config, 0, frames.n_frames), feature_names(frames, config)


def segment_matrix(frames: Frames, config: FeatureConfig) -> tuple[np.ndarray, np.ndarray]:
    """Per-segment summaries: (n_segments, n_features) float32 and start times (s) per segment."""
    bounds = segment_bounds(frames.n_frames, config.segment_frames)
    rows = np.stack([_summary(frames, config, a, b) for a, b in bounds])
    starts = np.array([a * config.hop_length / config.sr for a, _ in bounds], dtype=np.float32)
    return rows, starts


def log_mel_segments(frames: Frames, config: FeatureConfig) -> np.ndarray:
    """Fixed-size log-mel patches for a CNN: (n_segments, n_mels, segment_frames) float32.

    A segment shorter than ``segment_frames`` is padded by repeating the clip (wrap)."""
    width = config.segment_frames
    bounds = segment_bounds(frames.n_frames, width)
    log_mel = frames.log_mel
    if log_mel.shape[1] < width:
        log_mel = np.pad(log_mel, ((0, 0), (0, width - log_mel.shape[1])), mode="wrap")
    patches = []
    for a, _ in bounds:
        patch = log_mel[:, a : a + width]
        if patch.shape[1] < width:
            patch = np.pad(patch, ((0, 0), (0, width - patch.shape[1])), mode="wrap")
        patches.append(patch)
    return np.stack(patches).astype(np.float32)
