"""Serving cost: what idle tabs cost the server, what the warm start buys, and the memory of
model switching.

1. Idle tabs. The dashboard started as ./run.sh starts it (``python -m genre.ui.serve``,
   headless, free local port) in a project folder that holds ``.venv`` as ./run.sh leaves it,
   under three watcher settings: the shipped config (no watcher), ``GENRE_DEV=1`` (poll
   watcher) and Streamlit's default (``--server.fileWatcherType auto``: watchdog). After the
   warm-up has finished, 0, then 1, then 5 headless Chromium tabs sit on Home; over
   ``--seconds`` the server process's CPU time (user + system, it and its children, from
   /proc) is divided by the wall time: % of one core. Its memory (RSS) is read at the end.
2. Warm start. A fresh server with the warm-up, then one without (``GENRE_WARM=0``): a tab
   opens Home the moment the server answers (time until Home's title paints), then, once the
   warm-up is over (the same wait without it), goes to Predict and uploads a 29.5 s clip (cut
   from a real GTZAN clip in ../shared/gtzan if there, else synthetic): the first prediction of a
   fresh server.
3. Model switching. In a fresh process, 6 copies of the default model are loaded and used
   round after round through the model LRU (``genre.ui.cache.ModelLRU``) holding 3, and, to
   compare, one holding all 6; RSS after each round.

    .venv/bin/python benchmarks/serve.py [--seconds 30] [--tabs 0 1 5] [--skip-warm] [--skip-memory]
"""
from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import serving  # noqa: E402 - benchmarks/serving.py, beside this file

CONFIGS = (
    ("shipped config: no watcher", {"GENRE_DEV": "0"}, ()),
    ("GENRE_DEV=1: poll watcher", {"GENRE_DEV": "1"}, ()),
    ("Streamlit's default: watchdog", {"GENRE_DEV": "0"}, ("--server.fileWatcherType", "auto")),
)
"""(name, environment, streamlit options); the first is what people run."""
FIRST_CLIP_S = 29.5
"""Length (s) of the first clip uploaded to a fresh server (GTZAN clips are ~30 s)."""
IDLE_TARGET = 2.0
"""% of one core the server may use with every idle tab open (shipped config)."""


async def idle_cpu(project: serving.Project, browser, *, seconds: float, tabs: list[int], workdir: Path) -> None:
    print(f"Idle tabs: server CPU in % of one core over {seconds:.0f} s (user + system time of the server "
          "process and its children), after the warm-up; RSS at the end of the last window")
    print(f"project folder: {project.note}\n")
    print("| watcher | " + " | ".join(f"{n} tab{'s' if n != 1 else ''}" for n in tabs)
          + " | RSS | load average during the runs |")
    print("|---|" + "---:|" * len(tabs) + "---:|---|")
    verdict = None
    for i, (name, env, options) in enumerate(CONFIGS):
        server = serving.start_server(project=project.root, python=project.python, env={**env, "GENRE_WARM": "1"},
                                      options=options, log=workdir / f"idle-{i}.log")
        cells, loads, context = [], [], await browser.new_context()
        try:
            if not await asyncio.to_thread(server.wait_for_log, serving.WARM_DONE, timeout=300):
                raise RuntimeError(f"no warm-up in 300 s:\n{server.log_text()[-2000:]}")
            pages = []
            for n in tabs:
                while len(pages) < n:
                    pages.append(await serving.open_home(context, server.url))
                await asyncio.sleep(5)  # let the tabs' first runs and any watcher set-up finish
                loads.append(serving.load_average())
                before, t0 = serving.cpu_seconds(server.proc.pid), time.monotonic()
                await asyncio.sleep(seconds)
                used, wall = serving.cpu_seconds(server.proc.pid) - before, time.monotonic() - t0
                cells.append(100 * used / wall)
            rss = serving.rss_mb(server.proc.pid)
            errors = server.errors()
        finally:
            await context.close()
            server.stop()
        print(f"| {name} | " + " | ".join(f"{c:.1f} %" for c in cells) + f" | {rss:.0f} MB | {', '.join(loads)} |")
        if errors:
            print(f"  server log: {len(errors)} traceback(s)")
        if i == 0:
            verdict = cells[-1]
    if verdict is not None:
        print(f"\nshipped config with {tabs[-1]} idle tabs: {verdict:.1f} % of a core   target < {IDLE_TARGET:g} %: "
              f"{'met' if verdict < IDLE_TARGET else 'NOT met'}")


