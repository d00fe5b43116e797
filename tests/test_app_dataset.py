"""Dataset page through AppTest: the no-dataset hint, and on the tiny synthetic dataset the
overview charts, the searchable table with its player, distributions, the clip map (PCA and
t-SNE, click to play) and the list of files that could not be used."""
from __future__ import annotations

import json
import shutil

import pytest
from streamlit.testing.v1 import AppTest

from conftest import ROOT
from genre.dataset import audio_info

PAGE = str(ROOT / "pages" / "dataset.py")


def page(dataset_dir) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.session_state["dataset_dir"] = str(dataset_dir)
    return at


def charts(at: AppTest) -> list[dict]:
    return [json.loads(e.proto.spec) for e in at.get("plotly_chart")]


def test_without_dataset_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("GENRE_DATA_DIR", str(tmp_path / "nowhere"))
    at = page(tmp_path / "nowhere").run()
    assert not at.exception
    hint = at.info[0].value
    assert "data/" in hint and "sidebar" in hint and "Dataset folder" in hint
    assert not at.get("plotly_chart") and not at.dataframe


def test_dataset_page_on_tiny_dataset(warm_cache, tiny_dataset, tmp_path):
    root = tmp_path / "tiny"
    shutil.copytree(tiny_dataset, root)
    (root / "beats" / "broken.wav").write_bytes(b"RIFF not really a wave file")
    at = page(root).run()
    assert not at.exception, at.exception
    assert [m.value for m in at.metric[:3]] == ["19", "3", "9"]

    figs = charts(at)
    assert len(figs) == 3  # every clip lasts 4 s: said in words, not drawn as a histogram of one bar
    counts, distribution, clip_map = figs
    assert {t["x"][0]: t["y"][0] for t in [counts["data"][0]]} == {"beats": 7}
    assert any(m.value.startswith("All 18 readable clips last **4.0 s**") for m in at.markdown)
    assert {t["name"] for t in distribution["data"]} == {"beats", "buzz", "tones"}
    points = sum(len(t["customdata"]) for t in clip_map["data"])
    assert points == 18 and clip_map["layout"]["xaxis"]["title"]["text"] == "PC1"
    assert "customdata" in clip_map["data"][0]

    table = at.dataframe[1].value
    assert len(table) == 19 and list(table.columns) == ["clip", "genre", "artist", "title"]
    assert len(at.get("audio")) == 1

    expander = next(e for e in at.expander if "could not be used" in e.label)
    assert "1 failed extraction" in expander.label
    failed = expander.dataframe[0].value
    assert failed["path"].str.endswith("broken.wav").all() and failed["reason"].str.len().min() > 10

    at.text_input(key="dataset_search").input("BUZZ-artist-1").run()
    assert at.dataframe[1].value["clip"].tolist() == ["buzz.00002", "buzz.00003"]
    assert at.selectbox(key="dataset_play").options == [
        "buzz.00002 · buzz-artist-1 — song 2", "buzz.00003 · buzz-artist-1 — song 3"]

    at.selectbox(key="dataset_feature").set_value("rms_mean")
    at.radio(key="dataset_plot_kind").set_value("violin")
    at.radio(key="dataset_map_method").set_value("tsne").run()
    assert not at.exception
    _, distribution, clip_map = charts(at)
    assert distribution["data"][0]["type"] == "violin"
    assert distribution["layout"]["yaxis"]["title"]["text"] == "RMS level, mean over the segment (full scale = 1)"
    assert clip_map["layout"]["xaxis"]["title"]["text"] == "t-SNE 1"

    # a click on a map point plays that clip
    first = clip_map["data"][0]["customdata"][0]
    at.session_state["dataset_map"] = {"selection": {"points": [{"customdata": first}], "point_indices": [0],
                                                     "box": [], "lasso": []}}
    at.run()
    assert not at.exception and len(at.get("audio")) == 2
    assert any(c.value.startswith(first[1]) for c in at.caption)
    table_player, map_player = (a.proto for a in at.get("audio"))
    assert map_player.autoplay and not table_player.autoplay  # the click starts playback, no second click


def test_dataset_page_through_the_app(warm_cache, tiny_dataset, monkeypatch):
    monkeypatch.setenv("GENRE_DATA_DIR", str(tiny_dataset))
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=120).run()
    at.switch_page("pages/dataset.py").run()
    assert not at.exception
    assert at.title[0].value == "Dataset" and len(charts(at)) == 3  # durations: one length, said in words


def test_audio_info_reads_headers(tiny_dataset, tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"nope")
    info = audio_info([tiny_dataset / "tones" / "tones.00000.wav", bad])
    assert info.loc[0, "seconds"] == pytest.approx(4.0) and info.loc[0, "samplerate"] == 22050
    assert info.loc[0, "channels"] == 1 and info.loc[0, "format"] == "WAV"
    assert info["seconds"].isna().tolist() == [False, True] and "bad.wav" in info.loc[1, "error"]


def test_extraction_is_toasted_only_on_the_visit_that_extracts(tiny_dataset, tmp_path):
    """An empty feature cache: the first visit extracts and says so; a rerun and a later visit
    (another session of the same server) find everything cached and say nothing."""
    root = tmp_path / "fresh"
    shutil.copytree(tiny_dataset, root)
    first = page(root).run()
    assert not first.exception
    assert [t.value for t in first.toast] == ["Extracted features of 18 clips; they are cached for your next visit."]
    first.radio(key="dataset_plot_kind").set_value("violin").run()
    assert not first.exception and not first.toast
    later = page(root).run()
    assert not later.exception and len(charts(later)) == 3
    assert not later.toast
