"""Library scale: feature extraction on joblib vs a Dask LocalCluster, the scheduler's overhead,
a projection to 100 000 tracks, and the neighbour query over 100 000 embeddings.

    .venv/bin/python benchmarks/scale.py            # 200 distinct 30 s clips, hand-crafted features

Every run extracts the same clips into an EMPTY feature cache (the clips are distinct, so no
entry can serve two of them), through the code the CLI uses: ``FeatureStore.build`` with
``--jobs 1`` (this process), then ``--cluster local:1`` and ``local:2`` (genre.engine.DaskEngine).
Worker start-up and warm-up (imports, librosa's kernels) are timed apart from the steady state.
Last, the machine's own ceiling: 1 and then N plain processes without any engine (BLAS limited to
one thread, as Dask limits its workers), each extracting an equal share of the clips with
``--jobs 1`` after its own warm-up, all started at one signal: no engine can beat their speed-up.
The machine may be shared: the load average before and after is printed with the results.
Prints a Markdown block for the README.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from genre.engine import DaskEngine  # noqa: E402
from genre.features import FeatureConfig  # noqa: E402
from genre.numba_cache import warm_librosa  # noqa: E402
from genre.store import FeatureStore  # noqa: E402

SR = 22050


def make_clips(folder: Path, n: int, seconds: float, *, tag: str = "clip") -> list[str]:
    """``n`` distinct FLAC clips (a chord, a beat and a buzz per clip, each with its own pitch,
    tempo and noise): no two share a SHA-256, so the cache cannot help."""
    rng = np.random.default_rng(abs(hash(tag)) % 2**32)
    t = np.arange(int(seconds * SR)) / SR
    paths = []
    for i in range(n):
        f0 = 110 * 2 ** (rng.uniform(0, 24) / 12)
        chord = sum(np.sin(2 * np.pi * f0 * r * t) for r in (1, 1.25, 1.5)) / 3
        beat = np.exp(-((t % rng.uniform(0.3, 0.8)) * 30)) * rng.standard_normal(len(t))
        buzz = 2 * ((t * f0 / 2) % 1.0) - 1
        mix = rng.dirichlet(np.ones(3))
        y = 0.3 * (mix[0] * chord + mix[1] * beat + mix[2] * buzz) + 0.01 * rng.standard_normal(len(t))
        path = folder / f"{tag}{i:04d}.flac"
        sf.write(path, y.astype(np.float32), SR)
        paths.append(str(path))
    return paths


def warm_worker(path: str, root: str) -> float:
    """On a worker: extract one clip (imports, numba kernels, first-call costs); seconds taken."""
    start = time.perf_counter()
    FeatureStore(root).build([path], FeatureConfig(), n_jobs=1, keep=False)
    return time.perf_counter() - start


def noop_batch(batch: list) -> list:
    return batch


def cpu_seconds() -> float:
    """CPU time (user + system, all threads) of the calling process so far."""
    return time.process_time()


def extract(paths: list[str], cache: Path, *, engine=None) -> tuple[float, int, float]:
    """(wall seconds, clips computed, CPU seconds of the processes that computed them)."""
    where = (lambda: sum(engine.client.run(cpu_seconds).values())) if engine else cpu_seconds
    cpu, start = where(), time.perf_counter()
    result = FeatureStore(cache).build(paths, FeatureConfig(), n_jobs=1, engine=engine, keep=False)
    seconds = time.perf_counter() - start
    cpu = where() - cpu
    if result.failed or result.computed != len(paths):
        raise SystemExit(f"extraction went wrong: {result.computed} computed, {result.failed[:3]}")
    return seconds, result.computed, cpu


def cluster_run(spec: str, paths: list[str], warm: list[str], tmp: Path, *, run: int) -> dict:
    start = time.perf_counter()
    engine = DaskEngine.start(spec)
    try:
        started = time.perf_counter() - start
        n = len(engine.client.nthreads())
        warm_s = engine.client.run(warm_worker, warm[0], str(tmp / f"warm-{run}"))
        seconds, computed, cpu = extract(paths, tmp / f"cache-{run}", engine=engine)
        overhead = None
        if n > 1:
            tasks = 2000
            t0 = time.perf_counter()
            for _ in engine.run(noop_batch, [[i] for i in range(tasks)]):
                pass
            overhead = (time.perf_counter() - t0) / tasks
        return {"label": f"--cluster {spec}", "workers": n, "start": started,
                "warm": max(warm_s.values()), "seconds": seconds, "computed": computed, "cpu": cpu,
                "overhead": overhead}
    finally:
        engine.close()


ONE_THREAD = {name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}


def ceiling_worker(paths_file: str, cache: str, warm: str) -> None:
    """In a plain child process: warm up, say "ready", wait for a line on stdin, extract the clips
    listed in ``paths_file`` (one per line) into ``cache`` and print {"seconds", "cpu", "computed"}."""
    warm_worker(warm, cache + "-warm")
    print("ready", flush=True)
    sys.stdin.readline()
    paths = Path(paths_file).read_text().split("\n")
    print(json.dumps(dict(zip(("seconds", "computed", "cpu"), extract(paths, Path(cache))))), flush=True)


def ceiling_run(n: int, paths: list[str], warm: str, tmp: Path) -> dict:
    """``n`` plain processes (no engine) extract equal shares of ``paths`` at once: the row of the
    speed-up any engine could reach on this machine."""
    children = []
    for i in range(n):
        share = tmp / f"ceiling-{n}-{i}.txt"
        share.write_text("\n".join(paths[i::n]))
        children.append(subprocess.Popen(
            [sys.executable, __file__, "--ceiling-worker", str(share), str(tmp / f"ceiling-{n}-{i}"), warm],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env={**os.environ, **ONE_THREAD}))
    for child in children:
        if child.stdout.readline().strip() != "ready":
            raise SystemExit("a ceiling process failed to start")
    start = time.perf_counter()
    for child in children:
        child.stdin.write("go\n")
        child.stdin.flush()
    results = [json.loads(child.stdout.readline()) for child in children]
    seconds = time.perf_counter() - start
    for child in children:
        child.wait()
    return {"label": f"plain processes, no engine: {n}", "workers": n, "start": 0.0, "warm": 0.0,
            "seconds": seconds, "computed": sum(r["computed"] for r in results),
            "cpu": sum(r["cpu"] for r in results), "overhead": None}


def query_benchmark(n: int, dims: tuple[int, ...], k: int = 10, repeats: int = 50) -> list[dict]:
    from genre.similar import CollectionIndex

    rows = []
    rng = np.random.default_rng(0)
    for d in dims:
        raw = rng.standard_normal((n, d)).astype(np.float32) * rng.uniform(0.1, 10, d).astype(np.float32)
        paths = [f"/music/artist{i // 100:04d}/track{i:06d}.mp3" for i in range(n)]
        t0 = time.perf_counter()
        index = CollectionIndex.fit("/music", paths, np.zeros((n, 2), np.int64), raw, FeatureConfig())
        fit_s = time.perf_counter() - t0
        with tempfile.TemporaryDirectory() as tmp:
            file = Path(tmp) / "index.npz"
            index.save(file)
            size = file.stat().st_size
            t0 = time.perf_counter()
            loaded = CollectionIndex.load(file, FeatureConfig())
            load_s = time.perf_counter() - t0
        queries = raw[rng.integers(0, n, repeats)] + rng.standard_normal((repeats, d)).astype(np.float32)
        times = []
        for q in queries:
            t0 = time.perf_counter()
            loaded.query(q, k=k)
            times.append(time.perf_counter() - t0)
        rows.append({"n": n, "d": d, "median_ms": 1000 * statistics.median(times), "max_ms": 1000 * max(times),
                     "fit_s": fit_s, "load_s": load_s, "file_mb": size / 2**20,
                     "memory_mb": (loaded.raw.nbytes + loaded.unit.nbytes) / 2**20})
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clips", type=int, default=200)
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--clusters", default="local:1,local:2")
    p.add_argument("--tracks", type=int, default=100_000, help="collection size of the projection and the query")
    p.add_argument("--ceiling-worker", nargs=3, metavar=("PATHS_FILE", "CACHE", "WARM_CLIP"),
                   help=argparse.SUPPRESS)  # internal: one plain process of the ceiling rows
    args = p.parse_args(argv)
    if args.ceiling_worker:
        ceiling_worker(*args.ceiling_worker)
        return 0
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="genre-scale-") as tmp_name:
        tmp = Path(tmp_name)
        t0 = time.perf_counter()
        paths = make_clips(tmp, args.clips, args.seconds)
        warm = make_clips(tmp, 2, args.seconds, tag="warm")
        print(f"made {len(paths)} clips in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        warm_librosa()  # what FeatureStore.build does once before starting workers: not part of any run
        warm_here = warm_worker(warm[1], str(tmp / "warm-here"))
        seconds, computed, cpu = extract(paths, tmp / "cache-jobs1")
        runs = [{"label": "--jobs 1 (this process)", "workers": 1, "start": 0.0, "warm": warm_here,
                 "seconds": seconds, "computed": computed, "cpu": cpu, "overhead": None}]
        print(f"jobs 1: {seconds:.1f} s", file=sys.stderr)
        for run, spec in enumerate(args.clusters.split(",")):
            runs.append(cluster_run(spec, paths, warm, tmp, run=run))
            print(f"{spec}: {runs[-1]['seconds']:.1f} s", file=sys.stderr)
        widest = max(r["workers"] for r in runs)
        ceiling = [ceiling_run(n, paths, warm[0], tmp) for n in sorted({1, widest})]
        print(f"plain: {[round(r['seconds'], 1) for r in ceiling]} s", file=sys.stderr)
    load_after = os.getloadavg()
    queries = query_benchmark(args.tracks, (200, 359))

    by = {r["label"]: r for r in runs}
    one = by.get("--cluster local:1")
    print(f"Extraction of {args.clips} distinct {args.seconds:g} s clips (FLAC, 22.05 kHz), hand-crafted features, "
          f"empty cache each run; {os.cpu_count()} CPUs, SHARED machine: load average "
          f"{load_before[0]:.1f} before, {load_after[0]:.1f} after (1-min)\n")
    print("| engine | workers | start-up s | warm-up s | extraction s | clips/s | speed-up vs jobs 1 | vs local:1 "
          "| CPU s/clip | CPU share of its cores |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    base = runs[0]["seconds"]
    for r in runs + ceiling:
        rate = r["computed"] / r["seconds"]
        reference = one if r["label"].startswith("--cluster") else ceiling[0] if r in ceiling else None
        vs_one = f"{reference['seconds'] / r['seconds']:.2f}x" if reference else ""
        print(f"| {r['label']} | {r['workers']} | {r['start']:.1f} | {r['warm']:.1f} | {r['seconds']:.1f} | "
              f"{rate:.2f} | {base / r['seconds']:.2f}x | {vs_one} | {r['cpu'] / r['computed']:.3f} | "
              f"{r['cpu'] / (r['seconds'] * r['workers']):.0%} |")
    print("\nCPU s/clip: CPU time of the computing processes per clip (the work itself; it does not grow with "
          "workers if the engine adds little). CPU share: that CPU time over wall time x workers, i.e. how much of "
          "a core each worker got; on a machine shared with other jobs it is well under 100 % and caps the speed-up. "
          "Plain processes: the same work split in equal shares over processes that share nothing but the "
          "machine; their 'vs local:1' column is against one plain process: the ceiling of any engine here.")
    over = [r for r in runs if r["overhead"] is not None]
    for r in over:
        print(f"\nScheduler overhead ({r['label']}): {1000 * r['overhead']:.2f} ms per task (2000 no-op tasks "
              f"through genre.engine, submit to result)")
    per_worker = runs[-1]["computed"] / runs[-1]["seconds"] / runs[-1]["workers"]
    factor = 240 / args.seconds  # a 4-minute track costs this many clips
    read_mb_s = 32 * per_worker / factor * 25  # W=32 workers, 4-min tracks of ~25 MB (FLAC)
    print(f"\nProjection for {args.tracks:,} tracks. Assumptions: every worker keeps the per-worker rate of the "
          f"last run ({per_worker:.2f} clips/s of {args.seconds:g} s) on cores like these; cost is linear in audio "
          f"length, so a 4-minute track costs {factor:g} clips; the shared filesystem keeps up (4-min FLACs of ~25 MB at "
          f"W=32 need ~{read_mb_s:.0f} MB/s); scheduler overhead as measured, 16 files per task:\n")
    print(f"| workers W | {args.seconds:g} s clips: hours | 4-min tracks: hours |")
    print("|---:|---:|---:|")
    task = over[-1]["overhead"] if over else 0.0
    for w in (2, 8, 32, 128):
        clip_h = (args.tracks / (w * per_worker) + args.tracks / 16 * task / w) / 3600
        print(f"| {w} | {clip_h:.2f} | {factor * clip_h:.1f} |")
    print(f"\nNeighbour query (`genre.similar.CollectionIndex`: exact cosine on unit float32 vectors, k=10, "
          f"median of 50 queries):\n")
    print("| tracks | dims | query median ms | max ms | index in memory MB | saved file MB | load s | fit s |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for q in queries:
        print(f"| {q['n']:,} | {q['d']} | {q['median_ms']:.1f} | {q['max_ms']:.1f} | {q['memory_mb']:.0f} | "
              f"{q['file_mb']:.0f} | {q['load_s']:.2f} | {q['fit_s']:.2f} |")
    speedup = one["seconds"] / by["--cluster local:2"]["seconds"] if one and "--cluster local:2" in by else None
    print("\n| measure | target | met |")
    print("|---|---|---|")
    if speedup is not None:
        plain = ceiling[0]["seconds"] / ceiling[-1]["seconds"]
        print(f"| local:2 / local:1 = {speedup:.2f}x (plain processes, no engine: {plain:.2f}x) | >= 1.7x | "
              f"{'yes' if speedup >= 1.7 else 'no'} |")
    worst = max(q["median_ms"] for q in queries)
    print(f"| query at {args.tracks:,} = {worst:.1f} ms (median, widest) | < 50 ms | {'yes' if worst < 50 else 'no'} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
