"""The command line, run as a user would (``python -m genre ...`` in a subprocess): help for every
command, extract -> train -> predict / evaluate on the tiny dataset, and bad input ending in exactly
one line on stderr. Models go to a temporary $GENRE_MODELS_DIR, never into the project's models/."""
from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, synth, write_wav

LABELS = ["beats", "buzz", "tones"]
PROJECT_MODELS = ROOT / "models"


def _env(tmp: Path, **extra) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "GENRE_CACHE_DIR": str(tmp / "cache"),
            "GENRE_MODELS_DIR": str(tmp / "models"), "TF_CPP_MIN_LOG_LEVEL": "2", **extra}


def _start(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "genre", *args], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def run(args: list[str], env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess:
    proc = _start(args, env)
    out, err = proc.communicate(timeout=timeout)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def run_all(commands: list[list[str]], env: dict[str, str]) -> list[subprocess.CompletedProcess]:
    """Several independent commands at once (each pays its own start-up)."""
    procs = [_start(args, env) for args in commands]
    outputs = [p.communicate(timeout=600) for p in procs]
    return [subprocess.CompletedProcess(p.args, p.returncode, out, err) for p, (out, err) in zip(procs, outputs)]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cli")


@pytest.fixture(scope="module")
def trained(tiny_dataset, workdir) -> Path:
    """`train` once for the module, into the temporary models folder."""
    before = sorted(p.name for p in PROJECT_MODELS.iterdir())
    done = run(["train", str(tiny_dataset), "--split", "stratified", "--valid-fraction", "0.34", "--epochs", "10",
                "--hidden", "32", "--batch-size", "8", "--out", "cli-model", "--jobs", "1"], _env(workdir))
    assert done.returncode == 0, done.stderr[-3000:]
    target = workdir / "models" / "cli-model"
    assert done.stdout.strip().endswith(f"saved {target}")
    assert "clips: 7   accuracy: 1.000" in done.stdout  # the report of the 7 held-out clips
    assert re.search(r"epoch\s+10\s+loss", done.stderr)  # one line per epoch, on stderr
    assert sorted(p.name for p in PROJECT_MODELS.iterdir()) == before  # nothing written into models/
    return target


def test_help_for_every_command(workdir):
    commands = [["--help"], ["extract", "--help"], ["train", "--help"], ["evaluate", "--help"], ["predict", "--help"],
                ["similar", "--help"]]
    for args, done in zip(commands, run_all(commands, _env(workdir))):
        assert done.returncode == 0 and done.stderr == "", (args, done.stderr)
        assert done.stdout.startswith("usage: python -m genre")
        if args == ["--help"]:
            assert all(c in done.stdout for c in ("extract", "train", "evaluate", "predict"))
        else:
            assert f"python -m genre {args[0]}" in done.stdout
    assert "--jobs" in run_all([["extract", "--help"]], _env(workdir))[0].stdout


def test_extract_with_two_jobs_then_from_the_cache(tiny_dataset, tmp_path):
    env = _env(tmp_path)
    first = run(["extract", str(tiny_dataset), "--jobs", "2"], env)
    assert first.returncode == 0, first.stderr[-3000:]
    assert first.stdout.strip() == "18 clips in the feature store (18 computed now, 0 cached), 0 skipped"
    assert len(list((tmp_path / "cache").glob("*/*.npz"))) == 18
    again = run(["extract", str(tiny_dataset), "--jobs", "2"], env)
    assert again.stdout.strip() == "18 clips in the feature store (0 computed now, 18 cached), 0 skipped"
    assert "Traceback" not in first.stderr + again.stderr


def test_train_saves_a_complete_model(trained):
    assert sorted(p.name for p in trained.iterdir()) == ["card.json", "model.keras"]
    card = json.loads((trained / "card.json").read_text())
    assert card["labels"] == LABELS and card["split"]["kind"] == "stratified"
    assert len(card["split"]["train_clip_ids"]) == 11 and len(card["split"]["valid_clip_ids"]) == 7


@pytest.fixture(scope="module")
def after_training(trained, tiny_dataset, workdir) -> dict:
    """Every command that needs the trained model, started at once (they are independent and each
    pays its own interpreter, TensorFlow and librosa start-up): name -> (completed run, files)."""
    files = workdir / "files"
    inbox = files / "inbox"
    clip = write_wav(files / "new tones.wav", synth("tones", seconds=7.0, seed=77))
    folder = [write_wav(inbox / "a.wav", synth("beats", seconds=5.0, seed=50)),
              write_wav(inbox / "b.wav", synth("buzz", seconds=4.0, seed=51)),
              write_wav(inbox / "sub" / "c.wav", synth("tones", seconds=9.0, seed=52))]
    (inbox / "notes.txt").write_text("not audio, not listed")
    text = files / "song.wav"
    text.write_text("Verse 1: la la la\n" * 50)
    corrupt = files / "corrupt-model"
    corrupt.mkdir()
    (corrupt / "card.json").write_text('{"labels": ["a", "b"], "feature_config": ')
    (corrupt / "model.keras").write_bytes(b"not a zip")
    empty = files / "empty"
    empty.mkdir()
    model = ["--model", str(trained)]
    commands = {
        "predict file": ["predict", str(clip), *model],
        "predict folder": ["predict", str(inbox), *model, "--csv", str(files / "out.csv")],
        "evaluate": ["evaluate", str(tiny_dataset), *model, "--json", str(files / "report.json"), "--jobs", "1"],
        "evaluate nothing left": ["evaluate", str(tiny_dataset), *model, "--exclude-valid", "--jobs", "1"],
        # bad input: (command, words of the one error line)
        "missing file": ["predict", str(files / "missing.wav"), *model],
        "text as wav": ["predict", str(text), *model],
        "corrupt model": ["predict", str(clip), "--model", str(corrupt)],
        "not a model": ["predict", str(clip), "--model", str(files)],
        "no audio": ["predict", str(empty), *model],
        "no dataset": ["extract", str(files / "nowhere")],
        "bad name": ["train", str(empty), "--out", "../.."],
    }
    runs = dict(zip(commands, run_all(list(commands.values()), _env(workdir))))
    return {"runs": runs, "clip": clip, "folder": folder, "files": files}


def test_predict_one_file(after_training):
    done = after_training["runs"]["predict file"]
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert len(lines) == 1
    path, genre, prob, *rest = lines[0].split("\t")
    assert path == str(after_training["clip"]) and genre == "tones" and 0.5 < float(prob) <= 1.0
    assert rest == ["not music (sounds like: Sine wave)"]  # a synthetic chord is not music to AudioSet


def test_predict_a_folder_to_csv(after_training):
    done = after_training["runs"]["predict folder"]
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert [line.split("\t")[0] for line in lines] == [str(f) for f in after_training["folder"]]  # one per file
    with open(after_training["files"] / "out.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["path", "genre", "probability", "music", "is_music", "p_beats", "p_buzz", "p_tones"]
    assert len(rows) == 4
    for row, path, expected in zip(rows[1:], after_training["folder"], ["beats", "buzz", "tones"]):
        probs = np.array([float(v) for v in row[5:]])
        assert 0 <= float(row[3]) < 0.25 and row[4] == "false"  # synthetic sounds: not music
        assert row[0] == str(path)
        assert row[1] == expected == LABELS[int(np.argmax(probs))]
        assert float(row[2]) == pytest.approx(probs.max(), abs=1e-4)
        assert probs.sum() == pytest.approx(1.0, abs=2e-4)  # 4-decimal rounding


def test_evaluate_held_out_clips(after_training):
    done = after_training["runs"]["evaluate"]
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((after_training["files"] / "report.json").read_text())
    assert report["n"] == 7 and report["excluded_training_clips"] == 11  # never scored on its training clips
    assert report["accuracy"] == 1.0 and report["labels"] == LABELS
    assert done.stdout.startswith("clips: 7   accuracy: 1.000")
    excluded = after_training["runs"]["evaluate nothing left"]
    assert excluded.returncode == 2
    assert excluded.stderr.splitlines() == ["error: no clip of this dataset is held out from the model's training data"]


@pytest.mark.parametrize("case, words", [
    ("missing file", "does not exist"),
    ("text as wav", "song.wav is not audio"),
    ("corrupt model", "card.json is not valid JSON"),
    ("not a model", "no card.json"),
    ("no audio", "no audio files"),
    ("no dataset", "does not exist"),
    ("bad name", "at least one letter or digit"),
])
def test_bad_input_ends_in_one_line_on_stderr(after_training, case, words):
    done = after_training["runs"][case]
    assert done.returncode != 0
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ") and words in lines[0], lines[0]
    assert "Traceback" not in done.stderr and done.stdout == ""
