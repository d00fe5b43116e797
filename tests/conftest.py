"""Shared fixtures: synthetic audio and a tiny synthetic dataset, an isolated feature cache,
and the optional real GTZAN data in ../shared (tests using it skip when it is absent)."""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
GTZAN = SHARED / "gtzan"
SR = 22050


def synth(kind: str = "tones", *, seconds: float = 4.0, sr: int = SR, seed: int = 0) -> np.ndarray:
    """Deterministic mono float32 test audio of one of three clearly different kinds:
    'tones' (a slow chord), 'beats' (noise bursts on a 120 BPM grid), 'buzz' (bright saw wave)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    if kind == "tones":
        f0 = 220 * 2 ** (rng.integers(0, 5) / 12)
        y = sum(np.sin(2 * np.pi * f0 * r * t) for r in (1, 1.25, 1.5)) / 3
    elif kind == "beats":
        env = np.exp(-((t % 0.5) * 30))
        y = env * rng.standard_normal(len(t))
    elif kind == "buzz":
        f0 = 110 * 2 ** (rng.integers(0, 5) / 12)
        y = 2 * ((t * f0) % 1.0) - 1
    else:
        raise ValueError(kind)
    return (0.3 * y + 0.01 * rng.standard_normal(len(t))).astype(np.float32)


NOT_MUSIC = "**This doesn't sound like music**"
"""How the verdict starts. The synthetic test sounds are not music to AudioSet, so a working
prediction of them shows this one error, with the genre folded under "If it were music"."""


def errors_besides_the_verdict(at) -> list[str]:
    """An AppTest's error messages other than the "not music" verdict (expected: none)."""
    return [e.value for e in at.error if not e.value.startswith(NOT_MUSIC)]


ESPEAK = shutil.which("espeak-ng")
NON_MUSIC = ("speech", "noise", "tone", "clicks")


def non_music(kind: str, *, seconds: float = 8.0, sr: int = SR, seed: int = 0) -> np.ndarray:
    """Deterministic mono float32 sounds that are not music: 'speech' (espeak-ng reading a few
    sentences; pytest.skip without it), 'noise' (white), 'tone' (a steady 1 kHz sine) and
    'clicks' (a few random clicks in near-silence)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    if kind == "speech":
        if ESPEAK is None:
            pytest.skip("espeak-ng is not installed (Debian package espeak-ng; ./run.sh setup --with-browser)")
        import librosa

        text = ("Good morning. This is a recording of a person speaking, not of music. "
                "We count slowly: one, two, three, four, five, six, seven, eight.")
        with tempfile.TemporaryDirectory() as tmp:
            wav = Path(tmp) / "speech.wav"
            subprocess.run([ESPEAK, "-w", str(wav), text], check=True, capture_output=True)
            y, _ = librosa.load(wav, sr=sr)
        return y.astype(np.float32)
    if kind == "noise":
        y = 0.1 * rng.standard_normal(n)
    elif kind == "tone":
        y = 0.3 * np.sin(2 * np.pi * 1000 * np.arange(n) / sr)
    elif kind == "clicks":
        y = 1e-4 * rng.standard_normal(n)
        y[rng.choice(n, size=int(seconds * 2), replace=False)] = 0.9
    else:
        raise ValueError(kind)
    return y.astype(np.float32)


def write_wav(path: Path, y: np.ndarray, sr: int = SR) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, y, sr)
    return path


def pytest_configure(config):
    """librosa's numba cache written by this one process before collection starts any other
    (dashboard servers, extraction workers): a race between them can corrupt it."""
    from genre.numba_cache import ensure_librosa_cache

    ensure_librosa_cache()


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch):
    """Every test gets its own feature cache; nothing touches data/cache."""
    monkeypatch.setenv("GENRE_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture(autouse=True)
def isolated_examples(tmp_path_factory, monkeypatch):
    """Every test keeps the examples it teaches in a folder of its own (inside the allowed
    roots below); nothing touches data/examples."""
    monkeypatch.setenv("GENRE_EXAMPLES_DIR", str(tmp_path_factory.mktemp("examples") / "examples"))


@pytest.fixture(autouse=True)
def allowed_data_roots(tmp_path_factory, monkeypatch):
    """The dashboard may read datasets from this session's temporary folders and ../shared
    (GENRE_DATA_ROOTS; by default only data/ and $GENRE_DATA_DIR are allowed)."""
    roots = [str(tmp_path_factory.getbasetemp()), str(SHARED)]
    monkeypatch.setenv("GENRE_DATA_ROOTS", os.pathsep.join(roots))


@pytest.fixture
def models_dir(tmp_path, monkeypatch):
    """Saved models (and the runs' folders) go to a temporary folder, never into models/; the
    pages' process-wide run registry is a new one for that folder, and its runs are stopped at
    the end. (Some test modules define their own ``models_dir``, which replaces this one there.)"""
    from genre import models, runs

    folder = tmp_path / "models"
    monkeypatch.setattr(models, "MODELS_DIR", folder)
    yield folder
    registry = runs.shared_registry(folder)
    for snap in registry.list():
        registry.stop(snap.id)
    for snap in registry.list():
        registry.wait(snap.id, 60)


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> Path:
    """Folder-per-label dataset: 3 labels ('tones', 'beats', 'buzz') x 6 clips of 4 s, with a
    GTZANindex-style metadata file giving each pair of clips one artist."""
    root = tmp_path_factory.mktemp("tiny_dataset")
    lines = []
    for kind in ("tones", "beats", "buzz"):
        for i in range(6):
            clip_id = f"{kind}.{i:05d}"
            write_wav(root / kind / f"{clip_id}.wav", synth(kind, seed=i))
            lines.append(f"{clip_id}.wav ::: {kind}-artist-{i // 2} ::: song {i}")
    (root / "metadata").mkdir()
    (root / "metadata" / "GTZANindex.txt").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture
def warm_cache(tiny_dataset, tmp_path_factory, monkeypatch):
    """The tiny dataset's features, extracted once per test session and shared read-only."""
    from genre.dataset import discover
    from genre.features import FeatureConfig
    from genre.store import FeatureStore

    folder = tmp_path_factory.getbasetemp() / "tiny-features"
    if not folder.exists():
        build = tmp_path_factory.mktemp("tiny-features-build")
        FeatureStore(build).build(discover(tiny_dataset)["path"], FeatureConfig(), n_jobs=1)
        build.rename(folder)
    monkeypatch.setenv("GENRE_CACHE_DIR", str(folder))
    return folder


requires_gtzan = pytest.mark.skipif(
    not (GTZAN / "blues").is_dir(), reason=f"real GTZAN clips not found at {GTZAN} (../shared is absent)")


@pytest.fixture(scope="session", autouse=True)
def quiet_tensorflow():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
