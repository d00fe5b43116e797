"""Load test: several people's sessions against one dashboard on localhost for a few minutes.

One server started as ./run.sh starts it (``python -m genre.ui.serve``: warm-up, no file
watcher). Each person is a tab with its own Streamlit session, either (``--client``)

- ``protocol`` (default): Streamlit's own websocket protocol, spoken by benchmarks/st_client.py.
  The server does all it does for a browser tab (script runs, uploads, fragment refreshes of a
  watched training, media fetches); the people's browsers are elsewhere, as in a room where
  everyone has their own machine. This measures the server.
- ``browser``: headless Chromium contexts on this machine. Drawing the pages (plotly charts in
  software) then costs this machine as much CPU as the server's work (~1 s per prediction), so
  it measures server and browsers together on the same 2 cores.

After the warm-up:

1. **lone**: one session on Predict uploads ``--lone`` distinct 30 s clips, one after another.
2. **load @ T s**, for every pace T of ``--think``: ``--sessions`` sessions do the same at
   once, each in a loop for ``--seconds`` (a pause of T s on average between a result and the
   next upload), while ``--idle`` more tabs sit on Home. Pauses are drawn uniformly from
   0.5-1.5x T (seeded per session) and sessions start one pause apart: people do not press
   upload in step. With equal fixed pauses the sessions fall into lockstep (each run ends when
   the others' do), so every upload meets all the others head-on, a worst case measured
   separately (``--lockstep``). Several paces give the capacity curve: T = 1 s is a stress
   test (everyone uploads again a second after each answer); a person who listens to the
   answer and reads it takes 10 s or more.
3. **load + training @ T s** (``--train``): as 2, plus one more session that has started a
   training run on the Train page (CNN on log-mel patches over the dataset folder) and watches
   it; one run serves every pace, and a new one starts if it ended before a phase.

Every upload is a different clip (no cache hits). Latency = from handing the file to the
browser (the protocol client: from asking for the upload URL) to the end of the run it starts,
with this clip's result on the page. Reported per phase: p50/p95/max latency, errors
(timeouts, exception boxes, error messages, JavaScript errors, tracebacks in the server log;
expected: none), the uploads per minute the phase saw, and the server's CPU (% of one core; it
and its children, e.g. training workers) and memory (RSS), sampled every ``--sample`` s.
Target: p95 under load <= 2x the lone session's p95.

    .venv/bin/python benchmarks/load.py [--client protocol|browser] [--seconds 120] [--sessions 3] [--idle 5]
                                        [--think 1 3 10] [--train]

Uploads are cuts of the real GTZAN clips (``--gtzan``, default ../shared/gtzan), else synthetic
clips. The dataset folder (Train) is ``$GENRE_DATA_DIR``, else that GTZAN folder, else a
synthetic one (3 genres x 10 clips of 30 s); features go to ``$GENRE_CACHE_DIR`` (default: a
throw-away cache); the training run is kept in a throw-away models folder.
"""
from __future__ import annotations

import argparse
import asyncio
import functools
import itertools
import os
import random
import re
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import serving  # noqa: E402 - benchmarks/serving.py, beside this file
import st_client  # noqa: E402
from streamlit.proto.WidgetStates_pb2 import WidgetState  # noqa: E402

EPOCH_LINE = re.compile(r"Epoch \d+ of at most \d+")
"""The Train page's progress line while a run trains."""
CLIENTS = {"protocol": "Streamlit's websocket protocol (benchmarks/st_client.py, no browser on this machine)",
           "browser": "headless Chromium contexts on this machine's cores"}
TARGET_RATIO = 2.0
"""p95 latency under load may be at most this many times the lone session's p95."""


@dataclass
class Phase:
    name: str
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    samples: list[tuple[float, float, float]] = field(default_factory=list)
    """(seconds since the test started, CPU % of one core since the previous sample, RSS MB)."""
    load: str = ""
    note: str = ""
    seconds: float = 0.0
    """How long the phase's sessions uploaded (s)."""

    @property
    def per_minute(self) -> float:
        """Uploads answered per minute, all sessions together."""
        return 60 * len(self.latencies) / self.seconds if self.seconds else float("nan")


