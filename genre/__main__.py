"""Command line: ``genre extract|train|evaluate|predict|similar|label|dashboard ...`` (see ``--help``);
``python -m genre`` is the same command.

Bad input ends with exit code 2 and one line on stderr, never a traceback. ``--cluster`` runs the
batch work of extract, evaluate, predict and similar on Dask (``genre.engine``).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from genre import backbones
from genre.audio import AudioError
from genre.features import FeatureConfig
from genre.models import DEFAULT_MODEL_DIR, ModelError


def _config(args) -> FeatureConfig:
    if args.features != backbones.HANDCRAFTED:
        from genre.backbones.embeddings import backbone_config

        return backbone_config(args.features, window_seconds=args.window_seconds)
    return FeatureConfig(segment_seconds=args.segment_seconds)


def _feature_kind(text: str) -> str:
    """argparse type: a feature kind known to the backbone registry."""
    try:
        backbones.parts(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return text


def _progress(desc: str):
    """A tqdm bar on stderr (clips/s and ETA) fed by ``progress(done, total, path)`` calls."""
    from tqdm import tqdm

    bar = tqdm(total=0, desc=desc, unit="clip", file=sys.stderr, disable=None, smoothing=0.1)

    def update(done: int, total: int, _path: str) -> None:
        bar.total = total
        bar.update(done - bar.n)
        if done == total:
            bar.close()

    return update


def _engine(args):
    from genre.engine import open_engine

    return open_engine(cluster=args.cluster, n_jobs=args.jobs)


def _build(args, config: FeatureConfig, *, keep: bool = True):
    from genre.dataset import discover_all
    from genre.store import FeatureStore

    df = discover_all(args.dir)
    for rel, reason in df.attrs.get("ignored", []):
        print(f"ignored {rel}: {reason}", file=sys.stderr)
    if df.empty:
        raise ValueError(f"no audio files in label folders under {' or '.join(args.dir)}")
    paths = [os.path.abspath(p) for p in df["path"]] if args.cluster else df["path"].tolist()
    with _engine(args) as engine:
        result = FeatureStore().build(paths, config, engine=engine, keep=keep, batch_size=args.files_per_task,
                                      progress=_progress("features"))
    if args.cluster:  # back to the paths as discovered
        as_found = dict(zip(paths, df["path"]))
        result.features = {as_found[p]: f for p, f in result.features.items()}
        result.failed = [(as_found[p], reason) for p, reason in result.failed]
        result.available = [as_found[p] for p in result.available]
    for path, reason in result.failed:
        print(f"skipped {path}: {reason}", file=sys.stderr)
    return df, result


def cmd_extract(args) -> int:
    config = _config(args)
    df, result = _build(args, config, keep=False)
    print(f"{len(result.available)} clips in the feature store ({result.computed} computed now, "
          f"{len(df) - result.computed - len(result.failed)} cached), {len(result.failed)} skipped")
    return 0


def cmd_train(args) -> int:
    from genre.dataset import few_clip_labels, make_split, training_data_info
    from genre.evaluate import format_report
    from genre.models import ModelSpec, save_model, save_target
    from genre.train import train_model

    # A bad, reserved or taken name, or a folder that is not a model, fails before training.
    target = save_target(args.out, overwrite=args.overwrite)
    config = _config(args)
    df, result = _build(args, config)
    trainable = df[df["path"].isin(result.features)]["label"]
    if trainable.nunique() < 2:
        raise ValueError(f"training needs usable clips of at least two genres; {' + '.join(args.dir)} has "
                         f"{trainable.nunique()} ({', '.join(sorted(trainable.unique())) or 'none'})")
    few = few_clip_labels(df)
    if few:
        print("note: few clips of " + ", ".join(f"{label} ({n})" for label, n in few.items()) + "; the model can "
              "learn them, but their validation scores rest on one or two clips, if any", file=sys.stderr)
    split = make_split(df, args.split, valid_fraction=args.valid_fraction, seed=args.seed)
    spec = ModelSpec(family=args.family, hidden=tuple(int(h) for h in args.hidden.split(",") if h),
                     dropout=args.dropout, learning_rate=args.learning_rate, epochs=args.epochs,
                     batch_size=args.batch_size)

    def show(epoch: int, logs: dict) -> None:
        print(f"epoch {epoch:3d}  loss {logs.get('loss', 0):.3f}  acc {logs.get('accuracy', 0):.3f}  "
              f"val_loss {logs.get('val_loss', 0):.3f}  val_acc {logs.get('val_accuracy', 0):.3f}", file=sys.stderr)

    trained = train_model(df, result.features, split, config, spec, listener=show, seed=args.seed,
                          data_info=training_data_info(df, split))
    print(format_report(trained.report))
    save_model(trained.keras_model, trained.card, target, overwrite=args.overwrite)
    print(f"saved {target}")
    return 0


def cmd_evaluate(args) -> int:
    from genre.dataset import discover_all
    from genre.evaluate import classification_report, format_report
    from genre.models import load_model, unknown_labels
    from genre.predict import predict_features

    model = load_model(args.model)
    unknown = unknown_labels(model.labels, discover_all(args.dir)["label"])  # before extracting anything
    df, result = _build(args, model.card.config)  # features in this process: the head is fast
    if unknown:
        print(f"note: {model.name} was not trained on {', '.join(unknown)}; those clips are left out", file=sys.stderr)
    seen = set(model.card.split.get("train_clip_ids", []))
    if args.exclude_valid:
        seen |= set(model.card.split.get("valid_clip_ids", []))
    rows = df[~df["clip_id"].isin(seen) & df["path"].isin(result.features) & df["label"].isin(model.labels)]
    if rows.empty:
        raise ValueError("no clip of this dataset is held out from the model's training data")
    predicted = [predict_features(model, result.features[p]).genre for p in rows["path"]]
    report = classification_report(rows["label"].tolist(), predicted, model.labels)
    report["excluded_training_clips"] = int(df["clip_id"].isin(seen).sum())
    print(format_report(report))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    return 0


def _audio_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    from genre.dataset import audio_files_under

    if path.is_dir():
        return audio_files_under(path)
    raise FileNotFoundError(f"{path} does not exist")


def _some_audio_files(path: Path) -> list[Path]:
    files = _audio_files(path)
    if not files:
        from genre.dataset import AUDIO_EXTENSIONS

        raise ValueError(f"no audio files ({', '.join(sorted(AUDIO_EXTENSIONS))}) under {path}")
    return files


def cmd_predict(args) -> int:
    from genre.batch import PredictedFile, PredictionTable, predict_batch
    from genre.engine import LocalEngine, batches_of
    from genre.models import read_card
    from genre.store import FeatureStore

    if args.csv and args.parquet:
        raise ValueError("choose one output: --csv or --parquet")
    if args.dry_run and not args.write_tags:
        raise ValueError("--dry-run shows what --write-tags would change; pass both")
    if args.albums and not (args.csv or args.parquet):
        raise ValueError("--albums adds album columns to the --csv or --parquet output; pass one")
    single = Path(args.path).is_file()
    files = _some_audio_files(Path(args.path))
    card = read_card(args.model)  # JSON only: unusable audio is reported before TensorFlow loads
    output = args.csv or args.parquet
    if output:
        from genre.albums import drop_album_columns

        drop_album_columns(output)  # derived from all rows: computed again at the end of this run
    table = PredictionTable(output, labels=card.labels) if output else None
    shown = {os.path.abspath(f): str(f) for f in files}  # workers get absolute paths, output shows them as found
    todo = [full for full, as_found in shown.items() if not table or as_found not in table.done]
    if table and len(todo) < len(files):
        print(f"{len(files) - len(todo)} of {len(files)} files are already in {output}; predicting the other "
              f"{len(todo)}", file=sys.stderr)
    classified, failed = 0, 0
    progress = _progress("predict")
    try:
        with _engine(args) as engine:
            here = isinstance(engine, LocalEngine)  # joblib: a file per task, so rows stream file by file
            batches = batches_of(todo, workers=engine.workers, size=args.files_per_task or (1 if here else None))
            jobs = engine.run(predict_batch, batches, model_dir=str(Path(args.model).resolve()),
                              store_root=str(FeatureStore().root.resolve()))
            for batch, rows, error in jobs:
                if rows is None:  # the whole batch failed (its worker died on every try)
                    rows = [PredictedFile(path, error=f"{Path(path).name}: {error}") for path in batch]
                for row in rows:
                    row = replace(row, path=shown[row.path])
                    if row.error:
                        if single:
                            raise AudioError(row.error)  # one file: its message is the one error line
                        failed += 1
                        print(f"skipped {row.path}: {row.error}", file=sys.stderr)
                    else:
                        classified += 1
                        _show(row, table, args)
                    progress(classified + failed, len(todo), row.path)
    finally:
        if table:
            table.close()
    if table:
        table.finish()
        if args.albums:
            _albums(output, card.labels)
    if todo and not classified and len(todo) == len(files):  # a resumed run whose output has rows is fine
        raise AudioError(f"none of the {len(todo)} files could be classified")
    return 0


def _albums(output: str, labels: list[str]) -> None:
    """Add the album columns to the output and say which tracks disagree with their album."""
    from genre.albums import add_album_columns

    table = add_album_columns(output, labels)
    grouped = table[table["album"] != ""]
    odd = grouped[grouped["album_agrees"] == "false"]
    print(f"albums: {grouped['album'].nunique()} ({len(grouped)} of {len(table)} tracks have an album tag); "
          f"{len(odd)} tracks disagree with their album", file=sys.stderr)
    for _, row in odd.iterrows():
        print(f"  {row['path']}: {row['genre']}, its album ({row['album']}) {row['album_genre']}", file=sys.stderr)


def _show(row, table, args) -> None:
    """Print a prediction, append it to the output table and (``--write-tags``) tag the file."""
    if row.is_music is False:
        note = f"\tnot music (sounds like: {row.sounds_like or 'no sound class in particular'})"
    else:
        note = "\t(not sure)" if row.unsure else ""
    print(f"{row.path}\t{row.genre}\t{row.probability:.3f}{note}"
          + (f"\ttags: {', '.join(row.tags)}" if row.tags else ""), flush=True)
    if table:
        table.write(row)
    if args.write_tags:
        from genre.tags import TagError, set_genre

        try:
            print(set_genre(row.path, row.genre, dry_run=args.dry_run).describe(dry_run=args.dry_run), file=sys.stderr)
        except TagError as err:
            print(f"not tagged {row.path}: {err}", file=sys.stderr)


def cmd_similar(args) -> int:
    from genre.models import read_card
    from genre.similar import CollectionIndex

    config = read_card(args.model).config
    if args.k < 1:
        raise ValueError("-k must be at least 1")
    query = Path(args.file)
    if not query.is_file():
        raise FileNotFoundError(f"{query} does not exist")
    files = _some_audio_files(Path(args.index))
    with _engine(args) as engine:
        index = CollectionIndex.update(args.index, files, config, engine=engine, batch_size=args.files_per_task,
                                       progress=_progress("index"))
    for path, reason in index.failed:
        print(f"skipped {path}: {reason}", file=sys.stderr)
    hits = index.similar_to_file(query, k=args.k)
    for rank, (path, similarity) in enumerate(hits, start=1):
        print(f"{rank}\t{similarity:.3f}\t{path}")
    return 0


def cmd_label(args) -> int:
    """Keep each FILE as an example of LABEL; one line per file, exit 2 if any was refused."""
    from genre.examples import ExampleError, add_example, check_label, default_examples_dir

    label = check_label(args.label)  # a bad label ends here, before any file is read
    folder = Path(args.examples) if args.examples else default_examples_dir()
    refused = 0
    for file in args.files:
        try:
            data = Path(file).read_bytes()
            example, what = add_example(data, label=label, name=Path(file).name, examples_dir=folder)
        except (AudioError, ExampleError, OSError) as err:  # the first two name the file already
            print(f"error: {f'{file}: {err.strerror or err}' if isinstance(err, OSError) else err}", file=sys.stderr)
            refused += 1
            continue
        print(f"{file} -> {example.path} ({what})")
    return 2 if refused else 0


def cmd_dashboard(args) -> int:
    from genre.ui import serve

    serve.main(args.streamlit_options)
    return 0


def _prog() -> str:
    """``python -m genre`` when started so, else the name of the command (``genre``)."""
    name = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "genre"
    return "python -m genre" if name == "__main__.py" else name


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=_prog(), description="Music-genre classification: extract features, train, "
                                "evaluate and predict; serve the dashboard.")
    sub = p.add_subparsers(dest="command", required=True)

    def engine_args(sp, *, jobs: int = -1):
        sp.add_argument("--jobs", type=int, default=jobs, help="parallel processes on this machine without "
                        f"--cluster (default: {'all cores' if jobs == -1 else jobs})")
        sp.add_argument("--cluster", nargs="?", const="env", metavar="local[:N]|tcp://HOST:8786",
                        help="run on Dask: a LocalCluster of N worker processes (default all cores) or a running "
                        "scheduler; alone, $GENRE_DASK_SCHEDULER. Needs dask[distributed] (the [cluster] extra)")
        sp.add_argument("--files-per-task", type=int, default=None,
                        help="files per task sent to a worker (default: about 8 tasks per worker, at most 16 files)")

    def dataset_args(sp):
        sp.add_argument("dir", nargs="+", metavar="DIR",
                        help="dataset folder: one sub-folder of clips per genre (GTZAN layout); several folders "
                             "are one dataset (e.g. GTZAN and your examples: the union of their genres)")
        engine_args(sp)

    def feature_args(sp):
        sp.add_argument("--features", default=backbones.HANDCRAFTED, type=_feature_kind,
                        help=f"{backbones.HANDCRAFTED} (librosa features), a pretrained backbone's embeddings "
                             f"({', '.join(backbones.BACKBONES)}) or several joined by '+', e.g. MSD_musicnn+mn04")
        sp.add_argument("--segment-seconds", type=float, default=3.0, help="segment length for hand-crafted features")
        sp.add_argument("--window-seconds", type=float, default=0.0,
                        help="mn04's window centred on each ~3 s segment, in s (0: 3 s)")

    sp = sub.add_parser("extract", help="fill the feature store ($GENRE_CACHE_DIR, default data/cache)")
    dataset_args(sp)
    feature_args(sp)
    sp.set_defaults(func=cmd_extract)

    sp = sub.add_parser("train", help="train a model and save it under models/NAME")
    dataset_args(sp)
    feature_args(sp)
    sp.add_argument("--family", default="mlp", choices=("mlp", "cnn"))
    sp.add_argument("--split", default="artist", choices=("artist", "stratified", "lists"))
    sp.add_argument("--valid-fraction", type=float, default=0.2)
    sp.add_argument("--hidden", default="256,128", help="units (MLP) or filters (CNN) per layer, comma-separated")
    sp.add_argument("--dropout", type=float, default=0.3)
    sp.add_argument("--learning-rate", type=float, default=1e-3)
    sp.add_argument("--epochs", type=int, default=60)
    sp.add_argument("--batch-size", type=int, default=64)
    sp.add_argument("--seed", type=int, default=0)
    sp.add_argument("--out", default="my-model", help="model name (folder under models/)")
    sp.add_argument("--overwrite", action="store_true",
                    help="replace a saved model of that name (never default, backbones or a folder that is not a model)")
    sp.set_defaults(func=cmd_train)

    sp = sub.add_parser("evaluate", help="metrics of a model on the clips of DIR it was not trained on")
    dataset_args(sp)
    sp.add_argument("--model", default=str(DEFAULT_MODEL_DIR), help="model directory")
    sp.add_argument("--exclude-valid", action="store_true", help="also leave out the model's validation clips")
    sp.add_argument("--json", help="also write the report as JSON here")
    sp.set_defaults(func=cmd_evaluate)

    sp = sub.add_parser("predict", help="genre of an audio file or of every audio file in a folder")
    sp.add_argument("path", help="audio file or folder (searched recursively)")
    sp.add_argument("--model", default=str(DEFAULT_MODEL_DIR), help="model directory (default: shipped model)")
    sp.add_argument("--csv", help="write path, genre, probability, [music, is_music,] p_<label> columns here, "
                    "row by row; an existing file is resumed (its files are not predicted again)")
    sp.add_argument("--parquet", help="the same columns as a Parquet file (resumable through <file>.partial.csv)")
    sp.add_argument("--write-tags", action="store_true",
                    help="write the predicted genre into each file's own genre tag (ID3 TCON, MP4 ©gen, Vorbis GENRE)")
    sp.add_argument("--dry-run", action="store_true", help="with --write-tags: only show what would change")
    sp.add_argument("--albums", action="store_true",
                    help="with --csv/--parquet: group tracks by their album tags (album + album artist) and add the "
                         "columns album, album_genre (the mean of its tracks' probabilities) and album_agrees")
    engine_args(sp, jobs=1)
    sp.set_defaults(func=cmd_predict)

    sp = sub.add_parser("similar", help="the tracks of a collection most similar to an audio file")
    sp.add_argument("file", help="the audio file to find neighbours of")
    sp.add_argument("--index", required=True, metavar="DIR",
                    help="collection folder (searched recursively); its index is built or updated in the feature store")
    sp.add_argument("-k", type=int, default=10, help="how many neighbours (default 10)")
    sp.add_argument("--model", default=str(DEFAULT_MODEL_DIR), help="whose features to compare (default: shipped model)")
    engine_args(sp)
    sp.set_defaults(func=cmd_similar)

    sp = sub.add_parser("label", help="keep audio files as examples of a genre (yours or the model's), "
                        "for training; the same audio twice is one example")
    sp.add_argument("files", nargs="+", metavar="FILE", help="audio files")
    sp.add_argument("--as", dest="label", required=True, metavar="LABEL",
                    help="the genre: one of the model's or a new one (letters, digits, spaces, - _ & + ' .)")
    sp.add_argument("--examples", metavar="DIR",
                    help="the examples folder (default: $GENRE_EXAMPLES_DIR, else data/examples)")
    sp.set_defaults(func=cmd_label)

    sp = sub.add_parser("dashboard", help="serve the dashboard (http://localhost:8501); options after it go to "
                        "`streamlit run`, e.g. --server.port 8502",
                        description="Serve the dashboard as ./run.sh does: the default model warms up in the "
                        "background, no file watcher. Every other option goes to `streamlit run` "
                        "(see `streamlit run --help`), e.g. --server.port 8502 --server.address 0.0.0.0.")
    sp.set_defaults(func=cmd_dashboard)
    return p


@contextmanager
def _native_stderr_silenced():
    """Send what C libraries write to file descriptor 2 (TensorFlow/absl start-up logs, mpg123
    notes about damaged MP3s) to /dev/null, while Python's ``sys.stderr`` (our messages, progress
    bars, warnings, tracebacks) keeps the real stream. ``GENRE_NATIVE_STDERR=1`` keeps both."""
    if os.environ.get("GENRE_NATIVE_STDERR"):
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no usable stderr: nothing to protect
        yield
        return
    previous = sys.stderr
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    sys.stderr = os.fdopen(os.dup(saved), "w", buffering=1, encoding=getattr(previous, "encoding", None) or "utf-8",
                           errors="backslashreplace")
    try:
        yield
    finally:
        sys.stderr.flush()
        sys.stderr.close()
        sys.stderr = previous
        os.dup2(saved, 2)
        os.close(saved)


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    p = parser()
    args, unknown = p.parse_known_args(argv)
    if args.func is cmd_dashboard:  # a server keeps its stderr: its log and its workers' go there
        args.streamlit_options = unknown
        return cmd_dashboard(args)
    if unknown:
        p.error(f"unrecognized arguments: {' '.join(unknown)}")
    with _native_stderr_silenced():
        return _run(args)


def _run(args) -> int:
    try:
        return args.func(args)
    except (AudioError, ModelError, ValueError, FileNotFoundError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - a bug, still one line; GENRE_DEBUG=1 shows the traceback
        if os.environ.get("GENRE_DEBUG"):
            raise
        print(f"error: unexpected {type(err).__name__}: {err} (set GENRE_DEBUG=1 for the traceback)",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
