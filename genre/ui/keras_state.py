"""Keep Streamlit from resetting Keras after every script run.

At the end of every script run (each page view, widget change and fragment refresh, in every
session) Streamlit 1.67 calls ``keras.backend.clear_session()`` once Keras is imported
(``streamlit.runtime.scriptrunner.script_runner._clean_problem_modules``). In a server that keeps
models loaded this does harm and no good:

- a full ``gc.collect()`` over a heap that holds TensorFlow, holding the GIL: with one Train tab
  refreshing its live chart every second it took ~45 % of a core of the server (py-spy), and
  three people predicting waited several times longer while a training was watched;
- TensorFlow's kernel cache is thrown away, so the next prediction builds its kernels again;
- Keras's layer-name counters are reset while another session's thread may be building a model
  ("The name "activation" is used 3 times in the model").

The dashboard never builds throw-away models in a script run (models are loaded once into
:class:`genre.ui.cache.ModelLRU`; training runs in worker processes), so there is nothing to
clear. What Streamlit's clean-up does besides Keras, closing matplotlib's figures, is kept.
"""
from __future__ import annotations

import sys

from streamlit.runtime.scriptrunner import script_runner

CLEAN_UP = "_clean_problem_modules"
"""The module-level function of ``script_runner`` that Streamlit calls after every script run."""
STREAMLIT_CLEAN_UP = getattr(script_runner, CLEAN_UP, None)
"""Streamlit's own clean-up, as it was when this module was imported."""


def close_matplotlib_figures() -> None:
    """Streamlit's clean-up after a script run without the Keras reset: close every pyplot figure."""
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:
        pyplot.close("all")


def keep_keras_state() -> bool:
    """Replace Streamlit's after-run clean-up with :func:`close_matplotlib_figures` (idempotent,
    for the whole process). False, and nothing changed, if this Streamlit has no such function."""
    if not callable(getattr(script_runner, CLEAN_UP, None)):
        return False
    setattr(script_runner, CLEAN_UP, close_matplotlib_figures)
    return True
