"""Train page through AppTest: settings, a run in a worker process with live curves, reopened by
a second session (the server's registry is shared by every AppTest of this process) and stopped
there, the queue, the results (confusion matrix, per-genre table, comparison with the active
model), Save as into a temporary models folder and the names Save refuses.

Tests marked "real worker" train the tiny synthetic dataset in ``python -m genre.run_worker``;
the others give the page a registry with ``tests/fake_worker.py`` (50 ms fake epochs)."""
from __future__ import annotations

import json
import sys
import time
from dataclasses import replace

import pytest
from streamlit.testing.v1 import AppTest

from conftest import ROOT
from genre import eta, models, runs
from genre.backbones import embeddings
from genre.features import FeatureConfig
from genre.models import ModelSpec
from genre.train_defaults import FAMILY_TITLES, recommended
from genre.ui import jobs, state

PAGE = str(ROOT / "pages" / "train.py")
NAME_RULE = ("model names keep only letters, digits, '-', '_' and '.' (at most 64 characters, no leading dot, "
             "no '..')")
FAKE_WORKER = [sys.executable, str(ROOT / "tests" / "fake_worker.py")]


@pytest.fixture
def fake_registry(models_dir, monkeypatch):
    """The page's registry runs tests/fake_worker.py (one slot)."""
    registry = runs.RunRegistry(models_dir, worker=FAKE_WORKER, max_active=1)
    monkeypatch.setattr(runs, "shared_registry", lambda models_dir=None: registry)
    yield registry
    for snap in registry.list():
        registry.stop(snap.id)
    for snap in registry.list():
        registry.wait(snap.id, 30)


def page(dataset_dir, *, run: str | None = None, **params) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.session_state["dataset_dir"] = str(dataset_dir)
    if run:
        at.query_params["run"] = run
    for key, value in params.items():
        at.query_params[key] = value
    return at


def charts(at: AppTest) -> list[dict]:
    return [json.loads(e.proto.spec) for e in at.get("plotly_chart")]


def wait_until(predicate, timeout: float = 60.0, what: str = "condition") -> None:
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, f"{what} not reached in {timeout:.0f} s"
        time.sleep(0.05)


def long_request(root, **spec) -> runs.TrainRequest:
    """A run of up to 1000 epochs that early stopping does not end."""
    spec = {"hidden": (16,), "epochs": 1000, "patience": 1000, **spec}
    return runs.TrainRequest(root=str(root), spec=ModelSpec(**spec), split="stratified", valid_fraction=0.34)


def runs_table(at: AppTest):
    """The list of recent runs (the page's last table)."""
    table = at.dataframe[-1].value
    assert list(table.columns) == ["run", "state", "settings", "best score", "started"]
    return table


def save_button(at: AppTest):
    return at.button(key="train_save")


def test_without_dataset_start_is_disabled(tmp_path, monkeypatch, models_dir):
    monkeypatch.setenv("GENRE_DATA_DIR", str(tmp_path / "nowhere"))
    at = page(tmp_path / "nowhere").run()
    assert not at.exception
    assert "data/" in at.info[0].value and "sidebar" in at.info[0].value
    assert at.button(key="train_start").disabled


