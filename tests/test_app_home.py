"""Home page (streamlit_app.py) through AppTest: model card, dataset status, quick prediction,
and no TensorFlow import while nothing is predicted."""
from __future__ import annotations

import ast
import io
import json
import os
import shutil
import subprocess
import sys

import soundfile as sf
from streamlit.testing.v1 import AppTest

from conftest import ROOT, SR, synth
from genre import backbones, models
from genre.models import DEFAULT_MODEL_DIR, read_card

APP = str(ROOT / "streamlit_app.py")


def _app(monkeypatch, data_dir) -> AppTest:
    monkeypatch.setenv("GENRE_DATA_DIR", str(data_dir))
    return AppTest.from_file(APP, default_timeout=60)


def _wav(kind: str = "beats", seconds: float = 4.0) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, synth(kind, seconds=seconds), SR, format="WAV")
    return buf.getvalue()


def test_home_without_dataset_says_what_to_do(monkeypatch, tmp_path):
    at = _app(monkeypatch, tmp_path).run()
    assert not at.exception
    assert at.title[0].value.endswith("genre")
    assert any("put GTZAN under data/ or set the folder in the sidebar" in i.value for i in at.info)
    assert [m.label for m in at.metric] == ["Validation accuracy", "Balanced accuracy"]
    assert any("Cross-validated balanced accuracy" in c.value for c in at.caption)
    text = " ".join(m.value for m in at.markdown)
    assert backbones.title(read_card(DEFAULT_MODEL_DIR).config.kind) in text and "blues" in text and "rock" in text
    assert at.sidebar.text_input[0].value == str(tmp_path)


def test_home_counts_clips_per_genre(monkeypatch, tiny_dataset):
    at = _app(monkeypatch, tiny_dataset).run()
    assert not at.exception and not at.info
    counts = at.dataframe[0].value
    assert dict(zip(counts["genre"], counts["clips"])) == {"beats": 6, "buzz": 6, "tones": 6}
    assert any("18 clips" in m.value for m in at.markdown)


def test_home_hands_its_clip_to_predict(monkeypatch, tmp_path):
    """"Open in Predict" opens the Predict page with the same clip chosen and the same answer; the
    person can still switch to an upload of their own."""
    at = _app(monkeypatch, tmp_path).run()
    at.file_uploader[0].set_value(("my song.wav", _wav(), "audio/wav")).run()
    home_answer = [m.value for m in at.markdown if m.value.startswith("#### ")]
    at.button(key="home_to_predict").click().run()
    assert not at.exception
    at.switch_page("pages/predict.py").run()  # AppTest does not follow st.switch_page by itself
    assert not at.exception
    assert at.radio(key="predict_source").value == "handed"
    assert any("**my song.wav**, handed over from Home." in c.value for c in at.caption)
    assert [m.value for m in at.markdown if m.value.startswith("#### ")] == home_answer and home_answer
    assert at.get("plotly_chart")  # the page's own views: bars, spectrogram
    at.radio(key="predict_source").set_value("upload").run()
    assert not at.exception and len(at.file_uploader) == 1


def test_home_notes_a_card_without_metrics(monkeypatch, tmp_path):
    plain = tmp_path / "models" / "plain"
    shutil.copytree(DEFAULT_MODEL_DIR, plain)
    card = json.loads((plain / "card.json").read_text())
    card["metrics"] = {}
    (plain / "card.json").write_text(json.dumps(card))
    monkeypatch.setattr(models, "MODELS_DIR", tmp_path / "models")
    at = _app(monkeypatch, tmp_path).run()
    assert at.sidebar.selectbox[0].options == ["default", "plain"]  # the shipped model is always offered
    at = at.sidebar.selectbox[0].select("plain").run()
    assert not at.exception
    assert any("no validation metrics" in i.value for i in at.info)
    assert not at.metric


