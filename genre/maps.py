"""2-D maps of clips: one feature vector per clip, standardised, projected with PCA or t-SNE.

A clip's vector is the mean of its segment rows (``ClipFeatures.rows``), so clips of any length
compare on the same footing. Projections are deterministic for a given ``seed``.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from genre.clip import ClipFeatures

METHODS = ("pca", "tsne")


def clip_matrix(df: pd.DataFrame, features: Mapping[str, ClipFeatures]) -> tuple[np.ndarray, np.ndarray]:
    """Per-clip mean of segment rows for the rows of ``df`` whose ``path`` has features.

    Returns ``X`` (n_kept, n_features) float32 and ``kept``, the positions (0-based, as for
    ``df.iloc``) of those rows, in table order. Clips whose feature width differs from the
    first clip's (another FeatureConfig) are left out.
    """
    vectors, kept, width = [], [], None
    for pos, path in enumerate(df["path"]):
        feats = features.get(path)
        if feats is None or len(feats.rows) == 0:
            continue
        width = width or feats.rows.shape[1]
        if feats.rows.shape[1] != width:
            continue
        vectors.append(np.asarray(feats.rows, dtype=np.float64).mean(axis=0))
        kept.append(pos)
    if not vectors:
        return np.zeros((0, 0), np.float32), np.zeros(0, np.int64)
    return np.stack(vectors).astype(np.float32), np.asarray(kept, dtype=np.int64)


def clip_frame(df: pd.DataFrame, features: Mapping[str, ClipFeatures]) -> pd.DataFrame:
    """The kept rows of ``df`` (see :func:`clip_matrix`) with one extra column per feature name
    holding the per-clip mean; index reset."""
    X, kept = clip_matrix(df, features)
    base = df.iloc[kept].reset_index(drop=True)
    if not len(kept):
        return base
    names = features[base["path"].iloc[0]].names
    return pd.concat([base, pd.DataFrame(X, columns=names)], axis=1)


def tsne_perplexity(n: int) -> float:
    """t-SNE perplexity for ``n`` points: 30, lowered to (n - 1) / 3 for small sets (min 1)."""
    return float(max(1.0, min(30.0, (n - 1) / 3)))


def project(X: np.ndarray, method: str = "pca", *, seed: int = 0) -> np.ndarray:
    """Standardise ``X`` (n, n_features) per column, then project to (n, 2) float32.

    ``method`` is 'pca' or 'tsne' (initialised with PCA, perplexity from
    :func:`tsne_perplexity`; fewer than 4 points fall back to PCA). Non-finite values count
    as the column mean; constant columns are harmless. Raises ValueError for an unknown method.
    """
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler

    if method not in METHODS:
        raise ValueError(f"unknown projection {method!r}; use one of {METHODS}")
    X = np.asarray(X, dtype=np.float64)
    n = len(X)
    if n == 0:
        return np.zeros((0, 2), np.float32)
    if X.ndim != 2 or X.shape[1] == 0:
        raise ValueError(f"expected a (n_clips, n_features) matrix, got shape {X.shape}")
    finite = np.isfinite(X)
    means = np.where(finite, X, 0.0).sum(axis=0) / np.maximum(finite.sum(axis=0), 1)
    X = np.where(finite, X, means)
    Z = StandardScaler().fit_transform(X)
    n_comp = min(2, n, Z.shape[1])
    if method == "tsne" and n >= 4:
        from sklearn.manifold import TSNE
        from threadpoolctl import threadpool_limits

        if Z.shape[1] > 50 and n > 50:
            Z = PCA(50, random_state=seed).fit_transform(Z)
        # One OpenMP thread: t-SNE's threads spin-wait and get several times slower when the
        # cores are shared with other work (a server's other sessions, a training run).
        with threadpool_limits(1):
            out = TSNE(2, perplexity=tsne_perplexity(n), init="pca", random_state=seed).fit_transform(Z)
    else:
        out = PCA(n_comp, random_state=seed).fit_transform(Z) if n > 1 else np.zeros((1, n_comp))
    if out.shape[1] < 2:
        out = np.pad(out, ((0, 0), (0, 2 - out.shape[1])))
    return out.astype(np.float32)
