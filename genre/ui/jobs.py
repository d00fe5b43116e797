"""Background training for the dashboard: one worker thread per :class:`Job`, owned by one
browser session (kept in ``st.session_state``), so two sessions never see each other's run.

The worker never calls Streamlit. It reports through the job (``report_progress``,
``report_epoch``) under a lock; the page reads :meth:`Job.snapshot`, an immutable copy, on
every rerun. Every exception of the worker ends in the ``failed`` state with its message.
"""
from __future__ import annotations

import functools
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import streamlit as st

from genre import backbones, models
from genre.backbones import embeddings
from genre.features import FeatureConfig
from genre.models import ModelSpec

IDLE, RUNNING, STOPPING, DONE, FAILED = "idle", "running", "stopping", "done", "failed"
HANDCRAFTED, FUSED = backbones.HANDCRAFTED, embeddings.DEFAULT_KIND


class JobStopped(Exception):
    """Raised inside the worker to end a job the user stopped before training began."""


@dataclass(frozen=True)
class JobSnapshot:
    """A consistent copy of a job's state. ``phase`` is '', 'features' or 'training';
    ``progress`` is (done, total) of the feature phase; ``history`` one dict per finished epoch
    (``epoch``, ``loss``, ``accuracy``, ``val_loss``, ``val_accuracy``); ``error`` the reason
    of a failure and ``details`` its traceback; ``message`` a note (e.g. stopped before training)."""

    state: str = IDLE
    phase: str = ""
    progress: tuple[int, int] = (0, 0)
    history: tuple[dict, ...] = ()
    total_epochs: int = 0
    request: object = None
    result: object = None
    error: str = ""
    details: str = ""
    message: str = ""
    started: float | None = None
    finished: float | None = None

    @property
    def active(self) -> bool:
        return self.state in (RUNNING, STOPPING)


class Job:
    """A background job with a stop event and a thread-safe record of its progress."""

    def __init__(self):
        self._lock = threading.Lock()
        self._snap = JobSnapshot()
        self._thread: threading.Thread | None = None
        self.stop_event = threading.Event()

    def snapshot(self) -> JobSnapshot:
        with self._lock:
            return self._snap

    def _update(self, **changes) -> None:
        with self._lock:
            self._snap = replace(self._snap, **changes)

    def start(self, work: Callable[["Job"], object], *, request: object = None, total_epochs: int = 0) -> None:
        """Run ``work(job)`` in a new daemon thread; its return value becomes the result.
        Raises RuntimeError if this job is already running."""
        with self._lock:
            if self._snap.active:
                raise RuntimeError("a run is already going; stop it or wait for it to end")
            self.stop_event = threading.Event()
            self._snap = JobSnapshot(state=RUNNING, request=request, total_epochs=total_epochs,
                                     started=time.time())
            self._thread = threading.Thread(target=self._run, args=(work,), name="genre-job", daemon=True)
            self._thread.start()

    def _run(self, work: Callable[["Job"], object]) -> None:
        try:
            result = work(self)
        except JobStopped as stopped:
            self._update(state=IDLE, message=str(stopped), finished=time.time())
        except BaseException as err:  # noqa: BLE001 - every failure must reach the page
            self._update(state=FAILED, error=_reason(err), details=traceback.format_exc(), finished=time.time())
        else:
            self._update(state=DONE, result=result, finished=time.time())

    def stop(self) -> None:
        """Ask the worker to stop: training ends after the current epoch."""
        with self._lock:
            if self._snap.state == RUNNING:
                self.stop_event.set()
                self._snap = replace(self._snap, state=STOPPING)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the worker ends (True) or ``timeout`` seconds pass (False)."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return not self.snapshot().active

    # --- called by the worker ---
    def set_phase(self, phase: str) -> None:
        self._update(phase=phase)

    def report_progress(self, done: int, total: int, _text: str = "") -> None:
        """Progress of the feature phase; raises :class:`JobStopped` once a stop was asked."""
        self._update(progress=(done, total))
        self.check_stop("Stopped during feature extraction; the features computed so far are cached.")

    def report_epoch(self, epoch: int, logs: dict) -> None:
        """An :data:`genre.train.EpochListener`: append one epoch to the history."""
        entry = {"epoch": int(epoch), **{k: float(v) for k, v in logs.items()}}
        with self._lock:
            self._snap = replace(self._snap, history=(*self._snap.history, entry))

    def check_stop(self, message: str = "Stopped before training began.") -> None:
        if self.stop_event.is_set():
            raise JobStopped(message)


def _reason(err: BaseException) -> str:
    text = str(err)
    return text if text and isinstance(err, (ValueError, OSError)) else f"{type(err).__name__}: {text or 'no details'}"


