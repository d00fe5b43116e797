"""MusiCNN (Pons & Serra 2019) ported to Keras 3, with its pretrained MSD and MTT weights.

Pipeline: mono audio at 16 kHz -> `log_mel` (frames, 96) -> `to_patches` (n, 187, 96), one patch
~ 3 s -> `build_musicnn` model. Per patch the model returns:

- ``tags`` (50,): sigmoid tag probabilities; labels in ``<name>.json`` (``tag_labels``).
- ``pooled`` (1506,): the mid-end feature map (561 front-end + 3 x 64 mid-end = 753 channels)
  pooled over time, laid out ``[mean_pool | max_pool]``: ``pooled[:753]`` is what musicnn's
  extractor calls ``mean_pool`` and ``pooled[753:]`` its ``max_pool``. It is the input of batch
  norm _9. (The original graph flattens a (753, 2) ``[max, mean]`` stack, i.e. feeds batch norm _9
  with the two pools *interleaved*; the converter permutes batch norm _9 and the rows of the
  ``dense`` kernel to match, so every output is unchanged.)
- ``penultimate`` (200,): musicnn's ``penultimate`` =
  ``batch_norm_10(relu(dense(batch_norm_9(pooled))))``, after that batch norm and before the
  (inference-time no-op) dropout and the output layer.

Keras layer names mirror the checkpoint scopes (``conv2d_5``, ``batch_normalization_9``, ...).
Conv2D kernels are copied as-is (TF layout [time, freq, in, out], input laid out
(batch, time, freq, 1)); the mid-end ``conv2d_5..7`` kernels [7, width, 1, 64] span the whole
width, so they run as Conv1D over time with the singleton ``in`` axis dropped ([7, width, 64]).
Dropout layers are left out (inference only).

Weights: the ``musicnn`` 0.1.0 wheel on PyPI (ISC licence, Music Technology Group, Universitat
Pompeu Fabra). Convert them with::

    python -m genre.backbones.musicnn convert musicnn-0.1.0-py3-none-any.whl [--out DIR]
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import json
import os
import tempfile
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from genre import locations
from genre.backbones.files import atomic_write, sha256

SAMPLE_RATE = 16000  # Hz
N_FFT = 512  # samples
HOP = 256  # samples
N_MELS = 96
PATCH_FRAMES = 187  # frames, ~3 s
NUM_TAGS = 50
POOLED_DIM = 1506
PENULTIMATE_DIM = 200
MODEL_NAMES = ("MSD_musicnn", "MTT_musicnn")
DEFAULT_WEIGHTS_DIR = locations.BACKBONE_WEIGHTS_DIR
LICENSE_FILE = "LICENSE-musicnn.txt"
CHECKPOINT_SUFFIXES = (".index", ".data-00000-of-00001", ".meta")

_MIDEND_CHANNELS = 753  # 204 + 204 + 3 x 51 front-end + 3 x 64 mid-end


class MusicnnWeightsError(RuntimeError):
    """A MusiCNN weights or metadata file is missing or corrupt; ``path`` names it."""

    def __init__(self, message: str, *, path: Path):
        super().__init__(message)
        self.path = path


# ----------------------------------------------------------------------------- audio -> patches


def log_mel(y: np.ndarray) -> np.ndarray:
    """Log-compressed mel spectrogram exactly as musicnn computes it, but in float32.

    y: (samples,) mono float audio at 16 kHz. Returns (frames, 96) float32
    ``log10(10000 * mel + 1)``, mel = power mel spectrogram (n_fft 512, hop 256, centred
    frames). musicnn casts ``mel`` to float16 first, which overflows to inf on loud clips.
    """
    import librosa

    y = np.asarray(y, dtype=np.float32)
    if y.ndim != 1:
        raise ValueError(f"expected mono audio of shape (samples,), got {y.shape}")
    if y.size == 0:
        raise ValueError("empty audio: no samples")
    mel = librosa.feature.melspectrogram(
        y=y, sr=SAMPLE_RATE, hop_length=HOP, n_fft=N_FFT, n_mels=N_MELS
    ).T.astype(np.float32, copy=False)
    return np.log10(np.float32(10000) * mel + np.float32(1))


def to_patches(logmel: np.ndarray) -> np.ndarray:
    """Cut (frames, 96) into non-overlapping (n, 187, 96) float32 patches, like musicnn's extractor.

    A trailing remainder shorter than a patch is dropped (as musicnn does). A clip shorter
    than one patch is repeat-padded (its frames tiled) up to 187 frames, the ``repeat-pad``
    musicnn was trained with, so every non-empty clip yields >= 1 patch.
    Raises ValueError on an empty or wrongly shaped input.
    """
    logmel = np.asarray(logmel, dtype=np.float32)
    if logmel.ndim != 2 or logmel.shape[1] != N_MELS:
        raise ValueError(f"expected a (frames, {N_MELS}) log-mel, got {logmel.shape}")
    frames = logmel.shape[0]
    if frames == 0:
        raise ValueError("empty log-mel: no frames")
    if frames < PATCH_FRAMES:
        logmel = np.tile(logmel, (-(-PATCH_FRAMES // frames), 1))[:PATCH_FRAMES]
    n = logmel.shape[0] // PATCH_FRAMES
    return np.ascontiguousarray(logmel[: n * PATCH_FRAMES].reshape(n, PATCH_FRAMES, N_MELS))


# ----------------------------------------------------------------------------- model


def _scope(base: str, index: int) -> str:
    """TF1 layer scope name: ``conv2d``, ``conv2d_1``, ..."""
    return base if index == 0 else f"{base}_{index}"


def build_musicnn(*, num_tags: int = NUM_TAGS):
    """Keras 3 MusiCNN (untrained): input (None, 187, 96) float32 log-mel patches.

    Returns a functional ``keras.Model`` whose outputs are a dict: ``tags`` (None, num_tags)
    sigmoid, ``pooled`` (None, 1506) ``[mean_pool | max_pool]``, ``penultimate`` (None, 200).
    """
    import keras
    from keras import layers

    def bn(index: int):
        # TF1 tf.layers.batch_normalization defaults match Keras': epsilon 1e-3, momentum 0.99.
        return layers.BatchNormalization(name=_scope("batch_normalization", index))

    def freq_max_block(x, index: int, *, filters: int, kernel: tuple[int, int], padding: str):
        """conv -> relu -> batch norm -> max over all frequency bins -> (None, time, filters)."""
        x = layers.Conv2D(filters, kernel, padding=padding, activation="relu",
                          name=_scope("conv2d", index))(x)
        x = bn(index + 1)(x)
        x = layers.MaxPooling2D(pool_size=(1, x.shape[2]), name=f"freq_max_{index}")(x)
        return layers.Reshape((-1, filters), name=f"squeeze_{index}")(x)

    def midend_conv(x, index: int):
        """'same' Conv1D over time == musicnn's time pad [3, 3] + valid full-width Conv2D."""
        x = layers.Conv1D(64, 7, padding="same", activation="relu",
                          name=_scope("conv2d", index))(x)
        return bn(index + 1)(x)

    logmel = keras.Input(shape=(PATCH_FRAMES, N_MELS), dtype="float32", name="logmel")
    x = layers.Reshape((-1, N_MELS, 1), name="expand")(logmel)
    x = bn(0)(x)
    # Timbral filters: 7 frames x 38 / 67 bands (0.4 / 0.7 of 96); time padded, frequency valid.
    x_pad = layers.ZeroPadding2D(((3, 3), (0, 0)), name="pad_time")(x)
    front = [freq_max_block(x_pad, i, filters=204, kernel=(7, int(f * N_MELS)), padding="valid")
             for i, f in enumerate((0.4, 0.7))]
    # Temporal filters: 128 / 64 / 32 frames x 1 band, TF 'same' padding.
    front += [freq_max_block(x, i, filters=51, kernel=(k, 1), padding="same")
              for i, k in enumerate((128, 64, 32), start=2)]
    frontend = layers.Concatenate(name="frontend")(front)  # (None, 187, 561)

    cnn1 = midend_conv(frontend, 5)
    cnn2 = layers.Add(name="residual_1")([midend_conv(cnn1, 6), cnn1])
    cnn3 = layers.Add(name="residual_2")([midend_conv(cnn2, 7), cnn2])
    midend = layers.Concatenate(name="midend")([frontend, cnn1, cnn2, cnn3])  # (None, 187, 753)

    pooled = layers.Concatenate(name="pooled")([
        layers.GlobalAveragePooling1D(name="mean_pool")(midend),
        layers.GlobalMaxPooling1D(name="max_pool")(midend),
    ])
    x = bn(9)(pooled)
    x = layers.Dense(PENULTIMATE_DIM, activation="relu", name="dense")(x)
    penultimate = bn(10)(x)
    tags = layers.Dense(num_tags, activation="sigmoid", name="dense_1")(penultimate)
    return keras.Model(logmel, {"tags": tags, "pooled": pooled, "penultimate": penultimate},
                       name="musicnn")


