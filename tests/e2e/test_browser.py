"""The dashboard in a real browser: every page renders, Predict reads an uploaded file and both
browser recorders (fake microphone), Train trains, saves and the new model can be picked.

Each test starts on Home in a fresh browser session and moves with the sidebar links, as a
person does. Full-page screenshots go to test-artifacts/screenshots/<test>-<step>.png.
"""
from __future__ import annotations

import re
import time
import warnings
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import numpy as np
import pytest

from conftest import ROOT, synth, write_wav

from .conftest import SCREENSHOTS, VIEWPORT, App

pytestmark = pytest.mark.browser

PAGES = {"Home": "genre", "Dataset": "Dataset", "Features": "Features", "Train": "Train a model",
         "Predict": "Predict", "Similar": "Similar clips", "Review": "Review a library"}
"""Sidebar link -> the page's title (h1)."""
FIRST_PREDICTION_S = 120
"""The first prediction of a server imports TensorFlow and loads the model and MusiCNN (~10-35 s on 2 busy cores)."""

_BUSY_JS = """() => {
  const app = document.querySelector('[data-testid="stApp"]');
  return !app || app.getAttribute('data-test-connection-state') !== 'CONNECTED'
      || app.getAttribute('data-test-script-state') === 'running'
      || !!document.querySelector('[data-testid="stStatusWidget"]')
      || !!document.querySelector('[data-testid="stSpinner"]');
}"""


# --- helpers -------------------------------------------------------------------------------

def settle(page, timeout: float = 90.0) -> None:
    """Wait until the script run is over (no 'Running…' status, no spinner) for 0.6 s."""
    deadline, calm = time.monotonic() + timeout, 0
    while calm < 3:
        if time.monotonic() > deadline:
            raise AssertionError(f"the app is still running after {timeout:.0f} s ({page.url})")
        calm = 0 if page.evaluate(_BUSY_JS) else calm + 1
        page.wait_for_timeout(200)


def no_exception(page, where: str) -> None:
    """No Streamlit exception box (a traceback shown to the user) on the page."""
    boxes = page.locator('[data-testid="stException"]')
    if boxes.count():
        pytest.fail(f"{where}: the page shows an exception:\n{boxes.first.inner_text()[:2000]}")


def shot(page, name: str) -> Path:
    """Full-page screenshot. Streamlit scrolls inside its main section, not the document, so
    the viewport is stretched to the content's height for the picture."""
    height = page.evaluate("""() => Math.max(...['stMain', 'stSidebarContent'].map(
        id => document.querySelector(`[data-testid="${id}"]`)?.scrollHeight || 0))""")
    path = SCREENSHOTS / f"{name}.png"
    page.set_viewport_size({"width": VIEWPORT["width"], "height": max(VIEWPORT["height"], min(int(height), 6000))})
    page.wait_for_timeout(400)
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size(VIEWPORT)
    return path


def title(page) -> str:
    return page.locator("h1").first.inner_text().strip()


def start(page, app: App) -> None:
    """Open Home in this browser session."""
    page.goto(f"{app.url}/")
    page.locator("h1").first.wait_for()
    settle(page)
    assert PAGES["Home"] in title(page)
    no_exception(page, "Home")


def go(page, name: str) -> None:
    """Click a page's link in the sidebar and wait for it to render."""
    page.locator('[data-testid="stSidebarNav"] a', has_text=name).click()
    page.wait_for_function("t => document.querySelector('h1')?.innerText.includes(t)", arg=PAGES[name])
    settle(page)
    no_exception(page, name)


def enter(page, kind: str, label: str, text: str) -> None:
    """Type ``text`` into the ``kind`` widget ('stTextInput', 'stNumberInput') labelled ``label``,
    press Enter and wait for the run it starts."""
    box = page.locator(f'[data-testid="{kind}"]', has_text=label).locator("input")
    box.fill(text)
    box.press("Enter")
    settle(page)


