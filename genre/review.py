"""Review a library before tags are written: a collection predicted by ``genre predict DIR --csv
OUT --albums`` becomes a review queue, most doubtful first, where each track is accepted or
corrected and the genre tags of the accepted ones are written only after their diff was shown.

The dashboard starts the same command line in a process of its own (:class:`LibraryRuns`), so a
run goes on while the person leaves the page, and a stopped one resumes where it was (the CSV is
resumable). A predictions file may also have been made on the command line and opened here.
Paths in such a file are never trusted: rows outside the allowed folders are left out.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from genre import locations
from genre.albums import ALBUM_COLUMNS
from genre.dataset import audio_files_under
from genre.store import atomic_write

REVIEWS_DIR = "reviews"
"""Folder under ``data/`` of :data:`genre.locations.HOME` where the dashboard's runs write."""


def output_for(folder: str | Path, model_dir: str | Path) -> Path:
    """Where the dashboard's prediction of ``folder`` with the model ``model_dir`` goes:
    ``data/reviews/<folder name>-<model name>-<hash>.csv`` (the hash tells same-named folders apart)."""
    folder, model_dir = Path(folder).resolve(), Path(model_dir).resolve()
    key = hashlib.sha256(f"{folder}\0{model_dir}".encode()).hexdigest()[:10]
    return locations.HOME / "data" / REVIEWS_DIR / f"{folder.name}-{model_dir.name}-{key}.csv"


@dataclass(frozen=True)
class RunStatus:
    """A library run: ``total`` audio files, ``done`` rows written so far, whether it is
    ``running``, its ``rate`` (files/s, None until measurable), ``eta`` (s) and the end of its
    log when it ended with an error (``problem``)."""

    total: int
    done: int
    running: bool
    rate: float | None = None
    eta: float | None = None
    problem: str = ""


class LibraryRuns:
    """The server's library runs, one ``genre predict FOLDER --csv OUT --albums`` process per
    output file; every session sees the same ones."""

    def __init__(self) -> None:
        self._procs: dict[Path, tuple[subprocess.Popen, float, int, int]] = {}
        self._lock = threading.Lock()

    def start(self, folder: Path, model_dir: Path, output: Path) -> None:
        """Start (or resume) predicting ``folder`` into ``output``; nothing if it already runs."""
        with self._lock:
            running = self._procs.get(output)
            if running and running[0].poll() is None:
                return
            output.parent.mkdir(parents=True, exist_ok=True)
            total = len(audio_files_under(folder))
            log = open(output.with_suffix(".log"), "w", encoding="utf-8")  # noqa: SIM115 - the child owns it
            env = {**os.environ, "PYTHONPATH": str(locations.PACKAGE_DIR.parent), "TF_CPP_MIN_LOG_LEVEL": "2"}
            proc = subprocess.Popen([sys.executable, "-m", "genre", "predict", str(folder), "--csv", str(output),
                                     "--albums", "--model", str(model_dir), "--jobs", "1"],
                                    stdout=subprocess.DEVNULL, stderr=log, stdin=subprocess.DEVNULL, env=env,
                                    start_new_session=True)
            log.close()
            self._procs[output] = (proc, time.monotonic(), rows_in(output), total)

    def status(self, folder: Path, output: Path) -> RunStatus:
        """How far the run of ``output`` is (also for one that ran before this server started)."""
        with self._lock:
            entry = self._procs.get(output)
        done = rows_in(output)
        if entry is None:
            return RunStatus(total=len(audio_files_under(folder)), done=done, running=False)
        proc, started, done_at_start, total = entry
        running = proc.poll() is None
        rate = eta = None
        elapsed = time.monotonic() - started
        if done > done_at_start and elapsed > 0:
            rate = (done - done_at_start) / elapsed
            eta = max(0, total - done) / rate
        problem = ""
        if not running and proc.returncode:
            lines = output.with_suffix(".log").read_text(errors="replace").strip().splitlines()
            problem = lines[-1] if lines else f"exit status {proc.returncode}"
        return RunStatus(total=total, done=done, running=running, rate=rate, eta=eta, problem=problem)

    def stop(self, output: Path) -> None:
        with self._lock:
            entry = self._procs.get(output)
        if entry is not None and entry[0].poll() is None:
            entry[0].terminate()


def rows_in(output: Path) -> int:
    """Rows (tracks) written to a predictions CSV so far."""
    try:
        with open(output, "rb") as fh:
            return max(0, sum(1 for line in fh if line.strip()) - 1)
    except OSError:
        return 0


def load_predictions(output: str | Path, *, roots: Sequence[Path]) -> tuple[pd.DataFrame, int]:
    """A predictions file (CSV or Parquet) as a review queue, most doubtful first (not music,
    then the lowest probability), and how many rows were left out because their file lies
    outside ``roots``. Columns as written, ``probability`` as a float, ``name`` relative to the
    common folder for display."""
    output = Path(output)
    table = pd.read_parquet(output) if output.suffix.lower() == ".parquet" else pd.read_csv(
        output, dtype=str, keep_default_na=False)
    if "path" not in table or "genre" not in table or "probability" not in table:
        raise ValueError(f"{output.name} is not a predictions file of `genre predict` (no path, genre, probability)")
    resolved = [Path(p).resolve() for p in table["path"]]
    inside = [any(p.is_relative_to(root) for root in roots) for p in resolved]
    table = table[inside].copy()
    table["path"] = [str(p) for p, keep in zip(resolved, inside) if keep]
    table["probability"] = table["probability"].astype(float)
    not_music = table["is_music"].astype(str).str.lower().eq("false") if "is_music" in table else False
    table["not_music"] = not_music
    for column in ALBUM_COLUMNS:
        if column not in table:
            table[column] = ""
    table["album_agrees"] = table["album_agrees"].astype(str).str.lower()
    table = table.sort_values(["not_music", "probability"], ascending=[False, True], kind="stable")
    common = os.path.commonpath(table["path"].tolist()) if len(table) else ""
    table["name"] = [os.path.relpath(p, common) if len(table) > 1 else Path(p).name for p in table["path"]]
    return table.reset_index(drop=True), len(inside) - int(sum(inside))


def decisions_file(output: Path) -> Path:
    return output.with_name(output.name + ".decisions.json")


def read_decisions(output: Path) -> dict[str, dict]:
    """{path: {"accept": bool, "correct": label or None}} saved for a predictions file."""
    try:
        data = json.loads(decisions_file(output).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): v for k, v in data.items() if isinstance(v, dict)} if isinstance(data, dict) else {}


def save_decisions(output: Path, decisions: dict[str, dict]) -> None:
    """Keep the person's accept/correct choices beside the predictions (atomically)."""
    text = json.dumps(decisions, indent=1).encode()
    atomic_write(decisions_file(output), lambda fh: fh.write(text), suffix=".json")


def tag_genre(row: pd.Series, decision: dict, *, use_album: bool) -> str:
    """The genre to write for a reviewed track: the person's correction, else the album's genre
    (``use_album`` and the track has an album), else the prediction."""
    if decision.get("correct"):
        return str(decision["correct"])
    if use_album and row.get("album_genre"):
        return str(row["album_genre"])
    return str(row["genre"])