async def warm_start(project: serving.Project, browser, *, workdir: Path) -> None:
    music = serving.music_clips()
    clip = serving.clip_file(workdir / "first.wav", seed=1, seconds=FIRST_CLIP_S, music=music)
    print("\nWarm start: a fresh server each; a tab opens Home as soon as the server answers, then (after the "
          f"warm-up, or as long without it) uploads a {FIRST_CLIP_S:g} s clip on Predict "
          f"({f'cut from {music[1]}' if music else 'synthetic'})\n")
    print("| server | Home painted | warm-up | first prediction (upload to result) | load average |")
    print("|---|---:|---:|---:|---|")
    wait = None
    for name, warm in (("warm-up on (as shipped)", "1"), ("GENRE_WARM=0", "0")):
        server = serving.start_server(project=project.root, python=project.python, env={"GENRE_WARM": warm, "GENRE_DEV": "0"},
                                      log=workdir / f"warm-{warm}.log")
        context = await browser.new_context()
        try:
            t0 = time.perf_counter()
            page = await serving.open_home(context, server.url)
            home = time.perf_counter() - t0
            if warm == "1":
                match = await asyncio.to_thread(server.wait_for_log, serving.WARM_DONE, timeout=300)
                if not match or not match.group(2):
                    raise RuntimeError(f"the warm-up did not finish:\n{server.log_text()[-2000:]}")
                warmed, wait = f"{float(match.group(2)):.1f} s", time.monotonic() - server.started
            else:
                warmed = "off"
                await asyncio.sleep(max(0.0, (wait or 20.0) - (time.monotonic() - server.started)))
            load = serving.load_average()
            await serving.go_to(page, "Predict")
            first = await serving.upload_and_wait(page, clip, seconds=FIRST_CLIP_S)
        finally:
            await context.close()
            server.stop()
        print(f"| {name} | {home:.2f} s | {warmed} | {first:.2f} s | {load} |")


MEMORY_PROBE = textwrap.dedent("""
    import gc, shutil, sys, tempfile
    from pathlib import Path
    from genre.models import DEFAULT_MODEL_DIR
    from genre.predict import predict_source
    from genre.ui.cache import ModelLRU, card_mtime
    from genre.ui.warmup import synthetic_clip

    size, n_models, rounds = (int(v) for v in sys.argv[1:4])
    rss = lambda: int(Path("/proc/self/statm").read_text().split()[1]) * 4096 / 2**20
    clip, tmp = synthetic_clip(), Path(tempfile.mkdtemp())
    folders = [shutil.copytree(DEFAULT_MODEL_DIR, tmp / f"m{i}") for i in range(n_models)]
    lru, out = ModelLRU(size=size), []
    for _ in range(rounds):
        for folder in folders:
            predict_source(lru.get(folder, mtime=card_mtime(folder)), clip, name="clip")
        gc.collect()
        out.append(f"{rss():.0f}")
    shutil.rmtree(tmp)
    print(len(lru.folders()), " ".join(out))
""")


def model_switching(*, rounds: int = 4, n_models: int = 6) -> None:
    print(f"\nModel switching: {n_models} copies of the default model, each used for one 30 s prediction per round, "
          f"{rounds} rounds; RSS (MB) after each round (fresh process each)\n")
    print("| model LRU | models kept | RSS per round (MB) |")
    print("|---|---:|---|")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    for size in (3, n_models):
        out = subprocess.run([sys.executable, "-c", MEMORY_PROBE, str(size), str(n_models), str(rounds)],
                             cwd=serving.PROJECT, env=env, capture_output=True, text=True, check=True)
        kept, *per_round = out.stdout.split()
        label = f"{size} (as shipped)" if size == 3 else f"{size} (all kept)"
        print(f"| {label} | {kept} | {' -> '.join(per_round)} |")


async def browser_parts(project: serving.Project, args: argparse.Namespace) -> None:
    from playwright.async_api import async_playwright

    with tempfile.TemporaryDirectory(prefix="genre-serve-logs-") as tmp:
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=str(serving.CHROMIUM), args=serving.LAUNCH_ARGS)
            try:
                await idle_cpu(project, browser, seconds=args.seconds, tabs=sorted(args.tabs), workdir=Path(tmp))
                if not args.skip_warm:
                    await warm_start(project, browser, workdir=Path(tmp))
            finally:
                await browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="CPU window per tab count (s)")
    parser.add_argument("--tabs", type=int, nargs="+", default=[0, 1, 5], help="idle tab counts, ascending")
    parser.add_argument("--skip-warm", action="store_true", help="leave out the warm-start comparison")
    parser.add_argument("--skip-memory", action="store_true", help="leave out the model-switching memory")
    args = parser.parse_args()
    missing = serving.chromium_missing()
    if missing:
        raise SystemExit(f"cannot run: {missing}")
    print(f"{time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPUs, load average {serving.load_average()} "
          "(1/5/15 min) at the start\n")
    project = serving.project_with_venv()
    try:
        asyncio.run(browser_parts(project, args))
    finally:
        project.cleanup()
    if not args.skip_memory:
        model_switching()


if __name__ == "__main__":
    main()
