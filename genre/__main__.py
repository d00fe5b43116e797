"""Command line: ``python -m genre extract|train|evaluate|predict ...`` (see ``--help``).

Bad input ends with exit code 2 and one line on stderr, never a traceback.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from contextlib import contextmanager
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
    from tqdm import tqdm

    bar = tqdm(total=0, desc=desc, unit="clip", file=sys.stderr, disable=None)

    def update(done: int, total: int, _path: str) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()
        if done == total:
            bar.close()

    return update


def _build(args, config: FeatureConfig):
    from genre.dataset import discover
    from genre.store import FeatureStore

    df = discover(args.dir)
    for rel, reason in df.attrs.get("ignored", []):
        print(f"ignored {rel}: {reason}", file=sys.stderr)
    if df.empty:
        raise ValueError(f"no audio files in label folders under {args.dir}")
    result = FeatureStore().build(df["path"], config, n_jobs=args.jobs, progress=_progress("features"))
    for path, reason in result.failed:
        print(f"skipped {path}: {reason}", file=sys.stderr)
    return df, result


def cmd_extract(args) -> int:
    config = _config(args)
    df, result = _build(args, config)
    print(f"{len(result.features)} clips in the feature store ({result.computed} computed now, "
          f"{len(df) - result.computed - len(result.failed)} cached), {len(result.failed)} skipped")
    return 0


def cmd_train(args) -> int:
    from genre.dataset import make_split
    from genre.evaluate import format_report
    from genre.models import ModelSpec, save_model, save_target
    from genre.train import train_model

    # A bad, reserved or taken name, or a folder that is not a model, fails before training.
    target = save_target(args.out, overwrite=args.overwrite)
    config = _config(args)
    df, result = _build(args, config)
    trainable = df[df["path"].isin(result.features)]["label"]
    if trainable.nunique() < 2:
        raise ValueError(f"training needs usable clips of at least two genres; {args.dir} has "
                         f"{trainable.nunique()} ({', '.join(sorted(trainable.unique())) or 'none'})")
    split = make_split(df, args.split, valid_fraction=args.valid_fraction, seed=args.seed)
    spec = ModelSpec(family=args.family, hidden=tuple(int(h) for h in args.hidden.split(",") if h),
                     dropout=args.dropout, learning_rate=args.learning_rate, epochs=args.epochs,
                     batch_size=args.batch_size)

    def show(epoch: int, logs: dict) -> None:
        print(f"epoch {epoch:3d}  loss {logs.get('loss', 0):.3f}  acc {logs.get('accuracy', 0):.3f}  "
              f"val_loss {logs.get('val_loss', 0):.3f}  val_acc {logs.get('val_accuracy', 0):.3f}", file=sys.stderr)

    trained = train_model(df, result.features, split, config, spec, listener=show, seed=args.seed,
                          data_info={"root": str(Path(args.dir).resolve()), "n_clips": len(df)})
    print(format_report(trained.report))
    save_model(trained.keras_model, trained.card, target, overwrite=args.overwrite)
    print(f"saved {target}")
    return 0


def cmd_evaluate(args) -> int:
    from genre.dataset import discover
    from genre.evaluate import classification_report, format_report
    from genre.models import load_model, unknown_labels
    from genre.predict import predict_features

    model = load_model(args.model)
    unknown = unknown_labels(model.labels, discover(args.dir)["label"])  # before extracting anything
    df, result = _build(args, model.card.config)
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
    from genre.dataset import AUDIO_EXTENSIONS  # pandas + scikit-learn: only for folders

    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS)
    raise FileNotFoundError(f"{path} does not exist")


def cmd_predict(args) -> int:
    from genre.audio import decode, ensure_audible
    from genre.models import load_model, read_card
    from genre.backbones.embeddings import top_tags
    from genre.predict import predict_decoded

    single = Path(args.path).is_file()
    files = _audio_files(Path(args.path))
    if not files:
        from genre.dataset import AUDIO_EXTENSIONS

        raise ValueError(f"no audio files ({', '.join(sorted(AUDIO_EXTENSIONS))}) under {args.path}")
    card = read_card(args.model)  # JSON only: unusable audio is reported before TensorFlow loads
    model, rows, failed = None, [], 0
    for path in files:
        try:
            decoded = decode(path, sr=card.config.sr)
            ensure_audible(decoded.y, name=path.name)
            if model is None:
                model = load_model(args.model)
            pred = predict_decoded(model, decoded, name=path.name)
        except AudioError as err:
            if single:
                raise  # one file: its message is the one error line
            failed += 1
            print(f"skipped {path}: {err}", file=sys.stderr)
            continue
        tags = ", ".join(tag for tag, _ in top_tags(pred.features, card.config, k=3))
        verdict = pred.verdict
        notes = [] if verdict is None or verdict.is_music else [verdict.summary]
        notes += ["(not sure)"] if pred.unsure and not notes else []
        print(f"{path}\t{pred.genre}\t{pred.confidence:.3f}" + "".join(f"\t{n}" for n in notes)
              + (f"\ttags: {tags}" if tags else ""))
        music = ["", ""] if verdict is None else [f"{verdict.music:.4f}", "true" if verdict.is_music else "false"]
        rows.append([str(path), pred.genre, f"{pred.confidence:.4f}", *music, *(f"{p:.4f}" for p in pred.probs)])
    if args.csv:
        with open(args.csv, "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["path", "genre", "probability", "music", "is_music",
                             *(f"p_{lab}" for lab in card.labels)])
            writer.writerows(rows)
    if not rows:
        raise AudioError(f"none of the {len(files)} files could be classified")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m genre", description="Music-genre classification: "
                                "extract features, train, evaluate and predict.")
    sub = p.add_subparsers(dest="command", required=True)

    def dataset_args(sp):
        sp.add_argument("dir", help="dataset folder: one sub-folder of clips per genre (GTZAN layout)")
        sp.add_argument("--jobs", type=int, default=-1, help="parallel workers (default: all cores)")

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
    sp.add_argument("--csv", help="write path, genre, probability, music (0-1), is_music (true/false) and "
                                  "p_<label> columns here (music columns blank if no verdict could be had)")
    sp.set_defaults(func=cmd_predict)
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
    args = parser().parse_args(argv)
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
