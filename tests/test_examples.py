"""genre.examples and ``genre label``: the clips a person teaches, kept as a folder-per-label
dataset (content-hash names, a sidecar, one example per audio, checked labels)."""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import pytest

from conftest import ROOT, synth, write_wav
from genre.audio import AudioError
from genre.dataset import discover
from genre.examples import (ExampleError, add_example, check_label, default_examples_dir, find_example, list_examples,
                            relabel, remove_example)


@pytest.fixture
def clips(tmp_path):
    """Three different short wav files, by name: their bytes."""
    return {f"{kind}.wav": write_wav(tmp_path / "src" / f"{kind}.wav", synth(kind, seconds=3.0)).read_bytes()
            for kind in ("tones", "beats", "buzz")}


@pytest.mark.parametrize("text, label", [("Phonk", "phonk"), ("  Drum   &  Bass ", "drum & bass"), ("k-pop", "k-pop"),
                                         ("lo-fi hip hop", "lo-fi hip hop"), ("Música Popular", "música popular"),
                                         ("rock'n'roll", "rock'n'roll"), ("2-step", "2-step")])
def test_labels_are_one_tidy_folder_name(text, label):
    assert check_label(text) == label


@pytest.mark.parametrize("text, why", [("", "Give the genre a name"), ("   ", "Give the genre a name"),
                                       ("../etc", "no slashes"), ("rock/pop", "no slashes"), ("a\\b", "no slashes"),
                                       (".hidden", "no leading dot"), ("..", "no leading dot"),
                                       ("bell\x07", "cannot be a genre name"), ("nul\0", "cannot be a genre name"),
                                       ("x" * 41, "too long"), ("jazz: smooth", "cannot be a genre name")])
def test_bad_labels_are_refused_with_the_reason(text, why):
    with pytest.raises(ExampleError, match=why):
        check_label(text)


def test_an_example_is_kept_under_its_label_by_content_hash(clips, tmp_path):
    folder = tmp_path / "examples"
    data = clips["tones.wav"]
    said = {"genre": "classical", "probability": 0.61, "model": "default"}
    example, what = add_example(data, label="Ambient", name="My Song (live).wav", examples_dir=folder, predicted=said)
    digest = hashlib.sha256(data).hexdigest()
    assert what == "added" and example.path == folder / "ambient" / f"{digest}.wav"
    assert example.path.read_bytes() == data
    sidecar = json.loads((folder / "ambient" / f"{digest}.json").read_text())
    assert sidecar["original_name"] == "My Song (live).wav" and sidecar["predicted"] == said
    assert sidecar["label"] == "ambient" and sidecar["added"].startswith("20")
    assert not [p for p in folder.rglob(".tmp-*")]
    assert find_example(digest, folder) == example


def test_the_same_audio_twice_is_one_example_and_a_new_label_moves_it(clips, tmp_path):
    folder = tmp_path / "examples"
    first, _ = add_example(clips["beats.wav"], label="phonk", name="a.wav", examples_dir=folder)
    again, what = add_example(clips["beats.wav"], label="Phonk", name="copy of a.wav", examples_dir=folder)
    assert what == "unchanged" and again == first and len(list_examples(folder)) == 1
    moved, what = add_example(clips["beats.wav"], label="techno", name="a.wav", examples_dir=folder)
    assert what == "relabelled" and moved.path.parent.name == "techno" and moved.original_name == "a.wav"
    assert not (folder / "phonk").exists()  # the emptied label folder goes with it
    assert [(e.label, e.digest) for e in list_examples(folder)] == [("techno", first.digest)]


