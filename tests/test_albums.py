"""genre.albums and ``genre predict DIR --csv out.csv --albums``: tracks grouped by their album
tags, the album's genre from the mean of its tracks' probabilities, odd tracks flagged."""
from __future__ import annotations

import csv
import os
import subprocess
import sys

import pandas as pd
import soundfile as sf

from conftest import ROOT, SR, synth
from genre.albums import ALBUM_COLUMNS, album_genres, album_of


def flac(path, kind: str, *, seed: int = 0, **tags):
    """A 5 s FLAC of ``kind`` with Vorbis comments ``tags`` (album, albumartist, artist...)."""
    from mutagen.flac import FLAC

    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, synth(kind, seconds=5.0, seed=seed), SR, format="FLAC")
    if tags:
        tagged = FLAC(path)
        for key, value in tags.items():
            tagged[key] = value
        tagged.save()
    return path


def test_the_album_of_a_file_is_its_album_and_album_artist(tmp_path):
    assert album_of(flac(tmp_path / "a.flac", "tones", album="Blue", albumartist="Band", artist="Singer")) == "Blue — Band"
    assert album_of(flac(tmp_path / "b.flac", "tones", album="Blue", artist="Singer")) == "Blue — Singer"
    assert album_of(flac(tmp_path / "c.flac", "tones", album="Blue")) == "Blue"
    assert album_of(flac(tmp_path / "d.flac", "tones", artist="Singer")) is None  # no album tag
    assert album_of(flac(tmp_path / "e.flac", "tones")) is None
    (tmp_path / "f.flac").write_bytes(b"not a flac file")
    assert album_of(tmp_path / "f.flac") is None and album_of(tmp_path / "missing.flac") is None


def test_the_album_genre_is_the_mean_of_its_tracks():
    table = pd.DataFrame({"path": list("abcde"), "genre": ["rock", "rock", "pop", "jazz", "pop"],
                          "p_jazz": [0.1, 0.2, 0.1, 0.9, 0.3], "p_pop": [0.3, 0.3, 0.6, 0.05, 0.4],
                          "p_rock": [0.6, 0.5, 0.3, 0.05, 0.3]})
    out = album_genres(table, ["jazz", "pop", "rock"], ["A", "A", "A", None, "B"])
    assert out["album_genre"].tolist() == ["rock", "rock", "rock", "", "pop"]
    assert out["album_agrees"].tolist() == ["true", "true", "false", "", "true"]  # c is the odd track of A
    assert out["album"].tolist() == ["A", "A", "A", "", "B"]


def test_predict_albums_adds_the_columns_and_survives_a_resume(tmp_path):
    music = tmp_path / "music"
    for i in range(3):
        flac(music / "blue" / f"{i}.flac", "tones", seed=i, album="Blue", albumartist="Band")
    flac(music / "blue" / "odd.flac", "beats", seed=9, album="Blue", albumartist="Band")
    flac(music / "loose.flac", "buzz")
    out = tmp_path / "out.csv"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GENRE_CACHE_DIR": str(tmp_path / "cache"), "TF_CPP_MIN_LOG_LEVEL": "2"}
    cmd = [sys.executable, "-m", "genre", "predict", str(music), "--csv", str(out), "--albums"]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    with open(out, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0])[-3:] == list(ALBUM_COLUMNS) and len(rows) == 5
    by_name = {r["path"].rsplit("/", 1)[-1]: r for r in rows}
    assert by_name["loose.flac"]["album"] == "" and by_name["loose.flac"]["album_agrees"] == ""
    blue = [r for r in rows if r["album"] == "Blue — Band"]
    assert len(blue) == 4 and len({r["album_genre"] for r in blue}) == 1
    assert all(r["album_agrees"] == str(r["genre"] == r["album_genre"]).lower() for r in blue)
    assert "albums: 1 (4 of 5 tracks have an album tag)" in done.stderr

    again = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    assert "5 of 5 files are already in" in again.stderr
    with open(out, newline="") as fh:
        assert list(csv.DictReader(fh)) == rows  # nothing predicted twice, the album columns once

    nowhere = subprocess.run([*cmd[:5], "--albums"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert nowhere.returncode == 2 and "--albums adds album columns to the --csv or --parquet output" in nowhere.stderr
