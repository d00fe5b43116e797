"""Predict page through AppTest: upload, browser recording, dataset clip, unusable audio and
a broken model that falls back to the default."""
from __future__ import annotations

import dataclasses
import io
import json
import shutil

import numpy as np
import pytest
import soundfile as sf
import streamlit as st
from streamlit.testing.v1 import AppTest

from conftest import ROOT, SR, synth
from genre import models
from genre.models import DEFAULT_MODEL_DIR, read_card
from genre.ui import cache

LABELS = json.loads((DEFAULT_MODEL_DIR / "card.json").read_text())["labels"]
DEFAULT_CONFIG = read_card(DEFAULT_MODEL_DIR).config
NOT_MUSIC = "**This doesn't sound like music**"


def _wav(kind: str = "buzz", seconds: float = 7.0) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, synth(kind, seconds=seconds), SR, format="WAV")
    return buf.getvalue()


@pytest.fixture
def predict_page(monkeypatch, tmp_path) -> AppTest:
    monkeypatch.setenv("GENRE_DATA_DIR", str(tmp_path))
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=60).run()
    return at.switch_page("pages/predict.py").run()


def _figures(at: AppTest) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


def _assert_prediction_shown(at: AppTest) -> list[dict]:
    """The genre answer is shown, in the open or (for the synthetic sounds, which are not music to
    AudioSet) folded under the plain "not music" message; no other error."""
    assert not at.exception
    assert all(e.value.startswith(NOT_MUSIC) for e in at.error), [e.value for e in at.error]
    figures = _figures(at)
    bars = figures[0]["data"][0]
    assert bars["type"] == "bar" and sorted(bars["y"]) == sorted(LABELS)
    heading = next(m.value for m in at.markdown if m.value.startswith("#### "))
    assert heading.split()[1] in LABELS
    return figures


def test_page_states_the_upload_limit(predict_page):
    at = predict_page
    assert not at.exception
    assert f"up to {st.get_option('server.maxUploadSize')} MB" in at.caption[0].value
    assert at.info[0].value.startswith("Upload a clip")
    assert at.radio[0].options == ["Upload a file", "Record"]  # no dataset in this folder


def test_upload_shows_probabilities_timeline_and_spectrogram(predict_page):
    at = predict_page
    at.file_uploader[0].set_value(("song.wav", _wav(seconds=7.0), "audio/wav")).run()
    figures = _assert_prediction_shown(at)
    types = [f["data"][0]["type"] for f in figures]
    assert types == ["bar", "heatmap", "heatmap"]  # bars, timeline (2 segments), mel spectrogram
    assert figures[2]["layout"]["xaxis"]["title"]["text"] == "time (s)"
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Duration"] == "7.0 s" and metrics["Channels"] == "mono"
    assert metrics["Original rate"] == f"{SR / 1000:g} kHz"
    assert metrics["Analysed at"] == f"{DEFAULT_CONFIG.sr / 1000:g} kHz"
    assert any(c.value.startswith("Why: ") for c in at.caption)


