"""genre.maps: per-clip matrices and 2-D projections."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from genre.maps import clip_frame, clip_matrix, project, tsne_perplexity
from genre.pipeline import ClipFeatures


def _feats(rows) -> ClipFeatures:
    rows = np.asarray(rows, dtype=np.float32)
    return ClipFeatures(rows, np.arange(len(rows), dtype=np.float32), ["a", "b"], float(len(rows)))


def _table(n: int) -> pd.DataFrame:
    return pd.DataFrame({"path": [f"/x/{i}.wav" for i in range(n)], "label": ["g"] * n,
                         "clip_id": [str(i) for i in range(n)], "artist": None, "title": None})


def test_clip_matrix_means_segments_and_skips_missing():
    df = _table(3)
    feats = {"/x/0.wav": _feats([[0, 2], [2, 4]]), "/x/2.wav": _feats([[1, 1]])}
    X, kept = clip_matrix(df, feats)
    assert X.shape == (2, 2) and X.dtype == np.float32
    np.testing.assert_allclose(X, [[1, 3], [1, 1]])
    assert kept.tolist() == [0, 2]
    frame = clip_frame(df, feats)
    assert frame["clip_id"].tolist() == ["0", "2"] and frame["b"].tolist() == [3.0, 1.0]


def test_clip_matrix_empty():
    X, kept = clip_matrix(_table(2), {})
    assert X.shape[0] == 0 and kept.size == 0
    assert clip_frame(_table(2), {}).empty


def test_clip_matrix_skips_other_width():
    df = _table(2)
    feats = {"/x/0.wav": _feats([[0, 2]]),
             "/x/1.wav": ClipFeatures(np.zeros((1, 3), np.float32), np.zeros(1), ["a", "b", "c"], 1.0)}
    X, kept = clip_matrix(df, feats)
    assert X.shape == (1, 2) and kept.tolist() == [0]


@pytest.mark.parametrize("method", ["pca", "tsne"])
@pytest.mark.parametrize("n", [0, 1, 2, 3, 5, 18, 60])
def test_project_shapes_any_size(method, n):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, 8))
    out = project(X, method, seed=0)
    assert out.shape == (n, 2) and out.dtype == np.float32 and np.isfinite(out).all()


def test_project_is_deterministic_and_separates_groups():
    rng = np.random.default_rng(1)
    X = np.concatenate([rng.normal(0, 1, (10, 20)), rng.normal(8, 1, (10, 20))])
    for method in ("pca", "tsne"):
        a, b = project(X, method, seed=3), project(X, method, seed=3)
        np.testing.assert_array_equal(a, b)
        centre0, centre1 = a[:10].mean(0), a[10:].mean(0)
        spread = max(a[:10].std(0).max(), a[10:].std(0).max())
        assert np.linalg.norm(centre0 - centre1) > 2 * spread


def test_project_standardises_scales():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(30, 2))
    X[:, 1] *= 1e6  # without standardisation this column alone would set the first axis
    out = project(X, "pca")
    assert abs(np.corrcoef(out[:, 0], X[:, 0])[0, 1]) > 0.3


def test_project_handles_constant_and_nonfinite_columns():
    X = np.ones((6, 3))
    X[:, 0] = np.arange(6)
    X[2, 1] = np.nan
    X[3, 2] = np.inf
    assert np.isfinite(project(X, "pca")).all()
    assert np.isfinite(project(X, "tsne")).all()


def test_project_rejects_unknown_method():
    with pytest.raises(ValueError, match="unknown projection"):
        project(np.zeros((3, 2)), "umap")


def test_tsne_perplexity_below_n():
    assert tsne_perplexity(1000) == 30
    for n in range(4, 100):
        assert 1 <= tsne_perplexity(n) < n
