"""Features page through AppTest: two clips side by side on one time scale."""
from __future__ import annotations

import io
import json

import soundfile as sf
from streamlit.testing.v1 import AppTest

from conftest import ROOT, SR, synth


def _page(monkeypatch, data_dir) -> AppTest:
    monkeypatch.setenv("GENRE_DATA_DIR", str(data_dir))
    return AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=60).switch_page("pages/features.py").run()


def _panels(at: AppTest) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


def test_two_dataset_clips_share_the_time_axis(monkeypatch, tiny_dataset):
    at = _page(monkeypatch, tiny_dataset)
    assert not at.exception and not at.error
    assert [s.value for s in at.selectbox if s.label == "Genre"] == ["beats", "buzz"]
    panels = _panels(at)
    assert len(panels) == 2
    for panel in panels:
        layout = panel["layout"]
        titles = [a["text"] for a in layout["annotations"]]
        assert [t.split(" · ")[0] for t in titles] == ["Waveform", "Mel spectrogram", "MFCC", "Chroma", "Tonnetz",
                                                        "Spectral contrast"]
        assert [t["type"] for t in panel["data"]].count("heatmap") == 5
        ranges = {tuple(layout[k]["range"]) for k in layout if k.startswith("xaxis")}
        assert len(ranges) == 1 and abs(ranges.pop()[1] - 4.0) < 0.01
    beats_panel = panels[0]
    assert len(beats_panel["layout"]["shapes"]) > 0  # beat marks on the 120 BPM clip
    tempo = {m.label: m.value for m in at.metric}["Tempo"]
    assert tempo.endswith("BPM")


def test_an_upload_is_compared_with_a_dataset_clip(monkeypatch, tiny_dataset):
    at = _page(monkeypatch, tiny_dataset)
    at.radio(key="features_1_source").set_value("upload").run()
    buf = io.BytesIO()
    sf.write(buf, synth("tones", seconds=6.0), SR, format="WAV")
    at.file_uploader(key="features_1_upload").set_value(("mine.wav", buf.getvalue(), "audio/wav")).run()
    assert not at.exception and not at.error
    panels = _panels(at)
    assert len(panels) == 2
    ranges = {tuple(p["layout"]["xaxis"]["range"]) for p in panels}
    assert len(ranges) == 1 and abs(ranges.pop()[1] - 6.0) < 0.01  # both on the longer clip's scale


def test_without_dataset_the_page_asks_for_uploads(monkeypatch, tmp_path):
    at = _page(monkeypatch, tmp_path)
    assert not at.exception
    assert len(at.file_uploader) == 2 and not at.radio
    assert [i.value for i in at.info] == ["Pick a dataset clip or upload one."] * 2
