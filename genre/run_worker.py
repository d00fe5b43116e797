"""The training worker: one process per run, started by :class:`genre.runs.RunRegistry` as
``python -m genre.run_worker RUN_DIR EVENTS_FD [--threads N] [--niceness N]``.

It lowers its own CPU priority (``os.nice``) before any work, so a training shares the machine
with predictions instead of starving them, and uses ``--threads`` CPU threads (the server also
sets OMP/BLAS/TensorFlow thread counts in its environment). It reads the run's
``RUN_DIR/request.json``, extracts features (cached), trains, writes the trained model to
``RUN_DIR/model`` (atomically, :func:`genre.models.save_model`) and reports on file descriptor
``EVENTS_FD``, one JSON object per line::

    {"event": "phase", "phase": "features" | "training"}
    {"event": "progress", "done": 12, "total": 370}
    {"event": "epoch", "epoch": 3, "logs": {"loss": ..., "accuracy": ..., "val_loss": ..., "val_accuracy": ...}}
    {"event": "done", "n_clips": 370, "failed_files": [[path, reason], ...], "stopped_early": false}
    {"event": "stopped", "message": "..."}          (stopped before training began: no model)
    {"event": "failed", "error": "...", "details": "traceback"}

A ``stop`` line on stdin ends training after the current epoch (or feature extraction after
the current clip). When stdin closes, the server is gone, and the worker exits at once.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import traceback
from pathlib import Path

ORPHANED_EXIT = 3
"""Exit code of a worker whose server went away."""


class Stopped(Exception):
    """The run was stopped before training began; ``str()`` says when."""


class Reporter:
    """Writes events to the server's pipe, one JSON line each (thread-safe)."""

    def __init__(self, fd: int):
        self._out = os.fdopen(fd, "w", encoding="utf-8", buffering=1)
        self._lock = threading.Lock()

    def __call__(self, event: str, **fields) -> None:
        line = json.dumps({"event": event, **fields}, default=str)
        with self._lock:
            self._out.write(line + "\n")
            self._out.flush()


def listen_for_stop(stop: threading.Event, stream=None) -> None:
    """Set ``stop`` on a ``stop`` line; exit the process when ``stream`` (stdin) ends."""
    for line in stream or sys.stdin.buffer:
        if line.strip() == b"stop":
            stop.set()
    os._exit(ORPHANED_EXIT)


def train_run(run_dir: Path, *, report: Reporter, stop: threading.Event, threads: int) -> dict:
    """Discover, extract features (cached), train and save the model to ``run_dir/model``;
    returns the fields of the ``done`` event. Raises :class:`Stopped` if stopped before training."""
    from genre.dataset import discover, make_split
    from genre.models import save_model
    from genre.runs import TrainRequest
    from genre.store import FeatureStore
    from genre.train import train_model

    request = TrainRequest.from_dict(json.loads((run_dir / "request.json").read_text(encoding="utf-8")))
    report("phase", phase="features")
    df = discover(request.root)
    if df.empty:
        raise ValueError(f"no audio files in label folders under {request.root}")

    def progress(done: int, total: int, _path: str = "") -> None:
        report("progress", done=done, total=total)
        if stop.is_set():
            raise Stopped("Stopped during feature extraction; the features computed so far are cached.")

    built = FeatureStore().build(df["path"], request.config, n_jobs=threads, progress=progress)
    usable = df[df["path"].isin(built.features)].reset_index(drop=True)
    usable.attrs = dict(df.attrs)
    if usable.empty:
        reason = built.failed[0][1] if built.failed else "unknown reason"
        raise ValueError(f"no clip could be featurised (first failure: {reason})")
    split = make_split(usable, request.split, valid_fraction=request.valid_fraction, seed=request.seed)
    if stop.is_set():
        raise Stopped("Stopped before training began.")
    report("phase", phase="training")
    result = train_model(usable, built.features, split, request.config, request.spec,
                         listener=lambda epoch, logs: report("epoch", epoch=epoch, logs=logs), stop=stop,
                         seed=request.seed,
                         data_info={"root": str(Path(request.root).resolve()), "n_clips": len(usable)})
    save_model(result.keras_model, result.card, run_dir / "model")
    return {"n_clips": len(usable), "failed_files": [list(f) for f in built.failed],
            "stopped_early": bool(result.stopped_early)}


def reason(err: BaseException) -> str:
    """A person's message for an exception (its text for the expected kinds)."""
    text = str(err)
    return text if text and isinstance(err, (ValueError, OSError)) else f"{type(err).__name__}: {text or 'no details'}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m genre.run_worker", description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("events_fd", type=int)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--niceness", type=int, default=10)
    args = parser.parse_args(argv)
    if args.niceness:
        os.nice(args.niceness)
    report = Reporter(args.events_fd)
    stop = threading.Event()
    threading.Thread(target=listen_for_stop, args=(stop,), name="stop-listener", daemon=True).start()
    try:
        done = train_run(args.run_dir, report=report, stop=stop, threads=max(1, args.threads))
    except Stopped as stopped:
        report("stopped", message=str(stopped))
    except Exception as err:  # noqa: BLE001 - every failure must reach the page
        report("failed", error=reason(err), details=traceback.format_exc())
    else:
        report("done", **done)
    return 0


if __name__ == "__main__":
    sys.exit(main())
