"""Nearest dataset clips in a model's feature (or embedding) space.

Each clip is one vector: the mean of its per-segment feature rows (as in ``genre.maps``).
Vectors are standardised with the dataset's own mean and spread, then compared by cosine
similarity (1 = same direction).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.neighbors import NearestNeighbors
from sklearn.preprocessing import StandardScaler

from genre.features import FeatureConfig
from genre.maps import clip_matrix
from genre.clip import ClipFeatures
from genre.store import FeatureStore, Progress


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