# ----------------------------------------------------------------------------- backbone


class MusicnnBackbone:
    """A pretrained MusiCNN: log-mel patches -> tags, pooled and penultimate embeddings."""

    def __init__(self, *, name: str, model, tag_labels: list[str]):
        import tensorflow as tf

        self.name = name
        self.model = model
        self.tag_labels = tag_labels
        # One trace serves every batch size; ~2x faster than model(x) or predict_on_batch.
        self._forward = tf.function(
            lambda x: model(x, training=False),
            input_signature=[tf.TensorSpec((None, PATCH_FRAMES, N_MELS), tf.float32)],
        )
        self._forward(np.zeros((1, PATCH_FRAMES, N_MELS), np.float32))  # trace now, not later

    @classmethod
    def load(cls, name: str = "MSD_musicnn", *,
             weights_dir: str | os.PathLike = DEFAULT_WEIGHTS_DIR) -> MusicnnBackbone:
        """Load ``<weights_dir>/<name>.weights.h5`` + ``<name>.json`` (name: MSD_ or MTT_musicnn).

        Raises MusicnnWeightsError naming the file when one is missing or corrupt (the JSON's
        ``weights_sha256`` must match the weights file).
        """
        if name not in MODEL_NAMES:
            raise ValueError(f"unknown MusiCNN model {name!r}; expected one of {MODEL_NAMES}")
        weights_dir = Path(weights_dir)
        card_path = weights_dir / f"{name}.json"
        weights_path = weights_dir / f"{name}.weights.h5"
        for path in (card_path, weights_path):
            if not path.is_file():
                raise MusicnnWeightsError(
                    f"MusiCNN file missing: {path} (create it with `python -m "
                    f"genre.backbones.musicnn convert musicnn-0.1.0-py3-none-any.whl`)", path=path)
        try:
            card = json.loads(card_path.read_text(encoding="utf-8"))
            labels = [str(label) for label in card["tag_labels"]]
            expected_sha = str(card["weights_sha256"])
        except (ValueError, KeyError, TypeError) as exc:
            raise MusicnnWeightsError(f"corrupt MusiCNN metadata file {card_path}: {exc!r}",
                                      path=card_path) from exc
        if sha256(weights_path) != expected_sha:
            raise MusicnnWeightsError(
                f"corrupt MusiCNN weights file {weights_path}: its sha256 does not match "
                f"'weights_sha256' in {card_path.name}", path=weights_path)
        model = build_musicnn(num_tags=len(labels))
        try:
            model.load_weights(weights_path)
        except Exception as exc:  # h5py/keras raise many types for a damaged file
            raise MusicnnWeightsError(f"corrupt MusiCNN weights file {weights_path}: {exc}",
                                      path=weights_path) from exc
        return cls(name=name, model=model, tag_labels=labels)

    def embed_patches(self, patches: np.ndarray, *, batch_size: int = 8) -> dict[str, np.ndarray]:
        """(n, 187, 96) log-mel patches -> dict of float32 arrays ``tags`` (n, 50),
        ``pooled`` (n, 1506), ``penultimate`` (n, 200); run in batches of ``batch_size``."""
        patches = np.asarray(patches, dtype=np.float32)
        if patches.ndim != 3 or patches.shape[1:] != (PATCH_FRAMES, N_MELS):
            raise ValueError(f"expected patches of shape (n, {PATCH_FRAMES}, {N_MELS}), "
                             f"got {patches.shape}")
        dims = {"tags": len(self.tag_labels), "pooled": POOLED_DIM,
                "penultimate": PENULTIMATE_DIM}
        chunks: dict[str, list[np.ndarray]] = {key: [] for key in dims}
        for start in range(0, len(patches), batch_size):
            out = self._forward(patches[start:start + batch_size])
            for key in dims:
                chunks[key].append(np.asarray(out[key], dtype=np.float32))
        return {key: np.concatenate(chunks[key]) if chunks[key]
                else np.zeros((0, dim), np.float32) for key, dim in dims.items()}

    def describe(self, y16k: np.ndarray) -> dict[str, np.ndarray]:
        """Mono float audio at 16 kHz -> `embed_patches` of its non-overlapping ~3 s patches:
        ``tags`` (n, 50), ``pooled`` (n, 1506), ``penultimate`` (n, 200), n >= 1."""
        return self.embed_patches(to_patches(log_mel(y16k)))

    @property
    def labels(self) -> list[str]:
        """The tag labels (the registry's describing outputs)."""
        return self.tag_labels

    def embed(self, y16k: np.ndarray, *, starts: np.ndarray, segment_seconds: float,
              window_seconds: float) -> dict[str, np.ndarray]:
        """`embed_patches` of one patch per segment start (s) of mono 16 kHz audio; the registry's
        encoder interface. MusiCNN's window is its patch (~2.99 s), so ``segment_seconds`` and
        ``window_seconds`` only say where patches lie: each starts at its segment's start, moved
        back to end at the clip's end if needed; a clip shorter than a patch is repeat-padded."""
        del segment_seconds, window_seconds  # the patch is fixed
        logmel = log_mel(y16k)
        if len(logmel) < PATCH_FRAMES:
            return self.embed_patches(to_patches(logmel))
        first = np.minimum(np.round(np.asarray(starts) * SAMPLE_RATE / HOP).astype(int), len(logmel) - PATCH_FRAMES)
        return self.embed_patches(np.stack([logmel[f:f + PATCH_FRAMES] for f in first]))


