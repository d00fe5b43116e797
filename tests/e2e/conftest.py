"""Browser tests: the real dashboard (``streamlit run``) driven by headless Debian Chromium
through Python playwright, with a fake microphone that plays a synthetic wav.

Nothing is downloaded: the browser is the system's ``/usr/bin/chromium`` (``./run.sh setup
--with-browser`` installs it; never ``playwright install``). Without it, or without the
playwright package, every test here is skipped with the reason. ``GENRE_E2E_CHROMIUM`` points
at another Chromium binary (set it to a missing path to see the skip).

The app runs in a subprocess on a free port against throw-away folders: a tiny synthetic
dataset (datasets may be read anywhere under the test session's temporary folder,
``GENRE_DATA_ROOTS``), its own feature cache and a copy of ``models/`` (the Train page saves there, never
into the project). Screenshots go to ``test-artifacts/screenshots/``, the server log to
``test-artifacts/streamlit.log``.
"""
from __future__ import annotations

import json
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import ROOT, synth

sys.path.insert(0, str(ROOT / "benchmarks"))
import serving  # noqa: E402 - benchmarks/serving.py: starting, stopping and browsing a server

ARTIFACTS = ROOT / "test-artifacts"
SCREENSHOTS = ARTIFACTS / "screenshots"
VIEWPORT = {"width": 1400, "height": 900}
MIC_RATE = 44100
LAUNCH_ARGS = [*serving.LAUNCH_ARGS, "--autoplay-policy=no-user-gesture-required",
               "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]


def pytest_collection_modifyitems(config, items):
    """Every test of this folder is a browser test; all skip (one reason) without a browser."""
    here = Path(__file__).parent
    reason = serving.chromium_missing()
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.browser)
            if reason:
                item.add_marker(pytest.mark.skip(reason=f"browser tests skipped: {reason}"))


# --- the app under test --------------------------------------------------------------------

@dataclass
class App:
    """A running dashboard: ``url`` (no trailing slash), its throw-away folders and log."""

    url: str
    data_dir: Path
    models_dir: Path
    log: Path
    labels: list[str] = field(default_factory=list)
    """Genres of the shipped default model."""

    def server_errors(self) -> list[str]:
        """Lines of the server log that carry a Python traceback."""
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return [line for line in text.splitlines() if "Traceback" in line]


def launch(*, data_dir: Path, data_roots: Path, models_dir: Path, cache_dir: Path, log: Path) -> serving.Server:
    """Start ``streamlit run streamlit_app.py`` on a free port (own process group), allowed to
    read datasets under ``data_roots`` (GENRE_DATA_ROOTS), keeping taught examples in
    ``models_dir``'s sibling ``examples`` and library reviews under its sibling ``home``; returns
    once /_stcore/health answers."""
    env = {"GENRE_DATA_DIR": str(data_dir), "GENRE_DATA_ROOTS": str(data_roots), "GENRE_MODELS_DIR": str(models_dir),
           "GENRE_CACHE_DIR": str(cache_dir), "GENRE_EXAMPLES_DIR": str(models_dir.parent / "examples"),
           "GENRE_HOME": str(models_dir.parent / "home"),  # library reviews write under it
           "TF_CPP_MIN_LOG_LEVEL": "2"}
    streamlit = Path(sys.executable).with_name("streamlit")
    return serving.launch([str(streamlit), "run", "streamlit_app.py", "--server.fileWatcherType", "none"],
                          cwd=ROOT, log=log, env=env, timeout=90)


@pytest.fixture(scope="session")
def app(tiny_dataset, tmp_path_factory) -> App:
    """The dashboard over the tiny dataset (3 genres x 6 clips of 4 s), with its own feature
    cache and a copy of models/ (default + backbones), shared by the tests; killed at the end."""
    models_dir = tmp_path_factory.mktemp("models")
    for name in ("default", "backbones"):
        shutil.copytree(ROOT / "models" / name, models_dir / name)
    log = ARTIFACTS / "streamlit.log"
    server = launch(data_dir=tiny_dataset, data_roots=tmp_path_factory.getbasetemp(), models_dir=models_dir,
                    cache_dir=tmp_path_factory.mktemp("cache"), log=log)
    try:
        labels = json.loads((ROOT / "models" / "default" / "card.json").read_text())["labels"]
        yield App(server.url, tiny_dataset, models_dir, log, labels)
    finally:
        server.stop()


@pytest.fixture
def fresh_app(app, tmp_path, tmp_path_factory) -> App:
    """A second, just-started server over the same folders, for what only happens on a
    server's first request; stopped after the test."""
    server = launch(data_dir=app.data_dir, data_roots=tmp_path_factory.getbasetemp(), models_dir=app.models_dir,
                    cache_dir=tmp_path / "cache", log=ARTIFACTS / "streamlit-fresh.log")
    try:
        yield App(server.url, app.data_dir, app.models_dir, ARTIFACTS / "streamlit-fresh.log", app.labels)
    finally:
        server.stop()


# --- the browser ---------------------------------------------------------------------------

def mic_wav(path: Path) -> Path:
    """What the fake microphone plays, looped: 3 s of a bright saw wave ('buzz' + 'beats'),
    then 3 s of near-silence, so the hands-free recorder hears a pause and stops. 16-bit PCM;
    never all zeros (audio-recorder-streamlit takes a silent first buffer for a broken mic)."""
    loud = synth("buzz", seconds=3.0, sr=MIC_RATE, seed=1) + synth("beats", seconds=3.0, sr=MIC_RATE, seed=2)
    quiet = 1e-3 * np.random.default_rng(0).standard_normal(3 * MIC_RATE).astype(np.float32)
    sf.write(path, np.clip(np.concatenate([loud, quiet]), -1, 1), MIC_RATE, subtype="PCM_16")
    return path


@pytest.fixture(scope="session")
def mic_file(tmp_path_factory) -> Path:
    """The file the fake microphone plays (:func:`mic_wav`)."""
    return mic_wav(tmp_path_factory.mktemp("mic") / "mic.wav")


@pytest.fixture(scope="session")
def browser(mic_file):
    """Headless Debian Chromium with a fake microphone playing :func:`mic_wav`."""
    from playwright.sync_api import sync_playwright

    wav = mic_file
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(serving.CHROMIUM),
                                      args=[*LAUNCH_ARGS, f"--use-file-for-fake-audio-capture={wav}"])
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser, app):
    """A fresh browser session (its own Streamlit session) allowed to use the microphone.
    Uncaught page errors fail the test at the end."""
    context = browser.new_context(viewport=VIEWPORT)
    context.grant_permissions(["microphone"], origin=app.url)
    context.set_default_timeout(30_000)
    pg = context.new_page()
    pg.js_errors = []
    pg.on("pageerror", lambda err: pg.js_errors.append(str(err)))
    try:
        yield pg
    finally:
        context.close()
    assert not pg.js_errors, f"JavaScript errors in the page: {pg.js_errors}"


@pytest.fixture(scope="session", autouse=True)
def _screenshot_folder():
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
