"""The training worker: one process per run, started by :class:`genre.runs.RunRegistry` as
``python -m genre.run_worker RUN_DIR EVENTS_FD [--threads N] [--niceness N] [--idle]``.

It lowers its own CPU priority (``os.nice``, and with ``--idle`` Linux's SCHED_IDLE class) before
any work, so a training fills the CPU time predictions leave instead of slowing them, and uses
``--threads`` CPU threads (the server also sets OMP/BLAS/TensorFlow thread counts in its
environment). It reads the run's ``RUN_DIR/request.json``, extracts features (cached), trains,
writes the trained model to ``RUN_DIR/model`` (atomically, :func:`genre.models.save_model`) and
reports on file descriptor ``EVENTS_FD``, one JSON object per line::

    {"event": "phase", "phase": "features", "total": 370, "missing": 120, "eta": 96.0}
    {"event": "progress", "done": 12, "total": 370, "computed": 4, "rate": 1.3, "eta": 89.2}
    {"event": "phase", "phase": "loading"}           (importing TensorFlow / Keras)
    {"event": "phase", "phase": "building"}          (stacking segments, building the network)
    {"event": "phase", "phase": "training" | "fitting"}
    {"event": "epoch", "epoch": 3, "logs": {"loss": ..., "accuracy": ..., "val_loss": ..., "val_accuracy": ...,
                                            "seconds": 1.2}}
    {"event": "done", "n_clips": 370, "failed_files": [[path, reason], ...], "stopped_early": false}
    {"event": "stopped", "message": "..."}          (stopped before training began: no model)
    {"event": "failed", "error": "...", "details": "traceback"}
    {"event": "comparison", "path": MODEL_DIR, "state": "pending", "done": 3, "total": 80}
    {"event": "comparison", "path": MODEL_DIR, "created": ..., "state": "done" | "failed", ...}

``missing`` counts the clips without cached features, ``computed`` those extracted so far,
``rate`` is clips/s and ``eta`` seconds left (:class:`genre.eta.ExtractionClock`). After ``done``,
if the request names a model to compare with, the worker scores it on this run's validation clips
(:func:`genre.compare.compare_on_validation`) and reports a ``comparison``; started with
``--compare MODEL_DIR`` it does only that, for a run trained earlier.

A ``stop`` line on stdin ends training after the current epoch (or feature extraction after
the current clip). When stdin closes, the server is gone, and the worker exits at once.
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import threading
import time
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
    from genre.dataset import discover_all, make_split, training_data_info
    from genre.eta import ExtractionClock, missing_clips
    from genre.store import FeatureStore

    request = read_request(run_dir)
    df = discover_all(request.roots)
    if df.empty:
        raise ValueError(f"no audio files in label folders under {' or '.join(request.roots)}")
    store = FeatureStore()
    clock = ExtractionClock(total=len(df), missing=missing_clips(df["path"], request.config, store=store),
                            kind=request.config.kind, threads=threads)
    report("phase", phase="features", total=clock.total, missing=clock.missing, eta=clock.update(0)["eta"])

    def progress(done: int, total: int, _path: str = "") -> None:
        report("progress", done=done, total=total, **clock.update(done))
        if stop.is_set():
            raise Stopped("Stopped during feature extraction; the features computed so far are cached.")

    built = store.build(df["path"], request.config, n_jobs=threads, progress=progress)
    usable = df[df["path"].isin(built.features)].reset_index(drop=True)
    usable.attrs = dict(df.attrs)
    if usable.empty:
        reason = built.failed[0][1] if built.failed else "unknown reason"
        raise ValueError(f"no clip could be featurised (first failure: {reason})")
    split = make_split(usable, request.split, valid_fraction=request.valid_fraction, seed=request.seed)
    if stop.is_set():
        raise Stopped("Stopped before training began.")
    report("phase", phase="loading")
    importlib.import_module("keras")  # the slow import, reported as its own phase

    from genre.models import save_model
    from genre.train import train_model

    if stop.is_set():
        raise Stopped("Stopped before training began.")
    report("phase", phase="building")
    last = [time.monotonic()]

    def phase(name: str) -> None:
        last[0] = time.monotonic()
        report("phase", phase=name)

    def epoch(number: int, logs: dict) -> None:
        now = time.monotonic()
        report("epoch", epoch=number, logs={**logs, "seconds": now - last[0]})
        last[0] = now

    result = train_model(usable, built.features, split, request.config, request.spec, listener=epoch, stop=stop,
                         seed=request.seed, phase=phase,
                         data_info=training_data_info(usable, split))
    save_model(result.keras_model, result.card, run_dir / "model")
    return {"n_clips": len(usable), "failed_files": [list(f) for f in built.failed],
            "stopped_early": bool(result.stopped_early)}


def read_request(run_dir: Path):
    from genre.runs import TrainRequest

    return TrainRequest.from_dict(json.loads((run_dir / "request.json").read_text(encoding="utf-8")))


def compare_run(run_dir: Path, model_dir: str, *, report: Reporter, threads: int) -> None:
    """Score the model in ``model_dir`` and this run's model on the run's validation clips and
    report the ``comparison`` (its failure too: it never ends the worker with an exception)."""
    from genre.compare import compare_on_examples, compare_on_validation
    from genre.examples import default_examples_dir
    from genre.models import ModelError, read_card

    path = str(Path(model_dir).resolve())
    request = read_request(run_dir)
    try:
        created = read_card(path).created
        result = compare_on_validation(
            run_dir / "model", path, roots=request.roots, threads=threads,
            progress=lambda done, total, _path="": report("comparison", path=path, state="pending", done=done,
                                                          total=total))
        examples = default_examples_dir().resolve()
        if any(Path(root).resolve() == examples for root in request.roots):
            result["examples"] = compare_on_examples(run_dir / "model", path, examples_root=examples,
                                                     threads=threads)
    except (ModelError, ValueError, OSError) as err:
        report("comparison", path=path, state="failed", error=reason(err))
    except Exception as err:  # noqa: BLE001 - shown on the page, never a crash of the worker
        report("comparison", path=path, state="failed", error=reason(err), details=traceback.format_exc())
    else:
        report("comparison", path=path, created=created, state="done", **result)


def reason(err: BaseException) -> str:
    """A person's message for an exception (its text for the expected kinds)."""
    text = str(err)
    return text if text and isinstance(err, (ValueError, OSError)) else f"{type(err).__name__}: {text or 'no details'}"


