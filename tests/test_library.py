"""A music collection: batch prediction streamed to CSV/Parquet and resumed, genre tags written
with mutagen (audio untouched) or only shown (--dry-run), and `similar FILE --index DIR` over a
saved, incrementally updated index; the exact search over 100 000 vectors finds planted twins."""
from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import ROOT, SR, synth, write_wav
from genre.audio import decode
from genre.batch import PredictedFile, PredictionTable, columns, row_values
from genre.engine import LocalEngine
from genre.features import FeatureConfig
from genre.similar import CollectionIndex, top_k, unit_rows
from genre.store import FeatureStore
from genre.tags import TagError, set_genre

LABELS = ["blues", "rock"]


def _cli(args: list[str], cache: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GENRE_CACHE_DIR": str(cache), "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop("GENRE_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "genre", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def _row(path: str, *, music: float | None = None) -> PredictedFile:
    return PredictedFile(path, "rock", 0.75, False, (0.25, 0.75), music, None if music is None else music > 0.5)


# ---------------------------------------------------------------------------------------------
# The output table


def test_columns_put_the_music_verdict_after_probability():
    assert columns(LABELS, verdict=False) == ["path", "genre", "probability", "p_blues", "p_rock"]
    assert columns(LABELS, verdict=True) == ["path", "genre", "probability", "music", "is_music", "p_blues", "p_rock"]
    assert row_values(_row("a.mp3", music=0.9), verdict=True) == ["a.mp3", "rock", "0.7500", "0.9000", "true",
                                                                  "0.2500", "0.7500"]
    assert row_values(_row("a.mp3", music=0.1), verdict=True)[4] == "false"


@pytest.mark.parametrize("verdict", [False, True])
def test_csv_resumes_and_drops_a_row_cut_by_a_kill(tmp_path, verdict):
    out = tmp_path / "out.csv"
    table = PredictionTable(out, labels=LABELS)
    for name in ("a.mp3", "b.mp3"):
        table.write(_row(name, music=0.9 if verdict else None))
    table.finish()
    with open(out, "a") as fh:
        fh.write("c.mp3,rock,0.7")  # what a kill in the middle of a row leaves
    again = PredictionTable(out, labels=LABELS)
    assert again.done == {"a.mp3", "b.mp3"}
    again.write(_row("c.mp3", music=0.9 if verdict else None))
    again.finish()
    with open(out, newline="") as fh:
        header, *rows = list(csv.reader(fh))
    assert header == columns(LABELS, verdict=verdict) and [r[0] for r in rows] == ["a.mp3", "b.mp3", "c.mp3"]
    assert all(len(r) == len(header) for r in rows)


def test_an_output_of_another_model_is_refused(tmp_path):
    out = tmp_path / "out.csv"
    out.write_text("path,genre,probability,p_jazz\nx.mp3,jazz,1.0,1.0\n")
    with pytest.raises(ValueError, match="other columns"):
        PredictionTable(out, labels=LABELS)


def test_parquet_is_written_from_a_journal_and_resumed(tmp_path):
    import pandas as pd

    out = tmp_path / "out.parquet"
    table = PredictionTable(out, labels=LABELS)
    table.write(_row("a.mp3", music=0.9))
    table.close()  # interrupted: only the journal exists
    assert not out.exists() and (tmp_path / "out.parquet.partial.csv").exists()
    table = PredictionTable(out, labels=LABELS)
    assert table.done == {"a.mp3"}
    table.write(_row("b.mp3", music=0.2))
    table.finish()
    assert not (tmp_path / "out.parquet.partial.csv").exists()
    table = PredictionTable(out, labels=LABELS)  # a third run adds to the Parquet file itself
    assert table.done == {"a.mp3", "b.mp3"}
    table.write(_row("c.mp3", music=0.7))
    table.finish()
    df = pd.read_parquet(out)
    assert list(df.columns) == columns(LABELS, verdict=True) and df["path"].tolist() == ["a.mp3", "b.mp3", "c.mp3"]
    assert df["is_music"].tolist() == [True, False, True] and df["p_rock"].dtype == np.float64


# ---------------------------------------------------------------------------------------------
# Tags


def _encode(y: np.ndarray, fmt: str, subtype: str | None = None) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, y, SR, format=fmt, subtype=subtype)
    return buf.getvalue()


def _m4a(y: np.ndarray) -> bytes:
    from test_formats import encode_av

    return encode_av(y, "m4a")


TAGGABLE = {
    "song.mp3": ("ID3", lambda y: _encode(y, "MP3")),
    "song.flac": ("Vorbis", lambda y: _encode(y, "FLAC")),
    "song.ogg": ("Vorbis", lambda y: _encode(y, "OGG", "VORBIS")),
    "song.wav": ("ID3", lambda y: _encode(y, "WAV", "PCM_16")),
    "song.m4a": ("MP4", _m4a),
}


@pytest.mark.parametrize("name", TAGGABLE)
def test_genre_tags_are_written_and_the_audio_is_untouched(name, tmp_path):
    import mutagen

    kind, make = TAGGABLE[name]
    path = tmp_path / name
    path.write_bytes(make(synth("beats", seconds=3.0)))
    before_bytes, before = path.read_bytes(), decode(path).y
    preview = set_genre(path, "rock", dry_run=True)
    assert (preview.kind, preview.old, preview.new, preview.changes) == (kind, None, "rock", True)
    assert path.read_bytes() == before_bytes  # a dry run changes nothing
    assert set_genre(path, "rock").changes
    assert "rock" in str(mutagen.File(path).tags)
    assert np.array_equal(decode(path).y, before)  # the samples are the same
    again = set_genre(path, "rock", dry_run=True)
    assert (again.old, again.changes) == ("rock", False)
    assert set_genre(path, "blues").old == "rock"


def test_a_file_without_a_genre_tag_format_is_a_tag_error(tmp_path):
    path = tmp_path / "song.au"
    path.write_bytes(_encode(synth("beats", seconds=2.0), "AU"))
    with pytest.raises(TagError, match="song.au"):
        set_genre(path, "rock")


# ---------------------------------------------------------------------------------------------
# The command line over a small collection (shipped default model)


@pytest.fixture(scope="module")
def collection(tmp_path_factory) -> Path:
    """A collection as people have one: nested artist/album folders, mixed formats, one broken file."""
    root = tmp_path_factory.mktemp("collection")
    for i, kind in enumerate(("tones", "beats", "buzz", "tones", "beats")):
        y = synth(kind, seed=i, seconds=4.0)
        folder = root / f"artist{i % 2}" / f"album{i}"
        folder.mkdir(parents=True)
        (folder / f"track{i}.{'mp3' if i % 2 else 'flac'}").write_bytes(_encode(y, "MP3" if i % 2 else "FLAC"))
    (root / "artist0" / "memo.m4a").write_bytes(_m4a(synth("buzz", seed=9, seconds=4.0)))
    (root / "artist1" / "broken.mp3").write_bytes(b"not music" * 100)
    return root


def test_predict_a_collection_resumes_and_tags(collection, tmp_path):
    out = tmp_path / "out.csv"
    first = _cli(["predict", str(collection / "artist0"), "--csv", str(out)], tmp_path / "cache")
    assert first.returncode == 0, first.stderr
    assert len(first.stdout.splitlines()) == 4  # album0, album2, album4 and the m4a memo
    done = _cli(["predict", str(collection), "--csv", str(out), "--write-tags", "--dry-run"], tmp_path / "cache")
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert lines[0] == f"4 of 7 files are already in {out}; predicting the other 3"
    assert sum(ln.startswith("would set ID3 genre of ") for ln in lines) == 2  # the two new MP3s
    assert any(ln.startswith(f"skipped {collection / 'artist1' / 'broken.mp3'}: ") for ln in lines)
    with open(out, newline="") as fh:
        header, *rows = list(csv.reader(fh))
    assert len(rows) == 6 and len({r[0] for r in rows}) == 6  # one row per readable file, none twice
    assert header[:3] == ["path", "genre", "probability"] and header[-1] == "p_rock"
    assert all(abs(sum(map(float, r[-10:])) - 1) < 2e-3 for r in rows)
    import mutagen

    assert all(mutagen.File(collection / "artist1" / f"album{i}" / f"track{i}.mp3").tags is None for i in (1, 3))
    again = _cli(["predict", str(collection), "--csv", str(out)], tmp_path / "cache")
    assert again.returncode == 0 and again.stdout == ""  # only the broken file is left, and it is skipped again
    assert "6 of 7 files are already" in again.stderr


def test_similar_over_a_collection_index(collection, tmp_path):
    cache = tmp_path / "cache"
    query = collection / "artist0" / "album0" / "track0.flac"  # tones, seed 0
    done = _cli(["similar", str(query), "--index", str(collection), "-k", "3", "--jobs", "1"], cache)
    assert done.returncode == 0, done.stderr
    rows = [line.split("\t") for line in done.stdout.splitlines()]
    assert [r[0] for r in rows] == ["1", "2", "3"] and str(query) not in [r[2] for r in rows]
    assert rows[0][2] == str(collection / "artist1" / "album3" / "track3.mp3")  # the other 'tones' clip
    assert float(rows[0][1]) >= float(rows[1][1]) >= float(rows[2][1])
    assert done.stderr.startswith(f"skipped {collection / 'artist1' / 'broken.mp3'}")
    assert len(list((cache / "indexes").glob("*.npz"))) == 1


def test_the_collection_index_is_updated_incrementally(tmp_path):
    root, store, config = tmp_path / "music", FeatureStore(tmp_path / "cache"), FeatureConfig()
    here = LocalEngine(n_jobs=1)
    files = [write_wav(root / "a" / f"{kind}{i}.wav", synth(kind, seed=i)) for i in range(2) for kind in ("tones", "beats")]
    index = CollectionIndex.update(root, files, config, store=store, engine=here)
    assert len(index) == 4 and not index.failed
    saved = CollectionIndex.file_for(root, config, store)
    stamp = saved.stat().st_mtime_ns
    assert len(CollectionIndex.update(root, files, config, store=store, engine=here)) == 4
    assert saved.stat().st_mtime_ns == stamp  # nothing changed: not rewritten
    new = write_wav(root / "b" / "buzz0.wav", synth("buzz"))
    files[0].unlink()
    index = CollectionIndex.update(root, [*files[1:], new], config, store=store, engine=here)
    assert sorted(index.paths) == sorted(map(str, [*files[1:], new]))
    hits = index.similar_to_file(new, k=2, store=store)
    assert str(new) not in [p for p, _ in hits] and len(hits) == 2


def test_exact_search_finds_planted_twins_among_100000():
    rng = np.random.default_rng(0)
    unit = unit_rows(rng.standard_normal((100_000, 200)).astype(np.float32))
    for target in (0, 54_321, 99_999):
        query = unit_rows((unit[target] + 0.01 * rng.standard_normal(200))[None])[0]
        best, sims = top_k(unit, query, 5)
        assert best[0] == target and sims[0] > 0.98 and np.all(np.diff(sims) <= 0)
        brute = np.argsort(-(unit @ query))[:5]
        assert best.tolist() == brute.tolist()


def test_the_similar_page_searches_a_collection_index(tmp_path, monkeypatch):
    """An index saved for the default model's features (vectors planted: the first track is the
    upload's own vector) is offered by the Similar page and searched with an upload."""
    from streamlit.testing.v1 import AppTest

    from genre.models import DEFAULT_MODEL_DIR, read_card
    from genre.pipeline import features_of
    from genre.similar import clip_vector

    config = read_card(DEFAULT_MODEL_DIR).config
    upload = _encode(synth("beats", seed=3, seconds=4.0), "WAV", "PCM_16")
    mine = clip_vector(features_of(upload, config)[0])
    root = tmp_path / "music"
    files = [write_wav(root / f"track{i}.wav", synth("tones", seed=i, seconds=1.5)) for i in range(20)]
    rng = np.random.default_rng(0)
    raw = np.stack([mine + 0.01 * rng.standard_normal(len(mine)).astype(np.float32)] +
                   [mine + 3 * rng.standard_normal(len(mine)).astype(np.float32) for _ in files[1:]])
    store = FeatureStore()  # the test's own $GENRE_CACHE_DIR, which the page reads too
    index = CollectionIndex.fit(str(root), [str(f) for f in files], np.zeros((20, 2), np.int64), raw, config)
    index.save(CollectionIndex.file_for(root, config, store))
    monkeypatch.setenv("GENRE_DATA_DIR", str(tmp_path / "no-dataset"))
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=120).switch_page("pages/similar.py").run()
    assert not at.exception
    at.selectbox(key="similar_where").set_value(str(root)).run()
    assert any("20 tracks under" in c.value for c in at.caption)
    at.file_uploader[0].set_value(("mine.wav", upload, "audio/wav")).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    table = at.dataframe[0].value
    assert len(table) == 6 and table["track"].iloc[0] == "track0.wav" and table["similarity"].iloc[0] > 0.99
