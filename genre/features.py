"""Hand-crafted audio features from ONE shared STFT per clip, and their summaries.

``extract(y, config)`` returns frame-level matrices (rows x frames) for every feature group;
``summarize`` turns them into a named vector of statistics per clip, ``segment_matrix`` into one
row per fixed-length segment. Names are stable and readable: ``mfcc_05_mean``, ``rms_std``.
"""
from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import asdict, dataclass, field

import librosa
import numpy as np

from genre import backbones

FEATURE_GROUPS = (
    "mfcc", "mel", "chroma", "tonnetz", "contrast",
    "centroid", "bandwidth", "rolloff", "flatness", "zcr", "rms", "tempo",
)
STATS = ("mean", "std")
CONFIG_VERSION = 2
"""2: ``window_seconds``; backbone segments cover a tail of at least half a segment."""


@dataclass(frozen=True)
class FeatureConfig:
    """How audio becomes features. Saved in every model card; prediction uses the same one.

    ``kind`` is ``"handcrafted"`` (the groups below) or a backbone kind of
    :mod:`genre.backbones` such as ``"MSD_musicnn"`` or ``"MSD_musicnn+mn04"`` (pretrained
    embeddings of each segment; ``groups`` are then backbone outputs, ``sr`` the rate audio is
    decoded at, and each backbone resamples it to its own). ``window_seconds``: for backbones
    that take any window length (mn04), the window centred on each segment (0: the backbone's
    default). Rates in Hz, lengths in samples, ``segment_seconds`` and ``window_seconds`` in s.
    """

    kind: str = "handcrafted"
    sr: int = 22050
    n_fft: int = 2048
    hop_length: int = 512
    n_mels: int = 128
    n_mfcc: int = 20
    segment_seconds: float = 3.0
    groups: tuple[str, ...] = field(default=FEATURE_GROUPS)
    window_seconds: float = 0.0
    version: int = CONFIG_VERSION

    def __post_init__(self):
        known = FEATURE_GROUPS if self.kind == backbones.HANDCRAFTED else backbones.groups_of(self.kind)
        unknown = set(self.groups) - set(known)
        if unknown:
            raise ValueError(f"unknown feature groups {sorted(unknown)} for {self.kind}; known: {', '.join(known)}")
        if self.segment_seconds <= 0 or self.sr <= 0 or self.hop_length <= 0 or self.window_seconds < 0:
            raise ValueError("sr, hop_length and segment_seconds must be positive, window_seconds not negative")
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

    ``tempo`` is in BPM, ``onset_env`` the (n_frames,) onset strength it comes from, and
    ``log_mel`` is the (n_mels, n_frames) log-power mel spectrogram in dB.
    """

    matrices: dict[str, np.ndarray]
    log_mel: np.ndarray
    tempo: float
    onset_env: np.ndarray
    sr: int
    hop_length: int

    @property
    def n_frames(self) -> int:
        return self.log_mel.shape[1]

    @functools.cached_property
    def beat_frames(self) -> np.ndarray:
        """Frame indices of the beats (librosa.beat.beat_track at ``tempo``), int64; computed on
        first use, since importing librosa.beat compiles numba code for seconds in every process
        and only plots need beats."""
        if self.tempo <= 0:
            return np.zeros(0, dtype=np.int64)
        _, beats = librosa.beat.beat_track(onset_envelope=self.onset_env, sr=self.sr, hop_length=self.hop_length,
                                           bpm=self.tempo)
        return np.asarray(beats, dtype=np.int64)

    def times(self) -> np.ndarray:
        """Frame centre times in seconds, shape (n_frames,)."""
        return librosa.frames_to_time(np.arange(self.n_frames), sr=self.sr, hop_length=self.hop_length)


# Faster equivalents of librosa calls whose generic code dominated the extraction time (see
# benchmarks/extract.py). Each gives librosa's result (same definition and defaults) up to
# float rounding; tests/test_features.py compares them with librosa.


@functools.lru_cache(maxsize=8)
def _mel_basis(sr: int, n_fft: int, n_mels: int) -> np.ndarray:
    """librosa.filters.mel (what melspectrogram uses), built once per setting; read-only."""
    basis = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels)
    basis.flags.writeable = False
    return basis


@functools.lru_cache(maxsize=256)
def _chroma_basis(sr: int, n_fft: int, tuning: float) -> np.ndarray:
    """librosa.filters.chroma (what chroma_stft uses) for a tuning; read-only."""
    basis = librosa.filters.chroma(sr=sr, n_fft=n_fft, tuning=tuning, n_chroma=12)
    basis.flags.writeable = False
    return basis


def _flatness(power: np.ndarray, amin: float = 1e-10) -> np.ndarray:
    """librosa's spectral_flatness(S=magnitude) from the power spectrogram, (1, n_frames)."""
    floored = np.maximum(amin, power)
    return np.exp(np.mean(np.log(floored), axis=0, keepdims=True)) / np.mean(floored, axis=0, keepdims=True)


