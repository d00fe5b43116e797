"""genre.numba_cache: librosa's numba cache is rewritten in one process when (and only when) the
stamp does not match, and a parallel extraction compiles librosa's kernels before its workers start
(two processes compiling at once can leave a cache that segfaults every later run)."""
from __future__ import annotations

import json
import subprocess
import sys

import joblib
import librosa
import pytest

from conftest import ROOT, synth, write_wav
from genre import numba_cache, store
from genre.features import FeatureConfig
from genre.store import FeatureStore


@pytest.fixture
def recorded(monkeypatch, tmp_path):
    """numba_cache with the stamp in tmp_path and clear/warm recorded instead of run."""
    calls: list[str] = []
    monkeypatch.setattr(numba_cache, "_stamp_path", lambda: tmp_path / "stamp.json")
    monkeypatch.setattr(numba_cache, "clear_librosa_cache", lambda: calls.append("clear"))
    monkeypatch.setattr(numba_cache, "warm_librosa", lambda modules=None: calls.append(f"warm {modules}"))
    return calls, tmp_path / "stamp.json"


def test_cache_is_rewritten_without_a_matching_stamp_only(recorded):
    calls, stamp = recorded
    assert numba_cache.ensure_librosa_cache() is True
    assert calls == ["clear", "warm None"]  # everything removed, then every submodule compiled
    assert json.loads(stamp.read_text()) == numba_cache._versions()
    assert numba_cache.ensure_librosa_cache() is False and len(calls) == 2
    assert numba_cache.ensure_librosa_cache(force=True) is True and len(calls) == 4
    for stale in ({**numba_cache._versions(), "numba": "0.1"}, "not json"):
        stamp.write_text(stale if isinstance(stale, str) else json.dumps(stale))
        calls.clear()
        assert numba_cache.ensure_librosa_cache() is True and calls == ["clear", "warm None"]


def test_versions_cover_librosa_numba_python_and_the_sources():
    versions = numba_cache._versions()
    assert versions["librosa"] == librosa.__version__
    assert set(versions) == {"python", "librosa", "numba", "librosa_sources_mtime_ns"}
    assert int(versions["librosa_sources_mtime_ns"]) > 0


def test_this_environment_has_a_stamped_cache_of_every_kernel():
    """conftest ensured it; a fresh process runs librosa's cached kernels without crashing."""
    assert numba_cache.ensure_librosa_cache() is False
    assert any(p.name.startswith("guf-") for p in numba_cache.librosa_cache_files())
    code = ("import librosa, numpy as np; y = np.random.default_rng(0).standard_normal(44100)\n"
            "for x in (y, y.astype(np.float32)):\n"
            "    librosa.feature.chroma_stft(y=x, sr=22050); librosa.beat.beat_track(y=x, sr=22050)\n"
            "    librosa.zero_crossings(x); librosa.util.localmin(x); librosa.estimate_tuning(y=x, sr=22050)\n"
            "print('ok')")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr[-2000:]


def test_parallel_build_compiles_librosa_before_its_workers(monkeypatch, tmp_path):
    paths = [str(write_wav(tmp_path / f"{i}.wav", synth(seed=i, seconds=2.0))) for i in range(2)]
    calls = []
    monkeypatch.setattr(store, "warm_librosa", lambda: calls.append("warm"))
    monkeypatch.setattr(joblib, "Parallel", lambda **kw: calls.append("pool") or (lambda jobs: [[] for _ in jobs]))
    FeatureStore(tmp_path / "a").build(paths, FeatureConfig(), n_jobs=2)  # genre.engine.LocalEngine's pool
    assert calls == ["warm", "pool"]
    calls.clear()
    FeatureStore(tmp_path / "b").build(paths[:1], FeatureConfig(), n_jobs=2)  # one file: computed in this process, nothing to race
    assert calls == []


def test_command_line_reports_the_cache():
    run = subprocess.run([sys.executable, "-m", "genre.numba_cache"], capture_output=True, text=True,
                         cwd=ROOT, timeout=300)
    assert run.returncode == 0
    assert "already written for these versions" in run.stdout
    assert f"{len(numba_cache.librosa_cache_files())} files" in run.stdout
