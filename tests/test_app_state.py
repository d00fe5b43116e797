"""The sidebar's choices in the URL (AppTest): ``?data=`` and ``?model=`` open the same view
after a reload or in a new session, survive page switches (which drop the query string), a bad
``?model=`` falls back to ``default`` with a warning, a dataset folder outside the allowed roots
is refused (URL and text box), and a page opened first (a deep link) gets the app's sidebar.

AppTest starts every run the way a fresh server starts its first request (it resets
Streamlit's ``pages/`` flag before each run), so a switched-to page here is a deep link on a
fresh server: it must hand over to the entry script (genre.ui.navigation)."""
from __future__ import annotations

import re
import shutil

import pytest
from streamlit.testing.v1 import AppTest

from conftest import ROOT
from genre import models
from genre.access import ROOTS_ENV
from genre.models import DEFAULT_MODEL_DIR

APP = str(ROOT / "streamlit_app.py")


@pytest.fixture
def models_dir(tmp_path, monkeypatch):
    """Two saved models, 'default' and 'other', plus folders that are not models."""
    folder = tmp_path / "models"
    for name in ("default", "other"):
        shutil.copytree(DEFAULT_MODEL_DIR, folder / name)
    (folder / "backbones").mkdir()
    (folder / "backbones" / "weights.h5").write_bytes(b"\0")
    monkeypatch.setattr(models, "MODELS_DIR", folder)
    return folder


@pytest.fixture
def second_dataset(tiny_dataset, tmp_path):
    """A copy of the tiny dataset without one genre: 12 clips in 2 genres."""
    root = tmp_path / "two-genres"
    shutil.copytree(tiny_dataset, root)
    shutil.rmtree(root / "tones")
    return root


def _app(monkeypatch, data_dir, **params) -> AppTest:
    monkeypatch.setenv("GENRE_DATA_DIR", str(data_dir))
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params.update(params)
    return at


def _sidebar(at: AppTest) -> tuple[str, str]:
    return at.sidebar.text_input[0].value, at.sidebar.selectbox[0].value


def _clip_count(at: AppTest) -> str:
    """Home's dataset line ('`folder` · **18 clips** in 3 genres'), or ''."""
    return " ".join(m.value for m in at.markdown if re.search(r"\*\*\d+ clips\*\*", m.value))


def test_the_url_sets_dataset_and_model_and_a_reload_keeps_them(monkeypatch, tiny_dataset, second_dataset,
                                                                 models_dir):
    at = _app(monkeypatch, tiny_dataset, data=str(second_dataset), model="other").run()
    assert not at.exception and not at.warning
    assert _sidebar(at) == (str(second_dataset), "other")
    assert "12 clips" in _clip_count(at)
    assert at.subheader[0].value == "Model · other"
    assert at.query_params == {"data": str(second_dataset), "model": "other"}
    # A reload (or the link in a new tab) is a new session with the same URL.
    again = _app(monkeypatch, tiny_dataset, **at.query_params).run()
    assert _sidebar(again) == (str(second_dataset), "other") and "12 clips" in _clip_count(again)
    # Without parameters the defaults show, and are written to the URL.
    plain = _app(monkeypatch, tiny_dataset).run()
    assert _sidebar(plain) == (str(tiny_dataset), "default") and "18 clips" in _clip_count(plain)
    assert plain.query_params == {"data": str(tiny_dataset), "model": "default"}


def test_sidebar_changes_go_to_the_url_and_survive_page_switches(monkeypatch, tiny_dataset, second_dataset,
                                                                  models_dir):
    at = _app(monkeypatch, tiny_dataset).run()
    at.sidebar.text_input[0].input(str(second_dataset)).run()
    at.sidebar.selectbox[0].select("other").run()
    assert not at.exception
    assert at.query_params == {"data": str(second_dataset), "model": "other"}
    assert "12 clips" in _clip_count(at)
    for page, title in (("pages/train.py", "Train a model"), ("pages/predict.py", "Predict"),
                        ("pages/dataset.py", "Dataset")):
        at.query_params.clear()  # following a page link drops the query string
        at.switch_page(page).run()
        assert not at.exception, (page, at.exception)
        assert at.title[0].value == title
        assert _sidebar(at) == (str(second_dataset), "other"), page
        assert at.query_params == {"data": str(second_dataset), "model": "other"}, page
    assert any(str(second_dataset.resolve()) in c.value for c in at.caption)  # the Dataset page reads it
    assert [m.value for m in at.metric[:2]] == ["12", "2"]


