"""genre as people who tag their library install it: a wheel built from this clone (not
editable) in a fresh venv, used from a folder that is not the clone.

The wheel must carry what the clone has beside the package (the dashboard's entry script, its
pages and settings, the default model, the backbones' weights). The venv gets genre from the
wheel only; its dependencies are the ones the tests run with (a ``.pth`` line to this venv's
site-packages, so nothing is downloaded), which is what the lock installs anyway. What genre
writes goes to ``$GENRE_HOME``, never into the clone.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import ROOT, synth, write_wav

from .conftest import VIEWPORT, serving
from .test_browser import no_exception, prediction, settle, shot

pytestmark = pytest.mark.browser
LABELS = json.loads((ROOT / "models" / "default" / "card.json").read_text())["labels"]


@dataclass
class Installed:
    """A venv holding genre from ``wheel``; run it in ``workdir`` with ``env``."""

    wheel: Path
    bin: Path
    workdir: Path
    home: Path
    env: dict[str, str]

    def run(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run([str(self.bin / "genre"), *args], cwd=self.workdir, env=self.env, capture_output=True,
                              text=True, timeout=timeout)


def _clone_files() -> set[Path]:
    return {p for folder in ("models", "data") for p in (ROOT / folder).rglob("*")}


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Installed:
    base = tmp_path_factory.mktemp("installed")
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(base / "dist"), str(ROOT)], capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr
    wheel, = (base / "dist").glob("genre_dashboard-*.whl")
    venv = base / "venv"
    subprocess.run([getattr(sys, "_base_executable", sys.executable), "-m", "venv", "--without-pip", str(venv)],
                   check=True, timeout=120)
    site = Path(subprocess.run([str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "genre-test-dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    done = subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "-q",
                           "--no-deps", "--no-index", str(wheel)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    workdir, home = base / "elsewhere", base / "home"
    workdir.mkdir()
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("GENRE_") and key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(GENRE_HOME=str(home), TF_CPP_MIN_LOG_LEVEL="2", PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}")
    return Installed(wheel, venv / "bin", workdir, home, env)


def test_the_wheel_carries_the_app_the_default_model_and_the_weights(installed):
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    bundle = "genre/_bundle/"
    for needed in ("streamlit_app.py", "pages/predict.py", "pages/train.py", ".streamlit/config.toml",
                   "models/default/model.keras", "models/default/card.json", "models/backbones/MSD_musicnn.weights.h5",
                   "models/backbones/mn04_as.weights.h5", "models/backbones/mn04_as_labels.csv"):
        assert bundle + needed in names, needed
    assert "genre/__main__.py" in names and "genre/ui/serve.py" in names
    assert not [n for n in names if n.startswith(("tests/", "benchmarks/", "data/")) or "/.runs/" in n]
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "genre = genre.__main__:main" in zipfile.ZipFile(installed.wheel).read(entry_points).decode()


def test_the_genre_command_predicts_from_any_folder(installed):
    where = subprocess.run([str(installed.bin / "python"), "-c", "import genre.locations as l; "
                            "print(l.INSTALLED, l.PACKAGE_DIR, l.HOME)"],
                           cwd=installed.workdir, env=installed.env, capture_output=True, text=True, timeout=60)
    flag, package, home = where.stdout.split()
    assert flag == "True" and Path(package).is_relative_to(installed.bin.parent) and home == str(installed.home)

    usage = installed.run("--help")
    assert usage.returncode == 0 and usage.stdout.startswith("usage: genre ")
    assert all(c in usage.stdout for c in ("extract", "train", "predict", "dashboard"))

    before = _clone_files()
    write_wav(installed.workdir / "some.wav", synth("tones", seconds=6.0))
    done = installed.run("predict", "some.wav")
    assert done.returncode == 0, done.stderr
    line, = [row for row in done.stdout.splitlines() if row.startswith("some.wav")]
    assert any(label in line for label in LABELS), line
    assert _clone_files() == before  # nothing written into the clone


def test_genre_dashboard_serves_predict_from_any_folder(installed, browser, tmp_path):
    log = tmp_path / "installed-dashboard.log"
    server = serving.launch([str(installed.bin / "genre"), "dashboard"], cwd=installed.workdir, log=log,
                            env=installed.env, timeout=120)
    try:
        context = browser.new_context(viewport=VIEWPORT)
        page = context.new_page()
        page.goto(f"{server.url}/predict")
        page.wait_for_function("() => document.querySelector('h1')?.innerText.includes('Predict')", timeout=60_000)
        settle(page)
        no_exception(page, "Predict of an installed genre")
        assert page.locator('[data-testid="stSidebarNav"] a', has_text="Train").count() == 1
        page.locator('[data-testid="stFileUploader"] input[type=file]').set_input_files(
            write_wav(tmp_path / "beats.wav", synth("beats", seconds=6.0, seed=7)))
        prediction(page, LABELS, timeout=120)
        settle(page)
        no_exception(page, "Predict of an installed genre, after an upload")
        shot(page, "installed-predict")
        context.close()
    finally:
        server.stop()
    text = log.read_text(errors="replace")
    assert "Traceback" not in text, text[-3000:]
