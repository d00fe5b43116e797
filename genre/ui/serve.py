"""Start the dashboard as ``./run.sh`` does: ``python -m genre.ui.serve [streamlit run options]``.

One process: :func:`genre.ui.warmup.start` begins loading TensorFlow and the default model in
the background, then ``streamlit run streamlit_app.py`` serves with ``.streamlit/config.toml``
(file watcher off: an idle tab costs nothing), without the Keras reset Streamlit would do after
every script run (:mod:`genre.ui.keras_state`). Options after the command go to ``streamlit
run``, e.g. ``--server.port 8502``.

``GENRE_DEV=1`` is the developer mode: pages rerun when a project file is saved, through
Streamlit's poll watcher, which checks only the modules the app imported from the project.
(Streamlit's default watchdog watcher would watch the project folder recursively, ``.venv``
included, and keep a core busy while any tab is open.)
"""
from __future__ import annotations

import os
import sys

from genre.models import PROJECT_ROOT
from genre.ui import warmup
from genre.ui.keras_state import keep_keras_state

APP = PROJECT_ROOT / "streamlit_app.py"
DEV_OPTIONS = ("--server.fileWatcherType", "poll", "--server.runOnSave", "true")


def streamlit_argv(options: list[str], *, dev: bool) -> list[str]:
    """``streamlit`` command-line arguments: ``run streamlit_app.py``, the developer options if
    ``dev``, then ``options`` (which win over both)."""
    return ["run", str(APP), *(DEV_OPTIONS if dev else ()), *options]


def main(options: list[str] | None = None) -> None:
    from streamlit.web import cli

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up notes are not for visitors
    argv = streamlit_argv(sys.argv[1:] if options is None else options, dev=os.environ.get("GENRE_DEV") == "1")
    keep_keras_state()  # before the first script run: no Keras reset after any run
    warmup.start()
    cli.main(argv, prog_name="streamlit")


if __name__ == "__main__":
    main()