def pick(page, label: str, option: str, *, tries: int = 3) -> None:
    """Choose ``option`` in the main area's select box labelled ``label`` by typing it, as a
    person with a long list does. Streamlit's combobox sometimes drops the first keystrokes or
    closes its list while the page settles, so the choice is tried again (at most ``tries``)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

    picker = page.locator('[data-testid="stMain"] [data-testid="stSelectbox"]', has_text=label)
    for attempt in range(tries):
        picker.scroll_into_view_if_needed()
        picker.locator("input").click()
        page.keyboard.type(option.split()[-1])
        item = page.locator('[role="option"]', has_text=option).first
        try:
            item.wait_for(timeout=3000)
            item.click()
        except PlaywrightTimeoutError:
            page.keyboard.press("Escape")
            if attempt == tries - 1:
                raise
            continue
        settle(page)
        if option in picker.locator("input").input_value():
            return
    raise AssertionError(f"{option!r} could not be chosen in {label!r}")


def choose_source(page, label: str) -> None:
    """Pick where a clip comes from ('Upload a file', 'Record', 'Dataset clip')."""
    page.locator('[data-testid="stRadio"] label', has_text=label).first.click()
    settle(page)


def wav_file(tmp_path: Path, kind: str, seconds: float = 6.0) -> Path:
    return write_wav(tmp_path / f"{kind}.wav", synth(kind, seconds=seconds, seed=7))


def prediction(page, labels: list[str], *, timeout: float = 60.0):
    """Wait for the genre heading and the probability bars naming every label; return the bars.
    The synthetic test sounds are not music to AudioSet, so the genre answer usually sits folded
    under "If it were music: ...": it is unfolded first."""
    folded = page.get_by_text(re.compile(r"^If it were music: "))
    answer = page.locator("h4", has_text=re.compile(r"·\s*\d+%")).or_(folded)
    answer.first.wait_for(timeout=timeout * 1000)
    if folded.count():
        assert page.locator('[data-testid="stAlert"]', has_text="This doesn't sound like music").count() == 1
        folded.first.click()
    heading = page.locator("h4", has_text=re.compile(r"·\s*\d+%"))
    heading.first.wait_for(timeout=timeout * 1000)
    bars = page.locator('[data-testid="stPlotlyChart"]').first
    bars.locator(".js-plotly-plot").wait_for()
    text = bars.inner_text() + bars.evaluate("e => e.textContent")
    missing = [label for label in labels if label not in text]
    assert not missing, f"the probability bars do not name {missing}"
    assert any(heading.first.inner_text().startswith(label) for label in labels), heading.first.inner_text()
    return bars


def cut_off_metrics(page) -> list[str]:
    """Metric values too wide for their box (shown with an ellipsis)."""
    return page.evaluate("""() => [...document.querySelectorAll('[data-testid="stMetricValue"] > div')]
        .filter(e => e.scrollWidth > e.clientWidth + 1).map(e => e.innerText)""")


OWN_LAYOUT = ("Dataset", "Train")
"""Pages whose cut-off metric values fail a test; elsewhere they are reported as warnings."""


def check_metrics(page, where: str) -> None:
    """No metric value is cut off (an ellipsis instead of the number)."""
    cut = cut_off_metrics(page)
    if cut and where.split()[0] in OWN_LAYOUT:
        pytest.fail(f"{where}: cut-off metric values {cut}")
    if cut:
        warnings.warn(f"{where}: metric values cut off at {VIEWPORT['width']} px: {cut}", stacklevel=2)


def sidebar_folder(page) -> str:
    return page.locator('[data-testid="stSidebar"] [data-testid="stTextInput"] input').input_value()


def metric(page, label: str) -> str:
    box = page.locator('[data-testid="stMetric"]', has_text=label).first
    return box.locator('[data-testid="stMetricValue"]').inner_text()


# --- tests ---------------------------------------------------------------------------------

def test_every_page_renders(page, app):
    start(page, app)
    assert sidebar_folder(page) == str(app.data_dir)
    assert page.get_by_text("18 clips").count() == 1
    check_metrics(page, "Home")
    shot(page, "pages-1-home")
    for i, name in enumerate(["Dataset", "Features", "Train", "Predict", "Similar"], start=2):
        go(page, name)
        if name == "Dataset":  # the clip map needs every clip's features: extracted on the first visit
            page.locator('[data-testid="stPlotlyChart"]').nth(2).wait_for()  # counts, distribution, map
            settle(page)
        check_metrics(page, name)
        shot(page, f"pages-{i}-{name.lower()}")
    # Similar: build the index over the tiny dataset and list a clip's neighbours
    page.get_by_role("button", name="Build the similarity index").click()
    page.locator('[data-testid="stDataFrame"]').first.wait_for(timeout=90_000)
    settle(page)
    no_exception(page, "Similar")
    assert page.get_by_text(re.compile(r"nearest clips are \w+ too")).count() == 1
    shot(page, "pages-7-similar-neighbours")
    go(page, "Home")
    assert not app.server_errors(), "the server log shows a traceback (test-artifacts/streamlit.log)"


def test_predict_an_uploaded_file(page, app, tmp_path):
    start(page, app)
    go(page, "Predict")
    page.locator('[data-testid="stFileUploader"] input[type=file]').set_input_files(wav_file(tmp_path, "beats"))
    prediction(page, app.labels, timeout=FIRST_PREDICTION_S)
    settle(page)
    no_exception(page, "Predict after an upload")
    assert metric(page, "Duration") == "6.0 s"
    assert page.locator('[data-testid="stAudio"]').count() == 1
    check_metrics(page, "Predict")
    shot(page, "predict-1-upload")


@pytest.mark.skipif(not (ROOT.parent / "shared" / "gtzan" / "rock").is_dir(), reason="needs real music: ../shared/gtzan")
def test_a_ten_minute_upload_has_a_readable_timeline(page, app, tmp_path):
    """Ten minutes of real music (20 GTZAN clips: 10 rock, then 10 classical) with a minute of
    room tone in the middle: the genre over time spans the page, its 30 s bins say rock then
    classical with a grey silence between, and the segment chart can be zoomed."""
    import librosa
    import soundfile as sf

    gtzan = ROOT.parent / "shared" / "gtzan"
    parts = [librosa.load(p, sr=22050, duration=30.0)[0] for p in sorted((gtzan / "rock").glob("*.ogg"))[:10]]
    parts.append((10 ** (-65 / 20) * np.random.default_rng(0).standard_normal(60 * 22050)).astype(np.float32))
    parts += [librosa.load(p, sr=22050, duration=30.0)[0] for p in sorted((gtzan / "classical").glob("*.ogg"))[:10]]
    long = tmp_path / "a long mix.flac"
    sf.write(long, np.concatenate(parts), 22050)
    start(page, app)
    go(page, "Predict")
    page.locator('[data-testid="stFileUploader"] input[type=file]').set_input_files(long)
    page.get_by_text("Genre over time").wait_for(timeout=FIRST_PREDICTION_S * 2 * 1000)
    settle(page)
    no_exception(page, "Predict after a ten-minute upload")
    charts = page.locator('[data-testid="stPlotlyChart"]')
    charts.last.scroll_into_view_if_needed()
    charts.last.locator(".rangeslider-bg").wait_for()
    shot(page, "predict-long-timeline")
    page_width = page.locator("h1").first.bounding_box()["width"]  # the title spans the page's column
    timeline = charts.last.bounding_box()
    assert timeline["width"] > 0.95 * page_width, "the segment timeline does not span the page"
    bins = page.locator('[data-testid="stPlotlyChart"] .legendtext').evaluate_all("els => els.map(e => e.textContent)")
    assert "rock" in bins and "classical" in bins, f"the binned timeline's legend: {bins}"
    assert page.get_by_text(re.compile(r"\d+ silent segments did not vote")).count() == 1


def test_home_hands_its_clip_to_predict(page, app, tmp_path):
    """Home's quick prediction: 'Open in Predict' opens the Predict page with the same clip and
    the same answer, and the page's own views (player, spectrogram, teach box)."""
    start(page, app)
    page.locator('[data-testid="stFileUploader"] input[type=file]').set_input_files(wav_file(tmp_path, "beats"))
    folded = page.get_by_text(re.compile(r"^If it were music: "))  # a synthetic sound is not music to AudioSet
    folded.first.wait_for(timeout=FIRST_PREDICTION_S * 1000)
    settle(page)
    answer = folded.first.inner_text()
    shot(page, "home-1-quick-prediction")
    page.get_by_role("button", name="Open in Predict").click()
    page.wait_for_function("t => document.querySelector('h1')?.innerText.includes(t)", arg=PAGES["Predict"])
    settle(page)
    no_exception(page, "Predict opened from Home")
    assert page.get_by_text("beats.wav, handed over from Home.").count() == 1
    assert folded.first.inner_text() == answer
    prediction(page, app.labels)
    assert metric(page, "Duration") == "6.0 s" and page.get_by_text("Mel spectrogram").count() == 1
    assert "/predict" in page.url
    shot(page, "home-2-opened-in-predict")


