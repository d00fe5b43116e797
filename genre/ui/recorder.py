"""The hands-free recorder (audio-recorder-streamlit), made to hear what the microphone hears.

The package's browser code asks for the microphone with ``getUserMedia({audio: true})``, which
leaves the browser's voice processing on: echo cancellation, noise suppression and automatic
gain, built for calls and ruinous for music (measured with Chromium's fake microphone: its
recording of a test file correlated 0.41 with the file, Streamlit's ``st.audio_input`` 0.98).
The package has no option for it, so the app serves the package's own build with that one call
changed to ask for raw capture (no echo cancellation, noise suppression or gain control; one
channel), declared as a component of its own. The copy is made once per package version under
``$GENRE_HOME/data/components``; if the call is not found exactly once (a new package version
changed its code) or the copy cannot be written, :func:`available` is False and the page offers
only ``st.audio_input``, rather than a recorder that distorts.
"""
from __future__ import annotations

import json
import logging
import shutil
import tempfile
from functools import lru_cache
from importlib.metadata import version
from pathlib import Path

from genre import locations

VOICE_CALL = b"getUserMedia({audio:!0,video:!1})"
"""The package's microphone request (minified JavaScript of 0.0.8)."""
RAW_CAPTURE = (b"getUserMedia({audio:{echoCancellation:!1,noiseSuppression:!1,autoGainControl:!1,"
               b"channelCount:1},video:!1})")
"""The same request for the unprocessed signal."""
COMPONENT_NAME = "genre_hands_free_recorder"


def _build_dir() -> Path:
    import audio_recorder_streamlit

    return Path(audio_recorder_streamlit.__file__).parent / "frontend" / "build"


def raw_capture_build(source: Path, target_root: Path) -> Path | None:
    """A copy of the component build ``source`` whose microphone request asks for raw capture,
    under ``target_root`` (made once, atomically: built in a temporary folder, then renamed).
    None if the request is not found exactly once in its scripts."""
    target = target_root / f"audio-recorder-streamlit-{version('audio-recorder-streamlit')}-raw"
    if target.is_dir():
        return target
    scripts = [p for p in (source / "static" / "js").glob("*.js") if VOICE_CALL in p.read_bytes()]
    if len(scripts) != 1 or scripts[0].read_bytes().count(VOICE_CALL) != 1:
        return None
    target_root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=target_root, prefix=".tmp-"))
    try:
        copy = work / "build"
        shutil.copytree(source, copy)
        script = copy / scripts[0].relative_to(source)
        script.write_bytes(script.read_bytes().replace(VOICE_CALL, RAW_CAPTURE))
        try:
            copy.rename(target)
        except OSError:  # another process made it first
            if not target.is_dir():
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


@lru_cache(maxsize=1)
def _component():
    import streamlit.components.v1 as components

    try:
        build = raw_capture_build(_build_dir(), locations.HOME / "data" / "components")
    except OSError as err:  # a read-only home: no recorder rather than a distorting one
        logging.getLogger(__name__).warning("hands-free recorder off: %s", err)
        return None
    return None if build is None else components.declare_component(COMPONENT_NAME, path=str(build))


def available() -> bool:
    """Whether the raw-capture build could be made (see the module's docstring)."""
    return _component() is not None


def hands_free_recorder(*, pause_threshold: float, sample_rate: int, key: str,
                        energy_threshold: float = 0.01) -> bytes | None:
    """audio-recorder-streamlit's button with raw capture (check :func:`available` first): it
    starts on a click and stops after ``pause_threshold`` s below ``energy_threshold``; returns
    the WAV bytes of the last recording (None before one)."""
    data = _component()(text="", start_threshold=energy_threshold, end_threshold=energy_threshold,
                     pause_threshold=pause_threshold, neutral_color="#303030", recording_color="#de1212",
                     icon_name="microphone", icon_size="3x", sample_rate=sample_rate, key=key, default=None)
    return bytes(json.loads(data)) if data else None
