"""Train page through AppTest: settings, a background run with live curves that survives page
switches and can be stopped, the results (confusion matrix, per-genre table, comparison with
the active model) and Save as into a temporary models folder."""
from __future__ import annotations

import json
import time

import pytest
from streamlit.testing.v1 import AppTest

from conftest import ROOT, synth, write_wav
from genre import models
from genre.ui import jobs, state

PAGE = str(ROOT / "pages" / "train.py")


@pytest.fixture
def models_dir(tmp_path, monkeypatch):
    """Saved models go to a temporary folder, never into the project's models/."""
    folder = tmp_path / "models"
    monkeypatch.setattr(models, "MODELS_DIR", folder)
    monkeypatch.setattr(state, "MODELS_DIR", folder)
    return folder


def page(dataset_dir) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.session_state["dataset_dir"] = str(dataset_dir)
    return at


def charts(at: AppTest) -> list[dict]:
    return [json.loads(e.proto.spec) for e in at.get("plotly_chart")]


def wait_until(predicate, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, "condition not reached in time"
        time.sleep(0.05)


def test_without_dataset_start_is_disabled(tmp_path, monkeypatch):
    monkeypatch.setenv("GENRE_DATA_DIR", str(tmp_path / "nowhere"))
    at = page(tmp_path / "nowhere").run()
    assert not at.exception
    assert "data/" in at.info[0].value and "sidebar" in at.info[0].value
    assert at.button(key="train_start").disabled


def test_defaults(warm_cache, tiny_dataset):
    at = page(tiny_dataset).run()
    assert not at.exception
    assert at.selectbox(key="train_features").value == jobs.HANDCRAFTED
    assert at.radio(key="train_family").value == "mlp"
    assert at.text_input(key="train_hidden_mlp").value == "256,128"
    assert at.slider(key="train_dropout").value == 0.3
    assert at.select_slider(key="train_lr").value == 1e-3
    assert at.number_input(key="train_epochs").value == 60
    assert at.select_slider(key="train_batch").value == 64
    assert at.radio(key="train_split").value == "artist"
    assert at.radio(key="train_split").options == ["By artist", "Stratified random"]  # no split lists here
    assert not at.button(key="train_start").disabled

    at.text_input(key="train_hidden_mlp").input("12, x").run()
    assert "whole numbers" in at.error[0].value and at.button(key="train_start").disabled
    at.radio(key="train_family").set_value("cnn").run()
    assert at.text_input(key="train_hidden_cnn").value == "16,32,64" and not at.error


def test_train_then_save_a_loadable_model(warm_cache, tiny_dataset, models_dir):
    at = page(tiny_dataset).run()
    at.text_input(key="train_hidden_mlp").input("16")
    at.number_input(key="train_epochs").set_value(4)
    at.radio(key="train_split").set_value("stratified")
    at.button(key="train_start").click().run()
    assert not at.exception
    job = at.session_state["train_job"]
    assert at.button(key="train_start").disabled or not job.snapshot().active
    assert job.wait(120)
    at.run()
    assert not at.exception and not at.error, job.snapshot().details

    figs = charts(at)
    curves, confusion = figs
    assert len(curves["data"]) == 4
    assert confusion["data"][0]["type"] == "heatmap" and confusion["data"][0]["x"] == ["beats", "buzz", "tones"]
    per_class = at.dataframe[0].value
    assert per_class["genre"].tolist() == ["beats", "buzz", "tones"]
    assert {"precision", "recall", "f1", "support"} <= set(per_class.columns)
    labels = [m.label for m in at.metric]
    assert "Accuracy · this run" in labels and "Balanced accuracy · this run" in labels
    assert any("default" in label for label in labels)
    assert any("not directly comparable" in c.value for c in at.caption)

    at.text_input(key="train_save_name").input("tiny mlp!")
    next(b for b in at.button if b.label == "Save").click().run()
    assert not at.exception and "tiny-mlp" in at.success[0].value
    loaded = models.load_model(models_dir / "tiny-mlp")
    assert loaded.labels == ["beats", "buzz", "tones"] and loaded.card.spec["hidden"] == [16]
    assert "tiny-mlp" in state.model_names()

    next(b for b in at.button if b.label == "Save").click().run()
    assert "already exists" in at.error[0].value
    at.checkbox(key="train_overwrite").check()
    next(b for b in at.button if b.label == "Save").click().run()
    assert not at.error and "tiny-mlp" in at.success[0].value


def test_live_run_survives_page_switch_and_stops(warm_cache, tiny_dataset, models_dir, monkeypatch):
    report = jobs.Job.report_epoch

    def slow_epoch(self, epoch, logs):  # slow epochs leave time to switch pages and stop
        time.sleep(0.3)
        report(self, epoch, logs)

    monkeypatch.setattr(jobs.Job, "report_epoch", slow_epoch)
    monkeypatch.setenv("GENRE_DATA_DIR", str(tiny_dataset))
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=60).run()
    at.switch_page("pages/train.py").run()
    at.text_input(key="train_hidden_mlp").input("16")
    at.number_input(key="train_epochs").set_value(300)
    at.button(key="train_start").click().run()
    job = at.session_state["train_job"]
    wait_until(lambda: len(job.snapshot().history) >= 1)
    at.run()
    assert at.button(key="train_start").disabled and not at.button(key="train_stop").disabled
    assert any("of at most 300" in m.value for m in at.markdown)

    # another browser session sees no run and may start its own
    other = page(tiny_dataset).run()
    assert not other.button(key="train_start").disabled and not other.get("plotly_chart")
    assert other.session_state["train_job"] is not job

    at.switch_page("pages/dataset.py").run()
    assert not at.exception
    seen = len(job.snapshot().history)
    wait_until(lambda: len(job.snapshot().history) > seen)
    at.switch_page("pages/train.py").run()
    assert at.session_state["train_job"] is job and job.snapshot().active
    assert at.text_input(key="train_hidden_mlp").value == "16"  # settings kept across pages
    assert at.number_input(key="train_epochs").value == 300
    curves = charts(at)[0]
    assert curves["layout"]["xaxis"]["range"][1] == 300.5

    at.button(key="train_stop").click().run()
    assert job.snapshot().state in (jobs.STOPPING, jobs.DONE)
    assert job.wait(60)
    at.run()
    assert not at.exception and job.snapshot().state == jobs.DONE
    card = job.snapshot().result.result.card
    assert card.metrics["stopped_by_user"] and card.metrics["epochs_run"] < 300
    assert any("stopped by you" in c.value for c in at.caption)
    assert not at.button(key="train_start").disabled


def test_failure_is_shown(tmp_path, monkeypatch):
    def broken(job, request, n_jobs=-1):
        raise ValueError("only one genre in this folder; a classifier needs two or more")

    monkeypatch.setattr(jobs, "run_training", broken)
    write_wav(tmp_path / "a" / "x.wav", synth())
    at = page(tmp_path).run()
    at.button(key="train_start").click().run()
    at.session_state["train_job"].wait(10)
    at.run()
    assert not at.exception
    assert "only one genre" in at.error[0].value
    assert "ValueError" in at.expander[0].code[0].value
    assert not at.button(key="train_start").disabled
