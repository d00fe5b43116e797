"""A cheap look inside a saved ``model.keras`` without TensorFlow: is the zip whole, and does
the network it describes have the inputs and outputs its card expects?

A ``.keras`` file is a zip of ``config.json`` (the architecture), ``metadata.json`` and
``model.weights.h5``. Reading the zip's table, checking every member's CRC
(:meth:`zipfile.ZipFile.testzip`) and parsing ``config.json`` takes milliseconds, so the Home
page can warn about a damaged model before anything imports Keras (~3 s), and
:func:`genre.models.load_model` refuses one before it does.

Only definite faults are reported: an architecture this module does not understand passes, and
Keras has the last word when the model is loaded.
"""
from __future__ import annotations

import json
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path

MEMBERS = ("config.json", "model.weights.h5")
"""What every Keras 3 model file holds."""


def problem(model_file: str | Path, *, n_labels: int, n_features: int | None = None) -> str | None:
    """Why ``model_file`` cannot be a genre model with ``n_labels`` outputs (and, if given,
    ``n_features`` input values), as a sentence for a person; None if no fault is seen.

    Faults: missing, unreadable, not a whole zip (a member fails its CRC), no Keras config or
    weights inside, a layer holding Python code (``safe_mode`` refuses it), other than one input
    and one output, a final Dense layer or an input of another width."""
    model_file = Path(model_file)
    if not model_file.is_file():
        return "model.keras is missing."
    try:
        config = _read_config(model_file)
    except _Damaged as err:
        return f"model.keras is damaged or not a Keras model ({err})."
    except OSError as err:
        return f"model.keras cannot be read ({err.strerror or err})."
    layers = list(_layers(config))
    if any(_runs_code(layer) for layer in layers):
        return ("model.keras contains Python code (e.g. a Lambda layer); such models are never loaded, because "
                "loading them could run arbitrary code.")
    inner = config["config"]
    by_name = {layer.get("name") or (layer.get("config") or {}).get("name"): layer for layer in layers}
    inputs, outputs = _endpoints(inner.get("input_layers")), _endpoints(inner.get("output_layers"))
    if inputs is not None and outputs is not None and (len(inputs), len(outputs)) != (1, 1):
        return f"the network has {len(inputs)} inputs and {len(outputs)} outputs; a genre model has one of each."
    n_out = _units(by_name.get(outputs[0])) if outputs else None
    if n_out is not None and n_out != n_labels:
        return f"the network has {n_out} outputs but the card lists {n_labels} labels."
    n_in = _width(by_name.get(inputs[0])) if inputs else None
    if n_features is not None and n_in is not None and n_in != n_features:
        return f"the network takes {n_in} features but the card names {n_features}."
    return None


class _Damaged(Exception):
    """The file is not a whole Keras zip; ``str()`` says how."""


def _read_config(model_file: Path) -> dict:
    """``config.json`` of a whole Keras zip, parsed; raises _Damaged or OSError."""
    try:
        with zipfile.ZipFile(model_file) as archive:
            missing = [m for m in MEMBERS if m not in set(archive.namelist())]
            if missing:
                raise _Damaged(f"no {missing[0]} inside")
            bad = archive.testzip()
            if bad is not None:
                raise _Damaged(f"{bad} fails its CRC check")
            text = archive.read("config.json").decode("utf-8")
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, UnicodeDecodeError) as err:
        raise _Damaged(type(err).__name__) from err
    try:
        config = json.loads(text)
    except json.JSONDecodeError as err:
        raise _Damaged("its config.json is not valid JSON") from err
    if not isinstance(config, dict) or "class_name" not in config or not isinstance(config.get("config"), dict):
        raise _Damaged("its config.json describes no Keras object")
    return config


def _layers(config: dict) -> Iterator[dict]:
    """Every layer config in a model config, those of nested models included."""
    inner = config.get("config")
    for layer in (inner.get("layers") or []) if isinstance(inner, dict) else []:
        if isinstance(layer, dict):
            yield layer
            yield from _layers(layer)


def _runs_code(layer: dict) -> bool:
    """A Lambda layer whose function is stored as Python bytecode."""
    function = (layer.get("config") or {}).get("function") if layer.get("class_name") == "Lambda" else None
    return isinstance(function, dict) and function.get("class_name") == "__lambda__"


def _endpoints(spec) -> list[str] | None:
    """Layer names of a functional config's ``input_layers``/``output_layers`` (one
    ``[name, node, tensor]`` triple or a list of them); None if absent or not understood."""
    if not isinstance(spec, list) or not spec:
        return None
    if isinstance(spec[0], str):
        return [spec[0]]
    names = [s[0] for s in spec if isinstance(s, list) and s and isinstance(s[0], str)]
    return names if len(names) == len(spec) else None


def _units(layer: dict | None) -> int | None:
    """Output width of a Dense layer; None for other or unknown layers."""
    if not layer or layer.get("class_name") != "Dense":
        return None
    units = (layer.get("config") or {}).get("units")
    return units if isinstance(units, int) else None


def _width(layer: dict | None) -> int | None:
    """Last dimension of an InputLayer's shape; None when unknown."""
    if not layer or layer.get("class_name") != "InputLayer":
        return None
    config = layer.get("config") or {}
    shape = config.get("batch_shape") or config.get("batch_input_shape")
    return shape[-1] if isinstance(shape, list) and shape and isinstance(shape[-1], int) else None
