"""mn04 (EfficientAT mn04_as) speed on ONE core: decode, front end and network per 30 s clip.

On N real GTZAN clips (spread evenly over the sorted list), with TensorFlow and BLAS limited to
one thread: ``genre.audio.decode`` at 32 kHz, `front_end` once per clip, then the network on
windows of ``--window`` seconds centred every ``--hop`` seconds (as `Mn04Backbone.describe` cuts
them; the default 3 s / 3 s matches the ~3 s MusiCNN segments), plus 5 s and 10 s windows at the
same hop for comparison. One warm-up clip first (TF trace, file cache). The target, front end +
network < 0.12 s per clip for the default windows, is judged on CPU time (single-threaded, wall
time agrees with it on an idle machine; a busy one slows wall time only).

    .venv/bin/python benchmarks/mn04.py [--clips 20] [--window 3] [--hop 3] [--root ../shared/gtzan]
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"):
    os.environ[_var] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

import numpy as np  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from genre.audio import decode  # noqa: E402
from genre.backbones import efficientat  # noqa: E402

TARGET_SECONDS = 0.12  # front end + network per 30 s clip, one core


def timed(fn, *args, **kwargs):
    """(result, wall seconds, CPU seconds of this process) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - wall, time.process_time() - cpu


def pick_clips(root: Path, n: int) -> list[Path]:
    """``n`` clips spread evenly over the sorted ``<genre>/<id>.<ext>`` files of ``root``."""
    paths = sorted(p for p in root.glob("*/*") if p.suffix in (".ogg", ".wav", ".au", ".mp3"))
    idx = np.unique(np.linspace(0, len(paths) - 1, min(n, len(paths))).round().astype(int))
    return [paths[i] for i in idx]


def windows_of(logmel: np.ndarray, *, seconds: float, window: float, hop: float) -> np.ndarray:
    """(n, 128, frames) windows centred at (k + 1/2) hop seconds, as describe() cuts them."""
    centres = np.arange(hop / 2, seconds, hop)
    frames = round(window * efficientat.FRAMES_PER_SECOND)
    if logmel.shape[1] <= frames:
        return logmel[None]
    starts = efficientat.window_starts(logmel.shape[1], centres=centres, window_frames=frames)
    return np.stack([logmel[:, s:s + frames] for s in starts])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clips", type=int, default=20, help="clips timed (default 20)")
    ap.add_argument("--window", type=float, default=3.0, help="window seconds (default 3)")
    ap.add_argument("--hop", type=float, default=3.0, help="seconds between window centres")
    ap.add_argument("--root", default=str(PROJECT.parent / "shared" / "gtzan"), help="GTZAN folder")
    args = ap.parse_args(argv)
    root = Path(args.root)
    if not root.is_dir():
        print(f"error: no dataset at {root}", file=sys.stderr)
        return 2

    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    backbone = efficientat.Mn04Backbone.load()
    clips = pick_clips(root, args.clips)
    windows = sorted({args.window, 5.0, 10.0})
    rows: dict[str, list[tuple[float, float]]] = {"decode": [], "front end": []}
    rows.update({f"network, {w:g} s windows": [] for w in windows})
    counts = {w: 0 for w in windows}
    with threadpool_limits(limits=1):
        for i, path in enumerate([clips[0], *clips]):
            y, *decode_time = timed(decode, path, sr=efficientat.SAMPLE_RATE)
            logmel, *front_time = timed(efficientat.front_end, y.y)
            times = {"decode": decode_time, "front end": front_time}
            for w in windows:
                batch = windows_of(logmel, seconds=len(y.y) / y.sr, window=w, hop=args.hop)
                _, *times[f"network, {w:g} s windows"] = timed(backbone.embed_windows, batch)
                counts[w] = len(batch)
            if i:  # clip 0 is the warm-up
                for key, value in times.items():
                    rows[key].append(tuple(value))
    wall = {k: np.array([w for w, _ in v]) for k, v in rows.items()}
    cpu = {k: np.array([c for _, c in v]) for k, v in rows.items()}

    print(f"mn04 on {len(clips)} GTZAN clips (~30 s each, {counts[windows[0]]} windows per clip "
          f"every {args.hop:g} s); 1 thread (TensorFlow, BLAS), {os.cpu_count()} CPUs, "
          f"TensorFlow {tf.__version__}, load average {os.getloadavg()[0]:.1f}")
    print()
    print("| step | wall ms/clip: mean | min | max | CPU ms/clip: mean | min | max |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for key in rows:
        w, c = wall[key] * 1000, cpu[key] * 1000
        print(f"| {key} | {w.mean():.1f} | {w.min():.1f} | {w.max():.1f} "
              f"| {c.mean():.1f} | {c.min():.1f} | {c.max():.1f} |")
    network = f"network, {args.window:g} s windows"
    total_cpu = cpu["front end"].mean() + cpu[network].mean()
    total_wall = wall["front end"].mean() + wall[network].mean()
    ok = total_cpu < TARGET_SECONDS
    print()
    print("| measure | target | met |")
    print("|---|---|---|")
    print(f"| front end + network ({args.window:g} s windows) = {total_cpu:.3f} s CPU "
          f"({total_wall:.3f} s wall) per clip | < {TARGET_SECONDS:g} s | {'yes' if ok else 'NO'} |")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
