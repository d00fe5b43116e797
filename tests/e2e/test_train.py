"""The Train page in a real browser, as a first-time user meets it: a run with the default
settings and its live chart (legend, x-axis up to the last epoch run, the best epoch marked),
what the page says while features are extracted (clips, rate, time left), and Save's one
message beside the button when the name had to be rewritten.

Screenshots go to test-artifacts/screenshots/train-page-*.png.
"""
from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from conftest import synth, write_wav

from .conftest import App
from .test_browser import go, no_exception, settle, shot, start

pytestmark = pytest.mark.browser

_CHART_JS = """() => {
    const plot = document.querySelector('.js-plotly-plot');
    if (!plot || !plot.data || !plot.data.length) return null;
    return {points: plot.data[0].x.length, end: plot._fullLayout.xaxis.range[1],
            legend: [...plot.querySelectorAll('.legend .legendtext')].map(e => e.textContent)};
}"""


def picture(page, name: str) -> None:
    """A full-page screenshot without a tooltip under the pointer."""
    page.mouse.move(0, 0)
    shot(page, name)


def chart(page) -> dict | None:
    """The first chart's epochs drawn, the end of its x-axis and its legend entries (None: no chart)."""
    return page.evaluate(_CHART_JS)


def progress_text(page) -> str:
    """The first progress bar's text, "" when there is none (also when the bar goes away between
    finding it and reading it: the page reruns while a run is watched)."""
    progress = page.locator('[data-testid="stProgress"]')
    try:
        return progress.first.inner_text(timeout=1000) if progress.count() else ""
    except PlaywrightTimeoutError:
        return ""


def choose(page, label: str, option: str) -> None:
    """Pick ``option`` in the main area's select box labelled ``label``."""
    page.locator('[data-testid="stMain"] [data-testid="stSelectbox"]', has_text=label).click()
    page.locator('[role="option"]', has_text=option).first.click()
    settle(page)


def test_a_default_run_shows_a_readable_live_chart_and_saves_under_a_rewritten_name(page, app: App):
    start(page, app)
    go(page, "Train")
    expected = page.get_by_text(re.compile(r"^(Expected: about \d+ % ± \d+ accuracy on unseen artists|What to expect)"))
    assert expected.count() == 1, "no expectation beside the settings"
    hidden = page.locator('[data-testid="stTextInput"]', has_text="Hidden layers").bounding_box()
    assert expected.bounding_box()["x"] > hidden["x"] + hidden["width"], "the expectation is not beside the settings"
    picture(page, "train-page-1-defaults")
    page.get_by_role("button", name="Start training").click()
    samples, live_shot = [], False
    results = page.get_by_role("heading", name="Results")
    deadline = time.monotonic() + 240
    while not results.count():
        assert time.monotonic() < deadline, f"the default run did not finish in 240 s (chart: {samples[-3:]})"
        no_exception(page, "Train while training")
        seen = chart(page)
        if seen and seen["points"] and (not samples or seen != samples[-1]):
            samples.append(seen)
            assert seen["end"] == seen["points"] + 0.5, f"the x-axis does not end at the last epoch run: {seen}"
            assert {"training", "validation"} <= set(seen["legend"]), f"no legend: {seen}"
            if seen["points"] >= 3 and not live_shot:
                live_shot = True
                picture(page, "train-page-2-live")
        page.wait_for_timeout(200)
    settle(page)
    no_exception(page, "Train results")
    final = chart(page)
    assert len({s["points"] for s in samples}) >= 2, f"the live chart did not grow: {samples}"
    assert final["end"] == final["points"] + 0.5 and final["points"] >= samples[-1]["points"]
    assert any(re.fullmatch(r"best epoch \(\d+\)", name) for name in final["legend"]), final["legend"]
    picture(page, "train-page-3-results")

    name = page.locator('[data-testid="stTextInput"]', has_text="Save as").locator("input")
    name.fill("../../etc/x")
    name.press("Enter")  # checks the name, does not save
    settle(page)
    assert page.get_by_text("Will be saved as etc-x").count() == 1
    assert not (app.models_dir / "etc-x").exists() and page.get_by_text(re.compile(r"^Saved as")).count() == 0
    page.get_by_role("button", name="Save", exact=True).click()
    saved = page.locator('[data-testid="stAlert"]', has_text="Saved as etc-x")
    saved.wait_for()
    settle(page)
    assert (app.models_dir / "etc-x" / "card.json").is_file()
    text = saved.inner_text()
    assert "The name you typed, ../../etc/x, was changed to etc-x" in text, text
    alerts = page.locator('[data-testid="stAlert"]')
    save_alerts = [alerts.nth(i).inner_text() for i in range(alerts.count())
                   if re.search(r"Saved as|Cannot save|Not saved|Will be saved", alerts.nth(i).inner_text())]
    assert save_alerts == [text], f"more than one Save message: {save_alerts}"
    button = page.get_by_role("button", name="Save", exact=True).bounding_box()
    message = saved.bounding_box()
    assert 0 <= message["y"] - (button["y"] + button["height"]) < 80, (button, message)  # right under the row
    picture(page, "train-page-4-saved-rewritten")