def test_teach_a_new_genre_on_predict(page, app, tmp_path):
    """'Not right? Teach it': a new genre typed in, the clip kept as an example, the retrain offer."""
    start(page, app)
    go(page, "Predict")
    page.locator('[data-testid="stFileUploader"] input[type=file]').set_input_files(wav_file(tmp_path, "buzz", 5.0))
    prediction(page, app.labels, timeout=FIRST_PREDICTION_S)
    settle(page)
    page.locator('[data-testid="stExpander"] summary', has_text="Not right? Teach it").click()
    pick(page, "This is", "A new genre")
    enter(page, "stTextInput", "New genre", "Buzz Wave")
    page.get_by_role("button", name="Keep as an example").click()
    settle(page)
    no_exception(page, "Predict after teaching")
    assert page.get_by_text(re.compile(r"Kept as an example of buzz wave")).count() >= 1
    assert page.get_by_role("button", name="Retrain with my examples").count() == 1
    kept = list((app.models_dir.parent / "examples" / "buzz wave").glob("*.wav"))
    assert len(kept) == 1
    shot(page, "predict-2-taught")


def recorded(page, app: App) -> tuple[np.ndarray, int]:
    """The recording the Predict page plays (mono float samples, rate): its player's source is
    the recorded file's bytes as the app received them."""
    import io

    import soundfile as sf

    src = page.locator('[data-testid="stMain"] audio').first.get_attribute("src")
    data = page.request.get(src if src.startswith("http") else f"{app.url}{src}").body()
    y, sr = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    return y.mean(axis=1), sr