def session_job(key: str = "train_job") -> Job:
    """This browser session's job (created on first use)."""
    if key not in st.session_state:
        st.session_state[key] = Job()
    return st.session_state[key]


# --- training runs -------------------------------------------------------------------------

@dataclass(frozen=True)
class TrainRequest:
    """What to train: dataset folder, features, model and split (``split``: 'stratified',
    'artist' or 'lists'; ``valid_fraction`` for the first two)."""

    root: str
    config: FeatureConfig = field(default_factory=FeatureConfig)
    spec: ModelSpec = field(default_factory=ModelSpec)
    split: str = "artist"
    valid_fraction: float = 0.2
    seed: int = 0


@dataclass
class TrainOutcome:
    """A finished run: the trained model (``result.keras_model``, ``result.card``,
    ``result.report``), the clips used and the (path, reason) of files that failed extraction."""

    result: object
    n_clips: int
    failed: list[tuple[str, str]]


def run_training(job: Job, request: TrainRequest, *, n_jobs: int = -1) -> TrainOutcome:
    """Discover, extract features (cached) and train, reporting to ``job``. Worker side."""
    from genre.dataset import discover, make_split
    from genre.store import FeatureStore
    from genre.train import train_model

    job.set_phase("features")
    df = discover(request.root)
    if df.empty:
        raise ValueError(f"no audio files in label folders under {request.root}")
    built = FeatureStore().build(df["path"], request.config, n_jobs=n_jobs, progress=job.report_progress)
    usable = df[df["path"].isin(built.features)].reset_index(drop=True)
    usable.attrs = dict(df.attrs)
    if usable.empty:
        reason = built.failed[0][1] if built.failed else "unknown reason"
        raise ValueError(f"no clip could be featurised (first failure: {reason})")
    split = make_split(usable, request.split, valid_fraction=request.valid_fraction, seed=request.seed)
    job.check_stop()
    job.set_phase("training")
    result = train_model(usable, built.features, split, request.config, request.spec,
                         listener=job.report_epoch, stop=job.stop_event, seed=request.seed,
                         data_info={"root": str(Path(request.root).resolve()), "n_clips": len(usable)})
    return TrainOutcome(result, len(usable), built.failed)


def start_training(job: Job, request: TrainRequest, *, n_jobs: int = -1) -> None:
    """Start :func:`run_training` in ``job``'s thread (RuntimeError if it is running)."""
    job.start(functools.partial(run_training, request=request, n_jobs=n_jobs), request=request,
              total_epochs=request.spec.epochs)


def save_trained(outcome: TrainOutcome, name: str, *, overwrite: bool = False) -> Path:
    """Save a finished run as ``genre.models.MODELS_DIR / sanitize_name(name)`` (atomic);
    ModelError if the name is unusable or taken and ``overwrite`` is False."""
    target = models.MODELS_DIR / models.sanitize_name(name)
    return models.save_model(outcome.result.keras_model, outcome.result.card, target, overwrite=overwrite)


def feature_kinds() -> list[str]:
    """Feature sets offered for training: hand-crafted, every registered backbone alone, and
    the fused kind of the shipped model."""
    return [HANDCRAFTED, *backbones.BACKBONES, FUSED]


def feature_config(kind: str, *, segment_seconds: float = 3.0) -> FeatureConfig:
    """The FeatureConfig of a feature set from :func:`feature_kinds`."""
    if kind == HANDCRAFTED:
        return FeatureConfig(segment_seconds=segment_seconds)
    return embeddings.backbone_config(kind)


def parse_units(text: str) -> tuple[int, ...]:
    """'256, 128' -> (256, 128); ValueError unless one or more positive whole numbers."""
    parts = [p for p in text.replace(";", ",").replace(" ", ",").split(",") if p]
    try:
        units = tuple(int(p) for p in parts)
    except ValueError:
        raise ValueError(f"layer sizes must be whole numbers separated by commas, not {text!r}") from None
    if not units or min(units) < 1:
        raise ValueError("give at least one layer size, each 1 or more (e.g. 256,128)")
    return units


def split_difference(new: dict, old: dict) -> str | None:
    """Why the validation clips of two model cards' ``split`` differ, or None if identical."""
    new_ids, old_ids = set(new.get("valid_clip_ids", [])), set(old.get("valid_clip_ids", []))
    if new_ids and new_ids == old_ids:
        return None
    kinds = new.get("kind"), old.get("kind")
    shared = len(new_ids & old_ids)
    why = f"{kinds[0]} split vs {kinds[1]} split" if kinds[0] != kinds[1] else f"both {kinds[0]} splits"
    return (f"The validation clips differ ({why}; {shared} of {len(new_ids)} clips in common), "
            "so the numbers are not directly comparable.")
