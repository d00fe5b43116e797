"""benchmarks/st_client.py, the browserless tab that benchmarks/load.py seats people with, against
the real dashboard: if Streamlit's protocol changes under it, the load test's figures would
silently stop meaning anything, so this fails instead. It opens a deep link, uploads clips to
Predict (each replacing the last, as a person dropping files does) and reads the results, and a
file that is not audio comes back as the page's error message."""
from __future__ import annotations

import asyncio
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest
import soundfile as sf

from conftest import ROOT, SR, synth

sys.path.insert(0, str(ROOT / "benchmarks"))
import st_client  # noqa: E402 - benchmarks/ is not a package

pytestmark = pytest.mark.browser


def wav(path, seconds: float, seed: int):
    sf.write(path, synth("beats", seconds=seconds, seed=seed), SR)
    return path


async def predict_two_then_a_broken_file(url: str, tmp_path) -> list[st_client.Page]:
    session = st_client.Session(url)
    try:
        page = await session.open("predict")
        assert page.find("heading", "Predict"), "the deep link did not open Predict"
        uploader = page.widget("file_uploader", "Drop a clip here")
        pages = []
        for i, seconds in enumerate((5.2, 6.4)):
            pages.append(await session.upload(uploader, wav(tmp_path / f"clip{i}.wav", seconds, i),
                                              until=lambda p, s=seconds: p.metric("Duration") == f"{s:.1f} s"))
        (tmp_path / "notes.wav").write_bytes(b"these are not samples " * 100)
        pages.append(await session.upload(uploader, tmp_path / "notes.wav", until=lambda p: bool(p.problems())))
        return pages
    finally:
        await session.close()


def in_own_loop(coroutine):
    """asyncio.run in a thread of its own: playwright's sync API, which the other browser tests
    of the session use, keeps an event loop running in this one."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def test_the_protocol_client_uploads_and_reads_results_like_a_tab(app, tmp_path):
    first, second, broken = in_own_loop(predict_two_then_a_broken_file(app.url, tmp_path))
    for page, seconds in ((first, 5.2), (second, 6.4)):
        assert page.metric("Duration") == f"{seconds:.1f} s"
        genre_lines = [e.markdown.body for e in page.find("markdown", "#### ")]
        assert genre_lines and any(label in genre_lines[0] for label in app.labels), genre_lines
        assert page.find("plotly_chart"), "no probability bars or spectrogram were sent"
        assert not [p for p in page.problems() if "sound like music" not in p]  # the music verdict is an answer
    assert second.metric("Duration") != first.metric("Duration")  # the second file replaced the first
    problems = broken.problems()
    assert len(problems) == 1 and problems[0].startswith("error: ") and "notes.wav" in problems[0], problems
    assert broken.metric("Duration") is None  # no stale result of the previous clip beside the error
