"""Keras model builders and the model directory format.

A saved model is a directory holding ``model.keras`` (loaded with ``safe_mode=True``) and
``card.json`` (labels, FeatureConfig, split, validation metrics, history, data, versions, date).
Directories are written under a temporary name and renamed into place, so a reader never sees a
half-written model. Normalisation lives inside the network (a ``Normalization`` layer adapted on
the training side only). TensorFlow/Keras is imported lazily, inside the functions that need it.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from genre import keras_file, locations
from genre.features import FeatureConfig

MODELS_DIR = Path(os.environ.get("GENRE_MODELS_DIR") or locations.HOME / "models").expanduser()
"""Where models are listed and saved: ``$GENRE_MODELS_DIR`` or ``models/`` of the clone (of
:data:`genre.locations.HOME` when installed)."""
DEFAULT_MODEL_DIR = locations.SHIPPED_MODEL_DIR
"""The shipped default model (always the shipped one, whatever ``$GENRE_MODELS_DIR`` says)."""
CARD_VERSION = 1
MODEL_FILE, CARD_FILE = "model.keras", "card.json"
FAMILIES = ("mlp", "cnn", "logreg")


class ModelError(ValueError):
    """A model directory that cannot be used; ``str(err)`` is a message for a person."""


@dataclass(frozen=True)
class ModelSpec:
    """Hyper-parameters of a model family. ``family`` 'mlp' eats feature rows, 'cnn' log-mel
    patches, 'logreg' feature rows through a multinomial logistic regression fitted exactly by
    scikit-learn (then the same Keras model as an MLP without hidden layers). ``hidden`` = units
    per hidden layer (MLP) or filters per conv block (CNN). ``l2``: weight penalty per example
    (loss = mean cross-entropy + l2 * sum of squared weights; for 'logreg' C = 1 / (2 l2 n)).
    For 'logreg', ``epochs`` caps the solver's iterations and ``learning_rate``, ``batch_size``,
    ``dropout`` and ``patience`` do not apply."""

    family: str = "mlp"
    hidden: tuple[int, ...] = (256, 128)
    dropout: float = 0.3
    learning_rate: float = 1e-3
    epochs: int = 60
    batch_size: int = 64
    patience: int = 10
    l2: float = 1e-4
    class_weight: bool = True
    """Weight each genre's segments by the inverse of its frequency (balanced)."""
    logit_adjust: bool = True
    """'logreg' only: raise the logit of each label with fewer training clips than the median
    label by log(median / its clips) (logit adjustment, Menon et al. 2021). Balanced weights alone
    leave a label taught from a few examples under-predicted (:func:`genre.train.fit_logistic`)."""

    def __post_init__(self):
        if self.family not in FAMILIES:
            raise ValueError(f"unknown model family {self.family!r}; use one of {FAMILIES}")
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))

    def to_dict(self) -> dict:
        return {**asdict(self), "hidden": list(self.hidden)}


def build_mlp(n_features: int, n_classes: int, spec: ModelSpec, *, train_rows: np.ndarray):
    """Dense network on feature rows (n, n_features) -> softmax over n_classes.
    The Normalization layer is adapted on ``train_rows`` only."""
    import keras

    norm = keras.layers.Normalization(name="normalize")
    norm.adapt(train_rows)
    inputs = keras.Input((n_features,), name="features")
    x = norm(inputs)
    reg = keras.regularizers.L2(spec.l2) if spec.l2 else None
    for i, units in enumerate(spec.hidden):
        x = keras.layers.Dense(units, activation="relu", kernel_regularizer=reg, name=f"dense_{i}")(x)
        if spec.dropout:
            x = keras.layers.Dropout(spec.dropout, name=f"dropout_{i}")(x)
    outputs = keras.layers.Dense(n_classes, activation="softmax", kernel_regularizer=reg, name="genre")(x)
    return _compile(keras.Model(inputs, outputs, name="feature_mlp"), spec)