def load(name: str) -> MusicnnBackbone:
    """The registry's loader (see :mod:`genre.backbones`)."""
    return MusicnnBackbone.load(name)


# ----------------------------------------------------------------------------- conversion


@contextlib.contextmanager
def musicnn_package(source: str | os.PathLike) -> Iterator[Path]:
    """Yield the ``musicnn`` package folder (configuration.py, MSD_musicnn/, ...) of ``source``:
    a ``musicnn-*.whl`` (unpacked to a temporary folder), an unpacked wheel / site-packages
    folder holding ``musicnn/``, or the ``musicnn`` folder itself."""
    source = Path(source)
    if source.is_file() and source.suffix == ".whl":
        with tempfile.TemporaryDirectory(prefix="musicnn-") as tmp, zipfile.ZipFile(source) as whl:
            whl.extractall(tmp, members=[m for m in whl.namelist() if m.startswith("musicnn")])
            yield Path(tmp) / "musicnn"
        return
    for candidate in (source / "musicnn", source):
        if (candidate / "configuration.py").is_file():
            yield candidate
            return
    raise FileNotFoundError(f"{source} is neither a musicnn wheel nor a folder holding musicnn/")


def checkpoint_prefix(package: Path, name: str) -> str:
    """TF1 checkpoint prefix of model ``name``: the folder itself, with a trailing slash."""
    return f"{package / name}{os.sep}"