class Clips:
    """Distinct WAV files, one per upload: cuts of the real GTZAN clips in ``music`` if any,
    else synthetic clips."""

    def __init__(self, folder: Path, music: list[Path]):
        self.folder, self.music, self.seeds = folder, music, itertools.count()

    def next(self, *, seconds: float) -> Path:
        seed = next(self.seeds)
        return serving.clip_file(self.folder / f"clip-{seed}.wav", seed=seed, seconds=seconds, music=self.music)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


async def sampler(server: serving.Server, phase_of, t_start: float, every: float) -> None:
    """Appends a (t, CPU %, RSS) sample to the current phase every ``every`` s, forever."""
    cpu, t = serving.cpu_seconds(server.proc.pid), time.monotonic()
    while True:
        await asyncio.sleep(every)
        now_cpu, now = serving.cpu_seconds(server.proc.pid), time.monotonic()
        phase_of().samples.append((now - t_start, 100 * (now_cpu - cpu) / (now - t), serving.rss_mb(server.proc.pid)))
        cpu, t = now_cpu, now


class BrowserTab:
    """A person's tab in headless Chromium (one context each): everything a browser does,
    drawing included, on this machine's cores."""

    def __init__(self, browser, url: str, phase: Phase, who: str):
        self.browser, self.url, self.phase, self.who = browser, url, phase, who

    async def open(self) -> None:
        self.context = await self.browser.new_context(viewport={"width": 1400, "height": 900})
        self.page = await serving.open_home(self.context, self.url)
        self.page.on("pageerror", lambda err: self.phase.errors.append(f"{self.who}: JavaScript error {err}"))

    async def go_to(self, name: str) -> None:
        await serving.go_to(self.page, name)

    async def upload(self, clip: Path, *, seconds: float) -> float:
        return await serving.upload_and_wait(self.page, clip, seconds=seconds)

    async def recover(self) -> None:
        await self.page.reload()
        await self.page.locator("h1").first.wait_for(timeout=120_000)

    async def problems(self) -> list[str]:
        """Exception boxes and error messages shown on the page."""
        found = []
        for box in await self.page.locator('[data-testid="stException"]').all():
            found.append("exception: " + (await box.inner_text())[:200])
        for alert in await self.page.locator('[data-testid="stAlertContentError"]').all():
            found.append("error: " + (await alert.inner_text())[:200])
        return [p for p in found if not music_verdict(p)]

    async def start_training(self, family: str) -> None:
        await serving.go_to(self.page, "Train")
        await self.page.locator('[data-testid="stRadio"] label', has_text=family).first.click()
        await self.page.get_by_role("button", name="Start training").click()
        await self.page.get_by_text(EPOCH_LINE).first.wait_for(timeout=1_800_000)

    async def epoch_line(self) -> str | None:
        epoch = self.page.get_by_text(EPOCH_LINE)
        return (await epoch.first.inner_text()).strip() if await epoch.count() else None

    async def close(self) -> None:
        await self.context.close()


class ProtocolTab:
    """A person's tab spoken over Streamlit's websocket protocol (benchmarks/st_client.py): the
    server does the same work as for a browser tab, the person's browser runs elsewhere."""

    def __init__(self, url: str, phase: Phase, who: str):
        self.session, self.phase, self.who = st_client.Session(url), phase, who

    async def open(self) -> None:
        await self.session.open("")

    async def go_to(self, name: str) -> None:
        await self.session.go_to(name.lower())

    async def upload(self, clip: Path, *, seconds: float) -> float:
        uploader = self.session.page.widget("file_uploader", "Drop a clip here")
        t0 = time.perf_counter()
        await self.session.upload(uploader, clip, until=lambda page: page.metric("Duration") == f"{seconds:.1f} s")
        return time.perf_counter() - t0

    async def recover(self) -> None:
        await self.session.close()
        self.session = st_client.Session(self.session.url)
        await self.session.open("predict")

    async def problems(self) -> list[str]:
        """The page's problems, and players whose file could not be fetched since the last call."""
        found = [p for p in self.session.page.problems() if not music_verdict(p)]
        if self.session.media_misses:
            found.append(f"{self.session.media_misses} player file(s) could not be fetched")
            self.session.media_misses = 0
        return found

    async def start_training(self, family: str) -> None:
        page = await self.session.go_to("train")
        model = page.widget("radio", "Model")
        page = await self.session.run([WidgetState(id=model.radio.id, string_value=family)])
        start = page.widget("button", "Start training")
        await self.session.run([WidgetState(id=start.button.id, trigger_value=True)])
        await self.session.wait_for(lambda page: self._epoch(page) is not None, timeout=1_800)

    @staticmethod
    def _epoch(page: st_client.Page) -> str | None:
        texts = (st_client.element_text(e) for e in page.elements.values() if st_client.element_kind(e) != "plotly_chart")
        return next((text for text in texts if EPOCH_LINE.search(text)), None)

    async def epoch_line(self) -> str | None:
        return self._epoch(self.session.page)

    async def close(self) -> None:
        await self.session.close()


