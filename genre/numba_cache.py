"""librosa's on-disk numba cache, written by one process before any parallel work.

librosa compiles its ``@guvectorize(cache=True)`` kernels (peak picking, local maxima, pitch
interpolation, zero crossings ...) the first time a submodule is used, and writes two cache files
per kernel into its ``__pycache__``. When several processes do that at once (extraction workers,
the dashboard server and a CLI run on a fresh install), the pair can come from different
processes; from then on every process that loads it dies with a segmentation fault (numba issue
#10128). So: compile in one process first (`warm_librosa`, called before a worker pool starts),
and at set-up (``python -m genre.numba_cache``) rewrite the whole cache in one process whenever
librosa, numba or Python changed since it was last written, removing what a race may have left.
"""
from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import platform
from collections.abc import Sequence
from pathlib import Path

# The librosa submodules whose kernels feature extraction and the MusiCNN front end use.
EXTRACTION_MODULES = ("librosa.core", "librosa.util.utils", "librosa.feature", "librosa.onset",
                      "librosa.beat")


def _librosa_root() -> Path:
    import librosa

    return Path(librosa.__file__).parent


def librosa_cache_files() -> list[Path]:
    """The numba index (.nbi) and code (.nbc) files in librosa's package folders."""
    return sorted(p for pattern in ("*.nbi", "*.nbc") for p in _librosa_root().rglob(f"__pycache__/{pattern}"))


def _versions() -> dict[str, str]:
    """What numba's cache depends on: the versions, and librosa's sources (a reinstall of the same
    version changes their modification times, which invalidates every cache entry)."""
    from importlib.metadata import version

    newest_source = max(p.stat().st_mtime_ns for p in _librosa_root().rglob("*.py"))
    return {"python": platform.python_version(), "librosa": version("librosa"),
            "numba": version("numba"), "librosa_sources_mtime_ns": str(newest_source)}


def _stamp_path() -> Path:
    return _librosa_root() / "__pycache__" / "genre-numba-cache.json"


def ensure_librosa_cache(*, force: bool = False) -> bool:
    """Rewrite librosa's numba cache in this process (clear, compile every submodule, stamp the
    versions) unless the stamp says it was written for these versions. Returns True if rewritten."""
    stamp = _stamp_path()
    try:
        current = not force and json.loads(stamp.read_text()) == _versions()
    except (OSError, ValueError):
        current = False
    if current:
        return False
    clear_librosa_cache()
    warm_librosa(None)
    stamp.parent.mkdir(exist_ok=True)
    stamp.write_text(json.dumps(_versions()))
    return True


def clear_librosa_cache() -> None:
    """Delete librosa's numba cache files."""
    for path in librosa_cache_files():
        path.unlink(missing_ok=True)


def warm_librosa(modules: Sequence[str] | None = EXTRACTION_MODULES) -> None:
    """Import ``modules`` (None: every librosa submodule but the matplotlib-based display), which
    compiles their numba kernels, or loads them from the cache when it is already written."""
    import librosa

    if modules is None:
        modules = [info.name for info in pkgutil.walk_packages(librosa.__path__, "librosa.")
                   if not info.name.startswith("librosa.display")]
    for name in modules:
        importlib.import_module(name)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m genre.numba_cache",
        description="Write librosa's numba cache in this one process (run once after installing).")
    parser.add_argument("--force", action="store_true",
                        help="rewrite the cache even if it was written for these versions")
    args = parser.parse_args(argv)
    rewritten = ensure_librosa_cache(force=args.force)
    state = "written" if rewritten else "already written for these versions"
    print(f"librosa numba cache: {len(librosa_cache_files())} files, {state}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
