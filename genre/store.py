"""On-disk feature cache keyed by (file content hash, FeatureConfig), filled in parallel.

Layout: ``<cache>/<config digest>/<sha256 of the file>.npz`` (plain ``np.savez``, loaded with
``allow_pickle=False``) plus ``config.json``. A combined backbone kind (``MSD_musicnn+mn04``) is
kept as each backbone's own entries, so an extraction of one backbone after the combined one
(or the other way round) computes nothing twice. Each entry is written to a uniquely named temporary
file in the same folder, flushed to disk and renamed, so processes on one machine or on several
sharing the folder (a Dask cluster over NFS/SMB) never leave or read a half-written entry, and
a killed writer leaves only an ignored ``.tmp-*`` file. Filling it is spread over a
``genre.engine`` engine (joblib here, Dask on a cluster), always through :func:`extract_batch`.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from genre import locations
from genre.audio import AudioError, decode
from genre.engine import Engine, LocalEngine, batches_of
from genre.features import FeatureConfig
from genre.numba_cache import warm_librosa
from genre.clip import ClipFeatures
from genre.pipeline import clip_features, join_parts, part_configs, select_groups, storage_config

Progress = Callable[[int, int, str], None]
"""progress(done, total, path_just_finished)"""


def default_cache_dir() -> Path:
    """``$GENRE_CACHE_DIR`` or ``data/cache`` in the clone (under :data:`genre.locations.HOME`
    when installed)."""
    return Path(os.environ.get("GENRE_CACHE_DIR") or locations.HOME / "data" / "cache")


def file_digest(path: str | Path) -> str:
    """SHA-256 of a file's content (hex)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def atomic_write(target: Path, write: Callable[[object], None], *, suffix: str) -> None:
    """Write ``target`` through ``write(file)`` into a unique temporary file beside it, flushed
    to disk, then renamed over it: readers see the old file or the whole new one."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())  # the content is on disk before the name is: no empty entry after a crash
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclass
class BuildResult:
    """Outcome of :meth:`FeatureStore.build`: ``features`` per path (when kept), the paths whose
    features are in the store (``available``), (path, reason) ``failed``, and how many were
    computed now."""

    features: dict[str, ClipFeatures] = field(default_factory=dict)
    failed: list[tuple[str, str]] = field(default_factory=list)
    computed: int = 0
    available: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class FileOutcome:
    """What :func:`extract_batch` did with one file: ``digest`` (None if unreadable), whether it
    ``computed`` the features now (False: they were cached) and ``error`` (why it failed)."""

    path: str
    digest: str | None
    computed: bool
    error: str | None = None


def with_rms(feats: ClipFeatures, y) -> ClipFeatures:
    """``feats`` with the clip's RMS level in ``extras['rms']`` (a prediction from cached features
    can still refuse silence)."""
    rms = np.float32(np.sqrt(np.mean(np.square(y, dtype=np.float64)))) if len(y) else np.float32(0)
    return replace(feats, extras={**(feats.extras or {}), "rms": np.asarray(rms)})


class FeatureStore:
    """Cache of :class:`ClipFeatures` per (file content, FeatureConfig)."""

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root else default_cache_dir()

    def folder(self, config: FeatureConfig) -> Path:
        return self.root / storage_config(config).digest()

    def entry_path(self, digest: str, config: FeatureConfig) -> Path:
        return self.folder(config) / f"{digest}.npz"

    def load(self, digest: str, config: FeatureConfig) -> ClipFeatures | None:
        """Cached features for a content digest, or None (missing or unreadable entry). A combined
        kind is read from its backbones' own entries (shared with single-backbone extractions),
        or from one entry of its own written by versions before that."""
        whole = self._read(self.entry_path(digest, config))
        if whole is None and part_configs(config):
            parts = [self._read(self.entry_path(digest, part)) for part in part_configs(config)]
            whole = None if any(p is None for p in parts) else join_parts(parts)
        return None if whole is None else select_groups(whole, config)

    def has(self, digest: str, config: FeatureConfig) -> bool:
        """Whether the features of a content digest are cached (without reading them)."""
        return self.entry_path(digest, config).is_file() or bool(part_configs(config)) and all(
            self.entry_path(digest, part).is_file() for part in part_configs(config))

    def _read(self, path: Path) -> ClipFeatures | None:
        try:
            with np.load(path, allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
            extras = {k[6:]: v for k, v in arrays.items() if k.startswith("extra_")}
            return ClipFeatures(arrays["rows"], arrays["starts"], [str(n) for n in arrays["names"]],
                                float(arrays["seconds"]), arrays.get("log_mel"), extras or None)
        except (OSError, ValueError, EOFError, KeyError, TypeError, AttributeError, zipfile.BadZipFile):
            return None  # missing, damaged or foreign entry (a killed copy, a full disk): recomputed

    def save(self, digest: str, config: FeatureConfig, feats: ClipFeatures) -> None:
        """Cache ``feats``, computed with ``storage_config(config)``."""
        arrays = {"rows": feats.rows, "starts": feats.starts, "names": np.array(feats.names),
                  "seconds": np.float64(feats.seconds)}
        if feats.log_mel is not None:
            arrays["log_mel"] = feats.log_mel
        arrays.update({f"extra_{k}": v for k, v in (feats.extras or {}).items()})
        atomic_write(self.entry_path(digest, config), lambda fh: np.savez(fh, **arrays), suffix=".npz")
        config_file = self.folder(config) / "config.json"
        if not config_file.exists():
            text = json.dumps(storage_config(config).to_dict(), indent=1).encode()
            atomic_write(config_file, lambda fh: fh.write(text), suffix=".json")

    def get_or_compute(self, path: str | Path, config: FeatureConfig) -> tuple[ClipFeatures, bool]:
        """Features of the file at ``path`` and whether they were computed now (not cached).

        Raises :class:`AudioError` if the file cannot be decoded."""
        digest = file_digest(path)
        cached = self.load(digest, config)
        if cached is not None:
            return cached, False
        return self.compute(path, digest, config), True

    def compute(self, path: str | Path, digest: str, config: FeatureConfig) -> ClipFeatures:
        """Decode and featurise the file at ``path`` (content ``digest``), cache and return it;
        for a combined kind only the backbones not cached yet run, each cached on its own.
        Raises :class:`AudioError` if it cannot be decoded."""
        decoded = decode(path, sr=config.sr)
        parts = part_configs(config)
        if not parts:
            feats = with_rms(clip_features(decoded.y, storage_config(config)), decoded.y)
            self.save(digest, config, feats)
            return select_groups(feats, config)
        computed = []
        for part in parts:
            feats = self._read(self.entry_path(digest, part))
            if feats is None:  # heard at the combined kind's rate, resampled to the backbone's own
                feats = with_rms(clip_features(decoded.y, replace(part, sr=config.sr)), decoded.y)
                self.save(digest, part, feats)
            computed.append(feats)
        return select_groups(join_parts(computed), config)

    def build(self, paths: Sequence[str | Path], config: FeatureConfig, *, n_jobs: int = -1,
              progress: Progress | None = None, engine: Engine | None = None, keep: bool = True,
              batch_size: int | None = None) -> BuildResult:
        """Features for every path, computing missing ones in parallel on ``engine`` (default: joblib
        with ``n_jobs`` processes, -1 = all cores). Files that fail are skipped and listed in
        ``failed`` with the reason; ``keep=False`` only fills the store (nothing held in memory).

        With joblib, cached entries are found in this process and workers only compute missing
        ones; on a cluster the workers also hash the files and look them up, so this process
        reads no audio (it reads entries back only when ``keep``)."""
        result, paths, done = BuildResult(), [str(p) for p in paths], 0

        def report(path: str, feats: ClipFeatures | None, error: str | None, computed: bool) -> None:
            nonlocal done
            if error:
                result.failed.append((path, error))
            else:
                result.available.append(path)
                result.computed += computed
                if keep and feats is not None:
                    result.features[path] = feats
            done += 1
            if progress:  # every file is reported, so the last report has done == total
                progress(done, len(paths), path)

        if engine is None or isinstance(engine, LocalEngine):
            engine = engine or LocalEngine(n_jobs=n_jobs)
            todo = []
            for path in paths:
                try:
                    digest = file_digest(path)
                except OSError as err:
                    report(path, None, f"cannot read: {err.strerror or err}", False)
                    continue
                cached = self.load(digest, config)
                if cached is None:
                    todo.append((path, digest))  # hashed already: the worker need not read it twice
                else:
                    report(path, cached, None, False)
            if len(todo) > 1 and engine.workers > 1:
                warm_librosa()  # numba kernels compiled here once, not raced by every worker
            batches = [[p] for p in todo] if batch_size is None else batches_of(todo, workers=1, size=batch_size)
            jobs = engine.run(extract_batch, batches, root=self.root, config=config)
        else:
            warm_librosa()  # for a LocalCluster: the same librosa install as its workers
            jobs = engine.run(extract_batch, batches_of(paths, workers=engine.workers, size=batch_size),
                              root=self.root, config=config)
        for batch, outcomes, error in jobs:
            if outcomes is None:  # the whole batch failed (its worker died on every try)
                outcomes = [FileOutcome(_path_of(item), None, False, error) for item in batch]
            for outcome in outcomes:
                feats = None
                if not outcome.error and keep:
                    feats = self.load(outcome.digest, config)
                    if feats is None:
                        outcome = replace(outcome, error="the cache entry could not be read back")
                report(outcome.path, feats, outcome.error, outcome.computed)
        return result


def _path_of(item: str | tuple[str, str]) -> str:
    return item if isinstance(item, str) else item[0]


def extract_batch(items: Sequence[str | tuple[str, str]], *, root: str | Path,
                  config: FeatureConfig) -> list[FileOutcome]:
    """Task (a worker, or this process): make sure the store at ``root`` holds the features of
    each file, given as a path or as (path, content digest) when the caller hashed it already:
    hash it, look it up, compute and write it if missing. Never raises for a file: its failure is
    returned with the reason, so one bad file cannot stop or endlessly retry a whole extraction."""
    store = FeatureStore(root)
    outcomes = []
    for item in items:
        path, digest = (item, None) if isinstance(item, str) else item
        try:
            digest = digest or file_digest(path)
            if store.load(digest, config) is not None:  # written meanwhile, or a cluster run's lookup
                outcomes.append(FileOutcome(path, digest, False))
                continue
            store.compute(path, digest, config)
            outcomes.append(FileOutcome(path, digest, True))
        except AudioError as err:
            outcomes.append(FileOutcome(path, digest, False, str(err)))
        except OSError as err:
            outcomes.append(FileOutcome(path, digest, False, f"cannot read: {err.strerror or err}"))
        except Exception as err:  # noqa: BLE001 - reported per file, the rest of the run completes
            outcomes.append(FileOutcome(path, digest, False, f"{type(err).__name__}: {err}"))
    return outcomes
