"""The examples a person teaches: clips they labelled themselves ("this is jazz", "this is
phonk"), kept as a folder-per-label dataset that Dataset, Train and evaluation read like any other.

Layout: ``<examples>/<label>/<sha256 of the file>.<ext>`` holds the audio byte for byte, and
``<sha256>.json`` beside it the sidecar: the original file name (as text, never used as a path),
when it was added and relabelled, and what the model had said. The folder is
``$GENRE_EXAMPLES_DIR``, else ``data/examples`` of the clone (of :data:`genre.locations.HOME` when
installed), so the dashboard may open it by default.

The same audio twice is one example: adding it again under another label relabels it. Labels are
one folder name each: letters, digits, spaces and ``- _ & + ' .``, at most 40 characters, lower
case; anything else is refused with a message that says why. Files are written to a temporary name
and renamed, so a reader never sees half an example.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from genre import locations
from genre.audio import UPLOAD_EXTENSIONS, AudioError, decode
from genre.store import atomic_write

EXAMPLES_ENV = "GENRE_EXAMPLES_DIR"
MAX_LABEL_CHARS = 40
SIDECAR_SUFFIX = ".json"
_LABEL_CHARS = re.compile(r"^[\w &+'.-]+$")


class ExampleError(ValueError):
    """A label or an example that cannot be used; ``str(err)`` is a message for a person."""


def default_examples_dir() -> Path:
    """``$GENRE_EXAMPLES_DIR``, else ``data/examples`` under :data:`genre.locations.HOME`."""
    return Path(os.environ.get(EXAMPLES_ENV) or locations.HOME / "data" / "examples").expanduser()


def check_label(text: str) -> str:
    """``text`` as a label (stripped, inner spaces collapsed, lower case); raises ExampleError
    saying why if it is empty, too long, or holds a path character or anything but letters,
    digits, spaces and ``- _ & + ' .``, or starts with a dot."""
    label = " ".join(str(text).split()).lower()
    if not label:
        raise ExampleError("Give the genre a name.")
    if len(label) > MAX_LABEL_CHARS:
        raise ExampleError(f"'{label[:MAX_LABEL_CHARS]}…' is too long for a genre name (at most {MAX_LABEL_CHARS} "
                           "characters).")
    if "/" in label or "\\" in label or label.startswith(".") or not _LABEL_CHARS.match(label):
        raise ExampleError(f"'{label}' cannot be a genre name: use letters, digits, spaces and - _ & + ' . "
                           "(no slashes, no leading dot).")
    return label


@dataclass(frozen=True)
class Example:
    """One taught clip: ``path`` of its audio in the examples folder, ``digest`` (SHA-256 of the
    file), ``label``, ``original_name`` (display only), ``added`` (ISO 8601, UTC) and
    ``predicted``: what the model had said ({"genre", "probability", "model"}) or None."""

    path: Path
    digest: str
    label: str
    original_name: str
    added: str
    predicted: dict | None = None

    def sidecar(self) -> dict:
        return {"label": self.label, "original_name": self.original_name, "added": self.added,
                "predicted": self.predicted}


def _write_atomically(target: Path, data: bytes) -> None:
    atomic_write(target, lambda out: out.write(data), suffix=target.suffix)


def _read(audio: Path) -> Example:
    """The example whose audio is ``audio`` (its sidecar read if there; a missing or damaged
    sidecar leaves only what the path tells)."""
    try:
        meta = json.loads(audio.with_suffix(SIDECAR_SUFFIX).read_text(encoding="utf-8"))
        meta = meta if isinstance(meta, dict) else {}
    except (OSError, ValueError):
        meta = {}
    predicted = meta.get("predicted")
    return Example(path=audio, digest=audio.stem, label=audio.parent.name,
                   original_name=str(meta.get("original_name") or audio.name), added=str(meta.get("added") or ""),
                   predicted=predicted if isinstance(predicted, dict) else None)


