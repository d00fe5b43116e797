"""Batch prediction of a music collection: one row per file, streamed to CSV or Parquet, resumable.

:func:`predict_file` is THE per-file prediction, run in this process (joblib) or on a Dask worker
alike: the features come from the shared feature store (computed and written there if missing),
so a second run, or a run after ``extract``, decodes nothing that was already featurised. The
model is loaded once per process. :class:`PredictionTable` appends rows as they arrive (memory
flat in the number of files) and, on a second run, tells which files are already in it.
"""
from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from genre.audio import AudioError, ensure_level
from genre.models import CARD_FILE, LoadedModel, ModelCard, load_model, read_card
from genre.store import FeatureStore, file_digest

FIXED_COLUMNS = ["path", "genre", "probability"]
VERDICT_COLUMNS = ["music", "is_music"]
"""Written right after ``probability`` when the model gives a music verdict."""


@dataclass(frozen=True)
class PredictedFile:
    """The prediction for one file, or the ``error`` that prevented it. ``probs`` follow the
    model's labels; ``music``/``is_music`` are None for a model without a music verdict;
    ``tags``: the top backbone tags (MusiCNN), if the model's features have them."""

    path: str
    genre: str | None = None
    probability: float | None = None
    unsure: bool = False
    probs: tuple[float, ...] = ()
    music: float | None = None
    is_music: bool | None = None
    tags: tuple[str, ...] = ()
    error: str | None = None
    sounds_like: str | None = None
    """The most probable AudioSet class other than Music (e.g. 'Speech')."""


def _stamp(model_dir: str) -> int:
    try:
        return (Path(model_dir) / CARD_FILE).stat().st_mtime_ns
    except OSError:
        return 0


@lru_cache(maxsize=2)
def _card(model_dir: str, stamp: int) -> ModelCard:
    return read_card(model_dir)


@lru_cache(maxsize=2)
def _model(model_dir: str, stamp: int) -> LoadedModel:
    """The model, loaded once per process (a worker keeps it for all its batches)."""
    return load_model(model_dir)


def predict_file(path: str, *, model_dir: str, store_root: str) -> PredictedFile:
    """Genre of the audio file at ``path`` with the model in ``model_dir``, its features taken
    from (or computed into) the feature store at ``store_root``. Never raises for a bad file:
    an unusable one (undecodable, too short, silent) comes back with ``error`` set, and the model
    is not even loaded until a file is usable. A bad model raises ``ModelError``."""
    from genre.backbones.embeddings import top_tags
    from genre.predict import predict_features

    stamp = _stamp(model_dir)
    config = _card(model_dir, stamp).config
    store, name = FeatureStore(store_root), Path(path).name
    try:
        digest = file_digest(path)
        feats = store.load(digest, config)
        if feats is None or "segment_db" not in (feats.extras or {}):  # older entries lack the levels
            feats = store.compute(path, digest, config)
        ensure_level(float(feats.extras["rms"]), name=name)
        prediction = predict_features(_model(model_dir, stamp), feats)
        if prediction.verdict is None:  # a model without AudioSet features: mn04 hears the audio
            from genre.audio import decode
            from genre.backbones.embeddings import music_verdict_of

            prediction.verdict = music_verdict_of(feats, decode(path, sr=config.sr, name=name).y, config)
    except AudioError as err:
        return PredictedFile(path, error=str(err))
    except OSError as err:
        return PredictedFile(path, error=f"{name} cannot be read: {err.strerror or err}.")
    verdict = getattr(prediction, "verdict", None)
    return PredictedFile(
        path, prediction.genre, prediction.confidence, prediction.unsure,
        tuple(float(p) for p in prediction.probs),
        None if verdict is None else float(verdict.music), None if verdict is None else bool(verdict.is_music),
        tuple(tag for tag, _ in top_tags(prediction.features, config, k=3)),
        sounds_like=verdict.sounds_like[0][0] if verdict is not None and verdict.sounds_like else None)


def predict_batch(paths: Sequence[str], *, model_dir: str, store_root: str) -> list[PredictedFile]:
    """Task for an engine: :func:`predict_file` of each path."""
    return [predict_file(path, model_dir=model_dir, store_root=store_root) for path in paths]


def columns(labels: Sequence[str], *, verdict: bool) -> list[str]:
    """The output's header: path, genre, probability, [music, is_music], p_<label>..."""
    return [*FIXED_COLUMNS, *(VERDICT_COLUMNS if verdict else []), *(f"p_{label}" for label in labels)]