def test_relabel_and_remove(clips, tmp_path):
    folder = tmp_path / "examples"
    a, _ = add_example(clips["tones.wav"], label="ambient", name="a.wav", examples_dir=folder)
    b, _ = add_example(clips["buzz.wav"], label="ambient", name="b.wav", examples_dir=folder)
    moved = relabel(a.digest, "drone", examples_dir=folder)
    assert moved.path.is_file() and not a.path.exists() and moved.added == a.added
    assert json.loads(moved.path.with_suffix(".json").read_text())["label"] == "drone"
    assert (folder / "ambient").is_dir()  # b is still there
    assert remove_example(b.digest, examples_dir=folder) and not b.path.exists()
    assert not b.path.with_suffix(".json").exists() and not (folder / "ambient").exists()
    assert not remove_example(b.digest, examples_dir=folder)
    with pytest.raises(ExampleError, match="no longer in the examples folder"):
        relabel(b.digest, "drone", examples_dir=folder)
    with pytest.raises(ExampleError, match="no slashes"):
        relabel(moved.digest, "../../x", examples_dir=folder)


def test_what_is_not_usable_audio_is_refused(tmp_path):
    folder = tmp_path / "examples"
    with pytest.raises(AudioError, match="notes.wav is not audio"):
        add_example(b"these are not samples " * 100, label="jazz", name="notes.wav", examples_dir=folder)
    with pytest.raises(AudioError, match="not a supported audio file type"):
        add_example(b"%PDF-1.4", label="jazz", name="score.pdf", examples_dir=folder)
    with pytest.raises(AudioError, match="too short|shorter"):
        add_example(write_wav(tmp_path / "blip.wav", synth("tones", seconds=0.3)).read_bytes(), label="jazz",
                    name="blip.wav", examples_dir=folder)
    assert list_examples(folder) == [] and not folder.exists()


def test_the_examples_folder_is_a_dataset(clips, tmp_path):
    folder = tmp_path / "examples"
    for name, label in (("tones.wav", "ambient"), ("beats.wav", "phonk"), ("buzz.wav", "phonk")):
        add_example(clips[name], label=label, name=name, examples_dir=folder)
    df = discover(folder)
    assert sorted(df["label"]) == ["ambient", "phonk", "phonk"]
    assert df.attrs["ignored"] == []  # the sidecars are not reported as stray files
    assert set(df["clip_id"]) == {e.digest for e in list_examples(folder)}


def test_the_default_folder_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("GENRE_EXAMPLES_DIR", str(tmp_path / "mine"))
    assert default_examples_dir() == tmp_path / "mine"
    monkeypatch.delenv("GENRE_EXAMPLES_DIR")
    assert default_examples_dir().parts[-2:] == ("data", "examples")


def test_genre_label_prints_where_each_file_went(clips, tmp_path):
    folder = tmp_path / "examples"
    files = [tmp_path / "src" / name for name in ("tones.wav", "beats.wav")]
    (tmp_path / "notes.wav").write_bytes(b"not audio " * 100)
    cmd = [sys.executable, "-m", "genre", "label"]
    done = subprocess.run([*cmd, *map(str, files), "--as", "Lo-Fi", "--examples", str(folder)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 2 and all(" -> " in line and line.endswith("(added)") for line in lines)
    assert {e.path for e in list_examples(folder)} == {folder / "lo-fi" / f"{hashlib.sha256(f.read_bytes()).hexdigest()}.wav"
                                                       for f in files}

    mixed = subprocess.run([*cmd, str(files[0]), str(tmp_path / "notes.wav"), str(tmp_path / "gone.wav"), "--as",
                            "lo-fi", "--examples", str(folder)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert mixed.returncode == 2 and mixed.stdout.strip().endswith("(unchanged)")
    errors = mixed.stderr.splitlines()
    assert len(errors) == 2 and "notes.wav is not audio" in errors[0] and "gone.wav: No such file" in errors[1]

    bad = subprocess.run([*cmd, str(files[0]), "--as", "rock/pop", "--examples", str(folder)], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stdout == "" and "cannot be a genre name" in bad.stderr
    assert len(bad.stderr.splitlines()) == 1 and len(list_examples(folder)) == 2
