"""genre.dataset: discover() on the folder-per-label, original GTZAN (.au) and Kaggle layouts,
with junk and a symlink loop; metadata merge; splits that never leak a clip or an artist."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from conftest import SR, synth, write_wav
from genre.audio import decode
from genre.dataset import (
    COLUMNS, Split, discover, find_split_lists, grouped_folds, make_split, read_gtzan_index, read_list,
    split_by_artist, split_from_lists, split_stratified,
)

GENRES = ("blues", "jazz", "metal")


def test_discover_tiny_dataset(tiny_dataset):
    df = discover(tiny_dataset)
    assert list(df.columns) == COLUMNS and len(df) == 18
    assert df["label"].value_counts().to_dict() == {"beats": 6, "buzz": 6, "tones": 6}
    row = df.set_index("clip_id").loc["tones.00003"]
    assert row["label"] == "tones" and row["artist"] == "tones-artist-1" and row["title"] == "song 3"
    assert Path(row["path"]) == tiny_dataset / "tones" / "tones.00003.wav"
    assert df["artist"].notna().all() and df["clip_id"].is_unique
    assert df.attrs["ignored"] == []  # the metadata file is known, not junk
    assert df.attrs["root"] == str(tiny_dataset)
    assert df["path"].tolist() == sorted(df["path"])  # deterministic order


def _gtzan_tree(root: Path) -> Path:
    """The original GTZAN layout: genres/<genre>/<genre>.000NN.au (Sun AU, 16-bit), plus the index."""
    lines = ["## Bob L. Sturm, 2012 (comment lines start with #)"]
    for g in GENRES:
        for i in range(2):
            path = root / "genres" / g / f"{g}.{i:05d}.au"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, synth("tones", seconds=1.5, seed=i), SR, format="AU", subtype="PCM_16")
            lines.append(f"{g}.{i:05d}.wav ::: {g.title()} Artist {i} ::: " + ("" if i else "Some Title"))
    (root / "genres" / "GTZANindex.txt").write_text("\n".join(lines) + "\n")
    return root


def test_discover_original_gtzan_layout(tmp_path):
    df = discover(_gtzan_tree(tmp_path))
    assert len(df) == 6 and sorted(df["label"].unique()) == list(GENRES)
    assert all(p.endswith(".au") for p in df["path"])
    by_id = df.set_index("clip_id")
    assert by_id.loc["jazz.00001", "artist"] == "Jazz Artist 1"
    assert by_id.loc["jazz.00001", "title"] is None  # blank field
    assert by_id.loc["metal.00000", "title"] == "Some Title"
    d = decode(by_id.loc["blues.00000", "path"])  # AU decodes
    assert d.source_sr == SR and d.seconds == pytest.approx(1.5, abs=1e-3)


def test_discover_kaggle_layout_with_junk_and_a_symlink_loop(tmp_path):
    data = tmp_path / "Data"
    for g in GENRES:
        for i in range(3):
            write_wav(data / "genres_original" / g / f"{g}.{i:05d}.wav", synth("buzz", seconds=1.2, seed=i))
    (data / "features_30_sec.csv").write_text("filename,label\n")  # Kaggle's tables: quiet
    (data / "images_original" / "blues").mkdir(parents=True)
    (data / "images_original" / "blues" / "blues00000.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    (data / "genres_original" / "jazz" / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (data / "genres_original" / "jazz" / "cover.jpg").write_bytes(b"\xff\xd8\xff" + bytes(100))
    write_wav(tmp_path / "stray.wav", synth("tones", seconds=1.2))  # at the root: not in a label folder
    (data / "genres_original" / "empty").mkdir()
    os.symlink(data, data / "genres_original" / "metal" / "loop")  # a folder link back up: a loop

    df = discover(tmp_path)  # completes despite the loop
    assert len(df) == 9 and sorted(df["label"].unique()) == list(GENRES)
    assert df["label"].value_counts().to_dict() == {g: 3 for g in GENRES}
    assert not any("/loop/" in p for p in df["path"])
    ignored = dict(df.attrs["ignored"])
    assert ignored["stray.wav"] == "not inside a label folder"
    assert ignored[os.path.join("Data", "images_original", "blues", "blues00000.png")] == "not an audio file"
    assert ignored[os.path.join("Data", "genres_original", "jazz", "cover.jpg")] == "not an audio file"
    assert "link" in ignored[os.path.join("Data", "genres_original", "metal", "loop")]
    assert any("empty" in rel for rel in ignored)
    assert not any(rel.endswith((".DS_Store", ".csv")) for rel in ignored)
    assert df["artist"].isna().all()  # no index anywhere: artist unknown, not invented


def test_metadata_merge_and_explicit_index(tmp_path, tiny_dataset):
    index = tmp_path / "index.txt"
    index.write_text("# comment\nbeats.00000.wav ::: Drummer ::: Loop\nbuzz.00004.au ::: Saw Person ::: \n"
                     "not a line\nbeats.00000.wav ::: Duplicate ::: ignored\n")
    parsed = read_gtzan_index(index)
    assert parsed.to_dict("records") == [
        {"clip_id": "beats.00000", "artist": "Drummer", "title": "Loop"},
        {"clip_id": "buzz.00004", "artist": "Saw Person", "title": None},
    ]
    df = discover(tiny_dataset, metadata=index).set_index("clip_id")
    assert df.loc["beats.00000", "artist"] == "Drummer"
    assert df.loc["buzz.00004", "artist"] == "Saw Person"
    assert df.loc["tones.00000", "artist"] is None  # not in this index
    assert len(df) == 18


def test_same_file_name_in_two_label_folders_keeps_ids_unique(tmp_path):
    for g in ("a", "b"):
        write_wav(tmp_path / g / "take1.wav", synth("tones", seconds=1.2))
    df = discover(tmp_path)
    assert sorted(df["clip_id"]) == ["a/take1", "b/take1"]


def test_discover_refuses_a_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        discover(tmp_path / "nope")


# --- splits ------------------------------------------------------------------------------------


def _sides(df: pd.DataFrame, split: Split, col: str) -> tuple[set, set]:
    return set(df.iloc[split.train][col]), set(df.iloc[split.valid][col])


def test_stratified_split(tiny_dataset):
    df = discover(tiny_dataset)
    split = split_stratified(df, valid_fraction=0.34, seed=1)
    train, valid = _sides(df, split, "clip_id")
    assert not train & valid and len(train | valid) == 18
    assert len(split.valid) == 7 and len(split.train) == 11
    assert df.iloc[split.valid]["label"].value_counts().min() >= 2  # every genre, in proportion
    split.check_disjoint(df)
    assert split.info == {"kind": "stratified", "valid_fraction": 0.34, "seed": 1}
    assert np.array_equal(split_stratified(df, valid_fraction=0.34, seed=1).valid, split.valid)
    assert not np.array_equal(split_stratified(df, valid_fraction=0.34, seed=2).valid, split.valid)


def test_stratified_split_puts_a_single_clip_genre_in_training(tiny_dataset):
    df = discover(tiny_dataset)
    df = pd.concat([df, pd.DataFrame([{"path": "/x/solo/solo.wav", "label": "solo", "clip_id": "solo",
                                       "artist": None, "title": None}])], ignore_index=True)
    split = split_stratified(df, valid_fraction=0.2)
    assert len(df) - 1 in split.train


def test_artist_split_keeps_every_artist_on_one_side(tiny_dataset):
    df = discover(tiny_dataset)
    split = split_by_artist(df, valid_fraction=0.34, seed=0)
    train, valid = _sides(df, split, "artist")
    assert valid and not train & valid
    split.check_disjoint(df, by="artist")
    assert set(df.iloc[split.train]["label"]) == {"tones", "beats", "buzz"}
    assert len(split.train) + len(split.valid) == 18
    assert make_split(df, "artist", valid_fraction=0.34).info["kind"] == "artist"


def test_grouped_folds_cover_every_clip_once(tiny_dataset):
    df = discover(tiny_dataset)
    folds = grouped_folds(df, n_splits=3, seed=0)
    assert len(folds) == 3
    seen = np.concatenate([f.valid for f in folds])
    assert sorted(seen) == list(range(18))
    for fold in folds:
        train, valid = _sides(df, fold, "artist")
        assert not train & valid
        assert len(fold.train) + len(fold.valid) == 18


def _write_lists(root: Path, train: list[str], valid: list[str]) -> tuple[Path, Path]:
    (root / "splits").mkdir(parents=True, exist_ok=True)
    t, v = root / "splits" / "train_filtered.txt", root / "splits" / "valid_filtered.txt"
    t.write_text("\n".join(train) + "\n")
    v.write_text("\n".join(valid) + "\n\n")
    return t, v


def test_split_from_list_files(tmp_path, tiny_dataset):
    df = discover(tiny_dataset)
    t, v = _write_lists(tmp_path, [f"tones/tones.{i:05d}.wav" for i in range(4)] + ["beats/beats.00000.wav"],
                        ["tones/tones.00004.wav", "buzz/buzz.00001.wav", "jazz/jazz.00054.wav"])
    assert read_list(v) == {"tones.00004", "buzz.00001", "jazz.00054"}
    split = split_from_lists(df, t, v)
    assert sorted(df.iloc[split.train]["clip_id"]) == ["beats.00000"] + [f"tones.{i:05d}" for i in range(4)]
    assert sorted(df.iloc[split.valid]["clip_id"]) == ["buzz.00001", "tones.00004"]  # jazz is not here: skipped
    assert split.info["kind"] == "lists"
    split.check_disjoint(df)

    t2, v2 = _write_lists(tmp_path / "both", ["tones/tones.00000.wav"], ["tones/tones.00000.wav"])
    with pytest.raises(ValueError, match="1 clips are in both list files"):
        split_from_lists(df, t2, v2)
    t3, v3 = _write_lists(tmp_path / "none", ["x/x.00000.wav"], ["tones/tones.00000.wav"])
    with pytest.raises(ValueError, match="match no clips"):
        split_from_lists(df, t3, v3)


def test_make_split_lists_finds_the_files_beside_the_dataset(tmp_path):
    for g in ("a", "b"):
        for i in range(2):
            write_wav(tmp_path / g / f"{g}.{i:05d}.wav", synth("tones", seconds=1.2, seed=i))
    df = discover(tmp_path)
    with pytest.raises(ValueError, match="no splits/train_filtered.txt"):
        make_split(df, "lists")
    _write_lists(tmp_path, ["a/a.00000.wav", "b/b.00000.wav"], ["a/a.00001.wav", "b/b.00001.wav"])
    assert find_split_lists(tmp_path) == (tmp_path / "splits" / "train_filtered.txt",
                                          tmp_path / "splits" / "valid_filtered.txt")
    split = make_split(discover(tmp_path), "lists")
    assert sorted(df.iloc[split.valid]["clip_id"]) == ["a.00001", "b.00001"]
    with pytest.raises(ValueError, match="unknown split kind"):
        make_split(df, "random")


def test_check_disjoint_names_the_leak(tiny_dataset):
    df = discover(tiny_dataset)
    Split(np.array([0, 1, 2]), np.array([3, 4])).check_disjoint(df)  # fine
    leaky = Split(np.array([0, 1, 2]), np.array([2, 3]))
    with pytest.raises(ValueError, match=r"1 clip_id values are on both sides.*" + df.iloc[2]["clip_id"]):
        leaky.check_disjoint(df)
    # rows 0 and 1 are one artist's two clips: disjoint by clip, not by artist
    assert df.iloc[0]["artist"] == df.iloc[1]["artist"]
    by_clip = Split(np.array([0]), np.array([1]))
    by_clip.check_disjoint(df)
    with pytest.raises(ValueError, match="artist values are on both sides"):
        by_clip.check_disjoint(df, by="artist")
