"""Training runs as server-side objects: a process-wide registry of runs, each trained in its
own worker process (:mod:`genre.run_worker`) at a lower priority, at most K at once.

A run's record (settings, state, phase and progress, per-epoch history, result, error) belongs
to the server, not to one browser session: any session can list the runs, reopen one by its id,
stop it, save its model or discard it. Runs beyond ``max_active`` wait in a FIFO queue.

Each run has a folder ``<models>/.runs/<id>/`` (hidden, so never listed as a model):
``request.json`` (what to train), ``record.json`` (the record, rewritten atomically at every
change of state), ``worker.log`` (the worker's stderr) and, once trained, ``model/`` (a complete
model directory written by the worker with :func:`genre.models.save_model`). Saving a run copies
that folder to ``<models>/<name>`` through the same guard as every save; nothing is pickled.

The worker is a fresh interpreter (``python -m genre.run_worker``), not a fork (TensorFlow is
not fork-safe) and not ``multiprocessing``'s spawn: under Streamlit ``sys.modules['__main__']``
is the page script, which spawn would run again in the child. It reports JSON lines on a pipe
that a thread of this process reads; it is stopped by a ``stop`` line on its stdin and exits when
its stdin closes (the server is gone). A worker that dies without a last word is a failed run
with the exit status and the end of its log.

Finished runs are kept until saved or discarded, but at most ``max_runs`` runs are kept: a new
run drops the oldest finished ones, first those with nothing to lose (failed, stopped, saved),
then unsaved results; a dropped run leaves a tombstone (:meth:`RunRegistry.gone`) so a page that
had it open says what happened. Queued and running runs are never dropped. Finished records of a
previous server process are loaded again at start.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from genre import locations, models
from genre.features import FeatureConfig
from genre.models import ModelCard, ModelError, ModelSpec

QUEUED, RUNNING, STOPPING, DONE, FAILED, STOPPED = "queued", "running", "stopping", "done", "failed", "stopped"
ACTIVE_STATES = (QUEUED, RUNNING, STOPPING)
MAX_RUNS = 20
"""Runs kept per server (finished ones beyond it are dropped, oldest first)."""
RUNS_FOLDER = ".runs"
RUN_ID = re.compile(r"[0-9a-f]{10}")
"""What a run id looks like (anything else, e.g. from a URL, is never looked up)."""
_TOMBSTONES = 200


def env_int(name: str, default: int, *, minimum: int) -> int:
    """Integer setting from the environment; a missing or unusable value gives ``default``
    (with a warning if it was set but unusable)."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        value = minimum - 1
    if value < minimum:
        warnings.warn(f"{name}={text!r} is not a whole number >= {minimum}; using {default}", stacklevel=2)
        return default
    return value


def max_trainings() -> int:
    """``$GENRE_MAX_TRAININGS``: trainings that run at once (default 1), the rest are queued."""
    return env_int("GENRE_MAX_TRAININGS", 1, minimum=1)


