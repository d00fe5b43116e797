"""Dashboard and default-model speed: what a person waits for.

1. Home page, cold: a fresh Python process imports streamlit_app.py's modules and runs the Home
   page through Streamlit's AppTest (no model used); reports the time and whether TensorFlow got
   imported (it must not be).
2. The shipped default model: TensorFlow import, model load (head + MusiCNN backbone), and the
   time to embed + predict a 30 s clip after one warm-up run (median of --repeats).
3. Predict page: the same 30 s clip uploaded twice in one session; the second run is served from
   the cache (no decoding, no features), so it must be much faster than the first.

    .venv/bin/python benchmarks/app.py [--clip PATH] [--repeats 5]
"""
from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import soundfile as sf

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

HOME_PROBE = textwrap.dedent("""
    import sys, time
    t0 = time.perf_counter()
    from streamlit.testing.v1 import AppTest
    at = AppTest.from_file("streamlit_app.py", default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    print(f"{time.perf_counter() - t0:.2f} {'tensorflow' in sys.modules} {len(at.title)}")
""")


def clip_bytes(path: str | None) -> tuple[bytes, str]:
    """A 30 s clip: the given file, else a GTZAN clip from ../shared, else synthetic audio."""
    candidates = [Path(path)] if path else sorted((PROJECT.parent / "shared" / "gtzan" / "rock").glob("*.ogg"))[:1]
    for candidate in candidates:
        if candidate.is_file():
            return candidate.read_bytes(), str(candidate)
    rng = np.random.default_rng(0)
    t = np.arange(30 * 22050) / 22050
    y = 0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sign(np.sin(2 * np.pi * 2 * t))) / 2
    buf = io.BytesIO()
    sf.write(buf, (y + 0.02 * rng.standard_normal(len(t))).astype(np.float32), 22050, format="WAV")
    return buf.getvalue(), "synthetic 30 s wav"


def home_cold() -> None:
    env = {**os.environ, "GENRE_DATA_DIR": str(PROJECT / "data")}
    out = subprocess.run([sys.executable, "-c", HOME_PROBE], cwd=PROJECT, env=env, capture_output=True,
                         text=True, check=True).stdout.split()
    seconds, tf_imported = float(out[0]), out[1] == "True"
    print(f"Home page, fresh process (imports + first run): {seconds:.2f} s   "
          f"TensorFlow imported: {'yes' if tf_imported else 'no'}   target < 5 s, no TensorFlow: "
          f"{'met' if seconds < 5 and not tf_imported else 'NOT met'}")


def default_model(data: bytes, repeats: int) -> None:
    t0 = time.perf_counter()
    import keras  # noqa: F401 - TensorFlow import, timed on its own

    t1 = time.perf_counter()
    from genre import backbones
    from genre.models import load_model
    from genre.predict import predict_source

    model = load_model()
    for backbone in backbones.parts(model.card.config.kind):
        backbones.load(backbone.name)
    t2 = time.perf_counter()
    predict_source(model, data, name="clip")  # warm-up: librosa/numba start-up, graph tracing
    t3 = time.perf_counter()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        prediction = predict_source(model, data, name="clip")
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    print(f"TensorFlow/Keras import: {t1 - t0:.2f} s")
    print(f"Default model load (head + {model.card.config.kind} backbones), after the import: {t2 - t1:.2f} s   "
          f"target < 2 s: {'met' if t2 - t1 < 2 else 'NOT met'}")
    print(f"First prediction (librosa start-up, graph tracing): {t3 - t2:.2f} s")
    print(f"30 s clip, decode + embed + predict, after warm-up: median {median:.3f} s "
          f"(min {min(times):.3f}, max {max(times):.3f}, {repeats} runs, {len(prediction.segment_probs)} segments)   "
          f"target < 0.5 s: {'met' if median < 0.5 else 'NOT met'}")


def predict_page_cache(data: bytes) -> None:
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(PROJECT / "pages" / "predict.py"), default_timeout=180)
    at.run()
    runs = []
    for name in ("clip.ogg", "clip.ogg"):
        at.file_uploader[0].set_value((name, data, "audio/ogg"))
        start = time.perf_counter()
        at.run()
        runs.append(time.perf_counter() - start)
        assert not at.exception and not at.error, (at.exception, at.error)
    print(f"Predict page, same clip twice in one session: first {runs[0]:.2f} s (model load + analysis), "
          f"second {runs[1]:.2f} s (cached: no decoding or features)")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clip")
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args(argv)
    os.chdir(PROJECT)
    data, source = clip_bytes(args.clip)
    print(f"clip: {source}; {os.cpu_count()} CPUs\n")
    home_cold()
    default_model(data, args.repeats)
    predict_page_cache(data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