def build_cnn(input_shape: tuple[int, int], n_classes: int, spec: ModelSpec, *, train_patches: np.ndarray):
    """Small 2-D CNN on log-mel patches (n, n_mels, frames) -> softmax; per-mel-band
    normalisation adapted on ``train_patches`` only."""
    import keras

    norm = keras.layers.Normalization(axis=1, name="normalize")
    norm.adapt(train_patches.astype(np.float32))
    inputs = keras.Input(input_shape, name="log_mel")
    x = keras.layers.Reshape((*input_shape, 1))(norm(inputs))
    for i, filters in enumerate(spec.hidden):
        x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"conv_{i}")(x)
        x = keras.layers.BatchNormalization(name=f"bn_{i}")(x)
        x = keras.layers.Activation("relu")(x)
        x = keras.layers.MaxPooling2D(2, name=f"pool_{i}")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    if spec.dropout:
        x = keras.layers.Dropout(spec.dropout)(x)
    outputs = keras.layers.Dense(n_classes, activation="softmax", name="genre")(x)
    return _compile(keras.Model(inputs, outputs, name="logmel_cnn"), spec)


def build_logistic(*, mean: np.ndarray, variance: np.ndarray, coef: np.ndarray, intercept: np.ndarray,
                   spec: ModelSpec):
    """A fitted multinomial logistic regression as a Keras model: (n, n_features) rows ->
    Normalization(mean, variance) -> Dense softmax with kernel ``coef.T`` (n_features, n_classes)
    and bias ``intercept`` (n_classes,). Softmax of the same logits as scikit-learn's."""
    import keras

    inputs = keras.Input((coef.shape[1],), name="features")
    x = keras.layers.Normalization(mean=mean, variance=variance, name="normalize")(inputs)
    dense = keras.layers.Dense(coef.shape[0], activation="softmax", name="genre")
    model = keras.Model(inputs, dense(x), name="logistic_regression")
    dense.set_weights([coef.T.astype(np.float32), intercept.astype(np.float32)])
    return _compile(model, spec)


