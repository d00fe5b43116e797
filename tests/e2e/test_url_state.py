"""State in the URL, in a real browser: a deep link as the first request of a freshly started
server renders that page with the app's sidebar; the dataset folder and the model survive a
reload and open the same view from a shared link in another browser session; a bad ``?model=``
falls back to ``default`` with a message; a folder outside the allowed roots is refused.
Screenshots: test-artifacts/screenshots/url-*.png."""
from __future__ import annotations

import shutil
from urllib.parse import parse_qs, quote, urlsplit

import pytest

from .conftest import VIEWPORT, App
from .test_browser import PAGES, go, no_exception, settle, shot, sidebar_folder, start, title

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def second_dataset(app, tmp_path_factory):
    """The tiny dataset without its 'tones' genre (12 clips, 2 genres), inside the allowed roots."""
    root = tmp_path_factory.mktemp("second") / "two-genres"
    shutil.copytree(app.data_dir, root)
    shutil.rmtree(root / "tones")
    return root


@pytest.fixture
def second_model(app):
    """A second saved model ('e2e-copy', the shipped default under another name), removed after."""
    folder = app.models_dir / "e2e-copy"
    shutil.copytree(app.models_dir / "default", folder)
    try:
        yield folder.name
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def params(page) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(urlsplit(page.url).query).items()}


def open_url(page, url: str) -> None:
    page.goto(url)
    page.locator("h1").first.wait_for()
    settle(page)


def nav_links(page) -> list[str]:
    """Page names of the sidebar's links (their icon's ligature name left out)."""
    return [t.strip().splitlines()[-1].strip() for t in page.locator('[data-testid="stSidebarNav"] a').all_inner_texts()]


def model_picked(page) -> str:
    return page.locator('[data-testid="stSidebar"] [data-testid="stSelectbox"]', has_text="Model") \
        .locator("input").input_value().strip()


def pick_model(page, name: str) -> None:
    page.locator('[data-testid="stSidebar"] [data-testid="stSelectbox"]', has_text="Model").click()
    page.locator('[role="option"]').filter(has_text=name).click()
    settle(page)


def main_width(page) -> float:
    return page.locator('[data-testid="stMainBlockContainer"]').bounding_box()["width"]


def assert_app_frame(page, app: App, *, folder: str, where: str) -> None:
    """The page has the entry script's frame: every page link (title case), the sidebar's
    dataset folder and model picker, the wide layout."""
    no_exception(page, where)
    assert nav_links(page) == list(PAGES), f"{where}: sidebar links {nav_links(page)}"
    assert sidebar_folder(page) == folder, f"{where}: the sidebar's folder box shows {sidebar_folder(page)!r}"
    assert model_picked(page), f"{where}: no model picker"
    assert main_width(page) > 0.7 * VIEWPORT["width"], f"{where}: narrow layout ({main_width(page)} px)"
    assert not app.server_errors(), f"{where}: the server log shows a traceback ({app.log})"


def test_deep_link_to_predict_on_a_fresh_server(page, fresh_app):
    """A bookmark of /predict opened right after a restart (the server's first request)."""
    open_url(page, f"{fresh_app.url}/predict")
    shot(page, "url-1-fresh-predict")
    assert title(page) == PAGES["Predict"]
    assert_app_frame(page, fresh_app, folder=str(fresh_app.data_dir), where="/predict on a fresh server")
    assert params(page) == {"data": str(fresh_app.data_dir), "model": "default"}
    go(page, "Home")  # the rest of the app works as usual after that first request
    assert_app_frame(page, fresh_app, folder=str(fresh_app.data_dir), where="Home after the deep link")


def test_deep_link_with_a_dataset_on_a_fresh_server(page, fresh_app, second_dataset):
    open_url(page, f"{fresh_app.url}/train?data={quote(str(second_dataset))}")
    shot(page, "url-2-fresh-train-with-data")
    assert title(page) == PAGES["Train"]
    assert_app_frame(page, fresh_app, folder=str(second_dataset), where="/train?data= on a fresh server")
    assert page.get_by_text("12 clips in 2 genres").count() == 1, "the Train page does not use the linked dataset"
    assert params(page)["data"] == str(second_dataset)


def test_reload_and_a_shared_link_keep_dataset_and_model(page, app, second_dataset, second_model, browser):
    start(page, app)
    folder = page.locator('[data-testid="stSidebar"] [data-testid="stTextInput"] input')
    folder.fill(str(second_dataset))
    folder.press("Enter")
    settle(page)
    pick_model(page, second_model)
    assert page.get_by_text("12 clips").count() == 1
    go(page, "Predict")  # following a page link keeps both in the URL
    assert params(page) == {"data": str(second_dataset), "model": second_model}, page.url
    assert page.get_by_text(f"Model {second_model}").count() == 1
    link = page.url

    page.reload()
    page.locator("h1").first.wait_for()
    settle(page)
    shot(page, "url-3-after-reload")
    assert title(page) == PAGES["Predict"]
    assert (sidebar_folder(page), model_picked(page)) == (str(second_dataset), second_model)
    assert page.get_by_text(f"Model {second_model}").count() == 1

    other = browser.new_context(viewport=VIEWPORT)  # someone else opens the shared link
    try:
        friend = other.new_page()
        open_url(friend, link)
        shot(friend, "url-4-shared-link")
        assert title(friend) == PAGES["Predict"]
        assert (sidebar_folder(friend), model_picked(friend)) == (str(second_dataset), second_model)
        go(friend, "Home")
        assert friend.get_by_text("12 clips").count() == 1
        friend.goto(f"{app.url}/")  # the friend's own session moves on ...
        friend.locator("h1").first.wait_for()
        settle(friend)
        assert sidebar_folder(friend) == str(app.data_dir)
    finally:
        other.close()
    go(page, "Home")  # ... which does not change this one
    assert (sidebar_folder(page), model_picked(page)) == (str(second_dataset), second_model)
    assert not app.server_errors()


def test_a_bad_model_in_the_link_falls_back_with_a_message(page, app):
    open_url(page, f"{app.url}/predict?model=no-such-model")
    shot(page, "url-5-bad-model")
    no_exception(page, "Predict with ?model=no-such-model")
    warning = page.locator('[data-testid="stAlert"]', has_text="no-such-model")
    assert warning.count() == 1 and "not a saved model" in warning.inner_text()
    assert model_picked(page) == "default"
    assert params(page)["model"] == "default", page.url


def test_a_folder_outside_the_allowed_roots_is_refused(page, app):
    open_url(page, f"{app.url}/dataset?data=/etc")
    shot(page, "url-6-refused-folder")
    no_exception(page, "Dataset with ?data=/etc")
    assert page.locator('[data-testid="stAlert"]', has_text="outside the folders").count() == 1
    assert page.locator('[data-testid="stSidebar"] [data-testid="stAlert"]', has_text="Not allowed").count() == 1
    assert not page.locator('[data-testid="stPlotlyChart"], [data-testid="stDataFrame"]').count()
