"""genre.store: the feature cache computes each (file content, config) once, reports bad files by
path and goes on, reports progress per file, works in parallel and across processes, and holds
only plain .npz files."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, synth, write_wav
from genre.dataset import discover
from genre.features import FeatureConfig
from genre.pipeline import features_of
from genre.store import FeatureStore, default_cache_dir, file_digest

CONFIG = FeatureConfig()


@pytest.fixture(scope="module")
def paths(tiny_dataset) -> list[str]:
    return discover(tiny_dataset)["path"].tolist()


def _same(a, b) -> bool:
    """Bit-identical features (what the cache must give back)."""
    return (a.names == b.names and np.array_equal(a.rows, b.rows) and np.array_equal(a.starts, b.starts)
            and np.array_equal(a.log_mel, b.log_mel) and a.seconds == b.seconds)


def _close(a, b) -> bool:
    """The same features computed in another process: BLAS thread counts change the order of
    float sums, so values agree to rounding, not bit for bit."""
    return (a.names == b.names and np.array_equal(a.starts, b.starts) and a.seconds == b.seconds
            and np.allclose(a.rows, b.rows, rtol=1e-5, atol=1e-5)
            and np.allclose(a.log_mel.astype(np.float32), b.log_mel.astype(np.float32), rtol=1e-3, atol=2e-2))


def test_build_computes_once_then_reads_the_cache(paths, tmp_path):
    store = FeatureStore(tmp_path / "cache")
    first = store.build(paths, CONFIG, n_jobs=1)
    assert first.computed == 18 and first.failed == [] and set(first.features) == set(paths)
    feats = first.features[paths[0]]
    # a 4 s clip: 172 frames = one 3 s segment (the 43-frame tail is under half a segment)
    assert feats.rows.shape == (1, 359) and feats.starts.tolist() == [0.0]
    assert feats.log_mel.shape == (1, 128, 129) and feats.log_mel.dtype == np.float16
    assert feats.seconds == pytest.approx(4.0)
    assert np.allclose(feats.rows, features_of(paths[0], CONFIG)[0].rows)

    second = store.build(paths, CONFIG, n_jobs=1)
    assert second.computed == 0 and second.failed == []
    assert all(_same(first.features[p], second.features[p]) for p in paths)

    # keyed by content: a copy under another name is not computed again
    copy = tmp_path / "elsewhere" / "renamed.wav"
    copy.parent.mkdir()
    shutil.copy(paths[0], copy)
    third = store.build([copy], CONFIG)
    assert third.computed == 0 and _same(third.features[str(copy)], first.features[paths[0]])


def test_a_changed_config_recomputes_everything(paths, tmp_path):
    store = FeatureStore(tmp_path / "cache")
    store.build(paths, CONFIG, n_jobs=1)
    other = FeatureConfig(segment_seconds=2.0)
    again = store.build(paths, other, n_jobs=1)
    assert again.computed == 18
    assert again.features[paths[0]].rows.shape[0] == 2  # 4 s = two 2 s segments
    assert sorted(p.name for p in store.root.iterdir()) == sorted([CONFIG.digest(), other.digest()])
    assert store.build(paths, other, n_jobs=1).computed == 0


def test_bad_files_are_skipped_and_reported_by_path(paths, tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    good = [str(shutil.copy(p, folder / Path(p).name)) for p in paths[:3]]
    (folder / "noise.wav").write_bytes(np.random.default_rng(0).bytes(40_000))
    (folder / "notes.wav").write_text("not a song\n" * 100)
    write_wav(folder / "blip.wav", synth("tones", seconds=0.3))
    missing = folder / "gone.wav"
    todo = [*good, str(folder / "noise.wav"), str(folder / "notes.wav"), str(folder / "blip.wav"), str(missing)]
    result = FeatureStore(tmp_path / "cache").build(todo, CONFIG, n_jobs=1)
    assert result.computed == 3 and set(result.features) == set(good)
    reasons = dict(result.failed)
    assert set(reasons) == {str(folder / n) for n in ("noise.wav", "notes.wav", "blip.wav", "gone.wav")}
    assert "not audio" in reasons[str(folder / "noise.wav")]
    assert "not audio" in reasons[str(folder / "notes.wav")]
    assert "too short" in reasons[str(folder / "blip.wav")]
    assert "cannot read" in reasons[str(missing)]
    assert all("Traceback" not in r for r in reasons.values())


def test_progress_is_reported_once_per_file(paths, tmp_path):
    store = FeatureStore(tmp_path / "cache")
    store.build(paths[:5], CONFIG, n_jobs=1)  # 5 cached, 13 to compute, 1 undecodable, 2 unreadable
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF0000WAVEjunk")
    gone, folder = str(tmp_path / "gone.wav"), str(tmp_path)  # missing; a folder, not a file
    todo = [*paths[:9], gone, *paths[9:], str(bad), folder]
    calls = []
    result = store.build(todo, CONFIG, n_jobs=1, progress=lambda d, t, p: calls.append((d, t, p)))
    assert [d for d, _, _ in calls] == list(range(1, 22))  # once per file, the last one done == total
    assert {t for _, t, _ in calls} == {21}
    assert sorted(p for _, _, p in calls) == sorted(todo)
    assert sorted(p for p, _ in result.failed) == sorted([gone, str(bad), folder])


def test_two_parallel_jobs_give_the_same_features(paths, tmp_path):
    parallel = FeatureStore(tmp_path / "a").build(paths, CONFIG, n_jobs=2)
    serial = FeatureStore(tmp_path / "b").build(paths, CONFIG, n_jobs=1)
    assert parallel.computed == serial.computed == 18
    assert all(_close(parallel.features[p], serial.features[p]) for p in paths)


def test_entries_are_plain_npz_files(paths, tmp_path):
    store = FeatureStore(tmp_path / "cache")
    store.build(paths, CONFIG, n_jobs=1)
    folder = store.folder(CONFIG)
    entries = sorted(folder.glob("*.npz"))
    assert sorted(e.stem for e in entries) == sorted(file_digest(p) for p in paths)
    assert not [p for p in folder.iterdir() if p.name.startswith(".tmp-")]
    for entry in entries:
        with np.load(entry, allow_pickle=False) as npz:  # no object arrays anywhere
            arrays = {k: npz[k] for k in npz.files}
        assert set(arrays) == {"rows", "starts", "names", "seconds", "log_mel", "extra_rms", "extra_segment_db", "extra_span"}
        assert arrays["names"].dtype.kind == "U" and arrays["rows"].dtype == np.float32
    assert json.loads((folder / "config.json").read_text()) == CONFIG.to_dict()


def test_a_damaged_entry_is_recomputed(paths, tmp_path):
    store = FeatureStore(tmp_path / "cache")
    store.build(paths[:2], CONFIG, n_jobs=1)
    store.entry_path(file_digest(paths[0]), CONFIG).write_bytes(b"PK\x03\x04 half a zip")
    again = store.build(paths[:2], CONFIG, n_jobs=1)
    assert again.computed == 1 and again.failed == []
    feats, computed = store.get_or_compute(paths[0], CONFIG)
    assert not computed and feats.rows.shape == (1, 359)


def test_default_cache_dir_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("GENRE_CACHE_DIR", str(tmp_path / "elsewhere"))
    assert default_cache_dir() == tmp_path / "elsewhere"
    assert FeatureStore().root == tmp_path / "elsewhere"


BUILD_AFTER_GO = r"""
import hashlib, sys, time
from pathlib import Path
from genre.features import FeatureConfig
from genre.store import FeatureStore
go, cache, paths = Path(sys.argv[1]), sys.argv[2], sys.argv[3:]
while not go.exists():
    time.sleep(0.005)