def _labels(package: Path, name: str) -> list[str]:
    """Tag labels (``MSD_LABELS`` / ``MTT_LABELS``) parsed from configuration.py, not run."""
    wanted = f"{name.split('_')[0]}_LABELS"
    tree = ast.parse((package / "configuration.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == wanted for t in node.targets):
            return [str(label) for label in ast.literal_eval(node.value)]
    raise ValueError(f"{wanted} not found in {package / 'configuration.py'}")


def _dist_info(package: Path) -> tuple[str, str]:
    """(version, licence text) from the wheel's ``musicnn-*.dist-info`` next to the package."""
    infos = sorted(package.parent.glob("musicnn-*.dist-info"))
    if not infos:
        raise FileNotFoundError(f"no musicnn-*.dist-info next to {package} (licence needed)")
    metadata = (infos[-1] / "METADATA").read_text(encoding="utf-8")
    version = next(line.split(":", 1)[1].strip() for line in metadata.splitlines()
                   if line.startswith("Version:"))
    licence = next(infos[-1].glob("LICEN[CS]E*"), None)
    if licence is None:
        raise FileNotFoundError(f"no LICENSE file in {infos[-1]}")
    return version, licence.read_text(encoding="utf-8")


def _pooled_permutation() -> np.ndarray:
    """Index map from our ``[mean | max]`` layout to the graph's flattened (753, 2) [max, mean]."""
    channels = np.arange(_MIDEND_CHANNELS)
    return np.concatenate([2 * channels + 1, 2 * channels])


def load_checkpoint(prefix: str, *, num_tags: int = NUM_TAGS):
    """Build the Keras model and copy every inference variable of the TF1 checkpoint into it.

    Raises ValueError unless every non-optimizer variable (Adam slots and beta1/2_power
    excluded) is used exactly once and every Keras weight is set.
    """
    import tensorflow as tf

    reader = tf.compat.v1.train.NewCheckpointReader(prefix)
    shapes = reader.get_variable_to_shape_map()
    expected = {v for v in shapes if "Adam" not in v and v not in ("beta1_power", "beta2_power")}
    permutation = _pooled_permutation()
    model = build_musicnn(num_tags=num_tags)
    used: list[str] = []
    for layer in model.layers:
        for weight in layer.weights:
            variable = f"{layer.name}/{weight.name}"
            if variable not in shapes:
                raise ValueError(f"Keras weight {weight.path}: no checkpoint variable {variable}")
            value = reader.get_tensor(variable)
            if layer.name.startswith("conv2d") and len(weight.shape) == 3:
                value = value[:, :, 0, :]  # Conv1D: [7, width, 1, 64] -> [7, width, 64]
            if layer.name == "batch_normalization_9" or variable == "dense/kernel":
                value = value[permutation]
            if tuple(value.shape) != tuple(weight.shape):
                raise ValueError(f"{variable}: checkpoint shape {value.shape} != Keras "
                                 f"{tuple(weight.shape)}")
            weight.assign(value)
            used.append(variable)
    if len(used) != len(set(used)) or set(used) != expected:
        raise ValueError(f"checkpoint/model mismatch: unused {sorted(expected - set(used))}, "
                         f"unknown {sorted(set(used) - expected)}, "
                         f"repeated {sorted({v for v in used if used.count(v) > 1})}")
    return model


def convert(source: str | os.PathLike, *, out: str | os.PathLike = DEFAULT_WEIGHTS_DIR,
            names: Sequence[str] = MODEL_NAMES) -> list[Path]:
    """Convert the TF1 checkpoints in a musicnn wheel or folder into ``out``; returns written paths.

    Writes ``<name>.weights.h5`` (Keras save_weights), ``<name>.json`` (tag labels, weights
    sha256, source wheel version and checkpoint sha256s) and LICENSE-musicnn.txt, each atomically.
    """
    source = Path(source)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with musicnn_package(source) as package:
        version, licence = _dist_info(package)
        origin = {"package": "musicnn", "version": version, "file": source.name}
        if source.is_file():
            origin["sha256"] = sha256(source)
        for name in names:
            prefix = checkpoint_prefix(package, name)
            labels = _labels(package, name)
            model = load_checkpoint(prefix, num_tags=len(labels))
            weights_path = out / f"{name}.weights.h5"
            atomic_write(weights_path, model.save_weights)
            card = {
                "name": name,
                "tag_labels": labels,
                "weights_file": weights_path.name,
                "weights_sha256": sha256(weights_path),
                "outputs": {"tags": len(labels), "pooled": POOLED_DIM,
                            "penultimate": PENULTIMATE_DIM},
                "pooled_layout": "[mean_pool (753) | max_pool (753)] over time, before "
                                 "batch_normalization_9",
                "source": {**origin, "checkpoint": f"musicnn/{name}/",
                           "checkpoint_sha256": {suffix: sha256(Path(prefix + suffix))
                                                 for suffix in CHECKPOINT_SUFFIXES}},
                "license": f"ISC, Music Technology Group, Universitat Pompeu Fabra; "
                           f"see {LICENSE_FILE}",
            }
            card_path = out / f"{name}.json"
            atomic_write(card_path, lambda p: p.write_text(
                json.dumps(card, indent=2) + "\n", encoding="utf-8"))
            written += [weights_path, card_path]
        licence_path = out / LICENSE_FILE
        notice = (f"The MusiCNN weights in this folder ({', '.join(MODEL_NAMES)}) were converted "
                  f"to Keras from the TF1\ncheckpoints in the musicnn {version} wheel on PyPI "
                  f"(https://github.com/jordipons/musicnn).\nIts licence (ISC), copied from the "
                  f"wheel:\n\n{licence.strip()}\n")
        atomic_write(licence_path, lambda p: p.write_text(notice, encoding="utf-8"))
        written.append(licence_path)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m genre.backbones.musicnn",
                                     description="MusiCNN backbone tools.")
    commands = parser.add_subparsers(dest="command", required=True)
    conv = commands.add_parser(
        "convert", help="convert musicnn's TF1 checkpoints to Keras weights",
        description="Convert the MSD/MTT MusiCNN checkpoints of the musicnn 0.1.0 wheel "
                    "(get it with `pip download --no-deps musicnn==0.1.0`) to Keras 3 weights.")
    conv.add_argument("source", metavar="WHEEL_OR_DIR",
                      help="musicnn-0.1.0-py3-none-any.whl or an unpacked wheel folder")
    conv.add_argument("--out", default=str(DEFAULT_WEIGHTS_DIR),
                      help="output folder (default: %(default)s)")
    conv.add_argument("--models", nargs="+", choices=MODEL_NAMES, default=list(MODEL_NAMES),
                      help="models to convert (default: both)")
    args = parser.parse_args(argv)
    for path in convert(args.source, out=args.out, names=args.models):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