def _compile(model, spec: ModelSpec):
    import keras

    model.compile(optimizer=keras.optimizers.Adam(spec.learning_rate),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def library_versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {}
    for pkg in ("keras", "tensorflow-cpu", "tensorflow", "librosa", "numpy", "scikit-learn"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            continue
    return out


@dataclass
class ModelCard:
    """Everything needed to use and judge a model, stored as ``card.json``."""

    labels: list[str]
    feature_config: dict
    spec: dict
    input: str = "rows"  # 'rows' (feature rows) or 'log_mel' (patches)
    split: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    history: dict = field(default_factory=dict)
    data: dict = field(default_factory=dict)
    feature_names: list[str] = field(default_factory=list)
    notes: str = ""
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    versions: dict = field(default_factory=library_versions)
    card_version: int = CARD_VERSION

    @property
    def config(self) -> FeatureConfig:
        return FeatureConfig.from_dict(self.feature_config)

    @classmethod
    def from_json(cls, text: str, *, where: str) -> "ModelCard":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ModelError(f"{where}: card.json is not valid JSON ({err.msg}).") from err
        if not isinstance(data, dict):
            raise ModelError(f"{where}: card.json does not describe a model.")
        version = data.get("card_version", 0)
        if not isinstance(version, int) or version > CARD_VERSION:
            raise ModelError(f"{where}: the model card is version {version}, newer than this app "
                             f"understands ({CARD_VERSION}); update genre to use it.")
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        try:
            card = cls(**known)
            card.config  # noqa: B018 - validates that this code can reproduce the features
        except (TypeError, ValueError) as err:
            raise ModelError(f"{where}: this code cannot reproduce the model's features ({err}).") from err
        if not card.labels or len(set(card.labels)) != len(card.labels):
            raise ModelError(f"{where}: card.json has no valid label list.")
        return card


@dataclass
class LoadedModel:
    """A Keras model with its card; ``path`` is its directory."""

    keras_model: object
    card: ModelCard
    path: Path

    @property
    def labels(self) -> list[str]:
        return self.card.labels

    @property
    def name(self) -> str:
        return self.path.name


RESERVED_NAMES = {
    DEFAULT_MODEL_DIR.name: "is the shipped model",
    "backbones": "holds the pretrained MusiCNN weights that models use",
}
"""Names a person's model can never take (lower case), with the reason."""


def sanitize_name(name: str) -> str:
    """A safe folder name from a person's model name: letters, digits, '-', '_' and '.', no
    path separators, no leading dots; raises ModelError if nothing usable is left or the name is
    reserved (:data:`RESERVED_NAMES`: the shipped default, the backbone weights)."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", name.strip()).strip("-.")[:64]
    cleaned = re.sub(r"\.{2,}", ".", cleaned)
    if not cleaned:
        raise ModelError("Give the model a name with at least one letter or digit.")
    reason = RESERVED_NAMES.get(cleaned.lower())
    if reason:
        raise ModelError(f"'{cleaned.lower()}' {reason}; give yours another name.")
    return cleaned


def is_model_dir(path: str | Path) -> bool:
    """True if ``path`` is a real folder (not a link) holding a model card: a saved model."""
    path = Path(path)
    return path.is_dir() and not path.is_symlink() and (path / CARD_FILE).is_file()


def check_replaceable(target: str | Path, *, overwrite: bool) -> None:
    """Raise ModelError unless a model may be written to ``target``: it must not exist, or be a
    saved model (:func:`is_model_dir`) and ``overwrite`` be True. A folder that is not a model
    (backbone weights, notes, anything without a card) or a link is refused whatever ``overwrite``."""
    target = Path(target)
    if not (target.exists() or target.is_symlink()):
        return
    if not is_model_dir(target):
        what = "a link" if target.is_symlink() else "not a saved model (it has no card.json)"
        raise ModelError(f"{target.name!r} is {what}, so it is never overwritten; choose another name.")
    if not overwrite:
        raise ModelError(f"a model named {target.name!r} already exists; choose another name or allow "
                         "overwriting it")


def save_target(name: str, *, overwrite: bool = False, root: str | Path | None = None) -> Path:
    """The folder a model called ``name`` would be saved to under ``root`` (default
    :data:`MODELS_DIR`), after :func:`sanitize_name` and :func:`check_replaceable`; raises
    ModelError with the reason otherwise. Shared by the Train page and ``python -m genre train``."""
    target = Path(MODELS_DIR if root is None else root) / sanitize_name(name)
    check_replaceable(target, overwrite=overwrite)
    return target


def save_model(keras_model, card: ModelCard, target: str | Path, *, overwrite: bool = False) -> Path:
    """Write ``model.keras`` + ``card.json`` into a temporary sibling directory, then rename it
    to ``target`` (replacing an existing model only if ``overwrite``; a folder that is not a model
    is never replaced, see :func:`check_replaceable`). Returns ``target``. A disk error (full,
    read-only) becomes a ModelError, and leaves every saved model as it was."""

    def write(folder: Path) -> None:
        keras_model.save(folder / MODEL_FILE)
        (folder / CARD_FILE).write_text(json.dumps(asdict(card), indent=1, default=_json_default))

    return _write_model_dir(Path(target), write, overwrite=overwrite)


def copy_model(source: str | Path, target: str | Path, *, overwrite: bool = False) -> Path:
    """Copy the saved model in ``source`` (its ``model.keras`` and ``card.json``) to ``target``
    with the same atomic rename and the same guard as :func:`save_model`. Returns ``target``."""
    source = Path(source)
    read_card(source)  # a ModelError if the source is not a model

    def write(folder: Path) -> None:
        for name in (MODEL_FILE, CARD_FILE):
            shutil.copyfile(source / name, folder / name)

    return _write_model_dir(Path(target), write, overwrite=overwrite)


def _write_model_dir(target: Path, write, *, overwrite: bool) -> Path:
    """``write(folder)`` into a fresh ``.tmp-<name>-*`` sibling of ``target``, then rename it into place."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        check_replaceable(target, overwrite=overwrite)
        tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".tmp-{target.name}-"))
    except OSError as err:
        raise ModelError(f"cannot save a model in {target.parent}: {err.strerror or err}.") from err
    try:
        tmp.chmod(0o755)
        write(tmp)
        if target.exists():
            check_replaceable(target, overwrite=overwrite)  # still a model after the (slow) write
            # Two renames: a process killed between them leaves the previous model in
            # .old-<name>-*/model, which list_models() puts back.
            old = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".old-{target.name}-"))
            os.replace(target, old / "model")
            try:
                os.replace(tmp, target)
            except BaseException:
                _restore_interrupted(target.parent)
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            try:
                os.replace(tmp, target)
            except OSError as err:  # another session saved the same name meanwhile
                if target.exists():
                    raise ModelError(f"a model named {target.name!r} already exists; choose another name") from err
                raise
    except BaseException as err:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(err, OSError):
            raise ModelError(f"could not save {target.name!r} ({err.strerror or err}); "
                             "the models folder is unchanged.") from err
        raise
    return target


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot store {type(value).__name__} in card.json")


def read_card(path: str | Path) -> ModelCard:
    """The card of a model directory (no TensorFlow needed); raises ModelError."""
    path = Path(path)
    card_file = path / CARD_FILE
    if not card_file.is_file():
        raise ModelError(f"{path.name}: no card.json, so this is not a genre model directory.")
    try:
        text = card_file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ModelError(f"{path.name}: card.json cannot be read ({err}).") from err
    return ModelCard.from_json(text, where=path.name)