def test_other_query_parameters_are_kept(monkeypatch, tiny_dataset, models_dir):
    at = _app(monkeypatch, tiny_dataset, model="other", run="abc123").run()
    assert at.query_params == {"data": str(tiny_dataset), "model": "other", "run": "abc123"}


@pytest.mark.parametrize("bad", ["nope", "backbones", "../models/other", "tmp", ""])
def test_a_bad_model_in_the_url_falls_back_to_default_with_a_message(monkeypatch, tiny_dataset, models_dir, bad):
    (models_dir / "tmp").mkdir()  # a folder that is not a model
    at = _app(monkeypatch, tiny_dataset, model=bad).run()
    assert not at.exception
    assert _sidebar(at)[1] == "default"
    assert at.query_params["model"] == "default"
    warnings = [w.value for w in at.warning]
    if bad:
        assert any(f"model `{bad}`" in w and "not a saved model" in w and "`default`" in w for w in warnings), warnings
    else:
        assert not warnings  # an empty ?model= is no request at all
    at.run()  # the message was about the link; it does not stay
    assert not at.warning


def test_the_url_wins_over_a_session_only_when_it_changes(monkeypatch, tiny_dataset, second_dataset, models_dir):
    """A session that follows a link to another view (or goes Back) shows that view."""
    at = _app(monkeypatch, tiny_dataset).run()
    at.query_params["data"] = str(second_dataset)
    at.run()
    assert _sidebar(at)[0] == str(second_dataset) and "12 clips" in _clip_count(at)


def test_a_deep_link_renders_the_page_with_the_app_sidebar(monkeypatch, tiny_dataset, second_dataset, models_dir):
    """The first request of a fresh server is /train?data=...&model=other: the Train page with
    the sidebar, its dataset and model (before the fix: the page alone, no sidebar)."""
    at = _app(monkeypatch, tiny_dataset, data=str(second_dataset), model="other")
    at.switch_page("pages/train.py").run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Train a model"
    assert _sidebar(at) == (str(second_dataset), "other")
    assert any(f"`{second_dataset.resolve()}` · 12 clips in 2 genres" in c.value for c in at.caption)
    assert len(at.title) == 1  # the page ran once, inside the entry script


@pytest.mark.parametrize("where", ["url", "text box"])
def test_a_dataset_outside_the_allowed_roots_is_refused(monkeypatch, tiny_dataset, tmp_path, where):
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    monkeypatch.setenv(ROOTS_ENV, str(allowed))
    at = _app(monkeypatch, allowed, **({"data": str(tiny_dataset)} if where == "url" else {}))
    at.run()
    if where == "text box":
        at.sidebar.text_input[0].input(str(tiny_dataset)).run()
    assert not at.exception
    assert _sidebar(at)[0] == str(tiny_dataset)
    refusal = [e.value for e in at.main.error]
    assert refusal and str(tiny_dataset) in refusal[0] and str(allowed) in refusal[0] and ROOTS_ENV in refusal[0]
    assert any(str(allowed) in e.value for e in at.sidebar.error)
    assert not at.dataframe and "clips" not in _clip_count(at)
    at.switch_page("pages/dataset.py").run()
    assert not at.exception and any(str(tiny_dataset) in e.value for e in at.main.error)
    assert not at.get("plotly_chart") and not at.dataframe and not at.metric
    at.switch_page("pages/predict.py").run()
    assert "dataset" not in at.radio[0].options  # no dataset clips offered
    at.switch_page("pages/train.py").run()
    assert at.button(key="train_start").disabled


def test_a_link_out_of_an_allowed_root_is_refused(monkeypatch, tiny_dataset, tmp_path):
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    (allowed / "gtzan").symlink_to(tiny_dataset, target_is_directory=True)
    monkeypatch.setenv(ROOTS_ENV, str(allowed))
    at = _app(monkeypatch, allowed, data=str(allowed / "gtzan")).run()
    assert any("outside the folders" in e.value for e in at.main.error)
    assert "clips" not in _clip_count(at)
    at = _app(monkeypatch, allowed, data=f"{allowed}/../{tiny_dataset.name}").run()
    assert any("outside the folders" in e.value for e in at.main.error)
