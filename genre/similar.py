"""Nearest clips in a model's feature (or embedding) space: of the dashboard's dataset
(:class:`NeighbourIndex`) or of any folder of audio files, kept on disk (:class:`CollectionIndex`).

Each clip is one vector: the mean of its per-segment feature rows (as in ``genre.maps``).
Vectors are standardised with the collection's own mean and spread, then compared by cosine
similarity (1 = same direction).
"""
from __future__ import annotations

import hashlib
import os
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.neighbors import NearestNeighbors
from sklearn.preprocessing import StandardScaler

from genre.features import FeatureConfig
from genre.maps import clip_matrix
from genre.clip import ClipFeatures
from genre.store import FeatureStore, Progress, atomic_write


def clip_vector(feats: ClipFeatures) -> np.ndarray:
    """Mean feature row of a clip: (n_features,) float32, as a row of ``maps.clip_matrix``."""
    return np.asarray(feats.rows, dtype=np.float64).mean(axis=0).astype(np.float32)


@dataclass
class NeighbourIndex:
    """Standardised clip vectors of a dataset with a cosine nearest-neighbour search.

    ``clips`` holds the discover() rows that have features, ``scaled`` their standardised
    vectors (n_clips, n_features) in the same order; ``failed`` lists (path, reason) for clips
    whose features could not be computed."""

    clips: pd.DataFrame
    scaled: np.ndarray
    scaler: StandardScaler
    nn: NearestNeighbors
    failed: list[tuple[str, str]]

    @classmethod
    def fit(cls, clips: pd.DataFrame, vectors: np.ndarray, failed: Sequence[tuple[str, str]] = ()) -> "NeighbourIndex":
        """Index ``vectors`` (n_clips, n_features), one per row of ``clips``."""
        if len(clips) != len(vectors):
            raise ValueError(f"{len(clips)} clips but {len(vectors)} vectors")
        if len(clips) < 2:
            raise ValueError(f"only {len(clips)} clip(s) have features; at least two are needed")
        scaler = StandardScaler().fit(vectors)
        scaled = scaler.transform(vectors)
        nn = NearestNeighbors(metric="cosine", algorithm="brute").fit(scaled)
        return cls(clips.reset_index(drop=True), scaled, scaler, nn, list(failed))

    @classmethod
    def build(cls, clips: pd.DataFrame, config: FeatureConfig, *, store: FeatureStore | None = None,
              n_jobs: int = -1, progress: Progress | None = None) -> "NeighbourIndex":
        """Features of every clip (``clips``: a discover() table) from the feature store,
        computing missing ones in parallel, then :meth:`fit`."""
        result = (store or FeatureStore()).build(clips["path"].tolist(), config, n_jobs=n_jobs, progress=progress)
        vectors, kept = clip_matrix(clips, result.features)
        return cls.fit(clips.iloc[kept], vectors, result.failed)

    def __len__(self) -> int:
        return len(self.clips)

    def query(self, vector: np.ndarray, *, k: int = 5) -> pd.DataFrame:
        """The ``k`` clips most similar to a clip vector (n_features,), best first: the clip
        rows plus ``similarity`` (cosine of the standardised vectors, -1..1)."""
        if vector.shape[-1] != self.scaler.n_features_in_:
            raise ValueError(f"the clip has {vector.shape[-1]} features, the index {self.scaler.n_features_in_}; "
                             "were they computed with another feature config?")
        return self._neighbours(self.scaler.transform(vector.reshape(1, -1)), k)

    def neighbours_of(self, path: str, *, k: int = 5, other_artists: bool = False) -> pd.DataFrame | None:
        """Like :meth:`query` for an indexed dataset clip, leaving the clip itself out (and, with
        ``other_artists``, every clip by its artist when known); None if ``path`` is not indexed."""
        hits = np.flatnonzero(self.clips["path"].to_numpy() == str(path))
        if not len(hits):
            return None
        artist = self.clips["artist"].iloc[hits[0]] if other_artists else None
        out = self._neighbours(self.scaled[hits[:1]], len(self) if artist else k + 1)
        keep = (out["path"] != str(path)) & ((out["artist"] != artist) if artist else True)
        return out[keep].head(k).reset_index(drop=True)

    def _neighbours(self, x: np.ndarray, k: int) -> pd.DataFrame:
        dist, idx = self.nn.kneighbors(x, n_neighbors=min(k, len(self)))
        return self.clips.iloc[idx[0]].assign(similarity=1.0 - dist[0]).reset_index(drop=True)


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows of ``x`` scaled to length 1 (float32; all-zero rows stay zero)."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.where(norms > 0, norms, 1).astype(np.float32)


