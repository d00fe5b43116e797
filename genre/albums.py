"""One genre per album: tracks grouped by their album tags, the album's genre from its tracks.

A track's album is its ``album`` tag with its ``albumartist`` tag (else its ``artist``), read
with mutagen's easy tags (ID3, MP4, Vorbis comments, ASF); a file without an album tag belongs
to no album. The album's genre is the label of the highest mean probability over its tracks
(``p_<label>`` columns of a prediction table); a track *agrees* when its own genre is that one.
"""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd

ALBUM_COLUMNS = ("album", "album_genre", "album_agrees")
"""Columns ``genre predict DIR --albums`` adds: the album (``Title — Artist``; empty without an
album tag), its genre, and ``true``/``false`` (empty without an album)."""


def album_of(path: str | Path) -> str | None:
    """``"<album> — <album artist or artist>"`` from the file's tags (``"<album>"`` without
    either artist); None when it has no album tag or its tags cannot be read."""
    import mutagen

    try:
        tagged = mutagen.File(path, easy=True)
    except (mutagen.MutagenError, OSError, ValueError):
        return None
    tags = getattr(tagged, "tags", None) if tagged is not None else None
    if not tags:
        return None

    def first(key: str) -> str:
        try:
            values = tags.get(key) or []
        except (KeyError, ValueError):  # a tag format without this easy key
            values = []
        return str(values[0]).strip() if values else ""

    album = first("album")
    if not album:
        return None
    artist = first("albumartist") or first("artist")
    return f"{album} — {artist}" if artist else album


def album_genres(table: pd.DataFrame, labels: list[str], albums: list[str | None]) -> pd.DataFrame:
    """``table`` (rows of a prediction table: ``genre`` and ``p_<label>`` columns) with the
    :data:`ALBUM_COLUMNS` for ``albums`` (one per row, None for no album): the album's genre is
    the label of the highest mean probability over its tracks."""
    out = table.copy()
    out["album"] = [a or "" for a in albums]
    probs = out[[f"p_{label}" for label in labels]].astype(float).to_numpy()
    genre_of = {}
    for album, rows in out.groupby("album", sort=False).indices.items():
        if album:
            genre_of[album] = labels[int(np.argmax(probs[rows].mean(axis=0)))]
    out["album_genre"] = [genre_of.get(a, "") for a in out["album"]]
    out["album_agrees"] = ["" if not a else str(g == genre_of[a]).lower() for a, g in zip(out["album"], out["genre"])]
    return out


def add_album_columns(output: str | Path, labels: list[str]) -> pd.DataFrame:
    """Add (or refresh) the album columns of a finished ``predict --csv/--parquet`` output, in
    place and atomically (a temporary file renamed over it); returns the table. Text fields of a
    CSV are kept as written."""
    table = _read(Path(output)).drop(columns=list(ALBUM_COLUMNS), errors="ignore")
    table = album_genres(table, labels, [album_of(p) for p in table["path"]])
    _replace(Path(output), table)
    return table


def _read(output: Path) -> pd.DataFrame:
    """A prediction output as written (a CSV's fields as text)."""
    if output.suffix.lower() == ".parquet":
        return pd.read_parquet(output)
    return pd.read_csv(output, dtype=str, keep_default_na=False)


def _replace(output: Path, table: pd.DataFrame) -> None:
    """Write ``table`` over ``output`` atomically (:func:`genre.store.atomic_write`)."""
    from genre.store import atomic_write

    if output.suffix.lower() == ".parquet":
        atomic_write(output, lambda fh: table.to_parquet(fh, index=False), suffix=".parquet")
    else:
        atomic_write(output, lambda fh: fh.write(table.to_csv(index=False).encode("utf-8")), suffix=".csv")


def drop_album_columns(output: str | Path) -> bool:
    """Remove the album columns from an existing output before a run resumes it (they are
    computed again over all rows at its end); True if there were some."""
    output = Path(output)
    if not output.is_file() or output.stat().st_size == 0:
        return False
    if output.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        names = pq.ParquetFile(output).schema_arrow.names
    else:
        with open(output, newline="", encoding="utf-8") as fh:
            names = next(csv.reader(fh), [])
    if not set(ALBUM_COLUMNS) & set(names):
        return False
    _replace(output, _read(output).drop(columns=list(ALBUM_COLUMNS), errors="ignore"))
    return True
