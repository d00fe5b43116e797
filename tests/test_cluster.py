"""Extraction and prediction on a real Dask ``LocalCluster(n_workers=2, threads_per_worker=1)``:
the same features and cache keys as the local path, a worker killed mid-run still ends with every
file extracted, a poisonous batch is given up after Dask's retries (never retried forever) while
the files of its batch complete, an unreadable file is one reported failure, Ctrl-C stops
cleanly and a second run computes nothing twice, and the cluster's predict CSV equals the local
one."""
from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, synth, write_wav
from genre.dataset import discover
from genre.features import FeatureConfig
from genre.store import FeatureStore, extract_batch

distributed = pytest.importorskip("distributed", reason="dask[distributed] is an optional extra (the [cluster] extra; in the lock)")

from genre.engine import DaskEngine  # noqa: E402 - after the skip

ALLOWED_FAILURES = 2
"""Dask's retries of a task whose worker died (distributed.scheduler.allowed-failures), set low so
the poison test is quick."""


@pytest.fixture(scope="module")
def cluster():
    import dask

    with dask.config.set({"distributed.scheduler.allowed-failures": ALLOWED_FAILURES,
                          "logging.distributed": "error"}):
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                      dashboard_address=":0") as local, distributed.Client(local) as client:
            yield client


@pytest.fixture
def engine(cluster):
    return DaskEngine(cluster)


@pytest.fixture
def own_engine():
    """A cluster of its own, for a test that may leave it short of workers."""
    import dask

    with dask.config.set({"distributed.scheduler.allowed-failures": ALLOWED_FAILURES,
                          "logging.distributed": "error"}):
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                      dashboard_address=":0") as local, distributed.Client(local) as client:
            yield DaskEngine(client)


def _paths(root: Path) -> list[str]:
    return discover(root)["path"].tolist()


def _entries(store_root: Path) -> dict[str, dict[str, np.ndarray]]:
    out = {}
    for entry in sorted(store_root.glob("*/*.npz")):
        with np.load(entry, allow_pickle=False) as npz:
            out[f"{entry.parent.name}/{entry.name}"] = {k: npz[k] for k in npz.files}
    return out


def test_cluster_extraction_gives_the_local_features_and_keys(tiny_dataset, engine, tmp_path):
    config = FeatureConfig()
    local = FeatureStore(tmp_path / "local").build(_paths(tiny_dataset), config, n_jobs=1)
    remote = FeatureStore(tmp_path / "cluster").build(_paths(tiny_dataset), config, engine=engine)
    assert remote.computed == local.computed == 18 and not remote.failed
    a, b = _entries(tmp_path / "local"), _entries(tmp_path / "cluster")
    assert sorted(a) == sorted(b) and len(a) == 18  # same cache keys: (config digest, file SHA-256)
    for key in a:
        assert a[key].keys() == b[key].keys()
        for name in a[key]:
            assert a[key][name].dtype == b[key][name].dtype and a[key][name].shape == b[key][name].shape
            if a[key][name].dtype.kind == "f":  # workers run BLAS on one thread, this process on all:
                # float32 sums in another order differ in the last bits (seen: 2e-6 on values ~24)
                np.testing.assert_allclose(a[key][name].astype(np.float64), b[key][name], rtol=1e-5, atol=1e-5,
                                           err_msg=f"{key}:{name}")
            else:
                np.testing.assert_array_equal(a[key][name], b[key][name], err_msg=f"{key}:{name}")
    assert (tmp_path / "cluster" / config.digest() / "config.json").read_text() == \
        (tmp_path / "local" / config.digest() / "config.json").read_text()
    assert sorted(local.features) == sorted(remote.features)


def kill_worker_once(paths, *, marker: str, **kwargs):
    """extract_batch, but the first call anywhere SIGKILLs its own worker process first."""
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)  # exactly one task wins
    except FileExistsError:
        return extract_batch(paths, **kwargs)
    os.write(fd, str(os.getpid()).encode())
    os.close(fd)
    os.kill(os.getpid(), signal.SIGKILL)


def kill_worker_always(paths, **kwargs):
    """A poisonous batch: its first file kills every worker that tries it."""
    if any("poison" in p for p in paths):
        os.kill(os.getpid(), signal.SIGKILL)
    return extract_batch(paths, **kwargs)


def test_a_killed_worker_still_ends_with_every_file_extracted(tiny_dataset, engine, tmp_path):
    marker = tmp_path / "killed.pid"
    paths = _paths(tiny_dataset)
    pids_before = set(engine.client.run(os.getpid).values())
    outcomes = {}
    for batch, results, error in engine.run(kill_worker_once, [paths[i:i + 3] for i in range(0, 18, 3)],
                                            marker=str(marker), root=tmp_path / "store", config=FeatureConfig()):
        assert error is None, error
        outcomes.update({o.path: o for o in results})
    killed = int(marker.read_text())
    assert killed in pids_before  # the kill really happened, to one of the two workers
    assert sorted(outcomes) == sorted(paths) and not any(o.error for o in outcomes.values())
    store = FeatureStore(tmp_path / "store")
    assert all(store.load(o.digest, FeatureConfig()) is not None for o in outcomes.values())
    engine.client.wait_for_workers(2, timeout=120)  # the nanny restarted it: the cluster is whole again
    assert killed not in set(engine.client.run(os.getpid).values())


