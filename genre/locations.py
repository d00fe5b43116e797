"""Where genre finds what it ships and where it keeps what it makes.

genre runs in one of two ways:

- **from a clone** (``./run.sh``, ``python -m genre`` in the repository; an editable install
  counts too): everything lives in the clone, as the repository shows it: ``streamlit_app.py``,
  ``pages/``, ``models/default``, ``models/backbones``, and what genre writes (saved models and
  their runs under ``models/``, the feature cache under ``data/cache``) beside them;
- **installed** from a wheel (``pip install``, ``pipx install``, ``uv tool install``): what it
  ships travels inside the package, in ``genre/_bundle/`` (``pyproject.toml`` puts it there),
  read-only; what it writes goes to :data:`HOME`: ``$GENRE_HOME`` if set, else the user's data
  folder (``platformdirs``; ``~/.local/share/genre-dashboard`` on Linux).

``$GENRE_HOME`` moves the writable folder in both ways; ``$GENRE_MODELS_DIR``,
``$GENRE_CACHE_DIR`` and ``$GENRE_DATA_DIR`` still move each part on its own.
"""
from __future__ import annotations

import os
from pathlib import Path

APP_NAME = "genre-dashboard"
"""The distribution's name, also the name of the user data folder."""
PACKAGE_DIR = Path(__file__).resolve().parent
BUNDLE_DIR = PACKAGE_DIR / "_bundle"
INSTALLED = (BUNDLE_DIR / "streamlit_app.py").is_file()
"""True when genre runs from an installed wheel, False from a clone (or an editable install)."""
RESOURCES = BUNDLE_DIR if INSTALLED else PACKAGE_DIR.parent
"""The folder holding what genre ships: ``streamlit_app.py``, ``pages/``, ``.streamlit/``,
``models/default``, ``models/backbones`` (read-only when installed)."""


def _home() -> Path:
    if os.environ.get("GENRE_HOME"):
        return Path(os.environ["GENRE_HOME"]).expanduser().resolve()
    if not INSTALLED:
        return RESOURCES
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


HOME = _home()
"""The folder genre writes to: ``models/`` (saved models, runs) and ``data/`` (datasets a
visitor may open, ``data/cache``). Created when something is first written there."""
APP_SCRIPT = RESOURCES / "streamlit_app.py"
"""The dashboard's entry script (``streamlit run`` target)."""
STREAMLIT_CONFIG = RESOURCES / ".streamlit" / "config.toml"
"""The dashboard's Streamlit settings (no file watcher, no usage statistics, ...)."""
SHIPPED_MODEL_DIR = RESOURCES / "models" / "default"
"""The shipped default model."""
BACKBONE_WEIGHTS_DIR = RESOURCES / "models" / "backbones"
"""The pretrained backbones' weights (MusiCNN, EfficientAT mn04)."""