def list_examples(examples_dir: str | Path | None = None) -> list[Example]:
    """Every example in the folder, by label then date added."""
    root = Path(examples_dir) if examples_dir is not None else default_examples_dir()
    if not root.is_dir():
        return []
    found = [_read(p) for folder in sorted(root.iterdir()) if folder.is_dir() and not folder.name.startswith(".")
             for p in folder.iterdir() if p.is_file() and not p.name.startswith(".") and p.suffix != SIDECAR_SUFFIX]
    return sorted(found, key=lambda e: (e.label, e.added, e.digest))


def find_example(digest: str, examples_dir: str | Path | None = None) -> Example | None:
    """The example whose audio has SHA-256 ``digest``, or None."""
    return next((e for e in list_examples(examples_dir) if e.digest == digest), None)


def _extension(name: str) -> str:
    ext = Path(name).suffix.lower().lstrip(".")
    if ext not in UPLOAD_EXTENSIONS:
        raise AudioError(f"{name} is not a supported audio file type ({', '.join(UPLOAD_EXTENSIONS)}).")
    return ext


def add_example(data: bytes, *, label: str, name: str, examples_dir: str | Path | None = None,
                predicted: dict | None = None) -> tuple[Example, str]:
    """Keep the audio file ``data`` (named ``name`` by its owner) as an example of ``label``.

    Returns the example and what happened: ``"added"``, ``"relabelled"`` (the same audio was an
    example of another label) or ``"unchanged"``. Raises ExampleError for a bad label and
    AudioError for a file that is not usable audio (it is decoded once to check)."""
    label = check_label(label)
    ext = _extension(name)
    decode(data, name=name, max_seconds=30.0)  # refuses what Train could not use: not audio, damaged, too short
    digest = hashlib.sha256(data).hexdigest()
    root = Path(examples_dir) if examples_dir is not None else default_examples_dir()
    existing = find_example(digest, root)
    if existing is not None:
        if existing.label == label:
            return existing, "unchanged"
        return relabel(digest, label, examples_dir=root), "relabelled"
    example = Example(path=root / label / f"{digest}.{ext}", digest=digest, label=label, original_name=str(name),
                      added=datetime.now(timezone.utc).isoformat(timespec="seconds"), predicted=predicted)
    _write_atomically(example.path, data)
    _write_atomically(example.path.with_suffix(SIDECAR_SUFFIX), json.dumps(example.sidecar(), indent=1).encode())
    return example, "added"


def relabel(digest: str, label: str, *, examples_dir: str | Path | None = None) -> Example:
    """Move the example ``digest`` to ``label`` (its sidecar with it); raises ExampleError if
    there is no such example or the label is bad."""
    label = check_label(label)
    root = Path(examples_dir) if examples_dir is not None else default_examples_dir()
    example = find_example(digest, root)
    if example is None:
        raise ExampleError("That example is no longer in the examples folder.")
    if example.label == label:
        return example
    moved = Example(path=root / label / example.path.name, digest=digest, label=label,
                    original_name=example.original_name, added=example.added, predicted=example.predicted)
    moved.path.parent.mkdir(parents=True, exist_ok=True)
    _write_atomically(moved.path.with_suffix(SIDECAR_SUFFIX), json.dumps(moved.sidecar(), indent=1).encode())
    os.replace(example.path, moved.path)
    example.path.with_suffix(SIDECAR_SUFFIX).unlink(missing_ok=True)
    _remove_if_empty(example.path.parent)
    return moved


def remove_example(digest: str, *, examples_dir: str | Path | None = None) -> bool:
    """Delete the example ``digest`` and its sidecar; False if there was none."""
    example = find_example(digest, examples_dir)
    if example is None:
        return False
    example.path.unlink(missing_ok=True)
    example.path.with_suffix(SIDECAR_SUFFIX).unlink(missing_ok=True)
    _remove_if_empty(example.path.parent)
    return True


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()  # only succeeds when nothing is left; a label folder without examples goes
    except OSError:
        pass