def check_model(path: str | Path) -> ModelCard:
    """The card of a model directory once a cheap look inside its ``model.keras`` (zip
    integrity, inputs and outputs against the card; :mod:`genre.keras_file`, no TensorFlow)
    finds no fault; raises ModelError with the messages :func:`load_model` gives."""
    path = Path(path)
    card = read_card(path)
    n_features = len(card.feature_names) if card.input == "rows" and card.feature_names else None
    reason = keras_file.problem(path / MODEL_FILE, n_labels=len(card.labels), n_features=n_features)
    if reason:
        raise ModelError(f"{path.name}: {reason}")
    return card


def load_model(path: str | Path = DEFAULT_MODEL_DIR) -> LoadedModel:
    """Load a model directory with Keras ``safe_mode=True``; raises ModelError with a clear
    message for a missing, truncated or foreign model or an unusable card (most of them found by
    :func:`check_model` before Keras is imported)."""
    path = Path(path)
    card = check_model(path)
    model_file = path / MODEL_FILE
    import keras

    try:
        model = keras.saving.load_model(model_file, compile=False, safe_mode=True)
    except Exception as err:  # noqa: BLE001 - Keras raises many types for a damaged file
        if "safe_mode" in str(err):
            raise ModelError(f"{path.name}: model.keras contains Python code (e.g. a Lambda layer); such "
                             "models are never loaded, because loading them could run arbitrary code.") from err
        raise ModelError(f"{path.name}: model.keras is damaged or not a Keras model ({type(err).__name__}).") from err
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ModelError(f"{path.name}: the network has {len(model.inputs)} inputs and {len(model.outputs)} "
                         "outputs; a genre model has one of each.")
    n_out = model.outputs[0].shape[-1]
    if n_out != len(card.labels):
        raise ModelError(f"{path.name}: the network has {n_out} outputs but the card lists {len(card.labels)} labels.")
    n_in = model.inputs[0].shape[-1]
    if card.input == "rows" and card.feature_names and n_in != len(card.feature_names):
        raise ModelError(f"{path.name}: the network takes {n_in} features but the card names "
                         f"{len(card.feature_names)}.")
    return LoadedModel(model, card, path)


def unknown_labels(model_labels, dataset_labels) -> list[str]:
    """Dataset labels a model was not trained on (their clips cannot be scored); raises
    ModelError if the model knows none of the dataset's labels."""
    known, data = set(model_labels), set(dataset_labels)
    if data and not known & data:
        raise ModelError(f"the model knows the genres {', '.join(sorted(known))}; none of them is in "
                         f"this dataset ({', '.join(sorted(data))}). Train a model on this dataset.")
    return sorted(data - known)


def _restore_interrupted(root: Path) -> None:
    """Put back every model whose overwrite was stopped between save_model's two renames."""
    for old in root.glob(".old-*"):
        name = old.name[len(".old-"):].rsplit("-", 1)[0]
        if name and (old / "model").is_dir() and not (root / name).exists():
            try:
                os.replace(old / "model", root / name)
                old.rmdir()
            except OSError:
                continue


def available_models(root: str | Path | None = None) -> dict[str, Path]:
    """The models a person can pick, by name, ``default`` first: those saved under ``root``
    (default :data:`MODELS_DIR`), and the shipped model as ``default`` when ``root`` holds no
    model of that name (an installed genre, whose models folder is the user's own)."""
    listed = {p.name: p for p in list_models(MODELS_DIR if root is None else root)}
    return {DEFAULT_MODEL_DIR.name: listed.pop(DEFAULT_MODEL_DIR.name, DEFAULT_MODEL_DIR), **listed}


def list_models(root: str | Path = MODELS_DIR) -> list[Path]:
    """Model directories under ``root`` (those with a card), default first; temporary and
    half-written directories (names starting with '.') are never listed, and a model whose
    overwrite was interrupted is restored first."""
    root = Path(root)
    if not root.is_dir():
        return []
    _restore_interrupted(root)
    found = [p for p in sorted(root.iterdir())
             if p.is_dir() and not p.name.startswith(".") and (p / CARD_FILE).is_file() and (p / MODEL_FILE).is_file()]
    return sorted(found, key=lambda p: (p.name != "default", p.name))
