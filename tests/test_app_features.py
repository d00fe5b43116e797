"""Features page through AppTest: one figure for one or two clips, on one time scale, with units
and colour bars; A above B, side by side, or one clip full width."""
from __future__ import annotations

import io
import json

import soundfile as sf
from streamlit.testing.v1 import AppTest

from conftest import ROOT, SR, synth

VIEWS = ["Waveform", "Mel spectrogram", "MFCC", "Chroma", "Tonnetz", "Spectral contrast"]


def _page(monkeypatch, data_dir) -> AppTest:
    monkeypatch.setenv("GENRE_DATA_DIR", str(data_dir))
    return AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=60).switch_page("pages/features.py").run()


def _panels(at: AppTest) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


def _x_ranges(panel: dict) -> set[tuple]:
    layout = panel["layout"]
    return {tuple(layout[k]["range"]) for k in layout if k.startswith("xaxis")}


def _domains(panel: dict, axes: list[str]) -> list[tuple]:
    return [tuple(panel["layout"][a]["domain"]) for a in axes]


def test_two_dataset_clips_in_one_figure_a_above_b(monkeypatch, tiny_dataset):
    at = _page(monkeypatch, tiny_dataset)
    assert not at.exception and not at.error
    assert [s.value for s in at.selectbox if s.label == "Genre"] == ["beats", "buzz"]
    assert at.segmented_control(key="features_layout").value == "stacked"
    (panel,) = _panels(at)
    layout = panel["layout"]
    assert [a["text"].split(" · ")[0] for a in layout["annotations"]] == VIEWS
    heat = [t for t in panel["data"] if t["type"] == "heatmap"]
    assert len(heat) == 10 and sum(t["showscale"] for t in heat) == 5  # a colour bar per view
    assert [t["colorbar"]["title"]["text"] for t in heat if t["showscale"]] == ["dB", "sd", "of max", "coord.", "sd"]
    assert heat[0]["y"][0].endswith(" Hz") and "dB" in heat[0]["hovertemplate"]  # mel hover in Hz and dB
    assert layout["yaxis"]["title"]["text"] == "<b>A</b> · amplitude"
    assert layout["yaxis2"]["title"]["text"] == "<b>B</b> · amplitude"
    ranges = _x_ranges(panel)
    assert len(ranges) == 1 and abs(ranges.pop()[1] - 4.0) < 0.01
    assert len(layout["shapes"]) > 0  # beat marks of the 120 BPM clip
    tempo = {m.label: m.value for m in at.metric}["Tempo"]
    assert tempo.endswith("BPM")


def test_an_upload_beside_a_dataset_clip_lines_up(monkeypatch, tiny_dataset):
    at = _page(monkeypatch, tiny_dataset)
    at.segmented_control(key="features_layout").set_value("columns").run()
    at.radio(key="features_1_source").set_value("upload").run()
    buf = io.BytesIO()
    sf.write(buf, synth("tones", seconds=6.0), SR, format="WAV")
    at.file_uploader(key="features_1_upload").set_value(("mine.wav", buf.getvalue(), "audio/wav")).run()
    assert not at.exception and not at.error
    (panel,) = _panels(at)
    ranges = _x_ranges(panel)
    assert len(ranges) == 1 and abs(ranges.pop()[1] - 6.0) < 0.01  # both on the longer clip's scale
    # side by side: A's rows in the odd axes, B's in the even ones, at the same heights
    n = sum(1 for k in panel["layout"] if k.startswith("yaxis"))
    a_axes = ["yaxis" if i == 1 else f"yaxis{i}" for i in range(1, n + 1, 2)]
    b_axes = [f"yaxis{i}" for i in range(2, n + 1, 2)]
    assert n == 12 and _domains(panel, a_axes) == _domains(panel, b_axes)
    assert [a["text"] for a in panel["layout"]["annotations"]][-2:] == ["<b>A</b>", "<b>B</b>"]


def test_one_clip_full_width(monkeypatch, tiny_dataset):
    at = _page(monkeypatch, tiny_dataset)
    at.segmented_control(key="features_layout").set_value("one").run()
    assert not at.exception and not at.error
    assert [s.value for s in at.subheader] == ["Clip A"] and len([s for s in at.selectbox if s.label == "Genre"]) == 1
    (panel,) = _panels(at)
    assert sum(t["type"] == "heatmap" for t in panel["data"]) == 5
    assert panel["layout"]["yaxis"]["title"]["text"] == "amplitude"


def test_without_dataset_the_page_asks_for_uploads(monkeypatch, tmp_path):
    at = _page(monkeypatch, tmp_path)
    assert not at.exception
    assert len(at.file_uploader) == 2 and not at.radio
    assert [i.value for i in at.info] == ["Pick a dataset clip or upload one."] * 2
    assert not at.get("plotly_chart")
