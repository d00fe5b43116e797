"""genre.ui.jobs: the background job runner and the training run it drives."""
from __future__ import annotations

import threading
import time

import pytest

from genre.features import FeatureConfig
from genre.models import ModelError, ModelSpec, load_model
from genre.ui import jobs


def wait_until(predicate, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, "condition not reached in time"
        time.sleep(0.01)


def stepper(gate: threading.Semaphore, *, epochs: int = 100):
    """Fake work that reports one epoch each time ``gate`` is released, until stopped."""
    def work(job: jobs.Job):
        for epoch in range(1, epochs + 1):
            gate.acquire()
            job.report_epoch(epoch, {"loss": 1.0 / epoch, "val_accuracy": 0.5})
            if job.stop_event.is_set():
                return f"stopped after {epoch}"
        return "all epochs"
    return work


def test_start_history_grows_and_result():
    job, gate = jobs.Job(), threading.Semaphore(0)
    assert job.snapshot().state == jobs.IDLE and not job.snapshot().active
    job.start(stepper(gate, epochs=3), total_epochs=3)
    assert job.snapshot().state == jobs.RUNNING and job.snapshot().active
    seen = []
    for n in (1, 2, 3):
        gate.release()
        wait_until(lambda n=n: len(job.snapshot().history) >= n or not job.snapshot().active)
        seen.append(len(job.snapshot().history))
    assert job.wait(5)
    snap = job.snapshot()
    assert seen == [1, 2, 3]
    assert snap.state == jobs.DONE and snap.result == "all epochs" and snap.total_epochs == 3
    assert [h["epoch"] for h in snap.history] == [1, 2, 3] and snap.history[0]["loss"] == 1.0
    assert snap.finished >= snap.started


def test_snapshot_is_a_copy():
    job, gate = jobs.Job(), threading.Semaphore(0)
    job.start(stepper(gate, epochs=2))
    gate.release()
    wait_until(lambda: len(job.snapshot().history) == 1)
    before = job.snapshot()
    gate.release()
    job.wait(5)
    assert len(before.history) == 1 and len(job.snapshot().history) == 2


def test_stop_ends_after_current_epoch():
    job, gate = jobs.Job(), threading.Semaphore(0)
    job.start(stepper(gate))
    gate.release()
    wait_until(lambda: len(job.snapshot().history) == 1)
    job.stop()
    assert job.snapshot().state == jobs.STOPPING and job.snapshot().active
    gate.release()
    assert job.wait(5)
    snap = job.snapshot()
    assert snap.state == jobs.DONE and snap.result == "stopped after 2" and len(snap.history) == 2


def test_start_while_running_is_refused_then_restart_resets():
    job, gate = jobs.Job(), threading.Semaphore(0)
    job.start(stepper(gate, epochs=1))
    with pytest.raises(RuntimeError, match="already"):
        job.start(stepper(gate))
    gate.release()
    job.wait(5)
    job.start(lambda j: "second")
    job.wait(5)
    snap = job.snapshot()
    assert snap.result == "second" and snap.history == () and not job.stop_event.is_set()


def test_exception_becomes_failed_state_with_message():
    def boom(job):
        job.report_epoch(1, {"loss": 1.0})
        raise ValueError("the dataset has only one genre")

    job = jobs.Job()
    job.start(boom)
    job.wait(5)
    snap = job.snapshot()
    assert snap.state == jobs.FAILED and not snap.active
    assert snap.error == "the dataset has only one genre"
    assert "ValueError" in snap.details and "boom" in snap.details
    assert len(snap.history) == 1 and snap.result is None

    job.start(lambda j: 1 / 0)
    job.wait(5)
    assert job.snapshot().error.startswith("ZeroDivisionError")


def test_stop_during_features_ends_idle_with_note():
    started = threading.Event()

    def extraction(job):
        for done in range(1, 1000):
            started.set()
            job.report_progress(done, 1000, "x.wav")
            time.sleep(0.005)

    job = jobs.Job()
    job.start(extraction)
    started.wait(5)
    job.stop()
    job.wait(5)
    snap = job.snapshot()
    assert snap.state == jobs.IDLE and "feature extraction" in snap.message and not snap.error


def test_two_jobs_are_independent():
    gates = threading.Semaphore(0), threading.Semaphore(0)
    a, b = jobs.Job(), jobs.Job()
    a.start(stepper(gates[0]))
    b.start(stepper(gates[1]))
    gates[0].release()
    wait_until(lambda: len(a.snapshot().history) == 1)
    a.stop()
    gates[0].release()
    a.wait(5)
    assert a.snapshot().state == jobs.DONE and len(a.snapshot().history) == 2
    assert b.snapshot().state == jobs.RUNNING and b.snapshot().history == () and not b.stop_event.is_set()
    b.stop()
    gates[1].release()
    b.wait(5)
    assert b.snapshot().result == "stopped after 1"


def test_run_training_stops_after_current_epoch_and_saves(warm_cache, tiny_dataset, tmp_path, monkeypatch):
    class StopAtTwo(jobs.Job):
        def report_epoch(self, epoch, logs):
            super().report_epoch(epoch, logs)
            if epoch == 2:
                self.stop()

    job = StopAtTwo()
    request = jobs.TrainRequest(root=str(tiny_dataset), spec=ModelSpec(hidden=(16,), epochs=50, batch_size=32),
                                split="stratified", valid_fraction=0.34)
    jobs.start_training(job, request, n_jobs=1)
    assert job.wait(120)
    snap = job.snapshot()
    assert snap.state == jobs.DONE, snap.details
    assert snap.progress == (18, 18) and snap.phase == "training"
    assert [h["epoch"] for h in snap.history] == [1, 2]
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(snap.history[0])
    outcome = snap.result
    assert outcome.n_clips == 18 and outcome.failed == []
    card = outcome.result.card
    assert card.metrics["stopped_by_user"] and card.metrics["epochs_run"] == 2
    assert card.labels == ["beats", "buzz", "tones"] and card.split["kind"] == "stratified"

    monkeypatch.setattr("genre.models.MODELS_DIR", tmp_path / "models")
    target = jobs.save_trained(outcome, " my model/../x ")
    assert target.parent == tmp_path / "models" and target.name == "my-model-.-x"
    assert load_model(target).labels == card.labels
    with pytest.raises(ModelError, match="already exists"):
        jobs.save_trained(outcome, "my model/../x")
    jobs.save_trained(outcome, "my model/../x", overwrite=True)


def test_run_training_failure_is_reported(tmp_path):
    (tmp_path / "empty").mkdir()
    job = jobs.Job()
    jobs.start_training(job, jobs.TrainRequest(root=str(tmp_path / "empty")))
    job.wait(30)
    snap = job.snapshot()
    assert snap.state == jobs.FAILED and "no audio files" in snap.error


def test_parse_units():
    assert jobs.parse_units("256,128") == (256, 128)
    assert jobs.parse_units(" 64 ; 32 ") == (64, 32)
    for bad in ("", "a,b", "0", "12.5"):
        with pytest.raises(ValueError):
            jobs.parse_units(bad)


def test_split_difference():
    same = {"kind": "artist", "valid_clip_ids": ["a", "b"]}
    assert jobs.split_difference(same, dict(same)) is None
    other = jobs.split_difference(same, {"kind": "lists", "valid_clip_ids": ["b", "c"]})
    assert "artist split vs lists split" in other and "1 of 2" in other
    assert "not directly comparable" in jobs.split_difference(same, {})


def test_feature_kinds_and_configs():
    kinds = jobs.feature_kinds()
    assert kinds[0] == jobs.HANDCRAFTED and set(kinds) <= {jobs.HANDCRAFTED, jobs.BACKBONE}
    assert jobs.feature_config(jobs.HANDCRAFTED, segment_seconds=2.0) == FeatureConfig(segment_seconds=2.0)
    if jobs.BACKBONE in kinds:
        assert jobs.feature_config(jobs.BACKBONE).kind == jobs.BACKBONE


def test_feature_kinds_without_backbone_module(monkeypatch):
    monkeypatch.setattr("importlib.util.find_spec", lambda name, *a: None)
    assert jobs.feature_kinds() == [jobs.HANDCRAFTED]