def fidelity(y: np.ndarray, sr: int, source: Path) -> tuple[float, float, float]:
    """How faithfully a recording ``y`` holds the looped ``source`` file: the peak normalised
    cross-correlation over every offset (1 = the same waveform), and the spectral centroids (Hz)
    of the recording and of the source at that offset."""
    import librosa
    import soundfile as sf
    from scipy.signal import fftconvolve

    ref, ref_sr = sf.read(source, dtype="float32")
    ref = librosa.resample(ref, orig_sr=ref_sr, target_sr=sr)
    y = y[int(0.3 * sr):]  # the first instants of a recording (the device opening) are left out
    y = y[: min(len(y), 3 * sr)]
    looped = np.tile(ref, 3)
    dots = fftconvolve(looped, y[::-1], mode="valid")
    energy = np.sqrt(np.convolve(looped ** 2, np.ones(len(y)), mode="valid"))
    scores = dots / (np.linalg.norm(y) * np.maximum(energy, 1e-9))
    lag = int(np.argmax(scores))
    centroid = lambda x: float(np.mean(librosa.feature.spectral_centroid(y=x, sr=sr)))  # noqa: E731
    return float(scores[lag]), centroid(y), centroid(looped[lag:lag + len(y)])


def test_record_with_audio_input(page, app, mic_file):
    start(page, app)
    go(page, "Predict")
    choose_source(page, "Record")
    shot(page, "record-1-before")
    button = page.locator('[data-testid="stAudioInput"] [data-testid="stAudioInputActionButton"]')
    button.click()
    page.wait_for_function("() => document.querySelector('[data-testid=\"stAudioInputActionButton\"]')"
                           "?.getAttribute('aria-label') === 'Stop recording'")
    page.wait_for_timeout(3500)
    timecode = page.locator('[data-testid="stAudioInputWaveformTimeCode"]').inner_text()
    assert re.fullmatch(r"00:0[1-5]", timecode), f"the recording clock shows {timecode}"
    shot(page, "record-2-recording")
    button.click()
    prediction(page, app.labels, timeout=FIRST_PREDICTION_S)
    settle(page)
    no_exception(page, "Predict after a st.audio_input recording")
    seconds = float(metric(page, "Duration").split()[0])
    assert 2.5 <= seconds <= 6.0, f"the recording lasts {seconds} s"
    assert metric(page, "Original rate").startswith("44.1")
    corr, heard, played = fidelity(*recorded(page, app), mic_file)
    print(f"st.audio_input: correlation {corr:.3f}, centroid {heard:.0f} Hz (source {played:.0f} Hz)")
    # Streamlit's recorder sends Opus-compressed audio (measured here 0.976, centroid 15 % low)
    assert corr > 0.9 and abs(heard - played) < 0.25 * played
    shot(page, "record-3-predicted")


