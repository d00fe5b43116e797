"""Pretrained audio encoders ported to Keras 3, behind one small registry.

A feature kind is ``"handcrafted"``, one backbone name (``"MSD_musicnn"``, ``"mn04"``) or several
joined by ``+`` (``"MSD_musicnn+mn04"``: their embeddings of the same segments, side by side).
This module is pure data (no TensorFlow, no numpy work): :mod:`genre.features` validates kinds
with it, :mod:`genre.backbones.embeddings` runs the networks. A new backbone is one module with
a ``load(name)`` function (see :class:`Backbone`) plus one entry in :data:`BACKBONES`.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import lru_cache

HANDCRAFTED = "handcrafted"
SEPARATOR = "+"


@dataclass(frozen=True)
class Backbone:
    """One pretrained encoder.

    ``sr``: the rate (Hz) it hears; ``window_seconds``: its own window (the patch it was trained
    on); ``groups``: its output groups, usable as features (each (n_segments, dim)), in storage
    order; ``default_groups``: the ones a model uses unless told otherwise; ``describe_group``: the
    group of probabilities that describe a clip in words (its labels come from the loaded
    network's ``labels``); ``prefix``: how its feature names start (``msd_penultimate_0007``);
    ``module``: where ``load(name) -> encoder`` lives. An encoder has ``labels`` (names of the
    ``describe_group`` outputs) and ``embed(y, *, starts, segment_seconds, window_seconds) ->
    {group: (n_segments, dim) float32}`` for mono ``y`` at ``sr``.
    """

    name: str
    title: str
    sr: int
    window_seconds: float
    groups: tuple[str, ...]
    default_groups: tuple[str, ...]
    describe_group: str
    prefix: str
    module: str
    fixed_window: bool = True
    """False if any window length works (then FeatureConfig.window_seconds chooses it)."""


_MUSICNN_PATCH = 187 * 256 / 16000  # s: 187 frames, hop 256 at 16 kHz

BACKBONES: dict[str, Backbone] = {
    b.name: b for b in (
        Backbone("MSD_musicnn", "MusiCNN (Million Song Dataset tags)", 16000, _MUSICNN_PATCH,
                 ("penultimate", "pooled", "tags"), ("penultimate",), "tags", "msd",
                 "genre.backbones.musicnn"),
        Backbone("MTT_musicnn", "MusiCNN (MagnaTagATune tags)", 16000, _MUSICNN_PATCH,
                 ("penultimate", "pooled", "tags"), ("penultimate",), "tags", "mtt",
                 "genre.backbones.musicnn"),
        Backbone("mn04", "EfficientAT mn04 (AudioSet)", 32000, 3.0,
                 ("embedding", "audioset"), ("embedding", "audioset"), "audioset", "mn04",
                 "genre.backbones.efficientat", fixed_window=False),
    )
}


def parts(kind: str) -> tuple[Backbone, ...]:
    """The backbones of a feature kind (empty for ``handcrafted``); ValueError if unknown.

    Two backbones that share output group names (MSD and MTT MusiCNN) cannot be combined."""
    if kind == HANDCRAFTED:
        return ()
    names = kind.split(SEPARATOR)
    unknown = [n for n in names if n not in BACKBONES]
    if unknown or len(set(names)) != len(names):
        raise ValueError(f"unknown feature kind {kind!r}; known: {HANDCRAFTED}, "
                         f"{', '.join(BACKBONES)} or backbones joined by {SEPARATOR!r}")
    chosen = tuple(BACKBONES[n] for n in names)
    groups = [g for b in chosen for g in b.groups]
    if len(set(groups)) != len(groups):
        raise ValueError(f"{kind!r}: these backbones cannot be combined (their outputs share names)")
    return chosen


def groups_of(kind: str) -> tuple[str, ...]:
    """Every output group of a backbone kind, in storage order."""
    return tuple(g for b in parts(kind) for g in b.groups)


def default_groups(kind: str) -> tuple[str, ...]:
    return tuple(g for b in parts(kind) for g in b.default_groups)


def title(kind: str) -> str:
    """A name for people: 'MusiCNN (Million Song Dataset tags) + EfficientAT mn04 (AudioSet)'."""
    return "hand-crafted librosa features" if kind == HANDCRAFTED else " + ".join(b.title for b in parts(kind))


@lru_cache(maxsize=4)
def load(name: str):
    """The encoder of backbone ``name``, loaded once per process (imports TensorFlow); the first
    load also sets numpy's BLAS to one thread in this process (:func:`one_blas_thread`)."""
    one_blas_thread()
    return importlib.import_module(BACKBONES[name].module).load(name)


@lru_cache(maxsize=1)
def one_blas_thread() -> None:
    """Limit the BLAS libraries of numpy and scipy (each wheel bundles an OpenBLAS) to one thread
    for the rest of the process. The networks run on TensorFlow's own thread pool; the matrix
    products around them are small (mel filter banks), and OpenBLAS's extra worker busy-waits
    after each one, taking a core from TensorFlow. Measured on this 2-core machine: one 30 s clip
    through both backbones 0.38 -> 0.27 s; one session's server CPU 59 % -> 42 % of a core."""
    import scipy.linalg  # noqa: F401 - loads scipy's own OpenBLAS, so the limit reaches it too
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")
