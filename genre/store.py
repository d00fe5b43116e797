"""On-disk feature cache keyed by (file content hash, FeatureConfig), filled in parallel.

Layout: ``<cache>/<config digest>/<sha256 of the file>.npz`` (plain ``np.savez``, loaded with
``allow_pickle=False``) plus ``config.json``. Each entry is written to a temporary file and renamed,
so two processes extracting the same dataset never leave a half-written entry.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from joblib import Parallel, delayed, effective_n_jobs

from genre.audio import AudioError
from genre.features import FeatureConfig
from genre.numba_cache import warm_librosa
from genre.clip import ClipFeatures
from genre.pipeline import features_of, select_groups, storage_config

PROJECT_ROOT = Path(__file__).resolve().parent.parent
Progress = Callable[[int, int, str], None]
"""progress(done, total, path_just_finished)"""


def default_cache_dir() -> Path:
    """``$GENRE_CACHE_DIR`` or ``data/cache`` in the project."""
    return Path(os.environ.get("GENRE_CACHE_DIR") or PROJECT_ROOT / "data" / "cache")


def file_digest(path: str | Path) -> str:
    """SHA-256 of a file's content (hex)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _atomic_write(target: Path, write: Callable[[object], None], *, suffix: str) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclass
class BuildResult:
    """Outcome of :meth:`FeatureStore.build`: features per path, and (path, reason) failures."""

    features: dict[str, ClipFeatures] = field(default_factory=dict)
    failed: list[tuple[str, str]] = field(default_factory=list)
    computed: int = 0


class FeatureStore:
    """Cache of :class:`ClipFeatures` per (file content, FeatureConfig)."""

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root else default_cache_dir()

    def folder(self, config: FeatureConfig) -> Path:
        return self.root / storage_config(config).digest()

    def entry_path(self, digest: str, config: FeatureConfig) -> Path:
        return self.folder(config) / f"{digest}.npz"

    def load(self, digest: str, config: FeatureConfig) -> ClipFeatures | None:
        """Cached features for a content digest, or None (missing or unreadable entry)."""
        path = self.entry_path(digest, config)
        try:
            with np.load(path, allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
            extras = {k[6:]: v for k, v in arrays.items() if k.startswith("extra_")}
            feats = ClipFeatures(arrays["rows"], arrays["starts"], [str(n) for n in arrays["names"]],
                                 float(arrays["seconds"]), arrays.get("log_mel"), extras or None)
            return select_groups(feats, config)
        except (OSError, ValueError, EOFError, KeyError, TypeError, AttributeError, zipfile.BadZipFile):
            return None  # damaged or foreign entry (a killed copy, a full disk): recomputed

    def save(self, digest: str, config: FeatureConfig, feats: ClipFeatures) -> None:
        """Cache ``feats``, computed with ``storage_config(config)``."""
        arrays = {"rows": feats.rows, "starts": feats.starts, "names": np.array(feats.names),
                  "seconds": np.float64(feats.seconds)}
        if feats.log_mel is not None:
            arrays["log_mel"] = feats.log_mel
        arrays.update({f"extra_{k}": v for k, v in (feats.extras or {}).items()})
        _atomic_write(self.entry_path(digest, config), lambda fh: np.savez(fh, **arrays), suffix=".npz")
        config_file = self.folder(config) / "config.json"
        if not config_file.exists():
            text = json.dumps(storage_config(config).to_dict(), indent=1).encode()
            _atomic_write(config_file, lambda fh: fh.write(text), suffix=".json")

    def get_or_compute(self, path: str | Path, config: FeatureConfig) -> tuple[ClipFeatures, bool]:
        """Features of the file at ``path`` and whether they were computed now (not cached).

        Raises :class:`AudioError` if the file cannot be decoded."""
        digest = file_digest(path)
        cached = self.load(digest, config)
        if cached is not None:
            return cached, False
        feats, _ = features_of(path, storage_config(config))
        self.save(digest, config, feats)
        return select_groups(feats, config), True

    def build(self, paths: Sequence[str | Path], config: FeatureConfig, *, n_jobs: int = -1,
              progress: Progress | None = None) -> BuildResult:
        """Features for every path, computing missing ones in parallel (``n_jobs`` as joblib:
        -1 = all cores). Files that fail are skipped and listed in ``failed`` with the reason.

        Cached entries are read in this process; workers only compute and write missing ones."""
        result, missing = BuildResult(), []
        paths = [str(p) for p in paths]
        done = 0
        for path in paths:
            try:
                digest = file_digest(path)
            except OSError as err:
                result.failed.append((path, f"cannot read: {err.strerror or err}"))
                done += 1
                if progress:  # every file is reported, so the last report has done == total
                    progress(done, len(paths), path)
                continue
            cached = self.load(digest, config)
            if cached is None:
                missing.append((path, digest))
                continue
            result.features[path] = cached
            done += 1
            if progress:
                progress(done, len(paths), path)
        workers = effective_n_jobs(n_jobs) if len(missing) > 1 else 1
        if workers > 1:
            warm_librosa()  # numba kernels compiled here once, not raced by every worker
        chunk = 4 * workers  # whole chunks: a caller that stops mid-way never abandons a running pool
        for start in range(0, len(missing), chunk):
            part = missing[start:start + chunk]
            errors = Parallel(n_jobs=workers, batch_size=1)(
                delayed(_compute)(self.root, path, digest, config) for path, digest in part)
            for (path, digest), error in zip(part, errors):
                feats = None if error else self.load(digest, config)
                if feats is None:
                    result.failed.append((path, error or "the cache entry could not be read back"))
                else:
                    result.features[path] = feats
                    result.computed += 1
                done += 1
                if progress:
                    progress(done, len(paths), path)
        return result


def _compute(root: Path, path: str, digest: str, config: FeatureConfig) -> str | None:
    """Worker: compute and cache one file; returns an error message instead of raising, so one
    bad file cannot stop a whole extraction."""
    try:
        feats, _ = features_of(path, storage_config(config))
        FeatureStore(root).save(digest, config, feats)
        return None
    except AudioError as err:
        return str(err)
    except OSError as err:
        return f"cannot read: {err.strerror or err}"
    except Exception as err:  # noqa: BLE001 - reported per file, the rest of the run completes
        return f"{type(err).__name__}: {err}"