def top_k(unit: np.ndarray, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact cosine search: positions and similarities of the ``k`` rows of ``unit`` (n, d),
    unit-length float32, most similar to the unit vector ``query`` (d,), best first.
    One matrix-vector product and a partial sort: O(n d)."""
    sims = unit @ query.astype(np.float32)
    k = min(k, len(sims))
    if k <= 0:
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    best = np.argpartition(-sims, k - 1)[:k]
    best = best[np.argsort(-sims[best], kind="stable")]
    return best, sims[best]


@dataclass
class CollectionIndex:
    """Neighbour index over every audio file under a folder (any layout, not only a dataset):
    clip vectors (mean feature row) standardised over the collection and scaled to unit length,
    searched exactly (``top_k``). Saved in the feature store as ``indexes/<config>-<folder>.npz``
    and updated incrementally: a file whose size and modification time are unchanged is not
    looked at again.

    ``paths`` (n,), ``stamps`` (n, 2) int64 size and mtime (ns), ``raw`` (n, d) float32 clip
    vectors, ``mean``/``scale`` (d,), ``unit`` (n, d) float32; ``failed``: (path, reason) of files
    left out in the last update."""

    root: str
    paths: list[str]
    stamps: np.ndarray
    raw: np.ndarray
    mean: np.ndarray
    scale: np.ndarray
    unit: np.ndarray
    failed: list[tuple[str, str]]
    config: FeatureConfig

    @staticmethod
    def file_for(root: str | Path, config: FeatureConfig, store: FeatureStore) -> Path:
        folder = hashlib.sha1(str(Path(root).resolve()).encode()).hexdigest()[:16]
        return store.root / "indexes" / f"{config.digest()}-{folder}.npz"

    @staticmethod
    def saved(config: FeatureConfig, store: FeatureStore | None = None) -> list[tuple[str, Path]]:
        """(collection folder, index file) of every index saved for ``config``, by folder."""
        found = []
        for file in sorted(((store or FeatureStore()).root / "indexes").glob(f"{config.digest()}-*.npz")):
            try:
                with np.load(file, allow_pickle=False) as npz:
                    found.append((str(npz["root"]), file))
            except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
                continue
        return sorted(found)

    @classmethod
    def fit(cls, root: str, paths: list[str], stamps: np.ndarray, raw: np.ndarray, config: FeatureConfig,
            failed: Sequence[tuple[str, str]] = ()) -> "CollectionIndex":
        raw = np.asarray(raw, dtype=np.float32).reshape(len(paths), -1)
        mean = raw.mean(axis=0) if len(raw) else np.zeros(raw.shape[1], np.float32)
        spread = raw.std(axis=0) if len(raw) else np.ones(raw.shape[1], np.float32)
        scale = np.where(spread > 1e-12, spread, 1).astype(np.float32)
        return cls(root, paths, np.asarray(stamps, np.int64).reshape(-1, 2), raw, mean.astype(np.float32), scale,
                   unit_rows((raw - mean) / scale), list(failed), config)

    @classmethod
    def load(cls, file: Path, config: FeatureConfig) -> "CollectionIndex | None":
        """A saved index, or None if missing or unreadable (then it is rebuilt)."""
        try:
            with np.load(file, allow_pickle=False) as npz:
                paths = bytes(npz["paths"]).decode("utf-8").split("\n") if len(npz["paths"]) else []
                index = cls.fit(str(npz["root"]), paths, npz["stamps"], npz["raw"], config)
            return index if len(index.paths) == len(index.raw) else None
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            return None

    def save(self, file: Path) -> None:
        arrays = {"root": np.array(self.root), "paths": np.frombuffer("\n".join(self.paths).encode("utf-8"), np.uint8),
                  "stamps": self.stamps, "raw": self.raw}
        atomic_write(file, lambda fh: np.savez(fh, **arrays), suffix=".npz")

    @classmethod
    def update(cls, root: str | Path, files: Sequence[str | Path], config: FeatureConfig, *,
               store: FeatureStore | None = None, engine=None, batch_size: int | None = None,
               progress: Progress | None = None) -> "CollectionIndex":
        """The index of ``files`` (the audio files under ``root``): the saved one, with features of
        new or changed files computed on ``engine`` (see FeatureStore.build) and removed files
        dropped, saved again if anything changed."""
        store = store or FeatureStore()
        file = cls.file_for(root, config, store)
        old = cls.load(file, config)
        known = {p: i for i, p in enumerate(old.paths)} if old else {}
        paths, stamps, todo = [], [], []
        for path in map(str, files):
            try:
                st = os.stat(path)
            except OSError:
                continue
            paths.append(path)
            stamps.append((st.st_size, st.st_mtime_ns))
            i = known.get(path)
            if i is None or tuple(old.stamps[i]) != stamps[-1]:
                todo.append(path)
        stamps = np.asarray(stamps, np.int64).reshape(-1, 2)
        result = store.build(todo, config, engine=engine, batch_size=batch_size, progress=progress)
        width = old.raw.shape[1] if old is not None and len(old.raw) else None
        fresh, rows, keep = set(todo), [], []
        for pos, path in enumerate(paths):
            if path not in fresh:  # unchanged since the saved index
                vector = old.raw[known[path]]
            elif path in result.features and len(result.features[path].rows):
                vector = clip_vector(result.features[path])
            else:  # could not be read: in result.failed
                continue
            width = width or len(vector)
            if len(vector) == width:
                rows.append(vector)
                keep.append(pos)
        index = cls.fit(str(Path(root).resolve()), [paths[i] for i in keep], stamps[keep],
                        np.stack(rows) if rows else np.zeros((0, width or 0), np.float32), config, result.failed)
        if len(index.paths) < 2:
            raise ValueError(f"only {len(index.paths)} file(s) under {root} have features; at least two are needed")
        if old is None or todo or len(index.paths) != len(old.paths):
            index.save(file)
        return index

    def __len__(self) -> int:
        return len(self.paths)

    def query(self, vector: np.ndarray, *, k: int = 10, exclude: str | None = None) -> list[tuple[str, float]]:
        """(path, cosine similarity) of the ``k`` files closest to a clip vector (d,), best
        first, leaving out the indexed file ``exclude``."""
        if vector.shape[-1] != self.raw.shape[1]:
            raise ValueError(f"the clip has {vector.shape[-1]} features, the index {self.raw.shape[1]}; "
                             "were they computed with another feature config?")
        unit = unit_rows(((vector - self.mean) / self.scale)[None, :])[0]
        extra = 1 if exclude is not None else 0
        best, sims = top_k(self.unit, unit, k + extra)
        hits = [(self.paths[i], float(s)) for i, s in zip(best, sims) if self.paths[i] != exclude]
        return hits[:k]

    def similar_to_file(self, path: str | Path, *, k: int = 10, store: FeatureStore | None = None) -> list[tuple[str, float]]:
        """Neighbours of the audio file at ``path`` (its features from the store, computed if
        missing; the file itself is left out when it is in the collection). Raises AudioError."""
        feats, _ = (store or FeatureStore()).get_or_compute(path, self.config)
        same = next((p for p in self.paths if os.path.samefile(p, path)), None) if _inside(path, self.root) else None
        return self.query(clip_vector(feats), k=k, exclude=same)


def _inside(path: str | Path, root: str) -> bool:
    return Path(path).resolve().is_relative_to(Path(root).resolve())