def test_home_quick_prediction_shows_top3(monkeypatch, tmp_path):
    at = _app(monkeypatch, tmp_path).run()
    at.file_uploader[0].set_value(("clip.wav", _wav(), "audio/wav")).run()
    assert not at.exception  # a synthetic clip: the bars sit under the "not music" message
    assert all(e.value.startswith("**This doesn't sound like music**") for e in at.error)
    bars = json.loads(at.get("plotly_chart")[0].proto.spec)["data"][0]
    labels = json.loads((DEFAULT_MODEL_DIR / "card.json").read_text())["labels"]
    assert len(bars["y"]) == 3 and set(bars["y"]) <= set(labels)


def test_home_does_not_import_tensorflow(tiny_dataset):
    code = (
        "import sys\n"
        "from streamlit.testing.v1 import AppTest\n"
        f"at = AppTest.from_file({APP!r}, default_timeout=60).run()\n"
        "assert not at.exception, at.exception\n"
        "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))\n"
    )
    env = {**os.environ, "GENRE_DATA_DIR": str(tiny_dataset)}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"


def _damaged_model(models_dir, name: str = "damaged"):
    """A copy of the default model whose model.keras lost its second half (a killed copy)."""
    folder = models_dir / name
    shutil.copytree(DEFAULT_MODEL_DIR, folder)
    data = (folder / "model.keras").read_bytes()
    (folder / "model.keras").write_bytes(data[: len(data) // 2])
    return folder


def test_home_warns_about_a_damaged_model_as_predict_does(monkeypatch, tmp_path):
    """A damaged model.keras: Home shows the Predict page's warning and the card of the default
    model that predictions then use, not a healthy-looking card of the broken one."""
    _damaged_model(tmp_path / "models")
    monkeypatch.setattr(models, "MODELS_DIR", tmp_path / "models")
    at = _app(monkeypatch, tmp_path).run()
    at.sidebar.selectbox[0].select("damaged").run()
    assert not at.exception and not at.error
    expected = ("damaged: model.keras is damaged or not a Keras model (BadZipFile). "
                "Using the shipped default model instead.")
    assert [w.value for w in at.warning] == [expected]
    assert [h.value for h in at.subheader][:2] == ["Model · damaged", "Model · default (used instead)"]
    at.switch_page("pages/predict.py").run()
    at.file_uploader[0].set_value(("clip.wav", _wav(), "audio/wav")).run()
    assert expected in [w.value for w in at.warning]  # the Predict page says the same


def test_home_checks_a_damaged_model_without_tensorflow(tmp_path):
    _damaged_model(tmp_path / "models")
    code = (
        "import sys\n"
        "from streamlit.testing.v1 import AppTest\n"
        f"at = AppTest.from_file({APP!r}, default_timeout=60)\n"
        "at.query_params['model'] = 'damaged'\n"
        "at.run()\n"
        "assert not at.exception, at.exception\n"
        "print([w.value.split(':')[0] for w in at.warning])\n"
        "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))\n"
    )
    env = {**os.environ, "GENRE_DATA_DIR": str(tmp_path), "GENRE_MODELS_DIR": str(tmp_path / "models")}
    shutil.copytree(DEFAULT_MODEL_DIR, tmp_path / "models" / "default")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-2:] == ["['damaged']", "[]"]


def test_no_page_script_has_a_stray_string_that_streamlit_would_draw():
    """Streamlit's magic writes every bare expression of a page script onto the page: a string
    under a constant (an attribute docstring) showed up as a line of text at the top of Train.
    Only the module docstring is allowed at the top level of the scripts Streamlit runs."""
    scripts = [ROOT / "streamlit_app.py", *sorted((ROOT / "pages").glob("*.py"))]
    stray = []
    for script in scripts:
        body = ast.parse(script.read_text(encoding="utf-8")).body
        for node in body[1:]:
            if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
                stray.append(f"{script.name}:{node.lineno}")
    assert len(scripts) > 1 and not stray, stray