def test_defaults(warm_cache, tiny_dataset, models_dir):
    """The recommended settings of each feature set and family, with their measured CV figure
    beside them; changing a setting says so and one click restores them."""
    at = page(tiny_dataset).run()
    assert not at.exception
    mlp = recommended(jobs.HANDCRAFTED, "mlp")
    assert at.selectbox(key="train_features").value == "handcrafted"
    assert at.radio(key="train_family").value == "mlp"
    assert at.radio(key="train_family").options == [FAMILY_TITLES[f] for f in ("mlp", "logreg", "cnn")]
    assert at.text_input(key="train_hidden_mlp").value == ",".join(map(str, mlp.spec.hidden))
    assert at.slider(key="train_dropout").value == mlp.spec.dropout
    assert at.select_slider(key="train_lr").value == mlp.spec.learning_rate
    assert at.select_slider(key="train_l2").value == mlp.spec.l2
    assert at.number_input(key="train_epochs").value == mlp.spec.epochs
    assert at.select_slider(key="train_batch").value == mlp.spec.batch_size
    assert at.radio(key="train_split").value == "artist"
    assert at.radio(key="train_split").options == ["By artist", "Stratified random"]  # no split lists here
    assert not at.button(key="train_start").disabled and at.button(key="train_start").label == "Start training"
    assert not at.get("plotly_chart") and "run" not in at.query_params
    if mlp.cv is not None:
        assert any(mlp.cv.expected() in m.value for m in at.markdown)
    assert not any(b.key == "train_recommended" for b in at.button)

    at.select_slider(key="train_lr").set_value(1e-2).run()
    assert any("differ from the recommended" in c.value for c in at.caption)
    at.button(key="train_recommended").click().run()
    assert at.select_slider(key="train_lr").value == mlp.spec.learning_rate
    assert not any(b.key == "train_recommended" for b in at.button)

    at.text_input(key="train_hidden_mlp").input("12, x").run()
    assert "whole numbers" in at.error[0].value and at.button(key="train_start").disabled
    at.radio(key="train_family").set_value("cnn").run()
    cnn = recommended(jobs.HANDCRAFTED, "cnn")
    assert at.text_input(key="train_hidden_cnn").value == ",".join(map(str, cnn.spec.hidden)) and not at.error
    assert at.number_input(key="train_epochs").value == cnn.spec.epochs

    at.radio(key="train_family").set_value("logreg").run()  # no epochs, dropout, learning rate or batch
    keys = {w.key for w in (*at.slider, *at.select_slider, *at.number_input, *at.text_input)}
    assert {"train_l2", "train_iterations"} <= keys and not {"train_dropout", "train_lr", "train_batch"} & keys

    for kind in jobs.feature_kinds()[1:]:  # a backbone: the logistic regression first, its own settings
        at.selectbox(key="train_features").set_value(kind).run()
        linear = recommended(kind, "logreg")
        assert at.radio(key="train_family").value == "logreg", kind
        assert at.radio(key="train_family").options == [FAMILY_TITLES["logreg"], FAMILY_TITLES["mlp"]]
        assert at.select_slider(key="train_l2").value == linear.spec.l2
        expected = [m.value for m in at.markdown if "Expected" in m.value]
        assert (linear.cv.expected() in expected[0]) if linear.cv else not expected, kind


