"""Find labelled clips in a folder and split them without leaks.

``discover(root)`` understands the original GTZAN layout (``genres/<genre>/<genre>.000NN.au``),
Kaggle's (``Data/genres_original/<genre>/*.wav``), the Ogg copy in ``../shared/gtzan`` and any
folder-per-label collection: a clip's label is the name of the folder that holds it.
Splits are made per clip (so every segment of a clip stays on one side).
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from genre.audio import UPLOAD_EXTENSIONS

AUDIO_EXTENSIONS = {f".{ext}" for ext in UPLOAD_EXTENSIONS}
"""Every extension whose audio decodes (``genre.audio``)."""
METADATA_FILENAMES = ("GTZANindex.txt",)
COLUMNS = ["path", "label", "clip_id", "artist", "title"]


def _walk_audio(root: Path) -> tuple[list[Path], list[tuple[str, str]]]:
    """Audio files under ``root`` (symlinked folders are not followed, so loops are harmless)."""
    found, ignored = [], []
    for folder, dirs, files in os.walk(root, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        here = Path(folder)
        for d in [d for d in dirs if (here / d).is_symlink()]:
            ignored.append((str((here / d).relative_to(root)), "link to a folder (not followed)"))
            dirs.remove(d)
        if here != root and not dirs and not any(not f.startswith(".") for f in files):
            ignored.append((str(here.relative_to(root)) + "/", "empty folder (no audio files)"))
        for name in sorted(files):
            path = Path(folder) / name
            if name.startswith("."):
                continue
            if path.suffix.lower() not in AUDIO_EXTENSIONS:
                quiet = {".txt", ".md", ".csv", ".json", ".npz"}  # notes, metadata, the feature cache
                if path.name not in METADATA_FILENAMES and path.suffix.lower() not in quiet:
                    ignored.append((str(path.relative_to(root)), "not an audio file"))
                continue
            if path.parent == root:
                ignored.append((str(path.relative_to(root)), "not inside a label folder"))
                continue
            found.append(path)
    return found, ignored


def audio_files_under(folder: str | Path) -> list[Path]:
    """Every audio file under ``folder``, any layout (recursively; names starting with '.' are
    left out), sorted: what ``genre predict DIR`` and a library review go through."""
    return sorted(p for p in Path(folder).rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS
                  and not p.name.startswith("."))


def read_gtzan_index(path: str | Path) -> pd.DataFrame:
    """Parse Sturm's ``GTZANindex.txt`` (``blues.00000.wav ::: artist ::: title``).

    Returns DataFrame(clip_id, artist, title); blank fields become None."""
    rows = []
    for line in Path(path).read_text(encoding="utf-8", errors="replace").splitlines():
        if ":::" not in line or line.startswith("#"):
            continue
        parts = [p.strip() for p in line.split(":::")]
        parts += [""] * (3 - len(parts))
        rows.append((Path(parts[0]).stem, parts[1] or None, parts[2] or None))
    # dtype=object: pandas 3 would infer a string dtype and turn the blank (None) fields into NaN
    return pd.DataFrame(rows, columns=["clip_id", "artist", "title"], dtype=object).drop_duplicates("clip_id")


def discover(root: str | Path, *, metadata: str | Path | None = None) -> pd.DataFrame:
    """Labelled clips under ``root``: DataFrame with columns ``COLUMNS``, one row per file.

    ``metadata`` is an artist/title index (Sturm's format); if omitted, a ``GTZANindex.txt``
    anywhere under ``root`` is used. Files that are not audio or not in a label folder are listed
    in ``df.attrs["ignored"]`` as (relative path, reason). Raises FileNotFoundError if ``root``
    is not a folder.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"dataset folder {root} does not exist or is not a folder")
    files, ignored = _walk_audio(root)
    df = pd.DataFrame({
        "path": [str(p) for p in files],
        "label": [p.parent.name for p in files],
        "clip_id": [p.stem for p in files],
    })
    if df["clip_id"].duplicated().any():
        df["clip_id"] = [f"{p.parent.name}/{p.stem}" for p in files]
    if metadata is None:
        metadata = next(iter(sorted(root.rglob(METADATA_FILENAMES[0]))), None)
    if metadata is not None and Path(metadata).is_file():
        index = read_gtzan_index(metadata)
        df = df.merge(index, on="clip_id", how="left")
    for col in ("artist", "title"):
        if col not in df:
            df[col] = None
    df = df[COLUMNS].astype(object).where(df[COLUMNS].notna(), None)
    df.attrs["ignored"] = ignored
    df.attrs["root"] = str(root)
    return df.reset_index(drop=True)


