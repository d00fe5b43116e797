"""Which folders the dashboard may read a dataset from.

In a shared deployment a visitor types a dataset folder (or opens a link with ``?data=...``);
that folder must lie under one of the allowed roots, so that nobody can browse the server's
disk. The roots are ``$GENRE_DATA_ROOTS`` (folders separated by ``os.pathsep``, ``:`` on
Linux), or by default the ``data/`` folder of the clone (or of :data:`genre.locations.HOME` when
installed) and ``$GENRE_DATA_DIR`` if set.

A folder is checked after resolving ``~``, symbolic links and ``..`` (``Path.resolve``), so
``data/../..`` or a link inside ``data/`` that points elsewhere is refused. The check does not
depend on whether the folder exists, so it tells a visitor nothing about folders outside the
roots. The command line is not restricted: whoever runs it can read the disk anyway.
"""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from genre.locations import HOME

ROOTS_ENV = "GENRE_DATA_ROOTS"


class AccessError(ValueError):
    """A dataset folder outside the allowed roots; ``str(err)`` names the folder and the roots,
    ``roots`` holds the allowed roots."""

    def __init__(self, message: str, *, roots: Sequence[Path] = ()) -> None:
        super().__init__(message)
        self.roots = tuple(roots)


def _resolved(folder: str | os.PathLike) -> Path:
    return Path(folder).expanduser().resolve()


def allowed_roots(*, environ: Mapping[str, str] | None = None) -> tuple[Path, ...]:
    """The folders under which a dataset may be read, resolved and without duplicates:
    ``$GENRE_DATA_ROOTS`` split on ``os.pathsep`` (empty entries ignored) if it names any,
    else ``data/`` under :data:`genre.locations.HOME` and ``$GENRE_DATA_DIR`` (if set)."""
    env = os.environ if environ is None else environ
    listed = [part for part in env.get(ROOTS_ENV, "").split(os.pathsep) if part.strip()]
    if not listed:
        listed = [str(HOME / "data"), *([env["GENRE_DATA_DIR"]] if env.get("GENRE_DATA_DIR") else [])]
    return tuple(dict.fromkeys(_resolved(part.strip()) for part in listed))


def check_dataset_folder(folder: str | os.PathLike, *, roots: Sequence[Path] | None = None) -> Path:
    """``folder`` resolved (``~``, links, ``..``) if it is one of ``roots`` (default:
    :func:`allowed_roots`) or lies below one; raises :class:`AccessError` otherwise. The
    folder need not exist."""
    roots = allowed_roots() if roots is None else tuple(_resolved(r) for r in roots)
    text = str(folder).strip()
    if not text:
        raise AccessError("No dataset folder given.", roots=roots)
    try:
        path = _resolved(text)
    except (OSError, RuntimeError, ValueError) as err:  # a link loop, a NUL byte, an unknown ~user
        raise AccessError(f"`{text}` is not a usable folder path ({err}).", roots=roots) from err
    if any(path.is_relative_to(root) for root in roots):
        return path
    names = ", ".join(f"`{root}`" for root in roots) or "(none)"
    raise AccessError(f"`{text}` is outside the folders this dashboard may read datasets from: {names}. "
                      f"Choose a folder inside one of them (the server's {ROOTS_ENV} setting lists them).",
                      roots=roots)