def test_train_then_save_a_loadable_model(warm_cache, tiny_dataset, models_dir):
    """Real worker: Start puts the run in the URL; the results; Save, the refusals, Discard."""
    at = page(tiny_dataset, data="kept-by-the-state-helper").run()
    at.text_input(key="train_hidden_mlp").input("16")
    at.number_input(key="train_epochs").set_value(4)
    at.radio(key="train_split").set_value("stratified")
    at.button(key="train_start").click().run()
    assert not at.exception
    run_id = at.session_state["train_run"]
    assert at.query_params["run"] == run_id and at.query_params["data"] == "kept-by-the-state-helper"
    registry = runs.shared_registry()
    assert registry.wait(run_id, 180)
    at.run()
    assert not at.exception and not at.error, registry.get(run_id).details

    curves, confusion = charts(at)
    lines = [t for t in curves["data"] if t["mode"] == "lines+markers"]
    assert len(lines) == 4 and all(len(t["x"]) == 4 for t in lines)  # training/validation x loss/accuracy
    assert curves["layout"]["xaxis"]["range"] == [0.5, 4.5] and curves["layout"]["showlegend"]
    best = registry.get(run_id).card.metrics["best_epoch"]
    assert [t["name"] for t in curves["data"] if t["mode"] == "markers"] == [f"best epoch ({best})"] * 2
    assert confusion["data"][0]["type"] == "heatmap" and confusion["data"][0]["x"] == ["beats", "buzz", "tones"]
    per_class = at.dataframe[0].value
    assert per_class["genre"].tolist() == ["beats", "buzz", "tones"]
    assert {"precision", "recall", "f1", "support"} <= set(per_class.columns)
    labels = [m.label for m in at.metric]
    assert "Accuracy · this run" in labels and "Balanced accuracy · this run" in labels
    # The active model (default) was evaluated on this run's validation clips in the worker: it knows
    # none of the tiny dataset's genres, and the page says so instead of comparing numbers.
    wait_until(lambda: registry.get(run_id).comparisons[0]["state"] != "pending", 120, "the comparison")
    at.run()
    assert any("`default` knows none of these genres (beats, buzz, tones)" in c.value for c in at.caption)
    listed = runs_table(at)
    assert listed["run"].tolist() == [run_id] and listed["state"].tolist() == ["done · not saved"]
    assert "accuracy" in listed["best score"][0]

    at.text_input(key="train_save_name").input("tiny mlp!").run()  # Enter only checks the name
    assert not (models_dir / "tiny-mlp").exists() and registry.get(run_id).saved_as == ()
    assert [i.value for i in at.info if "Will be saved as" in i.value] == [
        "Will be saved as **tiny-mlp**, not `tiny mlp!`: " + NAME_RULE + "."]
    save_button(at).click().run()
    assert not at.exception and not at.error
    assert len(at.success) == 1 and "Saved as **tiny-mlp**" in at.success[0].value
    assert "The name you typed, `tiny mlp!`, was changed to **tiny-mlp**" in at.success[0].value
    loaded = models.load_model(models_dir / "tiny-mlp")
    assert loaded.labels == ["beats", "buzz", "tones"] and loaded.card.spec["hidden"] == [16]
    assert "tiny-mlp" in state.model_names()
    assert runs_table(at)["state"].tolist() == ["done · saved as tiny-mlp"]

    at.run()  # the message stays, alone: no 'already exists' under a success
    assert len(at.success) == 1 and not at.error and save_button(at).disabled
    at.text_input(key="train_save_name").input("tiny-mlp").run()  # that name again: refused until Overwrite
    assert not at.success and "already exists" in at.error[0].value and save_button(at).disabled
    at.checkbox(key="train_overwrite").check().run()
    assert not at.error and not save_button(at).disabled
    save_button(at).click().run()
    assert not at.error and len(at.success) == 1 and "Saved as **tiny-mlp**" in at.success[0].value
    assert "was changed" not in at.success[0].value

    at.button(key="train_discard").click().run()
    assert not at.exception and registry.get(run_id) is None and "run" not in at.query_params
    assert not at.get("plotly_chart") and (models_dir / "tiny-mlp").is_dir()


def test_a_run_reopened_in_a_second_session_shows_its_curves_and_is_stopped_there(warm_cache, tiny_dataset,
                                                                                   models_dir):
    """Real worker: the session that started a run and a second one (a reload, another tab, a
    shared link: ``?run=<id>``) both show it; Stop in the second ends it for both."""
    first = page(tiny_dataset).run()
    first.text_input(key="train_hidden_mlp").input("16")
    first.number_input(key="train_epochs").set_value(1000)
    first.radio(key="train_split").set_value("stratified")
    first.button(key="train_start").click().run()
    run_id = first.query_params["run"]
    registry = runs.shared_registry()
    wait_until(lambda: len(registry.get(run_id).history) >= 2, 180, "two epochs")

    second = page(tiny_dataset, run=run_id).run()
    assert not second.exception and second.session_state["train_run"] == run_id
    assert len(charts(second)[0]["data"][0]["x"]) >= 2
    assert any("of at most 1000 running" in i.value for i in second.info)
    assert runs_table(second)["run"].tolist() == [run_id]
    first.run()
    assert not first.button(key="train_stop").disabled and len(charts(first)[0]["data"][0]["x"]) >= 2

    second.button(key="train_stop").click().run()
    assert registry.get(run_id).state in (runs.STOPPING, runs.DONE)
    assert registry.wait(run_id, 60)
    for at in (second, first):
        at.run()
        assert not at.exception and not at.error
        assert any("stopped by you" in c.value for c in at.caption)
        assert all(b.key != "train_stop" for b in at.button)
    card = registry.get(run_id).card
    assert card.metrics["stopped_by_user"] and card.metrics["epochs_run"] < 1000
    assert len(charts(first)[0]["data"][0]["x"]) == card.metrics["epochs_run"]