def _centroid_bandwidth(magnitude: np.ndarray, freq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """librosa's spectral_centroid and spectral_bandwidth (p=2) as (1, n_frames) each, from three
    weighted sums per frame: bandwidth^2 = E[f^2] - centroid^2 under the frame's normalised
    magnitude (silent frames give 0, as in librosa)."""
    weights = np.stack([np.ones_like(freq), freq, freq**2])
    total, first, second = weights @ magnitude.astype(np.float64)
    total = np.where(total < np.finfo(magnitude.dtype).tiny, 1.0, total)
    centroid = first / total
    bandwidth = np.sqrt(np.maximum(second / total - centroid**2, 0.0))
    return centroid[None, :], bandwidth[None, :]


def _rolloff_bins_py(magnitude: np.ndarray, roll_percent: np.float32) -> np.ndarray:
    """Per frame, the first bin whose running float32 sum reaches ``roll_percent`` of the frame's
    float32 total: the same sequential sums as librosa's np.cumsum, stopped at the crossing."""
    n_bins, n_frames = magnitude.shape
    out = np.empty(n_frames, np.int64)
    for t in range(n_frames):
        total = np.float32(0.0)
        for i in range(n_bins):
            total += magnitude[i, t]
        threshold = roll_percent * total
        running = np.float32(0.0)
        out[t] = n_bins - 1
        for i in range(n_bins):
            running += magnitude[i, t]
            if running >= threshold:
                out[t] = i
                break
    return out


@functools.cache
def _rolloff_bins():
    """``_rolloff_bins_py`` compiled by numba (imported here: ``import genre`` stays light)."""
    import numba

    return numba.njit(nogil=True)(_rolloff_bins_py)


def _rolloff(magnitude: np.ndarray, freq: np.ndarray, roll_percent: float = 0.85) -> np.ndarray:
    """librosa's spectral_rolloff: the lowest bin frequency whose cumulative magnitude reaches
    ``roll_percent`` of the frame's total, (1, n_frames). (numba: np.cumsum over every bin of a
    30 s clip took 5 ms; compiled on first use, ~0.3 s per process.)"""
    magnitude = np.asarray(magnitude, dtype=np.float32)
    return freq[_rolloff_bins()(magnitude, np.float32(roll_percent))][None, :]


def _zero_crossing_rate(y: np.ndarray, *, frame_length: int, hop_length: int) -> np.ndarray:
    """librosa's zero_crossing_rate (centred, edge padding, |x| <= 1e-10 counts as 0,
    crossings into a frame's first sample not counted), from one pass over the signal."""
    half = frame_length // 2
    padded = np.pad(y, (half, half), mode="edge")
    negative = padded < -np.asarray(1e-10, dtype=padded.dtype)
    crossings = np.concatenate([[0], np.cumsum(negative[1:] != negative[:-1])])
    starts = np.arange(1 + (len(padded) - frame_length) // hop_length) * hop_length
    counts = crossings[starts + frame_length - 1] - crossings[starts]
    return (counts / frame_length)[None, :]


def _spectral_contrast(magnitude: np.ndarray, *, freq: np.ndarray, sr: int, fmin: float = 200.0,
                       n_bands: int = 6, quantile: float = 0.02) -> np.ndarray:
    """librosa's spectral_contrast (same octave bands, quantile and dB difference),
    (n_bands + 1, n_frames), sorting each band along contiguous memory (frames x bins)."""
    octa = np.zeros(n_bands + 2)
    octa[1:] = fmin * (2.0 ** np.arange(0, n_bands + 1))
    if np.any(octa[:-1] >= 0.5 * sr):
        raise ValueError("spectral contrast bands exceed the Nyquist frequency; use a higher sr")
    by_frame = np.ascontiguousarray(magnitude.T)  # (n_frames, n_bins); a free view for an STFT
    valley = np.zeros((n_bands + 1, magnitude.shape[1]))
    peak = np.zeros_like(valley)
    for k, (f_low, f_high) in enumerate(zip(octa[:-1], octa[1:])):
        idx = np.flatnonzero((freq >= f_low) & (freq <= f_high))
        start = idx[0] - 1 if k > 0 else idx[0]
        stop = len(freq) if k == n_bands else idx[-1] + 1
        n = max(int(np.rint(quantile * (stop - start))), 1)
        if k < n_bands:
            stop -= 1
        ordered = np.sort(by_frame[:, start:stop], axis=1)
        valley[k] = ordered[:, :n].mean(axis=1)
        peak[k] = ordered[:, -n:].mean(axis=1)
    return librosa.power_to_db(peak) - librosa.power_to_db(valley)


TEMPOGRAM_STRIDE = 3


def _tempo(onset_env: np.ndarray, *, sr: int, hop_length: int) -> float:
    """librosa.beat.beat_track's tempo (BPM), with the tempogram (the costly part) averaged
    over every ``TEMPOGRAM_STRIDE``-th frame instead of every frame: neighbouring 8.9 s windows
    overlap almost entirely, and the BPM equals librosa's on all 370 GTZAN development clips."""
    if not onset_env.any():  # silence: no tempo (as beat_track)
        return 0.0
    win = int(librosa.time_to_frames(8.0, sr=sr, hop_length=hop_length))  # tempo()'s ac_size
    n = len(onset_env)
    padded = np.pad(onset_env, (win // 2, win // 2), mode="linear_ramp", end_values=[0, 0])
    frames = librosa.util.frame(padded, frame_length=win, hop_length=1)[:, :n:TEMPOGRAM_STRIDE]
    window = librosa.filters.get_window("hann", win, fftbins=True)[:, None]
    tempogram = librosa.util.normalize(librosa.autocorrelate(frames * window, axis=0), norm=np.inf, axis=0)
    return float(librosa.feature.tempo(tg=tempogram, sr=sr, hop_length=hop_length)[0])


def _estimate_tuning(power: np.ndarray, *, freq: np.ndarray, sr: int, n_fft: int, fmin: float = 150.0,
                     fmax: float = 4000.0, threshold: float = 0.1, bins_per_octave: int = 12) -> float:
    """librosa.estimate_tuning(S=power) (what chroma_stft calls by default), computing the
    parabolic-interpolation pitch track only on the bins in [fmin, fmax) where it is used.
    Returns the deviation from A440 tuning in fractions of a chroma bin."""
    rows = np.flatnonzero((fmin <= freq) & (freq < min(fmax, sr / 2)))
    if len(rows) == 0:
        return 0.0
    lo, hi = max(int(rows[0]), 1), min(int(rows[-1]) + 1, len(freq) - 1)
    band = power[lo - 1:hi + 1]
    loud = band * (band > threshold * power.max(axis=0))
    peaks = (loud[1:-1] > loud[:-2]) & (loud[1:-1] >= loud[2:])
    r, t = np.nonzero(peaks)
    if len(r) == 0:
        return 0.0
    # parabolic interpolation around each peak bin (only there: the rest is never used)
    left, centre, right = band[r, t], band[r + 1, t], band[r + 2, t]
    curvature = right + left - 2 * centre
    slope = (right - left) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        shift = np.where(np.abs(slope) >= np.abs(curvature), 0.0, -slope / curvature).astype(power.dtype)
    pitch = ((r + lo + shift) * float(sr) / n_fft).astype(power.dtype)
    mag = centre + 0.5 * slope * shift
    keep = (pitch > 0) & (mag >= np.median(mag[pitch > 0]))
    if not keep.any():
        return 0.0
    return float(librosa.pitch_tuning(pitch[keep], resolution=0.01, bins_per_octave=bins_per_octave))


def _log_mel(power: np.ndarray, config: FeatureConfig) -> np.ndarray:
    """(n_mels, n_frames) log-power mel spectrogram in dB of a (1 + n_fft/2, n_frames) power STFT."""
    mel = np.einsum("...ft,mf->...mt", power, _mel_basis(config.sr, config.n_fft, config.n_mels), optimize=True)
    return librosa.power_to_db(mel)


def log_mel_spectrogram(y: np.ndarray, config: FeatureConfig = FeatureConfig()) -> np.ndarray:
    """The (n_mels, n_frames) float32 log-power mel spectrogram in dB of mono ``y`` at ``config.sr``
    Hz, as :func:`extract` computes it, without the other groups or the tempo: what a page draws."""
    power = np.abs(librosa.stft(y, n_fft=config.n_fft, hop_length=config.hop_length)) ** 2
    return _log_mel(power, config).astype(np.float32)


def extract(y: np.ndarray, config: FeatureConfig = FeatureConfig()) -> Frames:
    """Compute every feature group of ``config`` from mono ``y`` at ``config.sr`` Hz.

    One STFT (n_fft, hop_length, Hann, centred) feeds the mel spectrogram, MFCC, chroma,
    spectral shape and flatness; tonnetz comes from that chroma, tempo and beats from the
    mel-based onset envelope. Only ZCR and RMS use the waveform frames (no FFT).
    """
    sr, n_fft, hop = config.sr, config.n_fft, config.hop_length
    magnitude = np.abs(librosa.stft(y, n_fft=n_fft, hop_length=hop))
    power = magnitude**2
    log_mel = _log_mel(power, config)
    onset_env = librosa.onset.onset_strength(S=log_mel, sr=sr, hop_length=hop)
    tempo = _tempo(onset_env, sr=sr, hop_length=hop)
    groups = set(config.groups)
    freq = librosa.fft_frequencies(sr=sr, n_fft=n_fft)
    out: dict[str, np.ndarray] = {}
    if "mfcc" in groups:
        out["mfcc"] = librosa.feature.mfcc(S=log_mel, n_mfcc=config.n_mfcc)
    if "mel" in groups:
        out["mel"] = log_mel
    if groups & {"chroma", "tonnetz"}:
        tuning = _estimate_tuning(power, freq=freq, sr=sr, n_fft=n_fft)
        raw_chroma = np.einsum("cf,...ft->...ct", _chroma_basis(sr, n_fft, tuning), power, optimize=True)
        chroma = librosa.util.normalize(raw_chroma, norm=np.inf, axis=-2)  # = chroma_stft(S=power)
        if "chroma" in groups:
            out["chroma"] = chroma
        if "tonnetz" in groups:
            out["tonnetz"] = librosa.feature.tonnetz(chroma=chroma, sr=sr)
    if "contrast" in groups:
        out["contrast"] = _spectral_contrast(magnitude, freq=freq, sr=sr)
    if groups & {"centroid", "bandwidth"}:
        centroid, bandwidth = _centroid_bandwidth(magnitude, freq)
        if "centroid" in groups:
            out["centroid"] = centroid
        if "bandwidth" in groups:
            out["bandwidth"] = bandwidth
    if "rolloff" in groups:
        out["rolloff"] = _rolloff(magnitude, freq)
    if "flatness" in groups:
        out["flatness"] = _flatness(power)
    if "zcr" in groups:
        out["zcr"] = _zero_crossing_rate(y, frame_length=n_fft, hop_length=hop)
    if "rms" in groups:
        out["rms"] = librosa.feature.rms(y=y, frame_length=n_fft, hop_length=hop)
    n = log_mel.shape[1]
    matrices = {k: np.asarray(v[:, :n], dtype=np.float32) for k, v in out.items()}
    return Frames(matrices, log_mel.astype(np.float32), tempo, onset_env, sr, hop)


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


GROUP_WORDS = {
    "mfcc": ("MFCC", ""), "mel": ("mel band", "dB"), "chroma": ("chroma", "share of the loudest pitch class"),
    "tonnetz": ("tonnetz", ""), "contrast": ("spectral contrast band", "dB"),
    "centroid": ("spectral centroid", "Hz"), "bandwidth": ("spectral bandwidth", "Hz"),
    "rolloff": ("spectral roll-off (85 %)", "Hz"), "flatness": ("spectral flatness", "0 tone … 1 noise"),
    "zcr": ("zero-crossing rate", "share of samples"), "rms": ("RMS level", "full scale = 1"),
}
"""What each hand-crafted group measures, and its unit, for people."""


def feature_label(name: str) -> str:
    """A feature name of :func:`feature_names` for people: 'centroid_mean' -> 'spectral centroid,
    mean over the segment (Hz)', 'mfcc_02_std' -> 'MFCC 2, standard deviation over the segment',
    'tempo_bpm' -> 'tempo (BPM)'. Other names come back as they are."""
    if name == "tempo_bpm":
        return "tempo (BPM)"
    group, *row, stat = name.split("_")
    if group not in GROUP_WORDS or stat not in STATS or len(row) > 1:
        return name
    words, unit = GROUP_WORDS[group]
    what = {"mean": "mean", "std": "standard deviation"}[stat]
    return f"{words}{' ' + str(int(row[0])) if row else ''}, {what} over the segment{f' ({unit})' if unit else ''}"


def segment_bounds(n_frames: int, segment_frames: int) -> list[tuple[int, int]]:
    """Non-overlapping (start, stop) frame ranges; a tail shorter than half a segment is dropped,
    except that a clip shorter than one segment yields one segment of all its frames."""
    bounds = [(s, min(s + segment_frames, n_frames)) for s in range(0, n_frames, segment_frames)]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] < segment_frames / 2:
        bounds.pop()
    return bounds or [(0, n_frames)]


def _summaries(frames: Frames, config: FeatureConfig, bounds: list[tuple[int, int]]) -> np.ndarray:
    """(len(bounds), n_features) float32: every group's stats over each (start, stop) frame
    range, in ``feature_names`` order (one mean and one std per row of all groups at once)."""
    groups = [g for g in config.groups if g != "tempo"]
    stacked = (np.concatenate([frames.matrices[g] for g in groups]) if groups
               else np.zeros((0, frames.n_frames), np.float32))
    total, order, offset = len(stacked), [], 0
    for group in config.groups:  # positions in [means..., stds..., tempo]
        if group == "tempo":
            order.append([2 * total])
            continue
        rows = frames.matrices[group].shape[0]
        order += [range(offset, offset + rows), range(total + offset, total + offset + rows)]
        offset += rows
    order = np.concatenate([np.asarray(o, dtype=np.int64) for o in order]) if order else np.zeros(0, np.int64)
    out = np.empty((len(bounds), len(order)), np.float32)
    for i, (a, b) in enumerate(bounds):
        segment = stacked[:, a:b]
        out[i] = np.concatenate([segment.mean(axis=1), segment.std(axis=1), [frames.tempo]])[order]
    return out


def _summary(frames: Frames, config: FeatureConfig, start: int, stop: int) -> np.ndarray:
    return _summaries(frames, config, [(start, stop)])[0]


def summarize(frames: Frames, config: FeatureConfig) -> tuple[np.ndarray, list[str]]:
    """Whole-clip summary: (n_features,) float32 vector and its names."""
    return _summary(frames, config, 0, frames.n_frames), feature_names(frames, config)


def segment_matrix(frames: Frames, config: FeatureConfig) -> tuple[np.ndarray, np.ndarray]:
    """Per-segment summaries: (n_segments, n_features) float32 and start times (s) per segment."""
    bounds = segment_bounds(frames.n_frames, config.segment_frames)
    rows = _summaries(frames, config, bounds)
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