def test_a_poisonous_batch_is_given_up_and_the_rest_completes(tiny_dataset, own_engine, tmp_path):
    """Killed on every try, its workers' nannies may stop restarting them: hence its own cluster."""
    engine = own_engine
    poison = write_wav(tmp_path / "data" / "x" / "poison.wav", synth("beats", seconds=2.0))
    paths = _paths(tiny_dataset)[:4] + [str(poison)]
    outcomes = {}
    store = FeatureStore(tmp_path / "store")
    for batch, results, error in engine.run(kill_worker_always, [[p] for p in paths], root=store.root,
                                            config=FeatureConfig()):
        outcomes.update({p: error for p in batch} if results is None else {o.path: o.error for o in results})
    assert sorted(outcomes) == sorted(paths)
    assert "worker died" in outcomes[str(poison)]
    assert [p for p, e in outcomes.items() if e] == [str(poison)]


def test_a_poisonous_file_does_not_take_its_batch_down(tiny_dataset, own_engine, tmp_path):
    """Its batch dies with its workers; tried again file by file, the others complete."""
    poison = write_wav(tmp_path / "data" / "x" / "poison.wav", synth("beats", seconds=2.0))
    batch = [*_paths(tiny_dataset)[:2], str(poison), _paths(tiny_dataset)[2]]
    outcomes, given_up = {}, []
    for done, results, error in own_engine.run(kill_worker_always, [batch], root=tmp_path / "store",
                                               config=FeatureConfig()):
        if results is None:
            given_up += done
        else:
            outcomes.update({o.path: o.error for o in results})
    assert given_up == [str(poison)]
    assert sorted(outcomes) == sorted(p for p in batch if p != str(poison)) and not any(outcomes.values())


def test_an_unreadable_file_is_reported_once_and_the_rest_extracted(tiny_dataset, engine, tmp_path):
    bad = tmp_path / "data" / "x" / "broken.wav"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"not a song\n" * 500)
    paths = _paths(tiny_dataset)[:5] + [str(bad)]
    result = FeatureStore(tmp_path / "store").build(paths, FeatureConfig(), engine=engine, keep=False)
    assert result.failed == [(str(bad), result.failed[0][1])] and "not audio" in result.failed[0][1]
    assert sorted(result.available) == sorted(paths[:5]) and result.computed == 5 and not result.features


def test_a_resumed_run_computes_nothing_twice(tiny_dataset, engine, tmp_path):
    paths, store = _paths(tiny_dataset), FeatureStore(tmp_path / "store")
    first = store.build(paths[:7], FeatureConfig(), engine=engine, keep=False)
    assert first.computed == 7
    written = {p.name: p.stat().st_mtime_ns for p in store.root.glob("*/*.npz")}
    second = store.build(paths, FeatureConfig(), engine=engine)
    assert second.computed == 11 and len(second.features) == 18
    assert all((store.folder(FeatureConfig()) / name).stat().st_mtime_ns == t for name, t in written.items())
    assert store.build(paths, FeatureConfig(), engine=engine, keep=False).computed == 0


def _cli(args: list[str], cache: Path, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GENRE_CACHE_DIR": str(cache), "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.Popen([sys.executable, "-m", "genre", *args], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)


def test_ctrl_c_stops_cleanly_and_a_second_run_resumes(tmp_path):
    """SIGINT to the whole process group, as Ctrl-C in a terminal sends it (workers included)."""
    data = tmp_path / "data"
    for i in range(40):
        write_wav(data / ("tones", "beats")[i % 2] / f"clip{i:02d}.wav", synth(("tones", "beats")[i % 2], seed=i,
                                                                              seconds=6.0))
    cache = tmp_path / "cache"
    # A suite started in the background by a shell without job control ignores SIGINT, and so would
    # the CLI (an ignored signal stays ignored across exec): give it the default disposition.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        proc = _cli(["extract", str(data), "--cluster", "local:2", "--files-per-task", "1"], cache,
                    start_new_session=True)
    finally:
        signal.signal(signal.SIGINT, previous)
    deadline = time.monotonic() + 300
    while len(list(cache.glob("*/*.npz"))) < 4 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert proc.poll() is None, proc.communicate()
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, (out, err)
    assert err.strip().splitlines()[-1] == "error: interrupted" and "Traceback" not in err, err
    before = len(list(cache.glob("*/*.npz")))
    assert 4 <= before < 40
    proc = _cli(["extract", str(data), "--jobs", "1"], cache)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    assert out.strip() == f"40 clips in the feature store ({40 - before} computed now, {before} cached), 0 skipped"


def test_cluster_predict_csv_equals_the_local_one(tiny_dataset, cluster, tmp_path):
    """The cluster is reached by its scheduler address, as a running cluster would be; each run
    has its own feature cache, so both compute every feature."""
    address = cluster.scheduler.address
    local = _cli(["predict", str(tiny_dataset), "--csv", str(tmp_path / "local.csv")], tmp_path / "cache-local")
    remote = _cli(["predict", str(tiny_dataset), "--csv", str(tmp_path / "cluster.csv"), "--cluster", address],
                  tmp_path / "cache-cluster")
    for proc in (local, remote):
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0 and err == "", err
        assert len(out.splitlines()) == 18

    def rows(name):
        with open(tmp_path / name, newline="") as fh:
            header, *body = list(csv.reader(fh))
        return header, sorted(body)

    assert rows("local.csv") == rows("cluster.csv")
    header, body = rows("cluster.csv")
    assert header[:3] == ["path", "genre", "probability"] and len(body) == 18
