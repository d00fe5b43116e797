"""What benchmarks/serve.py, benchmarks/load.py and the browser tests (tests/e2e) share: start
a dashboard server and stop it, read its CPU time and memory from /proc, and drive it from
headless Chromium.

Nothing is downloaded: the browser is Debian's ``/usr/bin/chromium`` (``$GENRE_E2E_CHROMIUM``);
never ``playwright install``.
"""
from __future__ import annotations

import importlib.util
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

PROJECT = Path(__file__).resolve().parent.parent
GTZAN = PROJECT.parent / "shared" / "gtzan"
"""Real clips to upload, if present; synthetic ones otherwise."""
CHROMIUM = Path(os.environ.get("GENRE_E2E_CHROMIUM") or "/usr/bin/chromium")
LAUNCH_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--disable-background-networking", "--disable-component-update", "--no-first-run", "--disable-sync",
    "--disable-default-apps", "--disable-extensions", "--mute-audio",
]
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


# --- the server ----------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    """A running dashboard: its process (own process group), URL and log file."""

    proc: subprocess.Popen
    url: str
    log: Path
    started: float = field(default_factory=time.monotonic)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def wait_for_log(self, pattern: str, *, timeout: float) -> re.Match | None:
        """The first match of ``pattern`` in the log, waiting up to ``timeout`` s (None then)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = re.search(pattern, self.log_text())
            if match:
                return match
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited with {self.proc.returncode}:\n{self.log_text()[-3000:]}")
            time.sleep(0.25)
        return None

    def errors(self) -> list[str]:
        return [line for line in self.log_text().splitlines() if "Traceback" in line]

    def stop(self) -> None:
        if self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
        except ProcessLookupError:
            pass


def launch(command: list[str], *, cwd: Path, log: Path, env: dict[str, str] | None = None,
           timeout: float = 120.0) -> Server:
    """Run a Streamlit server ``command`` (followed by headless options on a free local port) in
    ``cwd``, in a process group of its own, its output in ``log`` and ``env`` over this process's
    environment. Returns once /_stcore/health answers; stops it and raises RuntimeError with the
    log's end if it exits or does not answer within ``timeout`` s."""
    port = free_port()
    cmd = [*command, "--server.headless", "true", "--server.port", str(port),
           "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"]
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, cwd=cwd, env=full_env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    server = Server(proc, f"http://127.0.0.1:{port}", log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}:\n{server.log_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{server.url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return server
        except OSError:
            pass
        time.sleep(0.25)
    server.stop()
    raise RuntimeError(f"the server did not answer {server.url}/_stcore/health in {timeout:.0f} s:\n"
                       f"{server.log_text()[-3000:]}")


def start_server(*, project: Path, python: str, log: Path, env: dict[str, str] | None = None,
                 options: tuple[str, ...] = ()) -> Server:
    """``python -m genre.ui.serve`` (what ./run.sh runs) in ``project`` (see :func:`launch`);
    ``options`` go to ``streamlit run``."""
    return launch([python, "-m", "genre.ui.serve", *options], cwd=project, log=log, env=env)


WARM_DONE = r"warm-up (done in ([\d.]+) s|of model \S+ failed)"


# --- CPU time and memory from /proc ----------------------------------------------------------

def _stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, CPU ticks of the process + its reaped children) or None if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[1]), sum(int(v) for v in fields[11:15])  # utime, stime, cutime, cstime


