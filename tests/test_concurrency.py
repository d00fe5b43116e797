"""Two sessions at once: the on-disk feature cache stays consistent when two processes extract
the same dataset together, and a reader never sees a half-written cache entry."""
from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import ROOT, synth, write_wav
from genre.dataset import discover
from genre.features import FeatureConfig
from genre.pipeline import features_of
from genre.store import FeatureStore, file_digest

# Both processes import everything, wait for the same 'go' file, then run the real CLI entry point.
EXTRACT_AFTER_GO = r"""
import sys, time
from pathlib import Path
import genre.__main__ as cli, genre.store, genre.pipeline  # imports done before the start line
go = Path(sys.argv[1])
while not go.exists():
    time.sleep(0.01)
sys.exit(cli.main(["extract", sys.argv[2], "--jobs", "1"]))
"""


def _env(cache) -> dict[str, str]:
    return {**os.environ, "GENRE_CACHE_DIR": str(cache), "TF_CPP_MIN_LOG_LEVEL": "2"}


@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory):
    """Two genres x three 3-s clips: enough entries for two extractions to collide on."""
    root = tmp_path_factory.mktemp("small")
    for label, kind in (("tones", "tones"), ("beats", "beats")):
        for i in range(3):
            write_wav(root / label / f"{label}.{i:05d}.wav", synth(kind, seconds=3.0, seed=10 + i))
    return root


def test_two_processes_extracting_one_dataset_leave_a_consistent_cache(small_dataset, tmp_path):
    cache, go = tmp_path / "cache", tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", EXTRACT_AFTER_GO, str(go), str(small_dataset)], cwd=ROOT,
                              env=_env(cache), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    time.sleep(1.0)
    go.touch()
    outputs = [p.communicate(timeout=300) for p in procs]
    computed = []
    for proc, (out, err) in zip(procs, outputs):
        assert proc.returncode == 0, err
        match = re.fullmatch(r"6 clips in the feature store \((\d+) computed now, (\d+) cached\), 0 skipped", out.strip())
        assert match, out
        computed.append(int(match[1]))
    assert sum(computed) > 6, f"the two runs did not overlap ({computed} computed): the test proved nothing"

    config, store = FeatureConfig(), FeatureStore(cache)
    folder = store.folder(config)
    df = discover(small_dataset)
    digests = {file_digest(p): p for p in df["path"]}
    assert sorted(p.name for p in folder.iterdir()) == sorted([f"{d}.npz" for d in digests] + ["config.json"])
    FeatureConfig.from_dict(json.loads((folder / "config.json").read_text()))  # whole, valid JSON
    for digest, path in digests.items():
        with np.load(folder / f"{digest}.npz", allow_pickle=False) as npz:  # no object arrays inside
            assert {npz[k].dtype.kind for k in npz.files} <= set("fiuU")
        cached = store.load(digest, config)
        fresh, _ = features_of(path, config)
        assert cached is not None and cached.names == fresh.names and cached.seconds == fresh.seconds
        np.testing.assert_array_equal(cached.starts, fresh.starts)
        np.testing.assert_allclose(cached.rows, fresh.rows, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(cached.log_mel.astype(np.float32), fresh.log_mel.astype(np.float32),
                                   rtol=1e-3, atol=1e-2)
    # and the store reads it all back without recomputing
    result = FeatureStore(cache).build(df["path"], config, n_jobs=1)
    assert result.computed == 0 and not result.failed and len(result.features) == 6


HAMMER = r"""
import sys
import numpy as np
from genre.features import FeatureConfig
from genre.pipeline import ClipFeatures
from genre.store import FeatureStore

root, value, times = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
n = 40  # ~1.4 MB per entry: a torn or interleaved write would show
feats = ClipFeatures(np.full((n, 300), value, np.float32), np.arange(n, dtype=np.float32) * 3,
                     [f"f{i}" for i in range(300)], n * 3.0, log_mel=np.full((n, 128, 129), value, np.float16))
store = FeatureStore(root)
print("ready", flush=True)
for _ in range(times):
    store.save("ab" * 32, FeatureConfig(), feats)
"""


def test_a_reader_never_sees_a_half_written_entry(tmp_path):
    """Two writers rewrite the same cache entry (with different values) while this process reads
    it: every read is None before the first write lands, then always one whole, unmixed entry."""
    writers = [subprocess.Popen([sys.executable, "-c", HAMMER, str(tmp_path), str(v), "60"], cwd=ROOT,
                                env=_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for v in (1, 2)]
    for w in writers:
        assert w.stdout.readline().strip() == "ready", w.stderr.read()
    store, config, seen, reads = FeatureStore(tmp_path), FeatureConfig(), set(), 0
    deadline = time.monotonic() + 120
    while (any(w.poll() is None for w in writers) or not reads) and time.monotonic() < deadline:
        feats = store.load("ab" * 32, config)
        if feats is None:
            assert not seen, "an entry that existed became unreadable"
            continue
        reads += 1
        values = np.unique(feats.rows)
        assert len(values) == 1 and np.unique(feats.log_mel.astype(np.float32)).tolist() == values.tolist()
        assert feats.rows.shape == (40, 300) and feats.log_mel.shape == (40, 128, 129) and len(feats.names) == 300
        seen.add(float(values[0]))
    for w in writers:
        assert w.wait(timeout=60) == 0, w.stderr.read()
        w.stdout.close()
        w.stderr.close()
    assert reads > 0 and seen <= {1.0, 2.0}
    assert not list(tmp_path.rglob(".tmp-*")), "a temporary file was left behind"


def _npz(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _npy() -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.zeros(3))
    return buf.getvalue()


BROKEN_ENTRIES = {
    "empty": lambda: b"",
    "half-a-zip": lambda: _npz(rows=np.zeros((1, 5)))[:200],
    "zip-magic-only": lambda: b"PK\x03\x04 not a zip",
    "a-plain-npy": _npy,
    "missing-keys": lambda: _npz(something=np.zeros(2)),
    "needs-pickle": lambda: _npz(rows=np.array([{"evil": 1}], dtype=object)),
}


@pytest.mark.parametrize("broken", BROKEN_ENTRIES, ids=list(BROKEN_ENTRIES))
def test_an_unreadable_entry_is_recomputed(broken, small_dataset, tmp_path):
    """A damaged or foreign cache entry (disk full, killed copy, someone's pickle) is treated as
    missing and rewritten; it is never unpickled."""
    path = sorted((small_dataset / "beats").glob("*.wav"))[0]
    store, config = FeatureStore(tmp_path), FeatureConfig()
    entry = store.entry_path(file_digest(path), config)
    entry.parent.mkdir(parents=True)
    entry.write_bytes(BROKEN_ENTRIES[broken]())
    feats, computed = store.get_or_compute(path, config)
    assert computed and feats.rows.shape[0] == 1
    assert store.load(file_digest(path), config) is not None