def discover_all(roots, *, metadata: str | Path | None = None) -> pd.DataFrame:
    """Labelled clips under several folders (e.g. GTZAN and a person's examples) as one table:
    :func:`discover` of each, with a ``root`` column saying where each clip came from. Labels are
    the union; a clip id found in two folders is qualified by its folder's name. ``attrs``:
    ``root`` (the first folder: split lists are read there), ``roots``, ``ignored``."""
    tables = [discover(root, metadata=metadata) for root in roots]
    if not tables:
        raise ValueError("no dataset folder given")
    for table in tables:
        table["root"] = table.attrs["root"]
    df = pd.concat(tables, ignore_index=True) if len(tables) > 1 else tables[0]
    clash = df["clip_id"].duplicated(keep=False)
    if clash.any():
        df.loc[clash, "clip_id"] = [f"{Path(root).name}/{clip}"
                                    for root, clip in zip(df.loc[clash, "root"], df.loc[clash, "clip_id"])]
    df.attrs = {"root": tables[0].attrs["root"], "roots": [t.attrs["root"] for t in tables],
                "ignored": [item for t in tables for item in t.attrs["ignored"]]}
    return df


def few_clip_labels(df: pd.DataFrame, *, enough: int = 5) -> dict[str, int]:
    """{label: clips} of the labels with fewer than ``enough`` clips: a model can learn such a
    genre (a frozen backbone makes a few clips go far), but the validation side may hold none of
    it, so its score says little."""
    counts = df["label"].value_counts()
    return {label: int(n) for label, n in sorted(counts.items()) if n < enough}


def training_data_info(df: pd.DataFrame, split: Split) -> dict:
    """What a model card says about the data it learned from: the folders (``roots``), clips in
    all, on each side of ``split``, and the training clips per folder and label."""
    roots = df.attrs.get("roots") or [df.attrs.get("root", "")]
    train = df.iloc[split.train]
    if "root" not in train:  # a table of one folder from discover()
        train = train.assign(root=roots[0])
    per_root = {str(Path(root).resolve()): {str(label): int(n)
                                            for label, n in sorted(group["label"].value_counts().items())}
                for root, group in train.groupby("root", sort=False)}
    roots = [str(Path(r).resolve()) for r in roots]
    return {"root": roots[0], "roots": roots, "n_clips": int(len(df)),
            "n_train": int(len(split.train)), "n_valid": int(len(split.valid)), "train_clips": per_root}


def describe_training_data(data: dict) -> str:
    """One line (Markdown) on what a card's ``data`` (:func:`training_data_info`) says a model
    learned from, e.g. "290 clips (80 more held out for validation) from `/data/gtzan` and
    `/data/examples` (phonk 5)"; older cards say less."""
    if not data:
        return "unknown data"
    if "n_train" not in data:  # cards written before the split was recorded here
        where = f"`{data['root']}`" if data.get("root") else str(data.get("dataset", "unknown data"))
        return f"{data.get('n_clips', '?')} clips of {where}"
    per_root = data.get("train_clips", {})
    roots = data.get("roots") or [data.get("root", "?")]
    folders = []
    for root in roots:
        labels = per_root.get(root, {})
        few = (", ".join(f"{label} {n}" for label, n in labels.items()) if 0 < len(labels) <= 4
               else f"{len(labels)} genres")
        folders.append(f"`{root}` ({few})" if labels else f"`{root}`")
    return (f"{data['n_train']} clips ({data.get('n_valid', 0)} more held out for validation) from "
            + " and ".join(folders))