def row_values(row: PredictedFile, *, verdict: bool) -> list[str]:
    """A prediction as the output's text fields (4 decimals; is_music ``true``/``false``)."""
    values = [row.path, row.genre, f"{row.probability:.4f}"]
    if verdict:
        values += [f"{row.music:.4f}" if row.music is not None else "",
                   "" if row.is_music is None else str(row.is_music).lower()]
    return values + [f"{p:.4f}" for p in row.probs]


class PredictionTable:
    """Rows streamed to ``path``: a CSV, or (``.parquet``) a CSV journal ``<path>.partial.csv``
    turned into Parquet by :meth:`finish`. Opening an existing output resumes it: ``done`` holds
    the paths already in it (a row cut by a kill is dropped), and its header must be this model's."""

    def __init__(self, path: str | Path, *, labels: Sequence[str]):
        self.path = Path(path)
        self.labels = list(labels)
        self.parquet = self.path.suffix.lower() == ".parquet"
        self.journal = self.path.with_name(self.path.name + ".partial.csv") if self.parquet else self.path
        self.header: list[str] | None = None
        self.done: set[str] = set()
        self.written = 0
        if self.parquet and self.path.exists():
            self._read_parquet()
        if self.journal.exists() and self.journal.stat().st_size:
            self._read_csv()
        self._fh = None

    def _check_header(self, header: list[str], where: Path) -> None:
        if header not in (columns(self.labels, verdict=False), columns(self.labels, verdict=True)):
            raise ValueError(f"{where} holds other columns than this model writes (another model?); "
                             "choose another output file or delete it")
        if self.header is not None and header != self.header:
            raise ValueError(f"{where} and {self.path} have different columns; delete one of them")
        self.header = header

    def _read_parquet(self) -> None:
        import pyarrow.parquet as pq

        try:
            table = pq.ParquetFile(self.path)
        except Exception as err:  # noqa: BLE001 - pyarrow raises several kinds for a foreign file
            raise ValueError(f"{self.path} is not a readable Parquet file ({err}); delete it or choose another") from err
        self._check_header(table.schema_arrow.names, self.path)
        for batch in table.iter_batches(columns=["path"]):
            self.done.update(batch.column(0).to_pylist())

    def _read_csv(self) -> None:
        with open(self.journal, "rb+") as fh:  # a row cut by a kill (no newline yet) is dropped
            data_end = fh.seek(0, os.SEEK_END)
            fh.seek(max(0, data_end - 1))
            if fh.read(1) != b"\n":
                fh.seek(0)
                cut = fh.read().rfind(b"\n") + 1
                fh.truncate(cut)
        with open(self.journal, newline="", encoding="utf-8") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if header is None:
                return
            self._check_header(header, self.journal)
            for values in reader:
                if values:
                    self.done.add(values[0])

    def write(self, row: PredictedFile) -> None:
        """Append one successful prediction (flushed, so a kill loses at most this row)."""
        if self._fh is None:
            fresh = not self.journal.exists() or self.journal.stat().st_size == 0
            self._fh = open(self.journal, "a", newline="", encoding="utf-8")
            self._writer = csv.writer(self._fh)
            if fresh:
                self.header = self.header or columns(self.labels, verdict=row.music is not None)
                self._writer.writerow(self.header)
        self._writer.writerow(row_values(row, verdict=len(self.header) > len(columns(self.labels, verdict=False))))
        self._fh.flush()
        self.written += 1
        self.done.add(row.path)

    def close(self) -> None:
        """Stop writing; the output (or Parquet's journal) stays resumable."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def finish(self) -> None:
        """Close; for Parquet, write ``path`` from its previous rows plus the journal (streamed,
        atomically renamed) and delete the journal."""
        self.close()
        if not self.parquet or not self.journal.exists():
            return
        import pyarrow as pa
        import pyarrow.csv as pacsv
        import pyarrow.parquet as pq

        if self.header is None:  # an empty journal: nothing new
            self.journal.unlink()
            return
        schema = pa.schema([(name, pa.string() if name in ("path", "genre") else
                             pa.bool_() if name == "is_music" else pa.float64()) for name in self.header])
        tmp = self.path.with_name(f".tmp-{self.path.name}")
        with pq.ParquetWriter(tmp, schema) as writer:
            if self.path.exists():
                for batch in pq.ParquetFile(self.path).iter_batches():
                    writer.write_batch(pa.RecordBatch.from_arrays(batch.columns, schema=schema))
            reader = pacsv.open_csv(self.journal, convert_options=pacsv.ConvertOptions(
                column_types=schema, true_values=["true"], false_values=["false"], strings_can_be_null=False))
            for batch in reader:
                writer.write_batch(batch)
        os.replace(tmp, self.path)
        self.journal.unlink()
