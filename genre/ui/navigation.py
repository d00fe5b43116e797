"""How the entry script runs a page, and how a page that Streamlit started on its own hands
over to the entry script.

A folder named ``pages/`` beside the entry script makes Streamlit treat the app as an old-style
multipage app until a run of the entry script calls ``st.navigation`` (a process-wide flag that
only ``st.navigation`` clears). So when the first request of a freshly started server is a deep
link (``/predict``: a bookmark, a shared link, a tab reconnecting after a restart), Streamlit
runs ``pages/predict.py`` by itself: no sidebar, the file names as page titles, no layout.

Every page therefore ends with ``run_page(main)``. Under the entry script it simply calls
``main()``. Started on its own, it runs the entry script instead: its ``st.navigation`` clears
the flag and runs the page the URL asks for (this one) with the app's sidebar, page list and
layout. From then on the server runs the entry script for every request, as usual.

Both entry points also make sure Streamlit does not reset Keras after the run
(:mod:`genre.ui.keras_state`).
"""
from __future__ import annotations

import runpy
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import streamlit as st

from genre.locations import APP_SCRIPT
from genre.ui.keras_state import keep_keras_state

ENTRY = APP_SCRIPT.resolve()
_run = threading.local()
"""``inside`` is True while the entry script runs a page in this thread (one script run)."""


def run(pages: Sequence[st.Page], **navigation) -> None:
    """The entry script's last step: ``st.navigation(pages, **navigation).run()``, noting that
    the page runs under the entry script."""
    keep_keras_state()
    page = st.navigation(list(pages), **navigation)
    _run.inside = True
    try:
        page.run()
    finally:
        _run.inside = False


def _main_script() -> Path | None:
    """The script Streamlit runs for this session (it installs it as ``__main__``)."""
    file = getattr(sys.modules.get("__main__"), "__file__", None)
    return Path(file).resolve() if file else None


def run_page(main: Callable[[], None]) -> None:
    """A page's last line: ``main()`` under the entry script (or when the page itself is the
    main script, as in ``AppTest.from_file('pages/x.py')``); when Streamlit started the page
    without the entry script, the entry script runs instead and renders this page."""
    keep_keras_state()
    if getattr(_run, "inside", False) or _main_script() != ENTRY:
        main()
        return
    runpy.run_path(str(ENTRY), run_name="__main__")