result = FeatureStore(cache).build(paths, FeatureConfig(), n_jobs=1)
rows = hashlib.sha256(b"".join(result.features[p].rows.tobytes() for p in paths)).hexdigest()
print(result.computed, len(result.features), len(result.failed), rows)
"""


def test_two_processes_filling_one_cache_at_once(paths, tmp_path):
    cache, go = tmp_path / "cache", tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENBLAS_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, "-c", BUILD_AFTER_GO, str(go), str(cache), *paths], cwd=ROOT,
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    time.sleep(2.0)  # both have imported librosa and are waiting
    go.touch()
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-2000:]
        computed, n, failed, rows = out.split()
        results.append((int(computed), int(n), int(failed), rows))
    assert [r[1:3] for r in results] == [(18, 0), (18, 0)]
    assert results[0][3] == results[1][3]  # both saw the same features
    assert sum(r[0] for r in results) >= 18  # together they computed everything (some maybe twice)
    # the cache is consistent: every entry loads, nothing half-written, and it matches a fresh run
    store = FeatureStore(cache)
    folder = store.folder(CONFIG)
    assert sorted(p.name for p in folder.iterdir()) == sorted([f"{file_digest(p)}.npz" for p in paths]
                                                              + ["config.json"])
    after = store.build(paths, CONFIG, n_jobs=1)
    assert after.computed == 0 and after.failed == []
    fresh = FeatureStore(tmp_path / "fresh").build(paths, CONFIG, n_jobs=1)
    assert all(_close(after.features[p], fresh.features[p]) for p in paths)


def test_a_combined_kind_shares_each_backbones_entries(tmp_path):
    """MusiCNN + mn04 is stored as each backbone's own entries: after the combined extraction a
    single-backbone one computes nothing; after one backbone the combined one runs only the other;
    entries a combined kind wrote on its own (older versions) still load."""
    from genre.backbones.embeddings import backbone_config
    from genre.pipeline import part_configs, storage_config

    combined, msd, mn04 = (backbone_config(k) for k in ("MSD_musicnn+mn04", "MSD_musicnn", "mn04"))
    assert [p.digest() for p in part_configs(combined)] == [storage_config(msd).digest(), storage_config(mn04).digest()]
    files = [str(write_wav(tmp_path / "audio" / f"{k}.wav", synth(k, seconds=4.0))) for k in ("tones", "buzz")]
    store = FeatureStore(tmp_path / "cache")
    first = store.build(files, combined, n_jobs=1)
    assert first.computed == 2 and not first.failed
    assert store.build(files, msd, n_jobs=1).computed == 0
    assert store.build(files, mn04, n_jobs=1).computed == 0
    assert not store.folder(combined).exists()  # nothing stored twice
    alone = store.build(files, msd, n_jobs=1).features[files[0]]
    joined = first.features[files[0]]
    msd_columns = [i for i, n in enumerate(joined.names) if n.startswith("msd_")]
    assert alone.names == [joined.names[i] for i in msd_columns]
    # MusiCNN heard through a 32 kHz decode, resampled to its 16 kHz, is what a 16 kHz decode gives
    reference, _ = features_of(files[0], msd)
    assert np.corrcoef(reference.rows.ravel(), alone.rows.ravel())[0, 1] > 0.9999

    shutil.rmtree(store.folder(mn04))
    msd_entries = {p: p.stat().st_mtime_ns for p in store.folder(msd).glob("*.npz")}
    again = FeatureStore(tmp_path / "cache").build(files, combined, n_jobs=1)
    assert again.computed == 2 and len(list(store.folder(mn04).glob("*.npz"))) == 2
    assert {p: p.stat().st_mtime_ns for p in store.folder(msd).glob("*.npz")} == msd_entries  # only mn04 ran
    assert np.allclose(again.features[files[1]].rows, first.features[files[1]].rows, atol=1e-5)

    legacy = FeatureStore(tmp_path / "legacy")  # an entry of the combined kind itself, as older versions wrote
    feats, _ = features_of(files[0], storage_config(combined))
    legacy.save(file_digest(files[0]), combined, feats)
    assert legacy.build(files[:1], combined, n_jobs=1).computed == 0