def music_verdict(problem: str) -> bool:
    """The music verdict on a clip it takes for no music is an answer, not a problem."""
    return "sound like music" in problem


async def new_tab(make_tab, url: str, phase: Phase, who: str):
    """An opened tab: ``make_tab(url, phase, who)`` is ProtocolTab or a BrowserTab on a browser."""
    tab = make_tab(url, phase, who)
    await tab.open()
    return tab


async def predictor(make_tab, url: str, clips: Clips, phase: Phase, *, who: str, until: float | None = None,
                    count: int | None = None, think: float = 1.0, seed: int = 0, start: float = 0.0,
                    lockstep: bool = False) -> None:
    """One session on Predict uploading clips: ``count`` of them, or until ``until`` (monotonic);
    first upload after ``start`` s, then pauses of 0.5-1.5x ``think`` s (exactly ``think`` with
    ``lockstep``), drawn with ``seed``."""
    pauses = random.Random(seed)
    tab = await new_tab(make_tab, url, phase, who)
    try:
        await tab.go_to("Predict")
        await asyncio.sleep(start)
        done = 0
        while (count is None or done < count) and (until is None or time.monotonic() < until):
            seconds = 29.0 + done % 10 / 10  # 10 segments each; a result is told from the last by its duration
            try:
                clip = clips.next(seconds=seconds)
                phase.latencies.append(await tab.upload(clip, seconds=seconds))
            except Exception as err:  # noqa: BLE001 - a timeout or a broken page is a result here
                phase.errors.append(f"{who}: {type(err).__name__}: {(str(err).splitlines() or [''])[0][:200]}")
                await tab.recover()
            phase.errors += [f"{who}: {p}" for p in await tab.problems()]
            done += 1
            await asyncio.sleep(think if lockstep else think * pauses.uniform(0.5, 1.5))
    finally:
        await tab.close()


async def trainer(make_tab, url: str, phase: Phase):
    """A session that starts a CNN training run on the Train page; returns its tab once the
    first epoch line shows (after feature extraction), so the run goes on beside the load."""
    tab = await new_tab(make_tab, url, phase, "trainer")
    await tab.start_training("CNN on log-mel patches")
    return tab


def dataset_dir(workdir: Path, gtzan: Path) -> tuple[Path, str]:
    if os.environ.get("GENRE_DATA_DIR"):
        return Path(os.environ["GENRE_DATA_DIR"]), f"$GENRE_DATA_DIR ({os.environ['GENRE_DATA_DIR']})"
    if gtzan.is_dir():
        return gtzan, f"{gtzan}"
    root = workdir / "dataset"
    for g, genre in enumerate(("chords", "drums", "mix")):
        (root / genre).mkdir(parents=True)
        for i in range(10):
            serving.clip_file(root / genre / f"{genre}.{i:05d}.wav", seed=1000 * g + i)
    return root, "synthetic (3 x 10 clips of 30 s)"


