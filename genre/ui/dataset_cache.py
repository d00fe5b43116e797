"""Streamlit caches for the Dataset page: file headers, per-clip feature tables, 2-D
projections and audio a browser can play. Cached functions never draw; :func:`clip_table`
shows its progress bar outside any cache."""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import streamlit as st

from genre import dataset as ds
from genre import maps
from genre.features import FeatureConfig
from genre.store import FeatureStore

_MAX_TABLES = 4


def _files_key(paths) -> str:
    """Hash of the paths with their sizes and modification times: changes when a file does."""
    h = hashlib.sha256()
    for path in paths:
        try:
            stat = os.stat(path)
            h.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
        except OSError:
            h.update(f"{path}\0missing\n".encode())
    return h.hexdigest()


@st.cache_data(show_spinner=False, max_entries=8)
def _audio_info(key: str, paths: tuple[str, ...]) -> pd.DataFrame:
    return ds.audio_info(paths)


def audio_info(clips: pd.DataFrame) -> pd.DataFrame:
    """``genre.dataset.audio_info`` of every clip (duration, rate, channels), cached until a file
    changes; rows in the order of ``clips``."""
    paths = tuple(clips["path"])
    with st.spinner("Reading file headers…"):
        return _audio_info(_files_key(paths), paths)


@dataclass(frozen=True)
class ClipTable:
    """Per-clip features of a dataset: ``frame`` holds the discover() rows that have features
    plus one column per name in ``names`` (the mean over the clip's segments); ``failed`` lists
    (path, reason) of files whose extraction failed; ``computed`` counts clips extracted by the call
    that returned it (0 when the table or every clip's features came from a cache)."""

    frame: pd.DataFrame
    names: list[str]
    failed: list[tuple[str, str]]
    computed: int


@st.cache_resource(show_spinner=False)
def _tables() -> dict[tuple[str, str, str], ClipTable]:
    """Process-wide registry of built clip tables (read-only, shared by sessions)."""
    return {}


def extraction_progress(paths: list[str], config: FeatureConfig, *, store: FeatureStore | None = None):
    """A progress bar for :meth:`FeatureStore.build` of ``paths`` and its ``progress`` callback:
    the bar says whether the features are read from the cache or extracted, and while extracting,
    the rate and time left (as the Train page's runs do). Returns (bar, progress)."""
    from genre import eta
    from genre.ui.jobs import features_title

    missing = eta.missing_clips(paths, config, store=store)
    what = features_title(config.kind)
    clock = eta.ExtractionClock(len(paths), missing, config.kind, threads=os.cpu_count() or 1)
    bar = st.progress(0.0, text=eta.extraction_line(what, done=0, total=len(paths), missing=missing, kind=config.kind))

    def progress(done: int, total: int, path: str) -> None:
        state = clock.update(done)
        bar.progress(done / total, text=eta.extraction_line(what, done=done, total=total, missing=missing,
                                                            kind=config.kind, **state))

    return bar, progress


def clip_table(clips: pd.DataFrame, config: FeatureConfig) -> ClipTable:
    """Features of every clip from the on-disk feature store; missing ones are extracted in
    parallel under a progress bar (once: the store keeps them for the next visit). A table kept
    from an earlier run comes back with ``computed`` 0: nothing was extracted this time."""
    store = FeatureStore()
    registry, key = _tables(), (str(store.root), config.digest(), _files_key(clips["path"]))
    if key in registry:
        return replace(registry[key], computed=0)
    bar, progress = extraction_progress(clips["path"].tolist(), config, store=store)
    try:
        result = store.build(clips["path"].tolist(), config, progress=progress)
    finally:
        bar.empty()
    frame = maps.clip_frame(clips, result.features)
    names = result.features[frame["path"].iloc[0]].names if len(frame) else []
    while len(registry) >= _MAX_TABLES:
        registry.pop(next(iter(registry)))
    table = ClipTable(frame, list(names), list(result.failed), result.computed)
    registry[key] = table
    return table


@st.cache_data(show_spinner=False, max_entries=8)
def projection(X: np.ndarray, method: str, seed: int = 0) -> np.ndarray:
    """``genre.maps.project``, cached by the matrix content."""
    return maps.project(X, method, seed=seed)