@dataclass
class Split:
    """Row positions of a table on each side; ``info`` describes it for a model card."""

    train: np.ndarray
    valid: np.ndarray
    info: dict = field(default_factory=dict)

    def check_disjoint(self, df: pd.DataFrame, *, by: str = "clip_id") -> None:
        """Raise ValueError if any value of column ``by`` appears on both sides."""
        both = set(df.iloc[self.train][by].dropna()) & set(df.iloc[self.valid][by].dropna())
        if both:
            raise ValueError(f"{len(both)} {by} values are on both sides of the split, e.g. {sorted(both)[:3]}")


def _groups(df: pd.DataFrame) -> np.ndarray:
    """Artist per clip; clips with unknown artist form their own group."""
    return np.array([a if a else f"clip:{c}" for a, c in zip(df["artist"], df["clip_id"])], dtype=object)


def split_stratified(df: pd.DataFrame, *, valid_fraction: float = 0.2, seed: int = 0) -> Split:
    """Random clip-level split keeping genre proportions (labels with one clip go to train)."""
    counts = df["label"].value_counts()
    rare = df["label"].map(counts).to_numpy() < 2
    idx = np.flatnonzero(~rare)
    from sklearn.model_selection import train_test_split  # lazy: discover() alone stays light

    train, valid = train_test_split(idx, test_size=valid_fraction, random_state=seed,
                                    stratify=df["label"].to_numpy()[idx])
    train = np.sort(np.concatenate([train, np.flatnonzero(rare)]))
    return Split(train, np.sort(valid), {"kind": "stratified", "valid_fraction": valid_fraction, "seed": seed})


def grouped_folds(df: pd.DataFrame, *, n_splits: int = 5, seed: int = 0) -> list[Split]:
    """Artist-grouped, genre-stratified folds for cross-validation (no artist in two folds)."""
    n_splits = max(2, min(n_splits, df["label"].value_counts().max(), len(set(_groups(df)))))
    from sklearn.model_selection import StratifiedGroupKFold

    folds = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    with warnings.catch_warnings():  # a genre of fewer clips than folds (a new one of a few examples) is expected
        warnings.filterwarnings("ignore", message="The least populated class in y has only", category=UserWarning)
        return [
            Split(tr, va, {"kind": "artist-fold", "fold": i, "n_splits": n_splits, "seed": seed})
            for i, (tr, va) in enumerate(folds.split(np.zeros(len(df)), df["label"], _groups(df)))
        ]


def split_by_artist(df: pd.DataFrame, *, valid_fraction: float = 0.2, seed: int = 0) -> Split:
    """Genre-stratified split in which no artist is on both sides (unknown artist = own group).
    A genre whose clips all fell on the validation side (one or two examples of a new genre)
    goes to training instead, with the whole artist groups of those clips: validating a genre
    the model never saw measures nothing."""
    fold = grouped_folds(df, n_splits=max(2, round(1 / valid_fraction)), seed=seed)[0]
    labels, groups = df["label"].to_numpy(), _groups(df)
    unlearned = sorted(set(labels[fold.valid]) - set(labels[fold.train]))
    moving = set(groups[fold.valid[np.isin(labels[fold.valid], unlearned)]])
    moved = fold.valid[np.isin(groups[fold.valid], list(moving))]
    train, valid = np.sort(np.concatenate([fold.train, moved])), fold.valid[~np.isin(fold.valid, moved)]
    if len(valid) == 0:
        raise ValueError("too few clips to hold any out for validation without leaving a genre unlearned: "
                         "give each genre at least two clips (of two artists, where artists are known)")
    info = {"kind": "artist", "valid_fraction": valid_fraction, "seed": seed}
    if unlearned:
        info["all_in_training"] = unlearned
    return Split(train, valid, info)


