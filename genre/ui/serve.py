"""Start the dashboard: ``genre dashboard [streamlit run options]`` (what ``./run.sh`` runs;
also ``python -m genre.ui.serve``).

One process: :func:`genre.ui.warmup.start` begins loading TensorFlow and the default model in
the background, then ``streamlit run streamlit_app.py`` serves with the dashboard's settings,
``.streamlit/config.toml`` (file watcher off: an idle tab costs nothing), without the Keras reset
Streamlit would do after every script run (:mod:`genre.ui.keras_state`). Options after the
command go to ``streamlit run`` and win over those settings, e.g. ``--server.port 8502``.

Streamlit reads ``.streamlit/config.toml`` from the folder it is started in, which is the clone
for ``./run.sh``. An installed genre runs from any folder, so its shipped settings are passed
to Streamlit as options instead (:func:`config_options`).

``GENRE_DEV=1`` is the developer mode: pages rerun when a project file is saved, through
Streamlit's poll watcher, which checks only the modules the app imported from the project.
(Streamlit's default watchdog watcher would watch the project folder recursively, ``.venv``
included, and keep a core busy while any tab is open.)
"""
from __future__ import annotations

import os
import sys
import tomllib
from pathlib import Path

from genre import locations
from genre.ui import warmup
from genre.ui.keras_state import keep_keras_state

DEV_OPTIONS = ("--server.fileWatcherType", "poll", "--server.runOnSave", "true")


def config_options(config: Path = locations.STREAMLIT_CONFIG) -> list[str]:
    """The settings of a Streamlit ``config.toml`` as ``streamlit run`` options, e.g.
    ``["--server.maxUploadSize", "50", "--browser.gatherUsageStats", "false", ...]``."""
    options: list[str] = []
    for section, values in tomllib.loads(config.read_text(encoding="utf-8")).items():
        for key, value in values.items():
            text = str(value).lower() if isinstance(value, bool) else str(value)
            options += [f"--{section}.{key}", text]
    return options


def streamlit_argv(options: list[str], *, dev: bool, installed: bool = locations.INSTALLED) -> list[str]:
    """``streamlit`` command-line arguments: ``run streamlit_app.py``, the shipped settings if
    ``installed``, the developer options if ``dev``, then ``options`` (which win over all)."""
    shipped = config_options() if installed else []
    return ["run", str(locations.APP_SCRIPT), *shipped, *(DEV_OPTIONS if dev else ()), *options]


def main(options: list[str] | None = None) -> None:
    from streamlit.web import cli

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up notes are not for visitors
    argv = streamlit_argv(sys.argv[1:] if options is None else options, dev=os.environ.get("GENRE_DEV") == "1")
    keep_keras_state()  # before the first script run: no Keras reset after any run
    warmup.start()
    cli.main(argv, prog_name="streamlit")


if __name__ == "__main__":
    main()