def test_live_run_survives_page_switch(warm_cache, tiny_dataset, models_dir, monkeypatch):
    monkeypatch.setenv("GENRE_DATA_DIR", str(tiny_dataset))
    registry = runs.shared_registry()
    run_id, _ = registry.submit(long_request(tiny_dataset))
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=60).run()
    at.switch_page("pages/train.py").run()
    at.text_input(key="train_hidden_mlp").input("16")
    at.number_input(key="train_epochs").set_value(300)
    at.selectbox(key="train_pick").select(run_id).run()  # open it from the list of recent runs
    assert at.session_state["train_run"] == run_id
    wait_until(lambda: registry.get(run_id).history, 180, "the first epoch")
    at.switch_page("pages/dataset.py").run()
    assert not at.exception
    seen = len(registry.get(run_id).history)
    wait_until(lambda: len(registry.get(run_id).history) > seen, 60, "another epoch")
    at.switch_page("pages/train.py").run()
    assert at.session_state["train_run"] == run_id and registry.get(run_id).active
    assert at.text_input(key="train_hidden_mlp").value == "16"  # settings kept across pages
    assert at.number_input(key="train_epochs").value == 300
    chart = charts(at)[0]  # the x-axis spans the epochs run so far, not the 1000 allowed
    assert chart["layout"]["xaxis"]["range"][1] == len(chart["data"][0]["x"]) + 0.5 < 1000
    assert not at.button(key="train_stop").disabled


def test_queue_position_with_one_slot(tiny_dataset, fake_registry):
    running, _ = fake_registry.submit(long_request(tiny_dataset, dropout=0.1))
    at = page(tiny_dataset).run()
    assert at.button(key="train_start").label == "Queue training"
    at.button(key="train_start").click().run()
    queued = at.session_state["train_run"]
    assert queued != running and fake_registry.get(queued).state == runs.QUEUED
    assert any("Queued: 1st in line" in i.value for i in at.info)
    states = runs_table(at).set_index("run")["state"]
    assert states[queued] == "queued (1st in line)" and states[running].startswith(("training", "starting"))

    fake_registry.stop(running)
    assert fake_registry.wait(running, 30)
    wait_until(lambda: fake_registry.get(queued).history, 30, "the queued run's first epoch")
    at.run()
    assert not any("Queued" in i.value for i in at.info) and not at.button(key="train_stop").disabled
    at.button(key="train_stop").click().run()
    assert fake_registry.wait(queued, 30) and fake_registry.get(queued).state == runs.DONE


def test_the_same_settings_twice_open_the_running_run(tiny_dataset, fake_registry):
    at = page(tiny_dataset).run()
    at.number_input(key="train_epochs").set_value(1000)
    at.button(key="train_start").click().run()
    first = at.session_state["train_run"]
    at.button(key="train_start").click().run()  # a double click
    assert at.session_state["train_run"] == first and len(fake_registry.list()) == 1
    assert "already" in at.info[0].value and first in at.info[0].value


@pytest.mark.parametrize("name, reason", [("backbones", "MusiCNN weights"), ("default", "shipped model"),
                                          ("notes", "not a saved model")])
