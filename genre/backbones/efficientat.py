"""EfficientAT mn04_as (Schmid et al. 2023), an AudioSet tagger, ported to Keras 3.

Pipeline: mono audio at 32 kHz -> `front_end` (128, frames) log-mel, 100 frames per second ->
windows of it -> `build_mn04` model. Per window the model returns

- ``logits`` (527,): AudioSet class logits (sigmoid -> probabilities; names in
  ``mn04_as_labels.csv``, index 137 = "Music", 0 = "Speech");
- ``features`` (384,): the last feature map (after ``features_16``) averaged over frequency
  and time, the embedding EfficientAT returns beside the logits.

The network is MobileNetV3 at width 0.4 with channel squeeze-excitation, as in EfficientAT's
``models/mn/model.py`` (``get_model(width_mult=0.4, head_type="mlp", se_dims="c")``), in eval
mode with every BatchNorm folded into the convolution before it (as in the ONNX export the
weights come from). Keras layer names are the PyTorch module paths with ``.`` replaced by ``_``
(``features_4_block_2_conc_se_layers_0_fc1``, ``classifier_5``). Input is channels-last
(batch, 128 mel bins, frames, 1); PyTorch's symmetric padding of the stride-2 convolutions is
an explicit ZeroPadding2D before a 'valid' convolution (Keras' 'same' pads asymmetrically).

Weights: EfficientAT's release ``mn04_as_mAP_432.pt`` (MIT licence, (c) 2022 Florian Schmid),
read from its ONNX export (the pickle in the ``.pt`` is never opened). Convert them with::

    python -m genre.backbones.efficientat convert /work/shared/backbones/efficientat-mn04 [--out DIR]
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import scipy.fft

from genre import locations
from genre.backbones.files import atomic_write, sha256

SAMPLE_RATE = 32000  # Hz
N_FFT = 1024  # samples
HOP = 320  # samples, 10 ms
WIN_LENGTH = 800  # samples, 25 ms
N_MELS = 128
FMIN = 0.0  # Hz
FMAX = 15000.0  # Hz
PREEMPHASIS = 0.97
FEATURE_DIM = 384
NUM_CLASSES = 527
MODEL_NAME = "mn04_as"
FRAMES_PER_SECOND = SAMPLE_RATE // HOP  # 100
MIN_SAMPLES = N_FFT // 2 + 2  # torch.stft's reflect padding needs > 512 samples after pre-emphasis
DEFAULT_WEIGHTS_DIR = locations.BACKBONE_WEIGHTS_DIR
WEIGHTS_FILE = f"{MODEL_NAME}.weights.h5"
CARD_FILE = f"{MODEL_NAME}.json"
LABELS_FILE = f"{MODEL_NAME}_labels.csv"
LICENSE_FILE = "LICENSE-efficientat.txt"

# Files of the conversion source folder and their sha256 (README of the shared folder; the
# .onnx and .onnx.data digests match the abbreviated ones given there).
SOURCE_FILES = {
    "mn04_as.onnx": "046c384dd3c5aeb57bc3b23720ce9987431f8a954f8d593df7bbbe2c50e35fdf",
    "mn04_as.onnx.data": "b0089be316d1a45d6c5645f156837196167a91fdc63e1f5d62f8b47f064d3f5c",
    "audioset_class_labels_indices.csv":
        "fb5c4a6cdb124ebce2840afbe56b53b72b71f3366c507cea9336b58d05f218a5",
}
SOURCE_LICENSE = "LICENSE"
PT_SHA256 = "899a8c6217063f6941793102a2780b3dd788ab11fce468d9cf5f0577c453321c"

# Inverted-residual blocks ``features_1`` .. ``features_15`` of mn04: MobileNetV3-Large's table
# with every channel count c scaled by make_divisible(0.4 c, 8).
# (input channels, kernel, expanded channels, output channels, squeeze-excitation,
#  activation, stride)
_BLOCKS = (
    (8, 3, 8, 8, False, "relu", 1),
    (8, 3, 24, 16, False, "relu", 2),
    (16, 3, 32, 16, False, "relu", 1),
    (16, 5, 32, 16, True, "relu", 2),
    (16, 5, 48, 16, True, "relu", 1),
    (16, 5, 48, 16, True, "relu", 1),
    (16, 3, 96, 32, False, "hard_silu", 2),
    (32, 3, 80, 32, False, "hard_silu", 1),
    (32, 3, 72, 32, False, "hard_silu", 1),
    (32, 3, 72, 32, False, "hard_silu", 1),
    (32, 3, 192, 48, True, "hard_silu", 1),
    (48, 3, 272, 48, True, "hard_silu", 1),
    (48, 5, 272, 64, True, "hard_silu", 2),
    (64, 5, 384, 64, True, "hard_silu", 1),
    (64, 5, 384, 64, True, "hard_silu", 1),
)
_STEM_CHANNELS = 8
_HEAD_HIDDEN = 512  # classifier_2: make_divisible(0.4 * 1280, 8)
_SE_REDUCTION = 4


class Mn04WeightsError(RuntimeError):
    """An mn04 weights, card or labels file is missing or corrupt; ``path`` names it."""

    def __init__(self, message: str, *, path: Path):
        super().__init__(message)
        self.path = path


# ----------------------------------------------------------------------------- front end


def kaldi_mel_banks(*, n_mels: int = N_MELS, n_fft: int = N_FFT, sr: int = SAMPLE_RATE,
                    fmin: float = FMIN, fmax: float = FMAX) -> np.ndarray:
    """(n_mels, n_fft // 2) float32 triangular filters, as torchaudio's
    ``compliance.kaldi.get_mel_banks`` (no VTLN warping) computes them, in float32 like torch
    (the two agree within float32 rounding of their logarithms: 1.8e-5).

    mel(f) = 1127 ln(1 + f / 700); n_mels + 2 edges equally spaced in mel from mel(fmin) to
    mel(fmax); filter m rises from edge m to a peak of 1 at edge m + 1 and falls to edge m + 2,
    evaluated in mel at the FFT bin frequencies k * sr / n_fft, k = 0 .. n_fft / 2 - 1 (the
    Nyquist bin is not included).
    """
    f32 = np.float32
    mel_low = 1127.0 * math.log(1.0 + fmin / 700.0)
    mel_high = 1127.0 * math.log(1.0 + fmax / 700.0)
    delta = f32((mel_high - mel_low) / (n_mels + 1))
    index = np.arange(n_mels, dtype=f32)[:, None]
    left = f32(mel_low) + index * delta
    centre = f32(mel_low) + (index + f32(1)) * delta
    right = f32(mel_low) + (index + f32(2)) * delta
    freqs = f32(sr / n_fft) * np.arange(n_fft // 2, dtype=f32)
    mel = (f32(1127.0) * np.log(f32(1) + freqs / f32(700.0)))[None, :]
    up = (mel - left) / (centre - left)
    down = (right - mel) / (right - centre)
    return np.maximum(f32(0), np.minimum(up, down)).astype(f32)


def _mel_matrix() -> np.ndarray:
    """(n_fft // 2 + 1, 128) float32: `kaldi_mel_banks` plus a zero row for the Nyquist bin,
    transposed for ``power @ matrix``."""
    banks = kaldi_mel_banks()
    return np.ascontiguousarray(np.pad(banks, ((0, 0), (0, 1))).T)


_MEL = _mel_matrix()
# numpy.hanning is symmetric (torch.hann_window(800, periodic=False)); torch.stft centres it in
# the 1024-sample frame. |FFT|^2 does not change under a circular shift, so the 800 windowed
# samples are transformed as if they started the frame.
_WINDOW = np.hanning(WIN_LENGTH).astype(np.float32)
_WINDOW_OFFSET = (N_FFT - WIN_LENGTH) // 2
_BLOCK_FRAMES = 3000  # 30 s: ~10 MB of frames, ~12 MB of spectrum at a time


def front_end(y: np.ndarray) -> np.ndarray:
    """EfficientAT's ``AugmentMelSTFT`` in eval mode: (samples,) mono float audio at 32 kHz ->
    (128, frames) float32 log-mel, frames = 1 + (samples - 1) // 320 (100 per second).

    Pre-emphasis y[n + 1] - 0.97 y[n] (one sample shorter), STFT (n_fft 1024, hop 320, the
    symmetric 800-sample Hann window centred in the frame, centred frames with reflect
    padding), power, Kaldi mel banks 0-15000 Hz with a zero column for the Nyquist bin, then
    (ln(mel + 1e-5) + 4.5) / 5. Raises ValueError on stereo, non-finite or too short audio
    (< 514 samples, 16 ms: torch's reflect padding fails there too).
    """
    y = np.asarray(y, dtype=np.float32)
    if y.ndim != 1:
        raise ValueError(f"expected mono audio of shape (samples,), got {y.shape}")
    if y.size < MIN_SAMPLES:
        raise ValueError(f"audio too short for mn04: {y.size} samples, need at least "
                         f"{MIN_SAMPLES} ({MIN_SAMPLES / SAMPLE_RATE * 1000:.0f} ms at 32 kHz)")
    if not np.isfinite(y).all():
        raise ValueError("audio contains NaN or infinite samples")
    x = y[1:] - np.float32(PREEMPHASIS) * y[:-1]
    x = np.pad(x, N_FFT // 2, mode="reflect")
    n_frames = 1 + (x.size - N_FFT) // HOP
    frames = np.lib.stride_tricks.sliding_window_view(x, WIN_LENGTH)[
        _WINDOW_OFFSET:_WINDOW_OFFSET + (n_frames - 1) * HOP + 1:HOP]
    mel = np.empty((n_frames, N_MELS), np.float32)
    for start in range(0, n_frames, _BLOCK_FRAMES):  # bounded memory on long tracks
        block = frames[start:start + _BLOCK_FRAMES] * _WINDOW
        spectrum = scipy.fft.rfft(block, n=N_FFT, axis=1)  # complex64; 3x numpy's speed
        power = np.square(spectrum.real) + np.square(spectrum.imag)
        mel[start:start + len(block)] = power @ _MEL
    logmel = (np.log(mel + np.float32(1e-5)) + np.float32(4.5)) / np.float32(5)
    return np.ascontiguousarray(logmel.T)


def window_starts(n_frames: int, *, centres: np.ndarray, window_frames: int) -> np.ndarray:
    """(n,) int start frames of ``window_frames``-long windows centred on ``centres`` (seconds),
    shifted to lie inside a ``n_frames`` spectrogram; all 0 when the clip is not longer than
    one window. Frame k is centred at k / 100 s, so a window [s, s + W) is centred at
    (s + (W - 1) / 2) / 100 s; s is the nearest such start (halves round up)."""
    centres = np.asarray(centres, dtype=np.float64)
    if n_frames <= window_frames:
        return np.zeros(len(centres), dtype=np.int64)
    starts = np.floor(centres * FRAMES_PER_SECOND - (window_frames - 1) / 2 + 0.5).astype(np.int64)
    return np.clip(starts, 0, n_frames - window_frames)


# ----------------------------------------------------------------------------- model


def _make_divisible(value: float, divisor: int = 8) -> int:
    """MobileNet's channel rounding: nearest multiple of ``divisor``, never 10 % below ``value``."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def build_mn04(*, num_classes: int = NUM_CLASSES):
    """Keras 3 mn04 (untrained): input ``spec`` (batch, 128, frames, 1) float32 `front_end`
    output, any frames >= 1; outputs ``[logits (batch, num_classes), features (batch, 384)]``."""
    import keras
    from keras import layers

    def conv(x, name: str, filters: int, kernel: int, stride: int, *, depthwise: bool = False):
        """PyTorch Conv2d(padding=(kernel - 1) // 2) with bias (BatchNorm folded in)."""
        pad = (kernel - 1) // 2
        padding = "same"
        if stride > 1:
            x = layers.ZeroPadding2D(pad, name=f"{name}_pad")(x)
            padding = "valid"
        if depthwise:
            return layers.DepthwiseConv2D(kernel, strides=stride, padding=padding, name=name)(x)
        return layers.Conv2D(filters, kernel, strides=stride, padding=padding, name=name)(x)

    def activation(x, kind: str, name: str):
        return layers.Activation(kind, name=name)(x)

    def squeeze_excitation(x, name: str, channels: int):
        scale = layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_pool")(x)
        scale = layers.Dense(_make_divisible(channels // _SE_REDUCTION), activation="relu",
                             name=f"{name}_fc1")(scale)
        scale = layers.Dense(channels, activation="sigmoid", name=f"{name}_fc2")(scale)
        return layers.Multiply(name=f"{name}_scale")([x, scale])

    spec = keras.Input(shape=(N_MELS, None, 1), dtype="float32", name="spec")
    x = activation(conv(spec, "features_0_0", _STEM_CHANNELS, 3, 2), "hard_silu", "features_0_2")
    for i, (c_in, kernel, c_exp, c_out, use_se, act, stride) in enumerate(_BLOCKS, start=1):
        block_in, part, name = x, 0, f"features_{i}_block"
        if c_exp != c_in:
            x = activation(conv(x, f"{name}_0_0", c_exp, 1, 1), act, f"{name}_0_act")
            part += 1
        x = conv(x, f"{name}_{part}_0", c_exp, kernel, stride, depthwise=True)
        x = activation(x, act, f"{name}_{part}_act")
        part += 1
        if use_se:
            x = squeeze_excitation(x, f"{name}_{part}_conc_se_layers_0", c_exp)
            part += 1
        x = conv(x, f"{name}_{part}_0", c_out, 1, 1)
        if stride == 1 and c_in == c_out:
            x = layers.Add(name=f"features_{i}_residual")([x, block_in])
    x = activation(conv(x, "features_16_0", FEATURE_DIM, 1, 1), "hard_silu", "features_16_2")
    features = layers.GlobalAveragePooling2D(name="features")(x)
    hidden = layers.Dense(_HEAD_HIDDEN, activation="hard_silu", name="classifier_2")(features)
    logits = layers.Dense(num_classes, name="classifier_5")(hidden)
    return keras.Model(spec, [logits, features], name=MODEL_NAME)


# ----------------------------------------------------------------------------- backbone


def parse_labels(text: str) -> list[str]:
    """AudioSet's ``index,mid,display_name`` CSV -> the display names in index order; raises
    ValueError unless the indices are 0, 1, 2, ... and every name is non-empty."""
    rows = list(csv.DictReader(io.StringIO(text)))
    if not rows or set(rows[0]) != {"index", "mid", "display_name"}:
        raise ValueError("expected the header index,mid,display_name")
    labels = []
    for position, row in enumerate(rows):
        if row["index"] != str(position) or not (row["display_name"] or "").strip():
            raise ValueError(f"row {position + 2}: expected index {position} and a name, "
                             f"got {row['index']!r}, {row['display_name']!r}")
        labels.append(row["display_name"].strip())
    return labels


class Mn04Backbone:
    """The pretrained mn04_as: audio -> per-window 384-d embeddings and 527 AudioSet
    probabilities."""

    def __init__(self, *, model, class_labels: list[str]):
        import tensorflow as tf

        self.model = model
        self.class_labels = class_labels
        # One trace serves every batch size and window length.
        self._forward = tf.function(
            self._probabilities_and_features,
            input_signature=[tf.TensorSpec((None, N_MELS, None, 1), tf.float32)],
        )
        self._forward(np.zeros((1, N_MELS, 100, 1), np.float32))  # trace now, not later

    def _probabilities_and_features(self, spec):
        import tensorflow as tf

        logits, features = self.model(spec, training=False)
        return tf.sigmoid(logits), features

    @classmethod
    def load(cls, *, weights_dir: str | os.PathLike = DEFAULT_WEIGHTS_DIR) -> Mn04Backbone:
        """Load ``<weights_dir>/mn04_as.weights.h5``, ``mn04_as.json`` and ``mn04_as_labels.csv``.

        Raises Mn04WeightsError naming the file when one is missing or corrupt (the card's
        sha256 of the weights and labels files must match).
        """
        weights_dir = Path(weights_dir)
        card_path = weights_dir / CARD_FILE
        paths = {"weights": weights_dir / WEIGHTS_FILE, "labels": weights_dir / LABELS_FILE}
        for path in (card_path, *paths.values()):
            if not path.is_file():
                raise Mn04WeightsError(
                    f"mn04 file missing: {path} (create it with `python -m "
                    f"genre.backbones.efficientat convert <efficientat-mn04 folder>`)", path=path)
        try:
            card = json.loads(card_path.read_text(encoding="utf-8"))
            expected = {key: str(card["sha256"][key]) for key in paths}
        except (ValueError, KeyError, TypeError) as exc:
            raise Mn04WeightsError(f"corrupt mn04 card {card_path}: {exc!r}",
                                   path=card_path) from exc
        for key, path in paths.items():
            if sha256(path) != expected[key]:
                raise Mn04WeightsError(f"corrupt mn04 {key} file {path}: its sha256 does not "
                                       f"match the one in {card_path.name}", path=path)
        try:
            labels = parse_labels(paths["labels"].read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise Mn04WeightsError(f"corrupt mn04 labels file {paths['labels']}: {exc}",
                                   path=paths["labels"]) from exc
        if len(labels) != NUM_CLASSES:
            raise Mn04WeightsError(f"corrupt mn04 labels file {paths['labels']}: {len(labels)} "
                                   f"classes, expected {NUM_CLASSES}", path=paths["labels"])
        model = build_mn04(num_classes=len(labels))
        try:
            model.load_weights(paths["weights"])
        except Exception as exc:  # h5py/keras raise many types for a damaged file
            raise Mn04WeightsError(f"corrupt mn04 weights file {paths['weights']}: {exc}",
                                   path=paths["weights"]) from exc
        return cls(model=model, class_labels=labels)

    def embed_windows(self, windows: np.ndarray, *, batch_size: int = 16) -> dict[str, np.ndarray]:
        """(n, 128, frames) log-mel windows (`front_end` output) -> float32 ``features``
        (n, 384) and ``audioset`` (n, 527) sigmoid probabilities, ``batch_size`` at a time."""
        windows = np.asarray(windows, dtype=np.float32)
        if windows.ndim != 3 or windows.shape[1] != N_MELS or windows.shape[2] < 1:
            raise ValueError(f"expected windows of shape (n, {N_MELS}, frames), "
                             f"got {windows.shape}")
        probabilities, features = [], []
        for start in range(0, len(windows), batch_size):
            probs, feats = self._forward(windows[start:start + batch_size, :, :, None])
            probabilities.append(np.asarray(probs, dtype=np.float32))
            features.append(np.asarray(feats, dtype=np.float32))
        if not features:
            return {"features": np.zeros((0, FEATURE_DIM), np.float32),
                    "audioset": np.zeros((0, len(self.class_labels)), np.float32)}
        return {"features": np.concatenate(features), "audioset": np.concatenate(probabilities)}

    def describe(self, y: np.ndarray, *, centres: np.ndarray,
                 window_seconds: float) -> dict[str, np.ndarray]:
        """Mono float audio at 32 kHz -> one row per window centre (seconds): ``features``
        (n, 384) and ``audioset`` (n, 527) float32 probabilities.

        The front end runs once over the whole clip; each window is ``window_seconds`` of it
        centred on its centre, shifted to lie inside the clip (`window_starts`), or the whole
        clip when that is not longer than one window. Raises ValueError on bad audio (see
        `front_end`), centres that are not a finite 1-D array, or window_seconds <= 0.
        """
        centres = np.asarray(centres, dtype=np.float64)
        if centres.ndim != 1 or not np.isfinite(centres).all():
            raise ValueError(f"centres must be a 1-D array of finite seconds, got {centres!r}")
        if not (math.isfinite(window_seconds) and window_seconds > 0):
            raise ValueError(f"window_seconds must be > 0, got {window_seconds!r}")
        logmel = front_end(y)
        window_frames = max(1, round(window_seconds * FRAMES_PER_SECOND))
        n_frames = logmel.shape[1]
        if n_frames <= window_frames:
            out = self.embed_windows(logmel[None])
            return {key: np.repeat(value, len(centres), axis=0) for key, value in out.items()}
        starts = window_starts(n_frames, centres=centres, window_frames=window_frames)
        windows = np.stack([logmel[:, s:s + window_frames] for s in starts]) if len(starts) \
            else np.zeros((0, N_MELS, window_frames), np.float32)
        return self.embed_windows(windows)

    @property
    def labels(self) -> list[str]:
        """The 527 AudioSet class names (the registry's describing outputs)."""
        return self.class_labels

    def embed(self, y: np.ndarray, *, starts: np.ndarray, segment_seconds: float,
              window_seconds: float) -> dict[str, np.ndarray]:
        """The registry's encoder interface: `describe` with one window centred on each segment
        (segment starts in s, ``segment_seconds`` long), as groups ``embedding`` (n, 384) and
        ``audioset`` (n, 527)."""
        out = self.describe(y, centres=np.asarray(starts, dtype=np.float64) + segment_seconds / 2,
                            window_seconds=window_seconds)
        return {"embedding": out["features"], "audioset": out["audioset"]}


def load(name: str = MODEL_NAME) -> Mn04Backbone:
    """The registry's loader (see :mod:`genre.backbones`); ``name`` is the registry's ``mn04``."""
    del name  # one network
    return Mn04Backbone.load()


# ----------------------------------------------------------------------------- conversion


def _keras_name(initializer: str) -> tuple[str, str]:
    """ONNX initializer name -> (Keras layer name, 'kernel' | 'bias'):
    ``model.features.4.block.3.0.weight_bias`` -> (``features_4_block_3_0``, 'bias')."""
    if not initializer.startswith("model."):
        raise ValueError(f"unexpected initializer {initializer}")
    module, _, kind = initializer[len("model."):].rpartition(".")
    if kind not in ("weight", "weight_bias", "bias"):
        raise ValueError(f"unexpected initializer {initializer}")
    return module.replace(".", "_"), "kernel" if kind == "weight" else "bias"


def _keras_value(layer, kind: str, value: np.ndarray) -> np.ndarray:
    """PyTorch layout -> Keras layout: conv [out, in, kh, kw] -> [kh, kw, in, out], depthwise
    [channels, 1, kh, kw] -> [kh, kw, channels, 1], linear [out, in] -> [in, out]."""
    if kind == "bias":
        return value
    from keras import layers

    if isinstance(layer, layers.DepthwiseConv2D):
        return value.transpose(2, 3, 0, 1)
    if value.ndim == 4:
        return value.transpose(2, 3, 1, 0)
    return value.T


def read_onnx(path: Path) -> dict[str, np.ndarray]:
    """The named float32 weight initializers (``model.*``) of an ONNX file, external data
    loaded from beside it. Needs the ``onnx`` package (the [dev] extra)."""
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError as exc:
        raise RuntimeError("converting mn04 needs the onnx package: pip install onnx") from exc
    graph = onnx.load(str(path), load_external_data=True).graph
    return {init.name: numpy_helper.to_array(init) for init in graph.initializer
            if init.name.startswith("model.")}


def load_onnx_weights(initializers: dict[str, np.ndarray], *, num_classes: int = NUM_CLASSES):
    """Build the Keras model and copy every ``model.*`` ONNX initializer into it; raises
    ValueError unless each is used exactly once, with the expected shape, and every Keras
    weight is set."""
    model = build_mn04(num_classes=num_classes)
    targets = {}
    for layer in model.layers:
        for weight in layer.weights:
            kind = "bias" if weight.name == "bias" else "kernel"
            targets[(layer.name, kind)] = (layer, weight)
    used = set()
    for name, value in initializers.items():
        key = _keras_name(name)
        if key not in targets:
            raise ValueError(f"ONNX initializer {name}: no Keras weight {key}")
        if key in used:
            raise ValueError(f"ONNX initializer {name}: Keras weight {key} set twice")
        layer, weight = targets[key]
        value = _keras_value(layer, key[1], value.astype(np.float32))
        if tuple(value.shape) != tuple(weight.shape):
            raise ValueError(f"{name}: shape {value.shape} != Keras {tuple(weight.shape)} "
                             f"of {weight.path}")
        weight.assign(value)
        used.add(key)
    if missing := sorted(set(targets) - used):
        raise ValueError(f"Keras weights without an ONNX initializer: {missing}")
    return model


def convert(source: str | os.PathLike, *, out: str | os.PathLike = DEFAULT_WEIGHTS_DIR) -> list[Path]:
    """Convert the mn04 ONNX export in folder ``source`` into ``out``; returns written paths.

    Checks the sha256 of the ONNX files and the labels CSV against `SOURCE_FILES`, then writes
    ``mn04_as.weights.h5`` (Keras save_weights), ``mn04_as_labels.csv`` (copied),
    ``LICENSE-efficientat.txt`` and the card ``mn04_as.json`` (sha256 of the weights and
    labels, source digests), each atomically. Raises ValueError on a missing or altered file.
    """
    source, out = Path(source), Path(out)
    for name, digest in SOURCE_FILES.items():
        path = source / name
        if not path.is_file():
            raise ValueError(f"{path} is missing (the efficientat-mn04 folder holds "
                             f"{', '.join(SOURCE_FILES)} and {SOURCE_LICENSE})")
        if sha256(path) != digest:
            raise ValueError(f"{path}: sha256 {sha256(path)} is not the expected {digest}")
    licence_source = source / SOURCE_LICENSE
    if not licence_source.is_file():
        raise ValueError(f"{licence_source} is missing (the MIT licence of the weights)")
    labels_text = (source / "audioset_class_labels_indices.csv").read_text(encoding="utf-8")
    labels = parse_labels(labels_text)
    model = load_onnx_weights(read_onnx(source / "mn04_as.onnx"), num_classes=len(labels))

    out.mkdir(parents=True, exist_ok=True)
    weights_path, labels_path = out / WEIGHTS_FILE, out / LABELS_FILE
    licence_path, card_path = out / LICENSE_FILE, out / CARD_FILE
    atomic_write(weights_path, model.save_weights)
    atomic_write(labels_path, lambda p: p.write_text(labels_text, encoding="utf-8"))
    notice = ("The EfficientAT mn04_as weights in this folder (mn04_as.weights.h5) were converted "
              "to Keras from the\nONNX export of the official release file mn04_as_mAP_432.pt "
              "(https://github.com/fschmid56/EfficientAT,\nF. Schmid, K. Koutini, G. Widmer, "
              "\"Efficient Large-Scale Audio Tagging via Transformer-to-CNN\nKnowledge "
              "Distillation\", ICASSP 2023). Their licence (MIT), copied from the release:\n\n"
              f"{licence_source.read_text(encoding='utf-8').strip()}\n\n"
              "mn04_as_labels.csv: AudioSet's class names (Google, CC BY 4.0).\n")
    atomic_write(licence_path, lambda p: p.write_text(notice, encoding="utf-8"))
    card = {
        "name": MODEL_NAME,
        "weights_file": WEIGHTS_FILE,
        "labels_file": LABELS_FILE,
        "sha256": {"weights": sha256(weights_path), "labels": sha256(labels_path)},
        "input": "(batch, 128, frames, 1) float32 front_end log-mel, 32 kHz, 100 frames/s",
        "outputs": {"logits": len(labels), "features": FEATURE_DIM},
        "source": {"release_file": "mn04_as_mAP_432.pt", "release_sha256": PT_SHA256,
                   "converted_from": dict(SOURCE_FILES)},
        "license": f"MIT, (c) 2022 Florian Schmid; see {LICENSE_FILE}",
    }
    atomic_write(card_path, lambda p: p.write_text(json.dumps(card, indent=2) + "\n",
                                                    encoding="utf-8"))
    return [weights_path, labels_path, licence_path, card_path]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m genre.backbones.efficientat",
                                     description="EfficientAT mn04_as backbone tools.")
    commands = parser.add_subparsers(dest="command", required=True)
    conv = commands.add_parser(
        "convert", help="convert the mn04_as ONNX export to Keras weights",
        description="Convert EfficientAT mn04_as (its ONNX export: mn04_as.onnx + .onnx.data, "
                    "audioset_class_labels_indices.csv, LICENSE) to Keras 3 weights.")
    conv.add_argument("source", metavar="DIR", help="the efficientat-mn04 folder")
    conv.add_argument("--out", default=str(DEFAULT_WEIGHTS_DIR),
                      help="output folder (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        written = convert(args.source, out=args.out)
    except (ValueError, RuntimeError, OSError) as exc:
        parser.exit(2, f"error: {exc}\n")
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