def worker_threads() -> int:
    """``$GENRE_TRAIN_THREADS``: CPU threads of one training worker (default: half the cores, at least 1)."""
    return env_int("GENRE_TRAIN_THREADS", max(1, (os.cpu_count() or 2) // 2), minimum=1)


def worker_niceness() -> int:
    """``$GENRE_TRAIN_NICE``: how much lower a worker's CPU priority is (``os.nice`` increment, default 10)."""
    return env_int("GENRE_TRAIN_NICE", 10, minimum=0)


def worker_idle() -> bool:
    """``$GENRE_TRAIN_IDLE``: 1 (default) runs workers in Linux's SCHED_IDLE class, on CPU time no
    prediction wants (see :func:`genre.run_worker.lower_priority`); 0 leaves them at the niceness
    only, which keeps a training going on a server that predictions keep busy all the time."""
    return env_int("GENRE_TRAIN_IDLE", 1, minimum=0) > 0


@dataclass(frozen=True)
class TrainRequest:
    """What to train: dataset folder (absolute) and ``extra_roots``, more folders whose clips it
    also learns from (e.g. the person's examples), features, model and split (``split``:
    'stratified', 'artist' or 'lists'; ``valid_fraction`` for the first two). ``compare_with``:
    the folder of a model (the one active when the run was asked for) that the worker evaluates
    on this run's validation clips once it is trained; not part of what makes two runs the same."""

    root: str
    config: FeatureConfig = field(default_factory=FeatureConfig)
    spec: ModelSpec = field(default_factory=ModelSpec)
    split: str = "artist"
    valid_fraction: float = 0.2
    seed: int = 0
    compare_with: str = field(default="", compare=False)
    extra_roots: tuple[str, ...] = ()

    @property
    def roots(self) -> tuple[str, ...]:
        """Every dataset folder of the run, the main one first."""
        return (self.root, *self.extra_roots)

    def to_dict(self) -> dict:
        return {"root": self.root, "extra_roots": list(self.extra_roots), "config": self.config.to_dict(),
                "spec": self.spec.to_dict(), "split": self.split, "valid_fraction": self.valid_fraction,
                "seed": self.seed, "compare_with": self.compare_with}

    @classmethod
    def from_dict(cls, data: dict) -> "TrainRequest":
        """Rebuild a request written by :meth:`to_dict`; ValueError/TypeError if it does not fit."""
        return cls(root=str(data["root"]), config=FeatureConfig.from_dict(data["config"]),
                   spec=ModelSpec(**data["spec"]), split=str(data["split"]),
                   valid_fraction=float(data["valid_fraction"]), seed=int(data["seed"]),
                   compare_with=str(data.get("compare_with", "")),
                   extra_roots=tuple(str(r) for r in data.get("extra_roots", ())))


def retrain_request(card: ModelCard, *, root: str | Path, examples_root: str | Path,
                    compare_with: str = "") -> TrainRequest:
    """"Retrain with my examples": the recipe of the model whose card is ``card`` (its features
    and model settings, with the few-clip logit lift on: a label of a few examples needs it) on the
    dataset ``root`` plus the examples folder (on the examples alone when ``root`` is that folder),
    with an artist split in which each example is its own group."""
    root, examples_root = str(Path(root).resolve()), str(Path(examples_root).resolve())
    return TrainRequest(root=root, extra_roots=() if root == examples_root else (examples_root,), config=card.config,
                        spec=ModelSpec(**{**card.spec, "logit_adjust": True}), split="artist",
                        compare_with=compare_with)


@dataclass(frozen=True)
class RunSnapshot:
    """A consistent copy of one run's record.

    ``phase`` is '' (the worker is starting), 'features' (extracting), 'loading' (importing
    TensorFlow), 'building' (stacking segments, building the network), 'training' (epochs) or
    'fitting' (a logistic regression); ``phases`` the (phase, Unix start time) of each so far;
    ``progress`` (done, total) clips of the feature phase and ``extraction`` its ``missing``
    (clips not cached when it began), ``computed``, ``rate`` (clips/s) and ``eta`` (s left);
    ``history`` one dict per finished epoch (``epoch``, ``loss``, ``accuracy``, ``val_loss``,
    ``val_accuracy``, ``seconds`` it took); ``queue_position`` 1 for the next run to start (0
    unless queued). ``comparisons``: evaluations of other models on this run's validation clips
    (see :meth:`RunRegistry.compare`), each a dict with ``path``, ``created`` (that model's card
    date), ``state`` ('pending', 'done' or 'failed') and the result of
    :func:`genre.compare.compare_on_validation` or an ``error``. Once done: ``card`` (the trained
    model's card, validation report in ``card.metrics['validation']``), ``n_clips``,
    ``failed_files`` ((path, reason) of clips that could not be featurised), ``stopped_early``.
    ``error`` and ``details`` (a traceback or the worker's last log lines) say why a run failed;
    ``message`` why it stopped without a model. ``saved_as`` lists the model names it was saved
    as. Times are Unix seconds."""

    id: str
    request: TrainRequest
    state: str = QUEUED
    phase: str = ""
    phases: tuple[tuple[str, float], ...] = ()
    progress: tuple[int, int] = (0, 0)
    extraction: dict = field(default_factory=dict)
    history: tuple[dict, ...] = ()
    queue_position: int = 0
    card: ModelCard | None = None
    n_clips: int = 0
    failed_files: tuple[tuple[str, str], ...] = ()
    stopped_early: bool = False
    error: str = ""
    details: str = ""
    message: str = ""
    saved_as: tuple[str, ...] = ()
    comparisons: tuple[dict, ...] = ()
    created: float = 0.0
    started: float | None = None
    finished: float | None = None

    @property
    def active(self) -> bool:
        """Queued, running or stopping."""
        return self.state in ACTIVE_STATES

    @property
    def total_epochs(self) -> int:
        return self.request.spec.epochs

    @property
    def unsaved(self) -> bool:
        """A trained model nobody saved yet (dropping it loses work)."""
        return self.state == DONE and not self.saved_as

    @property
    def phase_started(self) -> float | None:
        """Unix time the current phase began (None before the first)."""
        return self.phases[-1][1] if self.phases else None

    def phase_seconds(self) -> dict[str, float]:
        """Seconds each finished phase took (the current one is not finished)."""
        ends = [t for _, t in self.phases[1:]] + ([self.finished] if self.finished else [])
        return {name: end - start for (name, start), end in zip(self.phases, ends)}

    def comparison(self, path: str | Path, created: str) -> dict | None:
        """The evaluation of the model in ``path`` (with card date ``created``) on this run's
        validation clips, or None if it was never asked for."""
        key = str(Path(path).resolve())
        return next((c for c in self.comparisons if c.get("path") == key and c.get("created") == created), None)

    def best_val_accuracy(self) -> float | None:
        """Best segment-level validation accuracy over the epochs so far (None before the first)."""
        scores = [h["val_accuracy"] for h in self.history if "val_accuracy" in h]
        return max(scores) if scores else None

    def to_record(self) -> dict:
        """The JSON record (the card lives in the run's ``model/`` folder)."""
        return {"id": self.id, "request": self.request.to_dict(), "state": self.state, "phase": self.phase,
                "phases": [list(p) for p in self.phases], "progress": list(self.progress),
                "extraction": self.extraction, "history": list(self.history), "n_clips": self.n_clips,
                "failed_files": [list(f) for f in self.failed_files], "stopped_early": self.stopped_early,
                "error": self.error, "details": self.details, "message": self.message,
                "saved_as": list(self.saved_as), "comparisons": list(self.comparisons), "created": self.created,
                "started": self.started,
                "finished": self.finished, "owner_pid": os.getpid()}


class RunError(ValueError):
    """A run operation that cannot be done (unknown run, wrong state, no room); the message
    says why, for a person."""


class RunRegistry:
    """The runs of one models folder, shared by every session of this process.

    ``worker`` is the command that starts a worker (the run folder and the events pipe's fd
    are appended); by default ``python -m genre.run_worker`` with this checkout on the path."""

    def __init__(self, models_dir: str | Path, *, max_active: int | None = None, max_runs: int = MAX_RUNS,
                 threads: int | None = None, niceness: int | None = None, idle: bool | None = None,
                 worker: Sequence[str] | None = None):
        self.models_dir = Path(models_dir)
        self.root = self.models_dir / RUNS_FOLDER
        self.max_active = max_active or max_trainings()
        self.max_runs = max(1, max_runs)
        self.threads = threads or worker_threads()
        self.niceness = worker_niceness() if niceness is None else niceness
        self.idle = worker_idle() if idle is None else idle
        self.worker = list(worker or [sys.executable, "-m", "genre.run_worker"])
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._runs: dict[str, RunSnapshot] = {}  # creation order
        self._procs: dict[str, subprocess.Popen] = {}
        self._gone: dict[str, str] = {}
        self._load_previous()

    # --- reading -----------------------------------------------------------------------------
    def get(self, run_id: str | None) -> RunSnapshot | None:
        """The run's snapshot with its queue position, or None (unknown or malformed id)."""
        with self._lock:
            snap = self._runs.get(run_id) if isinstance(run_id, str) else None
            return self._positioned(snap) if snap else None

    def list(self) -> list[RunSnapshot]:
        """Every kept run, newest first."""
        with self._lock:
            return [self._positioned(s) for s in reversed(self._runs.values())]

    def gone(self, run_id: str) -> str | None:
        """Why a run that was here is not any more (discarded, dropped), or None."""
        with self._lock:
            return self._gone.get(run_id)

    def would_drop(self) -> list[RunSnapshot]:
        """The runs that the next :meth:`submit` would drop to stay within ``max_runs``."""
        with self._lock:
            return [self._runs[i] for i in self._victims()]

    def typical_seconds(self, phase: str) -> float | None:
        """How long ``phase`` took in the most recent run that finished it (None if none did):
        what the page quotes as 'took 40 s last time'."""
        with self._lock:
            for snap in sorted(self._runs.values(), key=lambda s: s.created, reverse=True):
                seconds = snap.phase_seconds().get(phase)
                if seconds is not None:
                    return seconds
        return None

    def model_dir(self, run_id: str) -> Path:
        """Folder of a done run's trained model (RunError for an unknown id)."""
        if self.get(run_id) is None:
            raise RunError(f"there is no run {run_id!r} on this server")
        return self.root / run_id / "model"

    def wait(self, run_id: str, timeout: float | None = None) -> bool:
        """Block until the run is no longer active (True) or ``timeout`` seconds pass (False)."""
        end = None if timeout is None else time.monotonic() + timeout
        with self._changed:
            while True:
                snap = self._runs.get(run_id)
                if snap is None or not snap.active:
                    return True
                left = None if end is None else end - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._changed.wait(left if left is not None else 1.0)

    def worker_pid(self, run_id: str) -> int | None:
        """Process id of the run's worker while it runs."""
        with self._lock:
            proc = self._procs.get(run_id)
            return proc.pid if proc else None

    # --- acting ------------------------------------------------------------------------------
    def submit(self, request: TrainRequest) -> tuple[str, list[str]]:
        """Queue a run (it starts at once if fewer than ``max_active`` run). Returns its id and
        the ids of runs dropped to make room. RunError if the same request is already queued or
        running (its id is in the message) or if every kept run is queued or running."""
        with self._lock:
            for snap in self._runs.values():
                if snap.active and snap.request == request:
                    raise RunError(f"the same training is already {snap.state} as run {snap.id}")
            victims = self._victims()
            if len(self._runs) - len(victims) >= self.max_runs:
                raise RunError(f"{len(self._runs)} runs are queued or running, the most this server keeps; "
                               "wait for one to end")
            for victim in victims:
                what = "unsaved result" if self._runs[victim].unsaved else self._runs[victim].state
                self._forget(victim, f"dropped ({what}) when a newer run started: the server keeps the "
                                     f"{self.max_runs} most recent runs")
            run_id = secrets.token_hex(5)
            snap = RunSnapshot(id=run_id, request=request, created=time.time())
            if request.compare_with:
                snap = replace(snap, comparisons=(_pending(request.compare_with),))
            folder = self.root / run_id
            try:
                folder.mkdir(parents=True)
                _write_json(folder / "request.json", request.to_dict())
            except OSError as err:
                shutil.rmtree(folder, ignore_errors=True)
                raise RunError(f"cannot prepare a run folder in {self.root}: {err.strerror or err}") from err
            self._runs[run_id] = snap
            self._persist(snap)
            self._schedule()
            return run_id, victims

    def stop(self, run_id: str) -> None:
        """A queued run ends at once; a running one after its current epoch (or clip, while
        extracting features). Nothing happens to a finished run."""
        with self._lock:
            snap = self._runs.get(run_id)
            if snap is None:
                return
            if snap.state == QUEUED:
                self._update(run_id, state=STOPPED, message="Stopped before it started.", finished=time.time())
                self._schedule()
            elif snap.state == RUNNING:
                self._update(run_id, state=STOPPING)
                proc = self._procs.get(run_id)
                if proc is not None and proc.stdin is not None:
                    try:
                        proc.stdin.write(b"stop\n")
                        proc.stdin.flush()
                    except (BrokenPipeError, OSError, ValueError):
                        pass  # the worker already ended; its follower records how

    def save(self, run_id: str, name: str, *, overwrite: bool = False) -> Path:
        """Save a done run's model as ``<models>/<name>`` (see :func:`genre.models.save_target`:
        never over ``default``, ``backbones`` or a folder that is not a model). ModelError or
        RunError with the reason."""
        snap = self.get(run_id)
        if snap is None:
            raise RunError(f"there is no run {run_id!r} on this server")
        if snap.state != DONE:
            raise RunError(f"run {run_id} is {snap.state}; only a finished training has a model to save")
        target = models.save_target(name, overwrite=overwrite, root=self.models_dir)
        models.copy_model(self.root / run_id / "model", target, overwrite=overwrite)
        with self._lock:
            if run_id in self._runs:
                names = tuple(n for n in self._runs[run_id].saved_as if n != target.name)
                self._update(run_id, saved_as=(*names, target.name))
        return target

    def discard(self, run_id: str) -> None:
        """Forget a finished run and delete its folder (its model too, if unsaved). RunError
        while it is queued or running: stop it first."""
        with self._lock:
            snap = self._runs.get(run_id)
            if snap is None:
                return
            if snap.active:
                raise RunError(f"run {run_id} is {snap.state}; stop it before discarding it")
            self._forget(run_id, "discarded")

    def compare(self, run_id: str, model_dir: str | Path) -> bool:
        """Evaluate the model in ``model_dir`` on a done run's validation clips, in a worker
        process of its own (``python -m genre.run_worker RUN_DIR FD --compare MODEL_DIR``); the
        result lands in the run's ``comparisons``. Returns True if that evaluation is now pending
        or done; False if it must wait (another evaluation of this run is going) or cannot be
        asked for (the run is not done, the folder is not a model)."""
        try:
            created = models.read_card(model_dir).created
        except ModelError:
            return False
        with self._lock:
            snap = self._runs.get(run_id)
            if snap is None or snap.state != DONE:
                return False
            if snap.comparison(model_dir, created) is not None:
                return True
            if any(c.get("state") == "pending" for c in snap.comparisons):
                return False
            entry = _pending(model_dir)
            key = entry["path"]
            kept = tuple(c for c in snap.comparisons if c.get("path") != key)
            self._update(run_id, comparisons=(*kept, entry))
            read_fd, write_fd = os.pipe()
            try:
                with open(self.root / run_id / "compare.log", "wb") as log:
                    proc = subprocess.Popen(
                        [*self.worker, str(self.root / run_id), str(write_fd), *self._priority(), "--compare", key],
                        stdin=subprocess.PIPE, stdout=log, stderr=log, pass_fds=(write_fd,), env=self._worker_env(),
                        process_group=0)
            except OSError as err:
                os.close(read_fd)
                self._end_comparisons(run_id, key, f"the evaluation process could not start: {err.strerror or err}")
                return True
            finally:
                os.close(write_fd)
        threading.Thread(target=self._follow_comparison, args=(run_id, key, proc, read_fd),
                         name=f"genre-compare-{run_id}", daemon=True).start()
        return True

    # --- internals (called with the lock held) ----------------------------------------------
    def _positioned(self, snap: RunSnapshot) -> RunSnapshot:
        if snap.state != QUEUED:
            return snap
        queued = [s.id for s in self._runs.values() if s.state == QUEUED]
        return replace(snap, queue_position=queued.index(snap.id) + 1)

    def _victims(self) -> list[str]:
        """Oldest finished runs to drop so one more fits: nothing-to-lose ones first."""
        excess = len(self._runs) + 1 - self.max_runs
        if excess <= 0:
            return []
        finished = [s for s in self._runs.values() if not s.active]
        order = [s.id for s in finished if not s.unsaved] + [s.id for s in finished if s.unsaved]
        return order[:excess]

    def _forget(self, run_id: str, why: str) -> None:
        self._runs.pop(run_id, None)
        self._gone[run_id] = why
        while len(self._gone) > _TOMBSTONES:
            self._gone.pop(next(iter(self._gone)))
        shutil.rmtree(self.root / run_id, ignore_errors=True)
        self._changed.notify_all()

    def _update(self, run_id: str, **changes) -> RunSnapshot:
        snap = replace(self._runs[run_id], **changes)
        self._runs[run_id] = snap
        if not {"history", "progress", "extraction"} & set(changes):  # state changes, not every epoch
            self._persist(snap)
        self._changed.notify_all()
        return snap

    def _persist(self, snap: RunSnapshot) -> None:
        try:
            _write_json(self.root / snap.id / "record.json", snap.to_record())
        except OSError:
            pass  # the record in memory is what the pages show; the file only helps after a restart

    def _schedule(self) -> None:
        """Start queued runs, oldest first, while fewer than ``max_active`` run."""
        busy = sum(s.state in (RUNNING, STOPPING) for s in self._runs.values())
        for snap in list(self._runs.values()):
            if busy >= self.max_active:
                break
            if snap.state == QUEUED and self._start(snap.id):
                busy += 1

    def _priority(self) -> list[str]:
        """The worker's thread count and CPU priority, as its command-line options."""
        return ["--threads", str(self.threads), "--niceness", str(self.niceness), *(["--idle"] if self.idle else [])]

    def _start(self, run_id: str) -> bool:
        """Start the run's worker; False (and the run failed) if it cannot start."""
        folder = self.root / run_id
        read_fd, write_fd = os.pipe()
        try:
            with open(folder / "worker.log", "wb") as log:
                proc = subprocess.Popen(
                    [*self.worker, str(folder), str(write_fd), *self._priority()],
                    stdin=subprocess.PIPE, stdout=log, stderr=log, pass_fds=(write_fd,), env=self._worker_env(),
                    # Its own process group (a Ctrl-C meant for the server does not reach it) but the
                    # server's session: with Linux autogroup scheduling a new session would be a
                    # scheduling group of its own, where its lower priority counts for nothing.
                    process_group=0)
        except OSError as err:
            os.close(read_fd)
            self._update(run_id, state=FAILED, error=f"the training process could not start: {err.strerror or err}",
                         finished=time.time())
            return False
        finally:
            os.close(write_fd)
        self._procs[run_id] = proc
        self._update(run_id, state=RUNNING, started=time.time())
        threading.Thread(target=self._follow, args=(run_id, proc, read_fd), name=f"genre-run-{run_id}",
                         daemon=True).start()
        return True

    def _worker_env(self) -> dict[str, str]:
        threads = str(self.threads)
        path = os.pathsep.join(p for p in (str(locations.PACKAGE_DIR.parent), os.environ.get("PYTHONPATH", "")) if p)
        return {**os.environ, "PYTHONPATH": path, "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"),
                "OMP_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads, "MKL_NUM_THREADS": threads,
                "TF_NUM_INTRAOP_THREADS": threads, "TF_NUM_INTEROP_THREADS": "1"}

    # --- the follower thread (one per running worker) -----------------------------------------
    def _drain(self, run_id: str, proc: subprocess.Popen, read_fd: int) -> int:
        """Apply the JSON events a worker process writes on ``read_fd`` to run ``run_id`` until
        the pipe closes (lines that are not a JSON object are skipped: only the worker writes
        there); then wait for the process and return its exit code."""
        with os.fdopen(read_fd, "r", encoding="utf-8", errors="replace") as events:
            for line in events:
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                if isinstance(event, dict):
                    self._apply(run_id, event)
        code = proc.wait()
        if proc.stdin is not None:
            try:
                proc.stdin.close()
            except OSError:
                pass
        return code

    def _follow(self, run_id: str, proc: subprocess.Popen, read_fd: int) -> None:
        """Apply the worker's events until its pipe closes, then record how it ended."""
        code = self._drain(run_id, proc, read_fd)
        with self._lock:
            self._procs.pop(run_id, None)
            if run_id in self._runs and self._runs[run_id].active:
                why = _exit_reason(code)
                tail = _log_tail(self.root / run_id / "worker.log")
                self._update(run_id, state=FAILED, finished=time.time(), details=tail,
                             error=f"the training process ended unexpectedly ({why})"
                                   + (f"; its last words: {tail.splitlines()[-1]}" if tail else ""))
            compare_with = self._runs[run_id].request.compare_with if run_id in self._runs else ""
            if compare_with:
                self._end_comparisons(run_id, str(Path(compare_with).resolve()),
                                      f"the training process ended before evaluating it ({_exit_reason(code)})")
            self._schedule()

    def _follow_comparison(self, run_id: str, path: str, proc: subprocess.Popen, read_fd: int) -> None:
        """Apply an evaluation process's events until its pipe closes."""
        code = self._drain(run_id, proc, read_fd)
        with self._lock:
            self._end_comparisons(run_id, path, f"the evaluation process ended unexpectedly ({_exit_reason(code)})")

    def _end_comparisons(self, run_id: str, path: str, why: str) -> None:
        """Mark the run's comparison with the model in ``path`` failed with ``why`` if it is still
        pending (the process that owed it is gone)."""
        snap = self._runs.get(run_id)
        owed = [c for c in snap.comparisons if c.get("path") == path and c.get("state") == "pending"] if snap else []
        if owed:
            self._update(run_id, comparisons=tuple({**c, "state": "failed", "error": why} if c in owed else c
                                                   for c in snap.comparisons))

    def _apply(self, run_id: str, event: dict) -> bool:
        """One event of the worker; returns True if it ended the run."""
        kind = event.get("event")
        with self._lock:
            snap = self._runs.get(run_id)
            if snap is not None and kind == "comparison":  # also after the run is done
                self._apply_comparison(snap, event)
                return False
            if snap is None or not snap.active:
                return False
            if kind == "phase":
                phase = str(event.get("phase", ""))
                changes = {"phase": phase, "phases": (*snap.phases, (phase, time.time()))}
                if phase == "features":
                    changes["extraction"] = {"missing": int(event.get("missing", 0)), "computed": 0,
                                             "rate": 0.0, "eta": float(event.get("eta", 0.0))}
                    changes["progress"] = (0, int(event.get("total", 0)))
                self._update(run_id, **changes)
            elif kind == "progress":
                extraction = {**snap.extraction, **{k: float(event[k]) for k in ("computed", "rate", "eta")
                                                    if isinstance(event.get(k), (int, float))}}
                self._update(run_id, progress=(int(event.get("done", 0)), int(event.get("total", 0))),
                             extraction=extraction)
            elif kind == "epoch":
                entry = {"epoch": int(event.get("epoch", 0)),
                         **{k: float(v) for k, v in (event.get("logs") or {}).items()}}
                self._update(run_id, history=(*snap.history, entry))
            elif kind == "done":
                try:
                    card = models.read_card(self.root / run_id / "model")
                except ModelError as err:
                    self._update(run_id, state=FAILED, error=f"the trained model could not be read back: {err}",
                                 finished=time.time())
                    return True
                self._update(run_id, state=DONE, card=card, n_clips=int(event.get("n_clips", 0)),
                             failed_files=tuple((str(p), str(r)) for p, r in event.get("failed_files", [])),
                             stopped_early=bool(event.get("stopped_early")), finished=time.time())
                return True
            elif kind == "stopped":
                self._update(run_id, state=STOPPED, message=str(event.get("message", "")), finished=time.time())
                return True
            elif kind == "failed":
                self._update(run_id, state=FAILED, error=str(event.get("error", "unknown error")),
                             details=str(event.get("details", "")), finished=time.time())
                return True
        return False

    def _apply_comparison(self, snap: RunSnapshot, event: dict) -> None:
        """A comparison event: progress ('pending' with ``done``/``total``) or its end."""
        key = str(Path(str(event.get("path", ""))).resolve())
        entry = {k: v for k, v in event.items() if k != "event"}
        entry["path"] = key
        if entry.get("state") not in ("pending", "done", "failed"):
            entry["state"] = "failed"
        current = [c for c in snap.comparisons if c.get("path") == key]
        if entry["state"] == "pending":  # progress: keeps the pending entry's date
            entry = {**(current[0] if current else {}), **entry}
        kept = tuple(c for c in snap.comparisons if c.get("path") != key)
        self._update(snap.id, comparisons=(*kept, entry))

    # --- start-up ------------------------------------------------------------------------------
    def _load_previous(self) -> None:
        """Load the records a previous server process left (not those of a live one)."""
        if self.root.is_dir():
            with self._lock:
                self._load_records()

    def _load_records(self) -> None:
        found = []
        for folder in self.root.iterdir():
            if not RUN_ID.fullmatch(folder.name):
                continue
            try:
                data = json.loads((folder / "record.json").read_text())
                owner = int(data.get("owner_pid", 0))
                if owner and _alive(owner):
                    continue  # this process's or another live server's run
                snap = _from_record(data)
            except (OSError, ValueError, TypeError, KeyError, ModelError):
                continue
            if snap.id != folder.name:
                continue
            if snap.state == DONE:
                try:
                    snap = replace(snap, card=models.read_card(folder / "model"))
                except ModelError as err:
                    snap = replace(snap, state=FAILED, error=f"its trained model cannot be read: {err}")
            if snap.active:
                snap = replace(snap, state=FAILED, finished=snap.finished or time.time(),
                               error="the server stopped while this run was going")
            found.append(snap)
        for snap in sorted(found, key=lambda s: s.created):
            self._runs[snap.id] = snap
            self._persist(snap)  # now ours
        while len(self._runs) > self.max_runs:
            victims = self._victims() or [next(iter(self._runs))]
            self._forget(victims[0], "dropped at start-up: the server keeps the "
                                     f"{self.max_runs} most recent runs")


def _from_record(data: dict) -> RunSnapshot:
    return RunSnapshot(
        id=str(data["id"]), request=TrainRequest.from_dict(data["request"]), state=str(data["state"]),
        phase=str(data.get("phase", "")), phases=tuple((str(p), float(t)) for p, t in data.get("phases", [])),
        progress=tuple(int(v) for v in data.get("progress", (0, 0))), extraction=dict(data.get("extraction", {})),
        history=tuple(dict(h) for h in data.get("history", [])), n_clips=int(data.get("n_clips", 0)),
        failed_files=tuple((str(p), str(r)) for p, r in data.get("failed_files", [])),
        stopped_early=bool(data.get("stopped_early")), error=str(data.get("error", "")),
        details=str(data.get("details", "")), message=str(data.get("message", "")),
        saved_as=tuple(str(n) for n in data.get("saved_as", [])),
        comparisons=tuple(dict(c) for c in data.get("comparisons", [])
                          if isinstance(c, dict) and c.get("state") != "pending"),
        created=float(data.get("created", 0.0)),
        started=data.get("started"), finished=data.get("finished"))


def _pending(model_dir: str | Path) -> dict:
    """A comparison entry waiting for its evaluation."""
    path = Path(model_dir).resolve()
    try:
        created = models.read_card(path).created
    except ModelError:
        created = ""
    return {"path": str(path), "model": path.name, "created": created, "state": "pending"}


def _write_json(path: Path, data: dict) -> None:
    """Write JSON to a temporary sibling and rename it over ``path`` (readers see old or new)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _exit_reason(code: int) -> str:
    if code < 0:
        try:
            return f"killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def _log_tail(path: Path, *, lines: int = 15) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(line for line in text.splitlines()[-lines:] if line.strip())


_registries: dict[Path, RunRegistry] = {}
_registries_lock = threading.Lock()


def shared_registry(models_dir: str | Path | None = None) -> RunRegistry:
    """This process's registry for ``models_dir`` (default :data:`genre.models.MODELS_DIR`, read
    at call time), created on first use: every browser session of a server sees the same runs."""
    folder = Path(models.MODELS_DIR if models_dir is None else models_dir).resolve()
    with _registries_lock:
        if folder not in _registries:
            _registries[folder] = RunRegistry(folder)
        return _registries[folder]