def report(phases: list[Phase], server_errors: list[str]) -> None:
    print("| phase | predictions | per minute | p50 | p95 | max | errors | server CPU (mean, % of a core) "
          "| RSS start -> max -> end | load average |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|---|")
    for p in phases:
        if not p.latencies:
            print(f"| {p.name} | 0 | - | - | - | - | {len(p.errors)} | - | - | {p.load} |")
            continue
        cpu = statistics.fmean(s[1] for s in p.samples) if p.samples else float("nan")
        rss = [s[2] for s in p.samples] or [float("nan")]
        print(f"| {p.name} | {len(p.latencies)} | {p.per_minute:.0f} | {percentile(p.latencies, 50):.2f} s "
              f"| {percentile(p.latencies, 95):.2f} s | {max(p.latencies):.2f} s | {len(p.errors)} | {cpu:.0f} % "
              f"| {rss[0]:.0f} -> {max(rss):.0f} -> {rss[-1]:.0f} MB | {p.load} |")
    for p in phases:
        if p.note:
            print(f"\n{p.name}: {p.note}")
        for err in p.errors[:10]:
            print(f"  error ({p.name}): {err}")
    if server_errors:
        print(f"\nserver log: {len(server_errors)} traceback(s)")
    print("\nServer over time (every sample: seconds since start, CPU % of a core since the previous one, RSS MB):")
    for p in phases:
        if p.samples:
            print(f"  {p.name}: " + ", ".join(f"{t:.0f}s {c:.0f}% {r:.0f}" for t, c, r in p.samples))
    lone = next((p for p in phases if p.name == "lone" and p.latencies), None)
    if lone:
        print("\nlone latencies in order (s): " + ", ".join(f"{v:.2f}" for v in lone.latencies))
        base = percentile(lone.latencies, 95)
        for p in phases:
            if p is not lone and p.latencies:
                ratio = percentile(p.latencies, 95) / base
                median = percentile(p.latencies, 50) / percentile(lone.latencies, 50)
                print(f"\n{p.name}: p95 = {ratio:.2f}x the lone session's (p50: {median:.2f}x)   "
                      f"target <= {TARGET_RATIO:g}x: {'met' if ratio <= TARGET_RATIO else 'NOT met'}", end="")
        print()


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="genre-load-") as tmp:
        workdir = Path(tmp)
        data, data_note = dataset_dir(workdir, args.gtzan) if args.train else (Path(workdir), "none (no training)")
        clips_dir = workdir / "clips"
        clips_dir.mkdir()
        music = serving.music_clips(args.gtzan)
        clips = Clips(clips_dir, music)
        # Training runs and their records go to a throw-away models folder (with a copy of the shipped
        # default, so the sidebar lists it as usual), never the project's.
        shutil.copytree(serving.PROJECT / "models" / "default", workdir / "models" / "default")
        env = {"GENRE_DATA_DIR": str(data), "GENRE_WARM": "1", "GENRE_DEV": "0", "GENRE_MODELS_DIR": str(workdir / "models"),
               "GENRE_CACHE_DIR": os.environ.get("GENRE_CACHE_DIR") or str(workdir / "cache")}
        print(f"{time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPUs, load average {serving.load_average()} "
              f"(1/5/15 min) at the start; uploads: {f'cuts (29.0-29.9 s) of the {len(music)} clips of {args.gtzan}' if music else 'synthetic 29.0-29.9 s clips'}; "
              f"Train dataset: {data_note}; sessions: {CLIENTS[args.client]}; {args.sessions} predicting, {args.idle} idle, "
              f"{args.seconds:.0f} s per loaded phase, "
              + "between a result and the next upload: " + ", ".join(
                  f"{think:g} s (all sessions alike, lockstep)" if args.lockstep
                  else f"{0.5 * think:g}-{1.5 * think:g} s (random)" for think in args.think) + "\n")
        server = serving.start_server(project=serving.PROJECT, python=sys.executable, env=env, log=workdir / "server.log")
        phases: list[Phase] = [Phase("lone")]
        t_start = time.monotonic()
        sampling = asyncio.create_task(sampler(server, lambda: phases[-1], t_start, args.sample))
        try:
            warm = await asyncio.to_thread(server.wait_for_log, serving.WARM_DONE, timeout=300)
            phases[0].note = f"server warm-up: {warm.group(0) if warm else 'not finished in 300 s'}"
            if args.client == "protocol":
                await phase_run(ProtocolTab, server, clips, phases, args)
            else:
                from playwright.async_api import async_playwright

                async with async_playwright() as pw:
                    browser = await pw.chromium.launch(executable_path=str(serving.CHROMIUM), args=serving.LAUNCH_ARGS)
                    try:
                        await phase_run(functools.partial(BrowserTab, browser), server, clips, phases, args)
                    finally:
                        await browser.close()
        finally:
            sampling.cancel()
            server_errors = server.errors()
            server.stop()
        report(phases, server_errors)