def test_record_with_hands_free_recorder(page, app, mic_file):
    """audio-recorder-streamlit: one click starts; it stops by itself after 2 s of quiet (the
    fake microphone plays 3 s of sound, then 3 s of near-silence)."""
    start(page, app)
    go(page, "Predict")
    choose_source(page, "Record")
    frame = page.frame_locator("iframe[title$='genre_hands_free_recorder']")
    icon = frame.locator("svg.fa-microphone")
    icon.wait_for()
    neutral = icon.evaluate("e => getComputedStyle(e).color")
    icon.click()
    page.wait_for_timeout(1000)
    assert icon.evaluate("e => getComputedStyle(e).color") != neutral, "the icon does not show it is recording"
    shot(page, "recorder-1-recording")
    deadline = time.monotonic() + 15
    while icon.evaluate("e => getComputedStyle(e).color") != neutral:
        assert time.monotonic() < deadline, "the hands-free recorder did not stop after a pause"
        page.wait_for_timeout(250)
    prediction(page, app.labels, timeout=FIRST_PREDICTION_S)
    settle(page)
    no_exception(page, "Predict after an audio_recorder recording")
    seconds = float(metric(page, "Duration").split()[0])
    assert 2.0 <= seconds <= 10.0, f"the recording lasts {seconds} s"
    corr, heard, played = fidelity(*recorded(page, app), mic_file)
    print(f"hands-free recorder: correlation {corr:.3f}, centroid {heard:.0f} Hz (source {played:.0f} Hz)")
    # raw capture: the file itself (was 0.41 with the browser's voice processing on; measured now 1.000)
    assert corr > 0.99 and abs(heard - played) < 0.03 * played
    shot(page, "recorder-2-predicted")


def _curve_points(page) -> int:
    """Epochs drawn in the live training chart (-1 while there is no chart)."""
    return page.evaluate("""() => {
        const plot = document.querySelector('.js-plotly-plot');
        return plot && plot.data && plot.data.length ? plot.data[0].x.length : -1; }""")


TRAIN_EPOCHS = 200
"""Epochs of the save-and-use run: ~20 s on the tiny dataset, long enough to watch it grow."""


def no_weight_penalty(page) -> None:
    """Set the Train page's L2 penalty to 0. Without a weight penalty the tiny dataset's validation
    loss keeps falling (its clips are separable), so early stopping never ends a run before its
    epochs are over."""
    page.locator('[data-testid="stSlider"]', has_text="L2 penalty").get_by_role("slider").press("Home")
    settle(page)
    l2 = page.locator('[data-testid="stSlider"]', has_text="L2 penalty")
    assert l2.locator('[data-testid="stSliderThumbValue"]').inner_text() == "0"


