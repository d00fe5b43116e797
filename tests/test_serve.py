"""Serving: no file watcher, a bounded model LRU, and the warm-up at server start that never
holds up the Home page. (Idle-tab CPU and warm-start timings are measured by
benchmarks/serve.py, not here.)"""
from __future__ import annotations

import gc
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import tomllib
import urllib.request
import weakref

import pytest

from conftest import ROOT
from genre.models import DEFAULT_MODEL_DIR
from genre.ui import cache, serve

APP = str(ROOT / "streamlit_app.py")


# --- no Keras reset after a script run ---------------------------------------------------------

def test_no_script_run_resets_keras(monkeypatch):
    """Streamlit's own clean-up calls keras.backend.clear_session() (a full gc.collect(), the
    kernel cache and layer names thrown away); after the dashboard's script runs, nothing does."""
    import types

    from streamlit.runtime.scriptrunner import script_runner
    from streamlit.testing.v1 import AppTest

    from genre.ui import keras_state

    resets = []
    fake = types.SimpleNamespace(backend=types.SimpleNamespace(clear_session=lambda: resets.append(1)))
    monkeypatch.setitem(sys.modules, "keras", fake)
    keras_state.STREAMLIT_CLEAN_UP()
    assert resets == [1], "Streamlit's clean-up no longer resets Keras: genre.ui.keras_state may go"
    resets.clear()
    monkeypatch.setattr(script_runner, keras_state.CLEAN_UP, keras_state.STREAMLIT_CLEAN_UP)
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page("pages/dataset.py").run()
    assert not at.exception and resets == [], "a script run reset Keras"
    assert getattr(script_runner, keras_state.CLEAN_UP) is keras_state.close_matplotlib_figures


# --- no file watcher, no collection after every run -----------------------------------------------------------------------

def test_config_turns_the_file_watcher_off():
    server = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())["server"]
    assert server["fileWatcherType"] == "none" and server["runOnSave"] is False