def _array_bytes(value) -> int:
    """Bytes of every numpy array held by ``value`` (dataclasses, dicts, lists and tuples walked)."""
    if isinstance(value, np.ndarray):
        return value.nbytes
    if dataclasses.is_dataclass(value):
        return sum(_array_bytes(getattr(value, f.name)) for f in dataclasses.fields(value))
    if isinstance(value, dict):
        return sum(_array_bytes(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return sum(_array_bytes(v) for v in value)
    return 0


def test_a_cached_analysis_keeps_no_samples():
    """32 cached analyses of 30 s clips would otherwise hold ~120 MB of samples nobody draws."""
    data = _wav(seconds=30.0)
    analysis = cache._analyse(cache.digest(data), str(DEFAULT_MODEL_DIR), cache.card_mtime(DEFAULT_MODEL_DIR),
                              data, "song.wav")
    audio = analysis.prediction.audio
    assert audio.seconds == pytest.approx(30.0) and audio.sr == DEFAULT_CONFIG.sr
    held = _array_bytes(analysis)
    assert analysis.log_mel.nbytes <= held < 1_000_000  # the walk sees the arrays; 30 s of samples is 3.8 MB


def test_recording_shows_probabilities(predict_page):
    at = predict_page
    at.radio[0].set_value("record").run()
    assert at.audio_input[0].sample_rate == 44100
    at.audio_input[0].set_value(("recording.wav", _wav("tones", seconds=4.0), "audio/wav")).run()
    figures = _assert_prediction_shown(at)
    assert [f["data"][0]["type"] for f in figures] == ["bar", "heatmap"]  # one segment: no timeline


def test_unusable_audio_is_an_error_not_a_traceback(predict_page):
    at = predict_page
    at.file_uploader[0].set_value(("notes.wav", b"these are not audio bytes" * 10, "audio/wav")).run()
    assert not at.exception
    assert "not audio in a supported format" in at.error[0].value
    assert not at.get("plotly_chart")


def test_broken_model_falls_back_to_default_with_warning(monkeypatch, tmp_path):
    broken = tmp_path / "models" / "broken"
    broken.mkdir(parents=True)
    shutil.copy(DEFAULT_MODEL_DIR / "card.json", broken / "card.json")
    (broken / "model.keras").write_bytes(b"not a zip file")
    monkeypatch.setattr(models, "MODELS_DIR", tmp_path / "models")
    monkeypatch.setenv("GENRE_DATA_DIR", str(tmp_path))
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=60).switch_page("pages/predict.py").run()
    at.sidebar.selectbox[0].select("broken").run()
    assert "Model **broken**" in at.caption[0].value
    at.file_uploader[0].set_value(("song.wav", _wav(), "audio/wav")).run()
    assert any("damaged" in w.value and "default model instead" in w.value for w in at.warning)
    _assert_prediction_shown(at)
    assert at.caption[-1].value.startswith("Predicted by model default")


def test_dataset_clip_can_be_predicted(monkeypatch, tiny_dataset):
    monkeypatch.setenv("GENRE_DATA_DIR", str(tiny_dataset))
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=60).run()
    at.switch_page("pages/predict.py").run()
    at.radio[0].set_value("dataset").run()
    assert at.selectbox[0].options == ["beats", "buzz", "tones"]
    _assert_prediction_shown(at)


def _view_script():
    import numpy as np

    from genre.backbones.embeddings import backbone_config
    from genre.clip import ClipFeatures
    from genre.predict import Prediction
    from genre.ui import widgets

    probs = np.array([[0.2, 0.3, 0.5], [0.6, 0.3, 0.1], [0.1, 0.2, 0.7]])
    tags = np.zeros((3, 4))
    tags[:, 2], tags[:, 0], tags[:, 1] = 0.9, 0.5, 0.2
    feats = ClipFeatures(np.zeros((3, 2), np.float32), np.arange(3) * 3.0, ["a", "b"], 9.0, extras={"tags": tags})
    widgets.prediction_view(Prediction(["blues", "jazz", "rock"], probs.mean(axis=0), probs, feats.starts, feats),
                            config=backbone_config("MSD_musicnn"))


def test_prediction_view_explains_an_unsure_backbone_prediction(monkeypatch):
    from genre.backbones import embeddings

    monkeypatch.setattr(embeddings, "describing_labels", lambda name: ["guitar", "slow", "drums", "piano"])
    at = AppTest.from_function(_view_script, default_timeout=30).run()
    assert not at.exception
    assert at.warning[0].value.startswith("Not sure: the best guess has only 43%")
    assert at.caption[0].value.startswith("Could not tell whether this is music")  # no verdict given
    why = at.caption[1].value
    assert why == "Why: 2 of 3 segments voted rock, 1 blues. MusiCNN hears: drums, guitar, slow, piano."
    assert [f["data"][0]["type"] for f in _figures(at)] == ["bar", "heatmap"]


def _non_music_view_script():
    import numpy as np

    from genre.clip import ClipFeatures
    from genre.features import FeatureConfig
    from genre.predict import Prediction
    from genre.ui import widgets
    from genre.verdict import MusicVerdict

    probs = np.array([[0.1, 0.5, 0.4]])
    feats = ClipFeatures(np.zeros((1, 2), np.float32), np.zeros(1), ["a", "b"], 3.0)
    verdict = MusicVerdict(0.03, False, (("Speech", 0.85), ("Speech synthesizer", 0.6), ("Narration, monologue", 0.1)))
    widgets.prediction_view(Prediction(["blues", "hiphop", "rock"], probs[0], probs, feats.starts, feats,
                                       verdict=verdict), config=FeatureConfig())


