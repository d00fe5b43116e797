"""Similar page (AppTest) and its core, genre.similar."""
from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from streamlit.testing.v1 import AppTest

from conftest import ROOT, SR, synth
from genre.similar import NeighbourIndex
from genre.ui import cache


def _clips(n: int) -> pd.DataFrame:
    return pd.DataFrame({"path": [f"/d/{i}.wav" for i in range(n)], "label": ["a", "b"] * (n // 2),
                         "clip_id": [str(i) for i in range(n)], "artist": None, "title": None})


def test_index_finds_same_direction_and_leaves_the_query_out():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(2, 8)) * 5
    vectors = np.stack([centres[i % 2] + rng.normal(scale=0.1, size=8) for i in range(10)])
    index = NeighbourIndex.fit(_clips(10), vectors)
    hits = index.neighbours_of("/d/0.wav", k=3)
    assert "/d/0.wav" not in set(hits["path"]) and list(hits["label"]) == ["a"] * 3
    assert hits["similarity"].is_monotonic_decreasing and hits["similarity"].iloc[0] > 0.9
    assert list(index.query(centres[1], k=4)["label"]) == ["b"] * 4
    assert index.neighbours_of("/elsewhere.wav") is None
    with pytest.raises(ValueError, match="features"):
        index.query(np.zeros(3))
    with pytest.raises(ValueError, match="at least two"):
        NeighbourIndex.fit(_clips(2).head(1), vectors[:1])


@pytest.fixture
def similar_page(monkeypatch, tiny_dataset) -> AppTest:
    cache._indexes().clear()
    monkeypatch.setenv("GENRE_DATA_DIR", str(tiny_dataset))
    return AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=60).switch_page("pages/similar.py").run()


def test_similar_page_lists_neighbours_of_a_dataset_clip(similar_page):
    at = similar_page
    assert not at.exception
    assert "18 are not cached yet and are extracted now" in at.info[0].value
    at.button[0].click().run(timeout=180)
    assert not at.exception and not at.error
    table = at.dataframe[0].value
    assert list(table.columns) == ["label", "artist", "title", "similarity"] and len(table) == 6
    assert table["similarity"].is_monotonic_decreasing
    assert (table["label"].head(3) == "beats").all()  # the first clip of the first genre
    assert "nearest clips are beats too" in at.markdown[0].value
    assert len(at.get("audio")) == 1 + 6  # the query and one player per neighbour
    # the index is kept for the next visit: no button, straight to the neighbours
    again = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=60).switch_page("pages/similar.py").run()
    assert not [b for b in again.button if b.label == "Build the similarity index"]
    assert len(again.dataframe[0].value) == 6
    cache._indexes().clear()  # a new server: the index is gone, the features are still on disk
    fresh = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=60).switch_page("pages/similar.py").run()
    assert fresh.info[0].value == "The features of all 18 clips are cached: building the index takes a few seconds."


def test_similar_page_finds_neighbours_of_an_upload(similar_page):
    at = similar_page
    at.button[0].click().run(timeout=180)
    at.radio(key="similar_source").set_value("upload").run()
    buf = io.BytesIO()
    sf.write(buf, synth("buzz", seconds=5.0, seed=9), SR, format="WAV")
    at.file_uploader(key="similar_upload").set_value(("mine.wav", buf.getvalue(), "audio/wav")).run()
    assert not at.exception and not at.error
    table = at.dataframe[0].value
    assert table["label"].iloc[0] == "buzz"
    # a synthetic buzz is not music to AudioSet: the page says its neighbours are only near in sound
    assert [w.value for w in at.warning if w.value.startswith("**This doesn't sound like music**")]


def test_similar_page_without_dataset_says_what_to_do(monkeypatch, tmp_path):
    monkeypatch.setenv("GENRE_DATA_DIR", str(tmp_path))
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=60).switch_page("pages/similar.py").run()
    assert not at.exception and not at.button
    assert "put GTZAN under data/ or set the folder in the sidebar" in at.info[0].value


def test_neighbours_can_skip_the_query_artist():
    clips = _clips(6).assign(artist=["x", "x", "x", "y", "y", None])
    vectors = np.eye(6) + 0.01
    vectors[1] += vectors[0]  # clip 1 (same artist as 0) is the nearest to clip 0
    index = NeighbourIndex.fit(clips, vectors)
    assert index.neighbours_of("/d/0.wav", k=1)["path"].iloc[0] == "/d/1.wav"
    others = index.neighbours_of("/d/0.wav", k=5, other_artists=True)
    assert len(others) == 3 and "x" not in set(others["artist"])  # y, y and the unknown artist


def test_missing_artist_and_title_show_blank(monkeypatch, tiny_dataset, tmp_path):
    """Clips without an index entry have no artist or title: the table shows them blank, never 'None'."""
    import shutil

    root = tmp_path / "partly_indexed"
    shutil.copytree(tiny_dataset, root)
    index = root / "metadata" / "GTZANindex.txt"
    index.write_text("".join(line + "\n" for line in index.read_text().splitlines() if not line.startswith("beats.")))
    cache._indexes().clear()
    monkeypatch.setenv("GENRE_DATA_DIR", str(root))
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=60).switch_page("pages/similar.py").run()
    at.button[0].click().run(timeout=180)
    assert not at.exception and not at.error
    table = at.dataframe[0].value
    beats = table[table["label"] == "beats"]
    assert len(beats) >= 1 and table[["artist", "title"]].notna().all().all()
    assert (beats["artist"] == "").all() and (beats["title"] == "").all()
    assert not any("None" in c.value for c in at.caption)