def process_tree(root: int) -> list[int]:
    """``root`` and every live descendant."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _stat(int(entry))
            if stat:
                parents[int(entry)] = stat[0]
    tree, frontier = [root], [root]
    while frontier:
        frontier = [pid for pid, parent in parents.items() if parent in frontier]
        tree += frontier
    return tree


def cpu_seconds(root: int) -> float:
    """CPU time (user + system, s) used so far by ``root`` and its children, exited ones included."""
    return sum((_stat(pid) or (0, 0))[1] for pid in process_tree(root)) / CLOCK_TICKS


def rss_mb(root: int) -> float:
    """Resident memory (MB) of ``root`` and its live descendants."""
    total = 0
    for pid in process_tree(root):
        try:
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1])
        except OSError:
            pass
    return total * PAGE_SIZE / 2**20


def load_average() -> str:
    return "/".join(f"{v:.1f}" for v in os.getloadavg())


# --- the project folder as ./run.sh leaves it ---------------------------------------------------

@dataclass
class Project:
    """Where the server runs: ``root`` (a folder with .venv inside, as ./run.sh makes it),
    ``python`` (that venv's interpreter) and how it was made (``note``)."""

    root: Path
    python: str
    note: str
    _tmp: tempfile.TemporaryDirectory | None = None

    def cleanup(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()


def project_with_venv() -> Project:
    """This checkout if it holds .venv; else a throw-away copy of its tracked files with a
    hard-linked copy of the running venv as .venv, so the folder a file watcher sees is the one
    ./run.sh leaves (a symlink would hide .venv from it: watchdog does not follow links)."""
    if (PROJECT / ".venv" / "bin" / "python").exists():
        return Project(PROJECT, str(PROJECT / ".venv" / "bin" / "python"), "this checkout, with its .venv")
    if sys.prefix == sys.base_prefix:
        raise SystemExit("run this with the project's venv python (e.g. .venv/bin/python benchmarks/serve.py)")
    tmp = tempfile.TemporaryDirectory(prefix="genre-serve-")
    root = Path(tmp.name) / "genre"
    files = subprocess.run(["git", "ls-files", "-z"], cwd=PROJECT, capture_output=True, check=True).stdout
    for name in files.decode().split("\0"):
        if name and (PROJECT / name).is_file():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(PROJECT / name, root / name)
    subprocess.run(["cp", "-al", sys.prefix, str(root / ".venv")], check=True)
    return Project(root, str(root / ".venv" / "bin" / "python"),
                   f"a copy of this checkout's files with a hard-linked copy of {sys.prefix} as .venv", tmp)


# --- audio and the browser -----------------------------------------------------------------------

def music_clips(root: Path = GTZAN) -> list[Path]:
    """The real GTZAN clips under ``root`` (``<genre>/*.ogg``), sorted; empty if absent."""
    return sorted(root.glob("*/*.ogg")) if root.is_dir() else []


def clip_file(path: Path, *, seed: int, seconds: float = 30.0, sr: int = 22050, music: list[Path] = ()) -> Path:
    """A distinct WAV (16-bit) of ``seconds`` s per ``seed``, so no two uploads hit the page's
    cache of analyses: the first ``seconds`` of clip ``seed`` of ``music`` (real GTZAN clips,
    at most ~30 s) if given, else a synthetic chord with drum-like bursts and noise."""
    if music:
        y, sr = sf.read(music[seed % len(music)], dtype="float32", always_2d=True)
        y = y.mean(axis=1)[: int(seconds * sr)]
        if len(y) < int(seconds * sr):
            raise ValueError(f"{music[seed % len(music)]} is shorter than {seconds} s")
    else:
        rng = np.random.default_rng(seed)
        t = np.arange(int(seconds * sr)) / sr
        f0 = 110 * 2 ** (rng.integers(0, 12) / 12)
        chord = sum(np.sin(2 * np.pi * f0 * r * t) for r in (1, 1.25, 1.5)) / 3
        bursts = np.exp(-((t % (60 / rng.uniform(80, 160))) * 25)) * rng.standard_normal(len(t))
        y = 0.2 * chord + 0.2 * bursts + 0.01 * rng.standard_normal(len(t))
    sf.write(path, np.clip(y, -1, 1).astype(np.float32), sr, subtype="PCM_16")
    return path


def chromium_missing() -> str | None:
    """Why headless Chromium cannot be driven here, or None."""
    if importlib.util.find_spec("playwright") is None:
        return "the playwright package is not installed (./run.sh setup installs it from the lock)"
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        return (f"no Chromium at {CHROMIUM}: install Debian's (`./run.sh setup --with-browser`, or "
                "`apt-get install chromium`); `playwright install` is not used")
    return None


async def open_home(context, url: str, *, timeout: float = 120.0):
    """A new tab (playwright async API) on Home, once its title has painted."""
    page = await context.new_page()
    await page.goto(f"{url}/", timeout=timeout * 1000)
    await page.locator("h1", has_text="genre").first.wait_for(timeout=timeout * 1000)
    return page


async def go_to(page, name: str, *, timeout: float = 120.0) -> None:
    """Click a page's link in the sidebar and wait for its title."""
    await page.locator('[data-testid="stSidebarNav"] a', has_text=name).first.click()
    await page.locator("h1", has_text=name).first.wait_for(timeout=timeout * 1000)


_RESULT_JS = """(duration) => {
  const app = document.querySelector('[data-testid="stApp"]');
  const busy = !app || app.getAttribute('data-test-connection-state') !== 'CONNECTED'
      || app.getAttribute('data-test-script-state') === 'running'
      || !!document.querySelector('[data-testid="stStatusWidget"]')
      || !!document.querySelector('[data-testid="stSpinner"]');
  const metric = [...document.querySelectorAll('[data-testid="stMetric"]')].find(m => m.innerText.includes('Duration'));
  const value = metric && metric.querySelector('[data-testid="stMetricValue"]');
  return !busy && !!value && value.innerText.trim() === duration;
}"""
"""True once the script run is over (as tests/e2e's settle() sees it) and the Predict page's
Duration metric (drawn beside the result) reads ``duration`` (e.g. '30.3 s')."""


async def upload_and_wait(page, path: Path, *, seconds: float, timeout: float = 300.0) -> float:
    """Upload ``path`` (a clip of ``seconds`` s, given to one decimal) on the Predict page and
    wait until the run it starts is over and shows this clip's result: the seconds from handing
    the file to the browser to then (upload, rerun, decoding, model, the whole page drawn).
    Consecutive uploads of a page must differ in length, which tells their results apart."""
    t0 = time.perf_counter()
    await page.locator('[data-testid="stFileUploader"] input[type=file]').set_input_files(str(path))
    await page.wait_for_function(_RESULT_JS, arg=f"{seconds:.1f} s", polling=100, timeout=timeout * 1000)
    return time.perf_counter() - t0