def test_train_save_and_use_a_model(page, app, tmp_path):
    """200 epochs at most of an MLP on the tiny dataset (no weight penalty: no early stop; ~0.1 s each): the
    live chart grows, and goes on growing after a visit to another page; the results show a
    confusion matrix, Save refuses 'backbones' next to the button, and the saved model can be
    picked in the sidebar and predicts the tiny dataset's genres."""
    start(page, app)
    go(page, "Train")
    enter(page, "stNumberInput", "Epochs", str(TRAIN_EPOCHS))
    no_weight_penalty(page)
    check_metrics(page, "Train settings")
    shot(page, "train-1-settings")
    page.get_by_role("button", name="Start training").click()
    seen, after_home = [], None
    deadline = time.monotonic() + 150
    results = page.get_by_role("heading", name="Results")
    while not results.count():
        assert time.monotonic() < deadline, f"training did not finish in 150 s (chart points seen: {seen})"
        no_exception(page, "Train while training")
        points = _curve_points(page)
        if points >= 0 and (not seen or points != seen[-1]):
            seen.append(points)
            if len(seen) == 2:
                shot(page, "train-2-live")
                go(page, "Home")  # the run goes on while another page is shown
                go(page, "Train")
                after_home = len(seen)
        page.wait_for_timeout(250)
    settle(page)
    no_exception(page, "Train results")
    points = _curve_points(page)
    assert 1 <= points <= TRAIN_EPOCHS and page.get_by_text(f"{points} epochs (").count() == 1
    assert seen == sorted(seen) and after_home and len(seen) > after_home, \
        f"the live chart did not grow before and after the visit to Home: {seen}"
    check_metrics(page, "Train results")
    shot(page, "train-3-results")
    confusion = page.locator('[data-testid="stPlotlyChart"]', has=page.locator(".heatmaplayer"))
    assert confusion.count() == 1, "no confusion matrix"
    assert all(g in confusion.evaluate("e => e.textContent") for g in ("beats", "buzz", "tones"))

    name = page.locator('[data-testid="stTextInput"]', has_text="Save as").locator("input")
    name.fill("backbones")
    name.press("Enter")
    settle(page)
    refusal = page.locator('[data-testid="stAlert"]', has_text="Cannot save as backbones")
    assert refusal.count() == 1 and "MusiCNN weights" in refusal.inner_text()
    assert page.get_by_role("button", name="Save", exact=True).is_disabled()
    shot(page, "train-4-refused")
    name.fill("e2e-mlp")
    name.press("Enter")
    settle(page)
    page.get_by_role("button", name="Save", exact=True).click()
    page.locator('[data-testid="stAlert"]', has_text="Saved as e2e-mlp").wait_for()
    settle(page)
    assert (app.models_dir / "e2e-mlp" / "card.json").is_file()
    assert not (ROOT / "models" / "e2e-mlp").exists(), "the Train page saved into the project's models/"
    shot(page, "train-5-saved")

    picker = page.locator('[data-testid="stSidebar"] [data-testid="stSelectbox"]', has_text="Model")
    picker.click()
    options = page.locator('[role="option"]')
    options.first.wait_for()
    names = [o.strip() for o in options.all_inner_texts()]
    assert "e2e-mlp" in names, f"the sidebar model picker lists {names}"
    shot(page, "train-6-model-picker")
    options.filter(has_text="e2e-mlp").click()
    settle(page)
    go(page, "Predict")
    assert page.get_by_text("Model e2e-mlp").count() == 1
    page.locator('[data-testid="stFileUploader"] input[type=file]').set_input_files(wav_file(tmp_path, "buzz"))
    prediction(page, ["beats", "buzz", "tones"], timeout=FIRST_PREDICTION_S)
    settle(page)
    no_exception(page, "Predict with the new model")
    shot(page, "train-7-predict-with-new-model")


def test_a_run_reopened_in_a_second_browser_context(page, app, browser):
    """A run started in one browser session is opened by its link (``?run=<id>``) in a second
    browser context (another person, or the same one after closing the tab): it shows the live
    curves there, Stop there ends it after the current epoch, and both sessions show the results."""
    start(page, app)
    go(page, "Train")
    epochs = page.locator('[data-testid="stNumberInput"]', has_text="Epochs").locator("input")
    epochs.fill("1000")
    epochs.press("Enter")
    settle(page)
    no_weight_penalty(page)  # this run lasts until it is stopped
    page.get_by_role("button", name="Start training").click()
    page.wait_for_function("() => new URL(location.href).searchParams.get('run')")
    run_id = parse_qs(urlparse(page.url).query)["run"][0]
    deadline = time.monotonic() + 150
    while _curve_points(page) < 1:
        assert time.monotonic() < deadline, "no epoch in 150 s"
        page.wait_for_timeout(250)

    context = browser.new_context(viewport=VIEWPORT)
    try:
        other = context.new_page()
        other.goto(f"{app.url}/train?run={run_id}")
        page_title = other.locator("h1").first
        page_title.wait_for()
        assert "Train a model" in page_title.inner_text()
        first_seen = -1
        deadline = time.monotonic() + 60
        while (points := _curve_points(other)) <= max(first_seen, 0):
            assert time.monotonic() < deadline, f"the second session's chart did not grow ({points} points)"
            first_seen = points if first_seen < 0 else first_seen
            other.wait_for_timeout(300)
        no_exception(other, "Train, second context")
        assert other.get_by_text(f"Run {run_id}").count() >= 1
        shot(other, "run-1-second-context-live")
        other.get_by_role("button", name="Stop", exact=True).click()
        for session in (other, page):  # the first session's live view notices the end by itself
            session.get_by_role("heading", name="Results").wait_for(timeout=60_000)
            settle(session)
            no_exception(session, "Train results after a stop from another session")
            assert session.get_by_text("stopped by you").count() == 1
        assert parse_qs(urlparse(other.url).query)["run"] == [run_id]
        assert _curve_points(page) == _curve_points(other) < 1000
        shot(other, "run-2-second-context-stopped")
        shot(page, "run-3-first-context-results")
    finally:
        context.close()


# --- known problems: these fail today (xfail, strict); when one passes, remove its marker ----