def test_extraction_says_how_many_clips_how_fast_and_how_long(page, app: App, tmp_path_factory):
    """30 clips of 30 s whose MusiCNN features are not cached: the page names the feature set and
    the clips, then the rate and the time left; the logistic regression shows its fit as a table."""
    root = tmp_path_factory.mktemp("thirty_clips")
    for kind in ("tones", "beats", "buzz"):
        for i in range(10):
            write_wav(root / kind / f"{kind}.{i:05d}.wav", synth(kind, seconds=30.0, seed=200 + i))
    start(page, app)
    folder = page.locator('[data-testid="stSidebar"] [data-testid="stTextInput"] input')
    folder.fill(str(root))
    folder.press("Enter")
    settle(page)
    go(page, "Train")
    assert page.get_by_text("30 clips in 3 genres").count() == 1
    choose(page, "Feature set", "MusiCNN (Million Song Dataset tags)")
    assert page.locator('[data-testid="stRadio"]', has_text="Model").locator("input:checked").count() == 1
    assert "Logistic regression" in page.locator('[data-testid="stRadio"] label:has(input:checked)').first.inner_text()
    page.get_by_role("button", name="Start training").click()
    settle(page)
    if page.get_by_role("button", name="Start anyway").count():  # a slow machine: announced first
        assert page.get_by_text(re.compile(r"features of 30 clips that are not in the cache yet")).count() == 1
        picture(page, "train-page-5-extraction-notice")
        page.get_by_role("button", name="Start anyway").click()
    phase = re.compile(r"Extracting MusiCNN \(Million Song Dataset tags\) features of 30 clips: (\d+)/30 · (.*)")
    texts, rate_shot = [], False
    results = page.get_by_role("heading", name="Results")
    deadline = time.monotonic() + 300
    while not results.count():
        assert time.monotonic() < deadline, f"no result in 300 s; seen: {texts[-5:]}"
        line = progress_text(page)
        if line and (not texts or texts[-1] != line):
            texts.append(line)
            if "clips/s" in line and not rate_shot:
                rate_shot = True
                picture(page, "train-page-6-extracting")
        page.wait_for_timeout(150)
    settle(page)
    no_exception(page, "Train results of the logistic regression")
    matches = [phase.search(t) for t in texts]
    assert any(matches), f"no extraction line: {texts}"
    assert any(m and re.match(r"[\d.]+ clips/s · about \d+ (s|min) left", m.group(2)) for m in matches), texts
    done = [int(m.group(1)) for m in matches if m]
    assert done == sorted(done), f"the clip count went backwards: {texts}"
    assert page.get_by_text("The fit (one exact solve, no epochs)").count() == 1
    assert page.locator('[data-testid="stPlotlyChart"]', has=page.locator(".heatmaplayer")).count() == 1
    assert page.get_by_text("default knows none of these genres").count() == 1
    picture(page, "train-page-7-logistic-results")