def test_a_prediction_of_non_music_says_so_and_folds_the_genre_away():
    at = AppTest.from_function(_non_music_view_script, default_timeout=30).run()
    assert not at.exception
    assert at.error[0].value == ("**This doesn't sound like music** (AudioSet's Music: 3%). It sounds like: "
                                 "Speech 85%, Speech synthesizer 60%, Narration, monologue 10%.")
    assert at.expander[0].label == "If it were music: hiphop 50% (not a real answer)"
    assert not [m for m in at.markdown if m.value.startswith("#### hiphop")] or \
        at.expander[0].markdown[0].value.startswith("#### hiphop")


def test_a_spoken_upload_is_not_called_a_genre(tmp_path):
    from conftest import non_music

    import io
    import soundfile as sf

    buffer = io.BytesIO()
    sf.write(buffer, non_music("speech"), 22050, format="WAV")
    at = AppTest.from_file(str(ROOT / "pages" / "predict.py"), default_timeout=120).run()
    at.file_uploader[0].set_value(("talk.wav", buffer.getvalue(), "audio/wav")).run()
    assert not at.exception
    assert at.error and at.error[0].value.startswith("**This doesn't sound like music**"), [e.value for e in at.error]
    assert "Speech" in at.error[0].value
    assert at.expander[0].label.startswith("If it were music: ")


def test_a_dataset_clip_shows_its_true_genre_and_whether_the_model_saw_it(monkeypatch, tiny_dataset, tmp_path):
    """The folder's label is shown; a model whose card lists the clip among its training (or
    validation) clips says so."""
    seen = tmp_path / "models" / "seen"
    shutil.copytree(DEFAULT_MODEL_DIR, seen)
    card = json.loads((seen / "card.json").read_text())
    card["split"] = {"kind": "artist", "train_clip_ids": ["beats.00000"], "valid_clip_ids": ["beats.00001"]}
    (seen / "card.json").write_text(json.dumps(card))
    shutil.copytree(DEFAULT_MODEL_DIR, tmp_path / "models" / "default")
    monkeypatch.setattr(models, "MODELS_DIR", tmp_path / "models")
    monkeypatch.setenv("GENRE_DATA_DIR", str(tiny_dataset))
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=60).switch_page("pages/predict.py").run()
    at.radio[0].set_value("dataset").run()
    _assert_prediction_shown(at)
    truth = next(m.value for m in at.markdown if m.value.startswith("True genre"))
    assert truth == (f"True genre: **beats** (the clip's folder) · this model does not know beats; it answers one "
                     f"of its {len(LABELS)} genres")
    assert not at.info  # the default model never saw the tiny dataset
    at.sidebar.selectbox[0].select("seen").run()
    assert [i.value.split(" (")[0] for i in at.info] == ["**This model was trained on this clip**"]
    at.selectbox(key="predict_clip_beats").set_value(str(tiny_dataset / "beats" / "beats.00001.wav")).run()
    assert not at.exception
    assert [i.value.split(" (")[0] for i in at.info] == ["**This clip was among its validation clips**"]
    at.selectbox(key="predict_clip_beats").set_value(str(tiny_dataset / "beats" / "beats.00002.wav")).run()
    assert not at.info


@pytest.mark.parametrize("sr", [16000, 22050, 32000, 44100])
@pytest.mark.parametrize("seconds", [3.0, 30.0])
def test_the_spectrogram_is_computed_at_the_hop_it_is_drawn_at(sr, seconds):
    """The smallest hop (a multiple of 512) whose frames fit the figure unpooled."""
    from genre import plots
    from genre.ui import cache

    hop, samples = cache.view_hop_length(sr, seconds=seconds), int(seconds * sr)
    assert hop % 512 == 0 and 1 + samples // hop <= plots.MAX_COLUMNS
    assert hop == 512 or samples / (hop - 512) > plots.MAX_COLUMNS - 1
    assert seconds > 10 or hop == 512  # a short clip keeps the finest hop