def test_first_session_keeps_the_sidebar_folder(page, fresh_app):
    """The first visitor of a just-started server moves from Home to another page: the
    sidebar still shows the dataset folder (today the box turns empty)."""
    start(page, fresh_app)
    assert sidebar_folder(page) == str(fresh_app.data_dir)
    go(page, "Predict")
    shot(page, "known-1-first-session-sidebar")
    assert sidebar_folder(page) == str(fresh_app.data_dir), "the sidebar's Dataset folder box lost its value"


def test_spectrogram_floor_is_dark(page, app, tmp_path):
    """The quietest cells of the Predict page's mel spectrogram are drawn dark, as on its colour
    bar (today: pink, so a silent stretch looks like a loud block)."""
    start(page, app)
    go(page, "Predict")
    sr = 22050
    y = np.concatenate([synth("buzz", seconds=3.0, sr=sr), np.zeros(2 * sr, np.float32)])
    page.locator('[data-testid="stFileUploader"] input[type=file]').set_input_files(
        write_wav(tmp_path / "buzz-then-silence.wav", y, sr))
    prediction(page, app.labels, timeout=FIRST_PREDICTION_S)
    settle(page)
    shot(page, "known-3-spectrogram-floor")
    floor = page.evaluate("""() => [...document.querySelectorAll('.js-plotly-plot')]
        .flatMap(g => g.data).filter(t => t.type === 'heatmap' && t.colorbar?.title?.text === 'dB')
        .map(t => t.colorscale[0][1])""")
    assert floor, "no dB heatmap on the Predict page"
    rgb = [int(floor[0][i:i + 2], 16) for i in (1, 3, 5)] if floor[0].startswith("#") else \
        [int(v) for v in re.findall(r"\d+", floor[0])[:3]]
    assert sum(rgb) < 120, f"the spectrogram's lowest colour is {floor[0]}"


@pytest.mark.xfail(strict=False, reason="timing-dependent (when the page is left relative to the extraction's "
                   "chunks); store.build no longer abandons a running pool, but this is not yet proven stable")
def test_leaving_the_dataset_page_during_extraction(page, app, tmp_path):
    """Point the sidebar at a new folder, leave the Dataset page while its features are being
    extracted, come back: the page finishes (today: a RuntimeError traceback)."""
    root = tmp_path / "more_clips"
    for kind in ("tones", "beats", "buzz"):
        for i in range(6):
            write_wav(root / kind / f"{kind}.{i:05d}.wav", synth(kind, seed=100 + i))
    start(page, app)
    folder = page.locator('[data-testid="stSidebar"] [data-testid="stTextInput"] input')
    folder.fill(str(root))
    folder.press("Enter")
    settle(page)
    assert page.locator("code", has_text=str(root)).count() == 1, "Home does not show the new folder"
    page.locator('[data-testid="stSidebarNav"] a', has_text="Dataset").click()
    page.get_by_text(re.compile(r"features of 18 clips: ([1-9]|1[0-5])/18")).wait_for(timeout=60_000)  # mid-extraction
    go(page, "Train")
    go(page, "Dataset")
    page.locator('[data-testid="stPlotlyChart"]').nth(2).wait_for(timeout=90_000)
    settle(page)
    shot(page, "known-4-dataset-after-leaving")
    no_exception(page, "Dataset after leaving it during extraction")


def test_review_a_library_folder(page, app, tmp_path):
    """Review: a folder of tagged FLACs predicted by the server's run, then the queue."""
    from mutagen.flac import FLAC

    music = tmp_path / "library"
    for i, kind in enumerate(("tones", "tones", "beats")):
        path = write_wav(music / "album" / f"{i}.flac", synth(kind, seconds=5.0, seed=i))
        tags = FLAC(path)
        tags["album"], tags["albumartist"] = "Blue", "Band"
        tags.save()
    start(page, app)
    go(page, "Review")
    enter(page, "stTextInput", "Music folder", str(music))
    page.get_by_role("button", name="Predict every track").click()
    page.get_by_text(re.compile(r"^3 tracks")).wait_for(timeout=FIRST_PREDICTION_S * 1000)
    settle(page)
    no_exception(page, "Review after the run")
    assert page.locator('[data-testid="stDataFrame"]').count() >= 1
    assert page.get_by_text(re.compile(r"1 album, \d tracks? disagrees? with their album")).count() == 1
    shot(page, "review-1-queue")