def lower_priority(niceness: int, *, idle: bool) -> None:
    """Lower this process's CPU priority, before it starts any thread (threads inherit it):
    ``os.nice(niceness)`` and, with ``idle`` where the OS has it (Linux), the SCHED_IDLE class.
    A niced thread only gets a smaller share of a contended CPU, and the kernel still counts its
    CPU as busy when it places a waking thread, so a prediction's threads queue behind it; a
    SCHED_IDLE thread runs only on time nothing else wants, and its CPU counts as free."""
    if niceness:
        os.nice(niceness)
    if idle and hasattr(os, "SCHED_IDLE"):
        try:
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        except OSError as err:  # e.g. a sandbox that forbids it: the niceness still applies
            print(f"SCHED_IDLE refused ({err}); running at niceness +{niceness} only", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m genre.run_worker", description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("events_fd", type=int)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--niceness", type=int, default=10)
    parser.add_argument("--idle", action="store_true", help="run in the SCHED_IDLE class (Linux)")
    parser.add_argument("--compare", metavar="MODEL_DIR", default="",
                        help="only score this model on the run's validation clips")
    args = parser.parse_args(argv)
    lower_priority(args.niceness, idle=args.idle)
    report = Reporter(args.events_fd)
    stop = threading.Event()
    threading.Thread(target=listen_for_stop, args=(stop,), name="stop-listener", daemon=True).start()
    threads = max(1, args.threads)
    if args.compare:
        compare_run(args.run_dir, args.compare, report=report, threads=threads)
        return 0
    try:
        done = train_run(args.run_dir, report=report, stop=stop, threads=threads)
    except Stopped as stopped:
        report("stopped", message=str(stopped))
    except Exception as err:  # noqa: BLE001 - every failure must reach the page
        report("failed", error=reason(err), details=traceback.format_exc())
    else:
        report("done", **done)
        compare_with = read_request(args.run_dir).compare_with
        if compare_with:
            compare_run(args.run_dir, compare_with, report=report, threads=threads)
    return 0


def exit_now(code: int) -> None:
    """End the process with ``code`` once its output is flushed, without the interpreter's
    shutdown: the stop listener is still blocked reading stdin, and finalising the interpreter under
    it aborts the process (SIGABRT, "could not acquire lock for <stdin>")."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    exit_now(main())
