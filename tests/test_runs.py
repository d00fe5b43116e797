"""genre.runs: training runs as server-side objects, trained in lower-priority worker processes,
at most K at once (the others queued), bounded, and saved through the models' save guard.

Tests marked "real worker" train on the tiny synthetic dataset in ``python -m genre.run_worker``
(each pays a TensorFlow import in the worker); the queue and bound tests use
``tests/fake_worker.py``, the real worker's main with a fake training of 50 ms epochs."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace

import pytest

from conftest import ROOT
from genre import models, run_worker, runs
from genre.models import DEFAULT_MODEL_DIR, ModelError, ModelSpec, load_model

FAKE_WORKER = [sys.executable, str(ROOT / "tests" / "fake_worker.py")]


def wait_until(predicate, timeout: float = 60.0, what: str = "condition") -> None:
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, f"{what} not reached in {timeout:.0f} s"
        time.sleep(0.02)


def fake(models_dir, **kwargs) -> runs.RunRegistry:
    return runs.RunRegistry(models_dir, worker=FAKE_WORKER, **{"max_active": 1, **kwargs})


def request(root="/nowhere", *, epochs=3, seed=0, **spec) -> runs.TrainRequest:
    return runs.TrainRequest(root=str(root), spec=ModelSpec(hidden=(16,), epochs=epochs, batch_size=32, **spec),
                             split="stratified", valid_fraction=0.34, seed=seed)


@pytest.fixture
def stop_all():
    """Registries to stop at the end of a test, so no worker outlives it."""
    made = []
    yield made.append
    for registry in made:
        for snap in registry.list():
            registry.stop(snap.id)
        for snap in registry.list():
            registry.wait(snap.id, 60)


def test_request_round_trips_through_json():
    req = request("/data/gtzan", epochs=7, seed=3, dropout=0.1)
    assert runs.TrainRequest.from_dict(json.loads(json.dumps(req.to_dict()))) == req


def test_real_worker_trains_reports_and_the_model_is_saved_by_copy(warm_cache, tiny_dataset, tmp_path, stop_all):
    """Real worker: progress, every epoch, a done record, then Save through the guard."""
    registry = runs.RunRegistry(tmp_path / "models", niceness=5)
    stop_all(registry)
    run_id, dropped = registry.submit(request(tiny_dataset, epochs=6))
    assert dropped == [] and runs.RUN_ID.fullmatch(run_id)
    pid = registry.worker_pid(run_id)
    wait_until(lambda: registry.get(run_id).phase or not registry.get(run_id).active, what="the first event")
    if registry.get(run_id).active:  # the worker lowered its priority before reporting anything
        assert os.getpriority(os.PRIO_PROCESS, pid) == os.getpriority(os.PRIO_PROCESS, 0) + 5
    assert registry.wait(run_id, 180)
    snap = registry.get(run_id)
    assert snap.state == runs.DONE, (snap.error, snap.details)
    assert snap.progress == (18, 18) and snap.n_clips == 18 and snap.failed_files == ()
    assert snap.extraction["missing"] == 0  # warm cache: nothing to extract
    assert [name for name, _ in snap.phases] == ["features", "loading", "building", "training"]
    assert [t for _, t in snap.phases] == sorted(t for _, t in snap.phases) and snap.phases[0][1] >= snap.started
    assert set(snap.phase_seconds()) == {"features", "loading", "building", "training"}
    assert registry.typical_seconds("loading") == snap.phase_seconds()["loading"] > 0
    assert [h["epoch"] for h in snap.history] == list(range(1, snap.card.metrics["epochs_run"] + 1))
    assert {"loss", "accuracy", "val_loss", "val_accuracy", "seconds"} <= set(snap.history[0])
    assert all(h["seconds"] > 0 for h in snap.history)
    assert snap.card.labels == ["beats", "buzz", "tones"] and snap.card.split["kind"] == "stratified"
    assert 0 < snap.best_val_accuracy() <= 1 and snap.started <= snap.finished
    record = json.loads((registry.root / run_id / "record.json").read_text())
    assert record["state"] == runs.DONE and len(record["history"]) == len(snap.history)
    assert models.list_models(tmp_path / "models") == []  # the staged model is never listed

    target = registry.save(run_id, " tiny mlp! ")
    assert target == tmp_path / "models" / "tiny-mlp"
    assert load_model(target).labels == snap.card.labels and registry.get(run_id).saved_as == ("tiny-mlp",)
    with pytest.raises(ModelError, match="already exists"):
        registry.save(run_id, "tiny mlp")
    registry.save(run_id, "tiny mlp", overwrite=True)
    registry.save(run_id, "second")
    assert registry.get(run_id).saved_as == ("tiny-mlp", "second")
    assert [p.name for p in models.list_models(tmp_path / "models")] == ["second", "tiny-mlp"]


def test_real_worker_stops_after_the_current_epoch(warm_cache, tiny_dataset, tmp_path, stop_all):
    registry = runs.RunRegistry(tmp_path / "models")
    stop_all(registry)
    run_id, _ = registry.submit(request(tiny_dataset, epochs=1000, patience=1000))
    wait_until(lambda: registry.get(run_id).history or not registry.get(run_id).active, 180, "the first epoch")
    registry.stop(run_id)
    assert registry.get(run_id).state in (runs.STOPPING, runs.DONE)
    assert registry.wait(run_id, 60)
    snap = registry.get(run_id)
    assert snap.state == runs.DONE, snap.error
    assert snap.card.metrics["stopped_by_user"] and snap.card.metrics["epochs_run"] < 1000
    assert len(snap.history) == snap.card.metrics["epochs_run"]


def test_real_worker_that_dies_is_a_failed_run_with_the_reason(warm_cache, tiny_dataset, tmp_path, stop_all):
    registry = runs.RunRegistry(tmp_path / "models")
    stop_all(registry)
    run_id, _ = registry.submit(request(tiny_dataset, epochs=1000, patience=1000))
    wait_until(lambda: registry.get(run_id).history, 180, "the first epoch")
    os.kill(registry.worker_pid(run_id), signal.SIGKILL)
    assert registry.wait(run_id, 30)
    snap = registry.get(run_id)
    assert snap.state == runs.FAILED and snap.error.startswith("the training process ended unexpectedly")
    assert "SIGKILL" in snap.error and snap.history and snap.card is None
    assert registry.worker_pid(run_id) is None


def test_a_worker_that_exits_without_a_word_fails_with_its_last_log_line(tmp_path):
    worker = [sys.executable, "-c", "import sys; print('cannot open the events pipe', file=sys.stderr); sys.exit(5)"]
    registry = runs.RunRegistry(tmp_path / "models", worker=worker)
    run_id, _ = registry.submit(request())
    assert registry.wait(run_id, 30)
    snap = registry.get(run_id)
    assert snap.state == runs.FAILED
    assert snap.error == ("the training process ended unexpectedly (exit code 5); "
                          "its last words: cannot open the events pipe")


def test_a_failure_inside_the_worker_is_reported(tmp_path):
    registry = runs.RunRegistry(tmp_path / "models")
    (tmp_path / "empty").mkdir()
    run_id, _ = registry.submit(request(tmp_path / "empty"))
    assert registry.wait(run_id, 60)
    snap = registry.get(run_id)
    assert snap.state == runs.FAILED and "no audio files" in snap.error and "Traceback" in snap.details


def test_queue_with_one_slot(tmp_path, stop_all):
    registry = fake(tmp_path / "models")
    stop_all(registry)
    first, _ = registry.submit(request(epochs=10_000))
    second, _ = registry.submit(request(epochs=10_000, seed=1))
    third, _ = registry.submit(request(epochs=2, seed=2))
    states = {s.id: (s.state, s.queue_position) for s in registry.list()}
    assert states == {first: (runs.RUNNING, 0), second: (runs.QUEUED, 1), third: (runs.QUEUED, 2)}
    assert [s.id for s in registry.list()] == [third, second, first]  # newest first
    with pytest.raises(runs.RunError, match=f"already queued as run {second}"):
        registry.submit(request(epochs=10_000, seed=1))

    registry.stop(second)  # a queued run ends at once, the one behind it moves up
    assert registry.get(second).state == runs.STOPPED and "before it started" in registry.get(second).message
    assert registry.get(third).queue_position == 1
    wait_until(lambda: registry.get(first).history, what="the first run's first epoch")
    registry.stop(first)
    assert registry.wait(first, 30) and registry.get(first).state == runs.DONE
    assert registry.wait(third, 30)  # started by itself once the slot was free
    assert registry.get(third).state == runs.DONE and len(registry.get(third).history) == 2
    assert registry.get(third).started >= registry.get(first).finished


def test_two_slots_run_side_by_side(tmp_path, stop_all):
    registry = fake(tmp_path / "models", max_active=2)
    stop_all(registry)
    ids = [registry.submit(request(epochs=10_000, seed=s))[0] for s in range(3)]
    assert [registry.get(i).state for i in ids] == [runs.RUNNING, runs.RUNNING, runs.QUEUED]


def test_runs_are_bounded_and_never_dropped_while_active(tmp_path, stop_all):
    registry = fake(tmp_path / "models", max_runs=3)
    stop_all(registry)
    ids = [registry.submit(request(epochs=1, seed=s))[0] for s in range(3)]
    for run_id in ids:
        assert registry.wait(run_id, 30) and registry.get(run_id).state == runs.DONE
    registry.save(ids[1], "kept")  # saved: nothing to lose, so dropped before older unsaved ones
    assert [s.id for s in registry.would_drop()] == [ids[1]]
    fourth, dropped = registry.submit(request(epochs=10_000, seed=3))
    assert dropped == [ids[1]] and registry.get(ids[1]) is None and not (registry.root / ids[1]).exists()
    assert "dropped" in registry.gone(ids[1]) and (tmp_path / "models" / "kept").is_dir()
    fifth, dropped = registry.submit(request(epochs=10_000, seed=4))  # then the oldest unsaved result
    assert dropped == [ids[0]] and "unsaved result" in registry.gone(ids[0])
    assert registry.get(fifth).state == runs.QUEUED
    sixth, dropped = registry.submit(request(epochs=10_000, seed=5))
    assert dropped == [ids[2]]
    assert {s.state for s in registry.list()} == {runs.RUNNING, runs.QUEUED}
    with pytest.raises(runs.RunError, match="queued or running"):  # never a running or queued one
        registry.submit(request(epochs=1, seed=6))
    assert {s.id for s in registry.list()} == {fourth, fifth, sixth}


def test_discard(tmp_path, stop_all):
    registry = fake(tmp_path / "models")
    stop_all(registry)
    done, _ = registry.submit(request(epochs=1))
    assert registry.wait(done, 30)
    running, _ = registry.submit(request(epochs=10_000, seed=1))
    with pytest.raises(runs.RunError, match="stop it before"):
        registry.discard(running)
    registry.discard(done)
    assert registry.get(done) is None and registry.gone(done) == "discarded"
    assert not (registry.root / done).exists()


def test_save_refuses_reserved_names_and_folders_that_are_not_models(tmp_path):
    registry = fake(tmp_path / "models")
    run_id, _ = registry.submit(request(epochs=1))
    assert registry.wait(run_id, 30)
    weights = tmp_path / "models" / "backbones"
    weights.mkdir(parents=True)
    (weights / "MSD_musicnn.weights.h5").write_bytes(b"weights")
    (tmp_path / "models" / "notes").mkdir()
    for name, reason in (("backbones", "MusiCNN weights"), ("Default", "shipped model"),
                         ("notes", "not a saved model")):
        for overwrite in (False, True):
            with pytest.raises(ModelError, match=reason):
                registry.save(run_id, name, overwrite=overwrite)
    assert (weights / "MSD_musicnn.weights.h5").read_bytes() == b"weights"
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == [".runs", "backbones", "notes"]
    with pytest.raises(runs.RunError, match="no run"):
        registry.save("0123456789", "x")


def test_stopped_and_failed_runs_have_nothing_to_save(tmp_path):
    registry = fake(tmp_path / "models")
    run_id, _ = registry.submit(request(epochs=10_000))
    queued, _ = registry.submit(request(epochs=1, seed=1))
    registry.stop(queued)
    with pytest.raises(runs.RunError, match="stopped; only a finished training"):
        registry.save(queued, "x")
    registry.stop(run_id)
    registry.wait(run_id, 30)


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_new_server_process_finds_the_previous_ones_runs(tmp_path):
    models_dir = tmp_path / "models"
    before = fake(models_dir)
    done, _ = before.submit(request(epochs=2))
    assert before.wait(done, 30)
    # a run that was going when its server died, and a folder that is not a run
    shutil.copytree(before.root / done, before.root / "abcdef0123")
    cut = json.loads((before.root / "abcdef0123" / "record.json").read_text())
    (before.root / "abcdef0123" / "record.json").write_text(json.dumps({**cut, "id": "abcdef0123",
                                                                        "state": runs.RUNNING}))
    (before.root / "not-a-run").mkdir()
    assert fake(models_dir).list() == []  # this process's own runs are not taken over

    for folder in (done, "abcdef0123"):
        record = before.root / folder / "record.json"
        record.write_text(json.dumps({**json.loads(record.read_text()), "owner_pid": dead_pid()}))
    after = fake(models_dir)
    kept = {s.id: s for s in after.list()}
    assert set(kept) == {done, "abcdef0123"}
    assert kept[done].state == runs.DONE and kept[done].card.labels == load_model(DEFAULT_MODEL_DIR).labels
    assert len(kept[done].history) == 2 and kept[done].failed_files == (("bad.wav", "is empty (0 bytes)"),)
    assert kept["abcdef0123"].state == runs.FAILED and "server stopped" in kept["abcdef0123"].error
    assert after.save(done, "restored").name == "restored"


def test_shared_registry_is_one_per_models_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(models, "MODELS_DIR", tmp_path / "a")
    assert runs.shared_registry() is runs.shared_registry(tmp_path / "a")
    assert runs.shared_registry(tmp_path / "b") is not runs.shared_registry()
    assert runs.shared_registry().root == (tmp_path / "a" / ".runs").resolve()


def test_settings_from_the_environment(monkeypatch):
    monkeypatch.setenv("GENRE_MAX_TRAININGS", "2")
    monkeypatch.setenv("GENRE_TRAIN_THREADS", "3")
    monkeypatch.setenv("GENRE_TRAIN_NICE", "0")
    monkeypatch.setenv("GENRE_TRAIN_IDLE", "0")
    assert (runs.max_trainings(), runs.worker_threads(), runs.worker_niceness(), runs.worker_idle()) == (2, 3, 0, False)
    monkeypatch.delenv("GENRE_TRAIN_IDLE")
    assert runs.worker_idle()
    monkeypatch.setenv("GENRE_MAX_TRAININGS", "many")
    with pytest.warns(UserWarning, match="GENRE_MAX_TRAININGS='many' is not a whole number >= 1; using 1"):
        assert runs.max_trainings() == 1
    monkeypatch.delenv("GENRE_TRAIN_THREADS")
    assert runs.worker_threads() == max(1, os.cpu_count() // 2)


def test_worker_gets_limited_threads_and_lower_priority(tmp_path, stop_all):
    registry = fake(tmp_path / "models", threads=1, niceness=7)
    stop_all(registry)
    run_id, _ = registry.submit(request(epochs=10_000))
    wait_until(lambda: registry.get(run_id).history, what="the first epoch")
    pid = registry.worker_pid(run_id)
    environ = dict(e.split("=", 1) for e in (open(f"/proc/{pid}/environ").read().split("\0")) if "=" in e)
    assert {environ[k] for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TF_NUM_INTRAOP_THREADS")} == {"1"}
    assert os.getpriority(os.PRIO_PROCESS, pid) == os.getpriority(os.PRIO_PROCESS, 0) + 7
    if os.sched_getscheduler(pid) != os.SCHED_IDLE:  # the default: only CPU time no prediction wants
        log = (registry.root / run_id / "worker.log").read_text()
        if "SCHED_IDLE refused" in log:
            pytest.skip(f"this system refuses SCHED_IDLE: {log.strip().splitlines()[-1]}")
        pytest.fail(f"the worker is not in the SCHED_IDLE class; its log: {log[-500:]}")


def test_a_refused_idle_class_leaves_the_worker_at_its_niceness(monkeypatch, capsys):
    def refuse(*args):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "sched_setscheduler", refuse)
    run_worker.lower_priority(0, idle=True)  # niceness 0: this test process keeps its priority
    assert "SCHED_IDLE refused" in capsys.readouterr().err


def test_a_worker_can_stay_in_the_normal_scheduling_class(tmp_path, stop_all):
    registry = fake(tmp_path / "models", threads=1, niceness=3, idle=False)
    stop_all(registry)
    run_id, _ = registry.submit(request(epochs=10_000))
    wait_until(lambda: registry.get(run_id).history, what="the first epoch")
    pid = registry.worker_pid(run_id)
    assert os.sched_getscheduler(pid) == os.SCHED_OTHER
    assert os.getpriority(os.PRIO_PROCESS, pid) == os.getpriority(os.PRIO_PROCESS, 0) + 3


def test_real_worker_reports_the_extraction_with_its_rate(tiny_dataset, tmp_path, stop_all):
    """Real worker, empty cache: the feature phase counts the 18 clips to extract, then reports
    how many are done, the rate and the time left; the logistic regression is one fit."""
    registry = runs.RunRegistry(tmp_path / "models")
    stop_all(registry)
    seen = []
    run_id, _ = registry.submit(runs.TrainRequest(root=str(tiny_dataset), split="stratified", valid_fraction=0.34,
                                                  spec=ModelSpec(family="logreg", hidden=(), l2=1e-2, epochs=200)))
    while registry.get(run_id).active:
        snap = registry.get(run_id)
        if snap.phase == "features" and snap.extraction not in seen:
            seen.append(dict(snap.extraction))
        time.sleep(0.01)
    snap = registry.get(run_id)
    assert snap.state == runs.DONE, (snap.error, snap.details)
    assert seen and all(e["missing"] == 18 for e in seen)
    last = snap.extraction
    assert last["computed"] == 18 and last["rate"] > 0 and last["eta"] == 0
    assert [name for name, _ in snap.phases] == ["features", "loading", "building", "fitting"]
    assert len(snap.history) == 1 and snap.card.metrics["epochs_run"] == 200


def test_comparisons_run_in_a_worker_and_are_kept(tmp_path, stop_all):
    """Fake worker: the request's model is scored after training; another one on demand; the
    finished comparisons survive a restart of the server."""
    models_dir = tmp_path / "models"
    registry = fake(models_dir)
    stop_all(registry)
    run_id, _ = registry.submit(replace(request(epochs=2, seed=2), compare_with=str(DEFAULT_MODEL_DIR)))
    assert registry.get(run_id).comparisons[0]["state"] == "pending"
    assert not registry.compare(run_id, DEFAULT_MODEL_DIR) or registry.get(run_id).state == runs.DONE
    assert registry.wait(run_id, 30)
    wait_until(lambda: registry.get(run_id).comparisons[0]["state"] == "done", 30, "the comparison")
    entry = registry.get(run_id).comparison(DEFAULT_MODEL_DIR, load_model(DEFAULT_MODEL_DIR).card.created)
    assert entry["trained_on"] == 2 and entry["model"] == "default" and entry["path"] == str(DEFAULT_MODEL_DIR)
    assert registry.compare(run_id, DEFAULT_MODEL_DIR)  # already there: no second evaluation
    assert len(registry.get(run_id).comparisons) == 1

    other = models_dir / "other"
    models.copy_model(DEFAULT_MODEL_DIR, other)
    card = json.loads((other / "card.json").read_text())
    (other / "card.json").write_text(json.dumps({**card, "created": "2030-01-01T00:00:00+00:00"}))
    assert registry.compare(run_id, other)
    wait_until(lambda: registry.get(run_id).comparison(other, "2030-01-01T00:00:00+00:00")["state"] == "done",
               30, "the second comparison")
    assert not registry.compare(run_id, tmp_path / "not-a-model")

    record = registry.root / run_id / "record.json"
    record.write_text(json.dumps({**json.loads(record.read_text()), "owner_pid": dead_pid()}))
    restored = fake(models_dir).get(run_id)
    assert [c["model"] for c in restored.comparisons] == ["default", "other"]


def test_a_comparison_whose_process_dies_fails_with_the_reason(tmp_path, stop_all):
    registry = fake(tmp_path / "models")
    stop_all(registry)
    run_id, _ = registry.submit(request(epochs=1))
    assert registry.wait(run_id, 30)
    registry.worker = [sys.executable, "-c", "import sys; sys.exit(4)"]
    assert registry.compare(run_id, DEFAULT_MODEL_DIR)
    wait_until(lambda: registry.get(run_id).comparisons[0]["state"] != "pending", 30, "the end of the evaluation")
    entry = registry.get(run_id).comparisons[0]
    assert entry["state"] == "failed" and entry["error"] == "the evaluation process ended unexpectedly (exit code 4)"