def test_save_refuses_names_that_could_hurt(tiny_dataset, fake_registry, models_dir, name, reason):
    (models_dir / "backbones").mkdir(parents=True)
    (models_dir / "backbones" / "MSD_musicnn.weights.h5").write_bytes(b"weights")
    (models_dir / "notes").mkdir()
    run_id, _ = fake_registry.submit(long_request(tiny_dataset, epochs=2))
    assert fake_registry.wait(run_id, 30)
    at = page(tiny_dataset, run=run_id).run()
    assert not at.exception and not save_button(at).disabled
    at.text_input(key="train_save_name").input(name)
    at.checkbox(key="train_overwrite").check().run()
    assert save_button(at).disabled and reason in at.error[0].value and name in at.error[0].value
    assert (models_dir / "backbones" / "MSD_musicnn.weights.h5").read_bytes() == b"weights"
    assert fake_registry.get(run_id).saved_as == ()


def test_links_to_runs_that_are_not_there(tiny_dataset, fake_registry):
    at = page(tiny_dataset, run="0123456789", model="kept").run()
    assert not at.exception and "no run `0123456789`" in at.warning[0].value
    assert "run" not in at.query_params and at.query_params["model"] == "kept"
    at = page(tiny_dataset, run="../../etc/passwd").run()
    assert "not valid" in at.warning[0].value and "run" not in at.query_params

    run_id, _ = fake_registry.submit(long_request(tiny_dataset, epochs=1))
    assert fake_registry.wait(run_id, 30)
    fake_registry.discard(run_id)
    at = page(tiny_dataset, run=run_id).run()
    assert f"Run `{run_id}` was discarded" in at.warning[0].value


def test_failure_is_shown(tmp_path, models_dir):
    """Real worker: a dataset whose only clip is not audio fails with the reason."""
    (tmp_path / "data" / "a").mkdir(parents=True)
    (tmp_path / "data" / "a" / "x.wav").write_bytes(b"not audio at all")
    at = page(tmp_path / "data").run()
    at.button(key="train_start").click().run()
    run_id = at.session_state["train_run"]
    assert runs.shared_registry().wait(run_id, 120)
    at.run()
    assert not at.exception
    assert "no clip could be featurised" in at.error[0].value
    assert "ValueError" in at.expander[0].code[0].value
    assert at.button(key="train_discard").label == "Remove from the list"
    assert not at.button(key="train_start").disabled


@pytest.mark.parametrize("seed, seen", [(0, None), (2, 4), (6, 0)])
def test_the_active_model_is_scored_on_this_runs_validation_clips(tiny_dataset, fake_registry, seed, seen):
    """The fake worker's comparison: the active model trained on ``seed`` of the 6 clips. The page
    shows both scores on the same clips, the difference in percentage points, and says plainly
    when the active model's score is inflated."""
    at = page(tiny_dataset).run()
    at.number_input(key="train_epochs").set_value(2)
    at.number_input(key="train_seed").set_value(seed)
    at.button(key="train_start").click().run()
    run_id = at.session_state["train_run"]
    assert fake_registry.wait(run_id, 30)
    wait_until(lambda: fake_registry.get(run_id).comparisons[0]["state"] == "done", 30, "the comparison")
    at.run()
    assert not at.exception
    metrics = {m.label: m for m in at.metric}
    assert metrics["Accuracy · default"].value == "75.0%"
    assert metrics["Accuracy · this run"].delta == "-25.0 points vs default"
    assert metrics["Balanced accuracy · this run"].delta == "-20.0 points vs default"
    assert any("on the same 6 validation clips" in m.value for m in at.markdown)
    warnings = [w.value for w in at.warning]
    if seed == 0:
        assert not warnings and any("never trained on any of these clips" in c.value for c in at.caption)
    else:
        assert f"was trained on {seed} of these 6 clips, so its score here is inflated" in warnings[0]
        assert (f"On the {seen} clips it never trained on: this run 50.0%, `default` 25.0% accuracy (+25.0 points)"
                in warnings[0]) if seen else "None of them is new to it" in warnings[0]


