"""What a first-time user trips over (issue 11), in a real browser: a dataset clip's prediction
shows its true genre and whether the model was trained on it; the Features page has colour
bars, units and Hz hover, aligned rows for A and B and a full-width single clip; a click on the
Dataset map plays the clip at once; Home warns about a damaged model as Predict does.
Screenshots: test-artifacts/screenshots/first-use-*.png."""
from __future__ import annotations

import json
import re
import shutil
from urllib.parse import quote

import pytest

from .test_browser import FIRST_PREDICTION_S, choose_source, go, no_exception, prediction, settle, shot, start, \
    wav_file

pytestmark = pytest.mark.browser

_PLOTS_JS = """() => [...document.querySelectorAll('.js-plotly-plot')].map(g => ({
    width: g.getBoundingClientRect().width,
    colorbars: g.querySelectorAll('.colorbar').length,
    heatmaps: g.data.filter(t => t.type === 'heatmap').map(t => ({y0: t.y ? String(t.y[0]) : null,
        hover: t.hovertemplate, bar: t.showscale ? t.colorbar.title.text : null})),
    beats: (g.layout.shapes || []).map(s => s.line.color),
    yDomains: Object.keys(g._fullLayout).filter(k => /^yaxis\\d*$/.test(k))
        .sort((a, b) => (+a.slice(5) || 1) - (+b.slice(5) || 1)).map(k => g._fullLayout[k].domain),
}))"""


def feature_panel(page) -> dict:
    """The Features page's one figure, once plotly has drawn it."""
    page.wait_for_function("() => { const g = document.querySelectorAll('.js-plotly-plot'); "
                           "return g.length === 1 && g[0].data && g[0].querySelectorAll('.colorbar').length > 0; }")
    (panel,) = page.evaluate(_PLOTS_JS)
    return panel


@pytest.fixture
def extra_model(app):
    """Make models beside the shipped one for one test (a copy of it, then changed); removed after."""
    made = []

    def make(name: str, change) -> str:
        folder = app.models_dir / name
        shutil.copytree(app.models_dir / "default", folder)
        change(folder)
        made.append(folder)
        return name

    try:
        yield make
    finally:
        for folder in made:
            shutil.rmtree(folder, ignore_errors=True)


def _seen_split(folder) -> None:
    """The card says the model was trained on beats.00000 and validated on beats.00001."""
    card = json.loads((folder / "card.json").read_text())
    card["split"] = {"kind": "artist", "train_clip_ids": ["beats.00000"], "valid_clip_ids": ["beats.00001"]}
    (folder / "card.json").write_text(json.dumps(card))


def _truncate(folder) -> None:
    data = (folder / "model.keras").read_bytes()
    (folder / "model.keras").write_bytes(data[: len(data) // 2])


def test_a_dataset_clip_prediction_shows_its_true_genre(page, app, extra_model):
    name = extra_model("e2e-seen", _seen_split)
    start(page, app)
    go(page, "Predict")
    choose_source(page, "Dataset clip")
    prediction(page, app.labels, timeout=FIRST_PREDICTION_S)
    settle(page)
    no_exception(page, "Predict a dataset clip")
    truth = page.get_by_text(re.compile(r"^True genre: "))
    assert truth.first.inner_text().startswith("True genre: beats (the clip's folder) · this model does not know beats")
    assert page.get_by_text("This model was trained on this clip").count() == 0
    shot(page, "first-use-1-predict-dataset-clip")
    page.goto(f"{app.url}/predict?data={quote(str(app.data_dir))}&model={name}")
    page.locator("h1").first.wait_for()
    settle(page)
    choose_source(page, "Dataset clip")
    prediction(page, app.labels, timeout=FIRST_PREDICTION_S)
    settle(page)
    assert page.get_by_text(re.compile(r"^Predicted by model e2e-seen ")).count() == 1
    assert page.get_by_text("This model was trained on this clip").count() == 1
    shot(page, "first-use-2-predict-trained-on-this-clip")


def test_features_have_colour_bars_units_and_aligned_rows(page, app, tmp_path):
    start(page, app)
    go(page, "Features")
    panel = feature_panel(page)
    assert panel["colorbars"] == 5, panel["colorbars"]  # one per view, shared by A and B
    assert [h["bar"] for h in panel["heatmaps"] if h["bar"]] == ["dB", "sd", "of max", "coord.", "sd"]
    mel = panel["heatmaps"][0]
    assert mel["y0"].endswith(" Hz") and "dB" in mel["hover"]
    assert panel["beats"] and set(panel["beats"]) == {"#ff7f0e"}
    assert panel["width"] > 800, panel["width"]  # A above B: every clip full width
    shot(page, "first-use-3-features-a-above-b")

    page.get_by_text("Side by side", exact=True).click()
    settle(page)
    page.locator('[data-testid="stRadio"]').nth(1).locator("label", has_text="Upload a file").click()
    settle(page)
    page.locator('[data-testid="stFileUploader"] input[type=file]').set_input_files(wav_file(tmp_path, "tones"))
    page.get_by_text("Tempo").nth(1).wait_for()
    settle(page)
    no_exception(page, "Features with an upload as clip B")
    panel = feature_panel(page)
    domains = panel["yDomains"]
    assert len(domains) == 12 and domains[0::2] == domains[1::2], domains  # A's and B's rows at the same heights
    shot(page, "first-use-4-features-side-by-side-upload")

    page.get_by_text("One clip", exact=True).click()
    settle(page)
    panel = feature_panel(page)
    assert len(panel["heatmaps"]) == 5 and panel["width"] > 800
    shot(page, "first-use-5-features-one-clip")


def test_a_click_on_the_dataset_map_plays_the_clip(page, app):
    start(page, app)
    go(page, "Dataset")
    chart = page.locator('[data-testid="stPlotlyChart"]').nth(2)  # counts, distribution, map (one clip length)
    chart.locator(".js-plotly-plot").wait_for(timeout=90_000)
    settle(page)
    players = page.locator("audio").count()
    chart.scroll_into_view_if_needed()
    page.wait_for_timeout(300)
    point = chart.locator(".js-plotly-plot").evaluate("""g => {
        const t = g._fullData[0], L = g._fullLayout, box = g.getBoundingClientRect();
        return {x: box.left + L.xaxis._offset + L.xaxis.l2p(t.x[0]), y: box.top + L.yaxis._offset + L.yaxis.l2p(t.y[0])};
    }""")
    page.mouse.click(point["x"], point["y"])
    page.wait_for_function("n => document.querySelectorAll('audio').length > n", arg=players, timeout=30_000)
    settle(page)
    no_exception(page, "Dataset after a click on the map")
    audio = page.locator("audio").last
    assert audio.evaluate("a => a.autoplay")
    page.wait_for_function("() => { const a = [...document.querySelectorAll('audio')].pop(); "
                           "return a && !a.paused && a.currentTime > 0; }", timeout=15_000)
    shot(page, "first-use-6-dataset-map-click-plays")


def test_home_warns_about_a_damaged_model(page, app, extra_model):
    name = extra_model("e2e-damaged", _truncate)
    page.goto(f"{app.url}/?model={name}")
    page.locator("h1").first.wait_for()
    settle(page)
    no_exception(page, "Home with a damaged model")
    warning = page.locator('[data-testid="stAlert"]').first.inner_text()
    assert warning.startswith("e2e-damaged: model.keras is damaged or not a Keras model (BadZipFile)."), warning
    assert "Using the shipped default model instead." in warning
    assert page.get_by_text("Model · default (used instead)").count() == 1
    shot(page, "first-use-7-home-damaged-model")