def pace(args, think: float, session: int) -> dict:
    """The pauses of predicting session number ``session`` at ``think`` s (see predictor)."""
    stagger = 0.0 if args.lockstep else (session % 100) * think / max(1, args.sessions)
    return {"think": think, "seed": session, "start": stagger, "lockstep": args.lockstep}


async def loaded_phase(make_tab, server: serving.Server, clips: Clips, phase: Phase, args, *, think: float,
                       first_session: int) -> None:
    """``args.sessions`` sessions predicting at once for ``args.seconds`` at ``think`` s, into ``phase``."""
    phase.samples.clear()
    phase.load = serving.load_average()
    t0 = time.monotonic()
    until = t0 + args.seconds
    await asyncio.gather(*(predictor(make_tab, server.url, clips, phase, who=f"session {i}", until=until,
                                     **pace(args, think, first_session + i)) for i in range(args.sessions)))
    phase.seconds = time.monotonic() - t0
    phase.load += " -> " + serving.load_average()


async def phase_run(make_tab, server: serving.Server, clips: Clips, phases: list[Phase], args) -> None:
    """The phases one after another, every person a tab of ``make_tab`` (see new_tab)."""
    lone = phases[0]
    lone.samples.clear()  # the warm-up's samples
    lone.load = serving.load_average()
    t0 = time.monotonic()
    await predictor(make_tab, server.url, clips, lone, who="lone", count=args.lone, think=args.think[0],
                    lockstep=args.lockstep)
    lone.seconds = time.monotonic() - t0

    idle = []
    for n, think in enumerate(args.think):
        loaded = Phase(f"load @ {think:g} s")
        phases.append(loaded)
        if not idle:
            idle = [await new_tab(make_tab, server.url, loaded, f"idle {i}") for i in range(args.idle)]
        await loaded_phase(make_tab, server, clips, loaded, args, think=think, first_session=100 * n)

    tab = None
    for n, think in enumerate(args.think if args.train else ()):
        training = Phase(f"load + training @ {think:g} s")
        phases.append(training)
        if tab is None or await tab.epoch_line() is None:  # no run yet, or it ended during the last phase
            if tab is not None:
                await tab.close()
            t0 = time.monotonic()
            tab = await trainer(make_tab, server.url, training)
            training.note = f"training started; feature extraction took {time.monotonic() - t0:.0f} s before the first epoch"
        await loaded_phase(make_tab, server, clips, training, args, think=think, first_session=1000 + 100 * n)
        line = await tab.epoch_line()
        end = f"at the end: {line}" if line else "the run had ended before the phase did"
        training.note = "; ".join(filter(None, (training.note, end)))
        training.errors += [f"trainer: {p}" for p in await tab.problems()]
    if tab is not None:
        await tab.close()
    for tab in idle:
        await tab.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=120.0, help="length of each loaded phase (s)")
    parser.add_argument("--sessions", type=int, default=3, help="sessions predicting at once")
    parser.add_argument("--idle", type=int, default=5, help="idle tabs on Home during the loaded phases")
    parser.add_argument("--lone", type=int, default=20, help="predictions of the lone session")
    parser.add_argument("--think", type=float, nargs="+", default=[1.0, 3.0, 10.0],
                        help="mean pauses between a result and the next upload (s): one loaded phase each")
    parser.add_argument("--lockstep", action="store_true",
                        help="equal fixed pauses and one start for all sessions: every upload meets the others head-on")
    parser.add_argument("--sample", type=float, default=10.0, help="CPU/RSS sampling period (s)")
    parser.add_argument("--client", choices=("protocol", "browser"), default="protocol",
                        help="sessions over Streamlit's websocket protocol (the server's work only) or in headless "
                             "Chromium on this machine (drawing included, sharing its cores)")
    parser.add_argument("--train", action="store_true", help="add the phase with a training run beside the load")
    parser.add_argument("--gtzan", type=Path, default=serving.GTZAN,
                        help="real clips to upload (<genre>/*.ogg) and the Train dataset (default ../shared/gtzan)")
    args = parser.parse_args()
    missing = serving.chromium_missing() if args.client == "browser" else None
    if missing:
        raise SystemExit(f"cannot run: {missing}")
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