def test_streamlit_reads_the_watcher_off_from_the_project_folder():
    """What `streamlit run` in the project folder ends up with (config files + defaults)."""
    code = ("from streamlit import config\nfrom streamlit.web import bootstrap\n"
            "bootstrap.load_config_options(flag_options={})\n"
            "from streamlit.watcher.path_watcher import NoOpPathWatcher, get_default_path_watcher_class\n"
            "print(config.get_option('server.fileWatcherType'), config.get_option('server.runOnSave'),\n"
            "      get_default_path_watcher_class() is NoOpPathWatcher, config.get_option('runner.postScriptGC'))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["none", "False", "True", "False"]  # and no gc.collect(2) after each run


def test_developer_mode_polls_instead_of_watching_the_project_tree():
    """GENRE_DEV=1 reruns on save with the poll watcher (which checks the imported project
    modules only); options given on the command line still win."""
    assert serve.streamlit_argv([], dev=False) == ["run", APP]
    dev = serve.streamlit_argv(["--server.port", "8600"], dev=True)
    assert dev[:2] == ["run", APP] and dev[-2:] == ["--server.port", "8600"]
    options = dict(zip(dev[2::2], dev[3::2]))
    assert options["--server.fileWatcherType"] == "poll" and options["--server.runOnSave"] == "true"


# --- bounded model memory ------------------------------------------------------------------

class FakeModel:
    def __init__(self, path: str):
        self.path = path


def counting_loader(loads: list[str]):
    def load(path: str) -> FakeModel:
        loads.append(path)
        return FakeModel(path)
    return load


def test_lru_keeps_at_most_size_models(tmp_path):
    loads: list[str] = []
    lru = cache.ModelLRU(size=3, loader=counting_loader(loads))
    folders = [tmp_path / f"m{i}" for i in range(5)]
    for folder in folders:
        folder.mkdir()
        lru.get(folder, mtime=1.0)
    assert lru.folders() == [os.path.realpath(f) for f in folders[2:]]
    lru.get(folders[2], mtime=1.0)  # a hit: no load, becomes the most recent
    assert len(loads) == 5 and lru.folders()[-1] == os.path.realpath(folders[2])
    lru.get(folders[0], mtime=1.0)  # evicted earlier: loaded again, evicts the least recent (m3)
    assert len(loads) == 6 and os.path.realpath(folders[3]) not in lru.folders() and len(lru.folders()) == 3


def test_lru_reloads_a_model_saved_over_and_keeps_one_entry(tmp_path):
    loads: list[str] = []
    lru = cache.ModelLRU(size=3, loader=counting_loader(loads))
    first = lru.get(tmp_path, mtime=1.0)
    assert lru.get(str(tmp_path) + "/", mtime=1.0) is first  # same folder, other spelling
    second = lru.get(tmp_path, mtime=2.0)
    assert second is not first and len(loads) == 2 and lru.folders() == [os.path.realpath(tmp_path)]


def test_lru_loads_a_model_once_for_concurrent_sessions(tmp_path):
    loads: list[str] = []
    entered, release = threading.Event(), threading.Event()

    def slow_load(path: str) -> FakeModel:
        entered.set()
        release.wait(30)
        return counting_loader(loads)(path)

    lru = cache.ModelLRU(size=2, loader=slow_load)
    got: list[FakeModel] = []
    threads = [threading.Thread(target=lambda: got.append(lru.get(tmp_path, mtime=1.0))) for _ in range(3)]
    threads[0].start()
    assert entered.wait(30)
    for t in threads[1:]:
        t.start()
    release.set()
    for t in threads:
        t.join(30)
    assert len(loads) == 1 and len(got) == 3 and all(m is got[0] for m in got)


def test_lru_rejects_a_size_below_one():
    with pytest.raises(ValueError, match="at least 1"):
        cache.ModelLRU(size=0)


def test_an_evicted_keras_model_is_freed(tmp_path):
    """Nothing else (Keras, the LRU) keeps an evicted model alive, so the bound is a memory bound."""
    for name in ("a", "b"):
        shutil.copytree(DEFAULT_MODEL_DIR, tmp_path / name)
    lru = cache.ModelLRU(size=1)
    first = weakref.ref(lru.get(tmp_path / "a", mtime=cache.card_mtime(tmp_path / "a")).keras_model)
    lru.get(tmp_path / "b", mtime=cache.card_mtime(tmp_path / "b"))
    gc.collect()
    assert first() is None and lru.folders() == [os.path.realpath(tmp_path / "b")]


# --- warm-up -------------------------------------------------------------------------------

HELD_WARMUP = f"""
import os, sys, threading
from streamlit.testing.v1 import AppTest
from genre.ui import cache, warmup

release, holding = threading.Event(), threading.Event()
load = cache.MODELS._loader

def held_load(path):  # the warm-up holds the model LRU's load lock until Home has rendered
    holding.set()
    release.wait(300)
    return load(path)

cache.MODELS._loader = held_load
thread = warmup.start()
assert holding.wait(60), "the warm-up never started loading"
at = AppTest.from_file({APP!r}, default_timeout=60).run()
assert not at.exception, at.exception
print("home", at.title[0].value.endswith("genre"), warmup.status(), "tensorflow" in sys.modules)
release.set()
thread.join(300)
print("after", warmup.status().split()[0], "tensorflow" in sys.modules,
      cache.MODELS.folders() == [os.path.realpath(warmup.default_model_dir())])
"""


def test_home_renders_while_the_warm_up_is_loading(tiny_dataset):
    """Home paints (without TensorFlow) while the warm-up thread is in the middle of loading
    the default model; released, the warm-up imports TensorFlow and leaves that model loaded."""
    env = {**os.environ, "GENRE_DATA_DIR": str(tiny_dataset), "GENRE_WARM": "1"}
    out = subprocess.run([sys.executable, "-c", HELD_WARMUP], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.strip().splitlines()
    assert lines[-2] == "home True running False", lines
    assert lines[-1] == "after done True True", lines


def test_warm_up_is_off_with_genre_warm_0(monkeypatch):
    from genre.ui import warmup

    monkeypatch.setenv("GENRE_WARM", "0")
    assert warmup.start() is None and warmup.status() == "not started"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_server_warms_up_before_any_visitor(tmp_path):
    """`python -m genre.ui.serve` (what ./run.sh starts) answers at once and logs the finished
    warm-up without a single page request."""
    port, log = _free_port(), tmp_path / "server.log"
    env = {**os.environ, "GENRE_DATA_DIR": str(tmp_path), "GENRE_WARM": "1", "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "genre.ui.serve", "--server.headless", "true", "--server.port", str(port),
           "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"]
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline, healthy = time.monotonic() + 300, False
        while time.monotonic() < deadline and "warm-up" not in log.read_text():
            assert proc.poll() is None, log.read_text()[-3000:]
            if not healthy:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
                        healthy = r.status == 200
                except OSError:
                    pass
            time.sleep(0.5)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=10) as r:
            assert r.status == 200
        text = log.read_text()
        assert "warm-up done" in text and "model default" in text, text[-3000:]
        assert "Traceback" not in text, text[-3000:]
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(30)
