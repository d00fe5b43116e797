"""Prediction latency beside a training run: does a training in its worker process leave
predictions fast?

In this process (as in the dashboard server) the shipped default model classifies one 30 s clip
(decode + pretrained embeddings + head, after a warm-up) while a training runs in a worker process
started through :class:`genre.runs.RunRegistry`, in two set-ups:

1. as the Train page starts it: the worker at niceness +10 in the SCHED_IDLE class
   (``$GENRE_TRAIN_IDLE``) with ``$GENRE_TRAIN_THREADS`` threads (default: half the cores);
2. no fair sharing: the worker at normal priority with every core.

The machine is shared with other jobs whose load drifts, so the comparison is paired: the
predictions alternate between the worker paused (SIGSTOP: "alone") and running ("beside"), one
each, ``--repeats`` pairs per set-up. The training is an MLP on hand-crafted features of
``--root`` (default the real GTZAN clips in ``../shared/gtzan``, features from the feature cache,
so set ``GENRE_CACHE_DIR``; else a synthetic dataset), up to 1000 epochs without early stopping;
timing starts at its first epoch and the run is stopped afterwards.
Target: p95 beside the fairly shared training <= 2x p95 alone.

    .venv/bin/python benchmarks/train_share.py [--repeats 20] [--root DIR] [--clip FILE]
"""
from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from benchmarks.app import clip_bytes  # noqa: E402


def synthetic_dataset(folder: Path) -> Path:
    """3 labels x 12 clips of 10 s (the test suite's synthetic kinds)."""
    sys.path.insert(0, str(PROJECT / "tests"))
    from conftest import synth, write_wav

    for kind in ("tones", "beats", "buzz"):
        for i in range(12):
            write_wav(folder / kind / f"{kind}.{i:05d}.wav", synth(kind, seconds=10.0, seed=i))
    return folder


def timed(predict) -> float:
    t0 = time.perf_counter()
    predict()
    return time.perf_counter() - t0


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def paired(registry, request, predict, repeats: int) -> dict:
    """Predictions alternately with the training worker paused and running; also the CPU cores
    the worker used while running beside them and the epochs it finished meanwhile."""
    from genre import runs

    run_id, _ = registry.submit(request)
    try:
        deadline = time.monotonic() + 900
        while not registry.get(run_id).history:
            snap = registry.get(run_id)
            if not snap.active:
                raise SystemExit(f"the training ended before its first epoch: {snap.state} {snap.error}")
            if time.monotonic() > deadline:
                raise SystemExit("no epoch in 15 minutes")
            time.sleep(0.2)
        pid, first = registry.worker_pid(run_id), len(registry.get(run_id).history)
        alone, beside, cpu, wall = [], [], 0.0, 0.0
        for _ in range(repeats):
            os.kill(pid, signal.SIGSTOP)
            try:
                alone.append(timed(predict))
            finally:
                os.kill(pid, signal.SIGCONT)
            cpu0 = _cpu_seconds(pid)
            beside.append(timed(predict))
            cpu, wall = cpu + _cpu_seconds(pid) - cpu0, wall + beside[-1]
        return {"alone": alone, "beside": beside, "cores": cpu / wall,
                "epochs": len(registry.get(run_id).history) - first}
    finally:
        registry.stop(run_id)
        registry.wait(run_id, 120)
        if registry.get(run_id).state != runs.DONE:
            print(f"note: the training ended {registry.get(run_id).state}: {registry.get(run_id).error}")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its finished children, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--root", help="dataset to train on (default ../shared/gtzan, else synthetic)")
    parser.add_argument("--clip", help="clip to classify (default a GTZAN rock clip, else synthetic)")
    args = parser.parse_args()

    from genre import backbones, runs
    from genre.models import ModelSpec, load_model
    from genre.predict import predict_source

    data, clip_name = clip_bytes(args.clip)
    model = load_model()
    for backbone in backbones.parts(model.card.config.kind):
        backbones.load(backbone.name)
    predict = lambda: predict_source(model, data, name="clip")  # noqa: E731
    predict()  # warm-up

    with tempfile.TemporaryDirectory() as tmp:
        gtzan = PROJECT.parent / "shared" / "gtzan"
        root = Path(args.root) if args.root else gtzan if (gtzan / "blues").is_dir() else synthetic_dataset(
            Path(tmp) / "data")
        request = runs.TrainRequest(root=str(root.resolve()), spec=ModelSpec(epochs=1000, patience=1000),
                                    split="stratified")
        shared = runs.RunRegistry(Path(tmp) / "models-shared")
        greedy = runs.RunRegistry(Path(tmp) / "models-greedy", niceness=0, idle=False, threads=os.cpu_count() or 1)
        print(f"clip: {clip_name}; training on {root}; {os.cpu_count()} CPUs; "
              f"load average {os.getloadavg()[0]:.1f} at the start")
        results = [(f"worker at niceness +{shared.niceness}{', SCHED_IDLE' if shared.idle else ''}, {shared.threads} "
                    "thread(s) (the Train page's)",
                    paired(shared, request, predict, args.repeats)),
                   (f"worker at normal priority, {greedy.threads} threads (no fair sharing)",
                    paired(greedy, request, predict, args.repeats))]

    print(f"\n{args.repeats} pairs of predictions of a 30 s clip (decode + embeddings + head), seconds; "
          "'alone' = training worker paused\n")
    print("| training beside the predictions | alone: median | p95 | beside: median | p95 | p95 ratio "
          "| worker's CPU cores | epochs meanwhile |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, r in results:
        print(f"| {name} | {statistics.median(r['alone']):.3f} | {p95(r['alone']):.3f} | "
              f"{statistics.median(r['beside']):.3f} | {p95(r['beside']):.3f} | "
              f"{p95(r['beside']) / p95(r['alone']):.2f}x | {r['cores']:.2f} | {r['epochs']} |")
    ratio = p95(results[0][1]["beside"]) / p95(results[0][1]["alone"])
    print(f"\np95 beside the Train page's training / p95 alone = {ratio:.2f}x   target <= 2x: "
          f"{'met' if ratio <= 2 else 'NOT met'}   (load average {os.getloadavg()[0]:.1f} at the end)")


if __name__ == "__main__":
    main()
