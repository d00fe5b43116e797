"""genre.ui.recorder: the hands-free recorder is audio-recorder-streamlit's own build with its
microphone request changed to raw capture, made once; a build it cannot change is not offered."""
from __future__ import annotations

from streamlit.testing.v1 import AppTest

from conftest import ROOT
from genre.ui import recorder


def test_the_served_build_asks_for_raw_capture(tmp_path):
    source = recorder._build_dir()
    build = recorder.raw_capture_build(source, tmp_path)
    scripts = b"".join(p.read_bytes() for p in (build / "static" / "js").glob("*.js"))
    assert scripts.count(recorder.RAW_CAPTURE) == 1 and recorder.VOICE_CALL not in scripts
    assert b"echoCancellation:!1" in recorder.RAW_CAPTURE and b"autoGainControl:!1" in recorder.RAW_CAPTURE
    assert (build / "index.html").read_bytes() == (source / "index.html").read_bytes()
    assert recorder.VOICE_CALL in b"".join(p.read_bytes() for p in (source / "static" / "js").glob("*.js"))
    assert recorder.raw_capture_build(source, tmp_path) == build  # made once
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]


def test_a_build_without_the_known_request_is_not_offered(tmp_path):
    changed = tmp_path / "build"
    (changed / "static" / "js").mkdir(parents=True)
    (changed / "static" / "js" / "main.js").write_bytes(b"navigator.mediaDevices.getUserMedia({audio:true})")
    assert recorder.raw_capture_build(changed, tmp_path / "out") is None


def test_predict_says_when_the_hands_free_recorder_is_off(monkeypatch, tmp_path):
    monkeypatch.setattr(recorder, "available", lambda: False)
    monkeypatch.setenv("GENRE_DATA_DIR", str(tmp_path))
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=60).switch_page("pages/predict.py").run()
    at.radio(key="predict_source").set_value("record").run()
    assert not at.exception
    assert any("The hands-free recorder is off" in c.value for c in at.caption)