def test_a_long_extraction_is_announced_before_it_starts(tiny_dataset, fake_registry, monkeypatch):
    """Nothing of the tiny dataset is cached here: with a threshold below 0 s its 18 clips count as a long
    extraction, so Start asks first; Cancel starts nothing, Start anyway starts the run."""
    monkeypatch.setattr(eta, "LONG_EXTRACTION_SECONDS", -1.0)
    at = page(tiny_dataset).run()
    at.number_input(key="train_epochs").set_value(2)
    at.button(key="train_start").click().run()
    assert not at.exception and fake_registry.list() == []
    notice = at.warning[0].value
    assert "features of 18 clips that are not in the cache yet: about" in notice and "s per clip measured" in notice
    assert at.button(key="train_start").disabled
    at.button(key="train_cancel").click().run()
    assert not at.warning and fake_registry.list() == [] and not at.button(key="train_start").disabled
    at.button(key="train_start").click().run()
    at.button(key="train_go").click().run()
    assert len(fake_registry.list()) == 1 and at.session_state["train_run"] == fake_registry.list()[0].id
    assert not any("not in the cache yet" in w.value for w in at.warning)


def test_a_reloaded_run_shows_its_own_settings(tiny_dataset, fake_registry):
    """A reload (or a link) of a CNN run opens the form on that run's settings, not the defaults
    of a fresh page (the hand-crafted MLP); a session that has edited the form keeps its edits."""
    request = runs.TrainRequest(root=str(tiny_dataset), spec=replace(
        recommended(jobs.HANDCRAFTED, "cnn").spec, hidden=(4, 8), epochs=1000, patience=1000, dropout=0.2),
        config=FeatureConfig(segment_seconds=2.5), split="stratified", valid_fraction=0.3, seed=7)
    run_id, _ = fake_registry.submit(request)
    at = page(tiny_dataset, run=run_id).run()
    assert not at.exception
    assert at.radio(key="train_family").value == "cnn" and at.text_input(key="train_hidden_cnn").value == "4,8"
    assert at.number_input(key="train_epochs").value == 1000 and at.slider(key="train_dropout").value == 0.2
    assert at.number_input(key="train_segment").value == 2.5 and at.number_input(key="train_seed").value == 7
    assert at.radio(key="train_split").value == "stratified" and at.slider(key="train_valid").value == 0.3
    fresh = page(tiny_dataset).run()
    assert fresh.radio(key="train_family").value == "mlp"


def test_where_a_run_falls_against_the_expected_figure():
    rec = recommended(embeddings.DEFAULT_KIND, "logreg")
    request = runs.TrainRequest(root="/d", config=jobs.feature_config(embeddings.DEFAULT_KIND), spec=rec.spec)
    mean, spread = rec.cv.accuracy, rec.cv.accuracy_sd
    labels = ["blues", "jazz", "rock"]
    hard = {"accuracy": mean - 2 * spread, "labels": labels, "confusion": [[9, 0, 12], [0, 20, 1], [1, 0, 20]]}
    assert jobs.largest_confusion(hard) == "12 of 21 blues clips were taken for rock"
    said = jobs.against_expectation(hard, request, rec)
    assert said.startswith(f"This run's {100 * hard['accuracy']:.0f} % is below the cross-validated "
                           f"{100 * mean:.0f} % ± {100 * spread:.0f}") and said.endswith("12 of 21 blues clips were "
                                                                                          "taken for rock.")
    usual = jobs.against_expectation({**hard, "accuracy": mean + spread / 2}, request, rec)
    assert "within the usual spread" in usual
    assert "easy" in jobs.against_expectation({**hard, "accuracy": mean + 2 * spread}, request, rec)
    other = replace(request, spec=replace(rec.spec, l2=0.1))
    assert jobs.against_expectation(hard, other, rec) is None  # no figure for other settings