def read_list(path: str | Path) -> set[str]:
    """Clip ids from a split list file (lines like ``blues/blues.00029.wav``)."""
    return {Path(line.strip()).stem for line in Path(path).read_text().splitlines() if line.strip()}


def split_from_lists(df: pd.DataFrame, train_list: str | Path, valid_list: str | Path) -> Split:
    """Split by list files (e.g. the artist-filtered lists); clips in neither list are left out."""
    train_ids, valid_ids = read_list(train_list), read_list(valid_list)
    overlap = train_ids & valid_ids
    if overlap:
        raise ValueError(f"{len(overlap)} clips are in both list files, e.g. {sorted(overlap)[:3]}")
    ids = df["clip_id"].map(lambda c: c.rsplit("/", 1)[-1])
    train, valid = np.flatnonzero(ids.isin(train_ids)), np.flatnonzero(ids.isin(valid_ids))
    if len(train) == 0 or len(valid) == 0:
        raise ValueError("the list files match no clips of this dataset on one side")
    return Split(train, valid, {"kind": "lists", "train_list": Path(train_list).name,
                                "valid_list": Path(valid_list).name})


def find_split_lists(root: str | Path) -> tuple[Path, Path] | None:
    """The artist-filtered list files shipped beside a dataset (``splits/*_filtered.txt``), if any."""
    folder = Path(root) / "splits"
    train, valid = folder / "train_filtered.txt", folder / "valid_filtered.txt"
    return (train, valid) if train.is_file() and valid.is_file() else None


def listed_clips(root: str | Path) -> tuple[pd.DataFrame, Split]:
    """The clips of ``root`` named in its split lists (``splits/*_filtered.txt``: GTZAN's
    artist-filtered development clips) and the lists' split of them; ValueError without lists."""
    lists = find_split_lists(root)
    if lists is None:
        raise ValueError(f"no splits/train_filtered.txt and splits/valid_filtered.txt under {root}")
    df = discover(root)
    split = split_from_lists(df, *lists)
    df = df.iloc[np.sort(np.concatenate([split.train, split.valid]))].reset_index(drop=True)
    df.attrs["root"] = str(root)
    return df, split_from_lists(df, *lists)


def make_split(df: pd.DataFrame, kind: str, *, valid_fraction: float = 0.2, seed: int = 0) -> Split:
    """One entry point for the UI and CLI: ``kind`` is 'stratified', 'artist' or 'lists'."""
    if kind == "stratified":
        return split_stratified(df, valid_fraction=valid_fraction, seed=seed)
    if kind == "artist":
        return split_by_artist(df, valid_fraction=valid_fraction, seed=seed)
    if kind == "lists":
        if len(df.attrs.get("roots", ())) > 1:
            raise ValueError("the split lists belong to one dataset folder; with several folders use the artist "
                             "split (a clip without a known artist is a group of its own)")
        lists = find_split_lists(df.attrs.get("root", "."))
        if lists is None:
            raise ValueError("no splits/train_filtered.txt and splits/valid_filtered.txt beside this dataset")
        return split_from_lists(df, *lists)
    raise ValueError(f"unknown split kind {kind!r}; use stratified, artist or lists")


def audio_info(paths) -> pd.DataFrame:
    """Header facts of audio files, without decoding them: DataFrame(path, seconds, samplerate,
    channels, format, error), one row per path; a file that cannot be opened has NaN numbers
    and the reason in ``error`` (missing otherwise)."""
    from genre.audio import AudioError, probe

    rows = []
    for path in paths:
        try:
            info = probe(path)
            rows.append((str(path), info.seconds, info.samplerate, info.channels, info.format, None))
        except (AudioError, OSError) as err:
            rows.append((str(path), np.nan, np.nan, np.nan, None, str(err) or type(err).__name__))
    return pd.DataFrame(rows, columns=["path", "seconds", "samplerate", "channels", "format", "error"])
