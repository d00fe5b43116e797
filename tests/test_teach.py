"""Teaching the model: training on several folders (a dataset plus a person's examples, with a
genre the dataset does not have), and the loop on the dashboard: correct an answer on Predict,
retrain with the examples, save, use, and the corrected clip is answered as the person said."""
from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from conftest import ROOT, SR, write_wav
from genre import runs
from genre.dataset import discover_all, few_clip_labels, make_split, split_by_artist, training_data_info
from genre.examples import add_example, list_examples
from genre.models import DEFAULT_MODEL_DIR
from genre.ui import state, teach


def chirp(seconds: float = 4.0, *, seed: int = 0) -> np.ndarray:
    """A sound none of the tiny dataset's genres has: rising sweeps over noise bursts."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    sweep = np.sin(2 * np.pi * (300 + 900 * (t % 1.0)) * (t % 1.0))
    return (0.3 * sweep + 0.05 * rng.standard_normal(len(t)) * (np.sin(2 * np.pi * 3 * t) > 0)).astype(np.float32)


@pytest.fixture
def examples_dir(tmp_path, monkeypatch):
    folder = tmp_path / "examples"
    monkeypatch.setenv("GENRE_EXAMPLES_DIR", str(folder))
    return folder


def keep_chirps(folder, n: int, *, label: str = "chirp") -> list:
    return [add_example(write_wav(folder.parent / "src" / f"c{i}.wav", chirp(seed=i)).read_bytes(), label=label,
                        name=f"c{i}.wav", examples_dir=folder)[0] for i in range(n)]


def test_several_folders_are_one_dataset_with_the_union_of_labels(tiny_dataset, examples_dir):
    keep_chirps(examples_dir, 3)
    df = discover_all([tiny_dataset, examples_dir])
    assert sorted(df["label"].unique()) == ["beats", "buzz", "chirp", "tones"]
    assert df.attrs["roots"] == [str(tiny_dataset), str(examples_dir)]
    assert set(df.loc[df["label"] == "chirp", "root"]) == {str(examples_dir)}
    assert df["clip_id"].is_unique and few_clip_labels(df) == {"chirp": 3}
    split = make_split(df, "artist", valid_fraction=0.25, seed=0)
    split.check_disjoint(df)  # no clip on both sides
    train_labels = set(df.iloc[split.train]["label"])
    assert train_labels == {"beats", "buzz", "chirp", "tones"}
    info = training_data_info(df, split)
    assert info["roots"] == [str(tiny_dataset.resolve()), str(examples_dir.resolve())]
    assert info["n_train"] + info["n_valid"] == info["n_clips"] == 21
    assert sum(info["train_clips"][str(examples_dir.resolve())].values()) == (df.iloc[split.train]["label"] == "chirp").sum()
    with pytest.raises(ValueError, match="split lists belong to one dataset folder"):
        make_split(df, "lists")


def test_a_genre_of_one_example_is_always_learned(tiny_dataset, examples_dir):
    keep_chirps(examples_dir, 1)
    df = discover_all([tiny_dataset, examples_dir])
    for seed in range(8):  # whichever side the fold put it on, it ends up in training
        split = split_by_artist(df, valid_fraction=0.5, seed=seed)
        assert "chirp" in set(df.iloc[split.train]["label"]) and "chirp" not in set(df.iloc[split.valid]["label"])
        artists = df["artist"].fillna("")
        both = (set(artists.iloc[split.train]) & set(artists.iloc[split.valid])) - {""}
        assert not both, both


def test_genre_train_learns_a_new_genre_from_a_second_folder(tiny_dataset, examples_dir, tmp_path):
    keep_chirps(examples_dir, 4)
    env = {**__import__("os").environ, "PYTHONPATH": str(ROOT), "GENRE_MODELS_DIR": str(tmp_path / "models"),
           "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run([sys.executable, "-m", "genre", "train", str(tiny_dataset), str(examples_dir), "--epochs", "30",
                           "--out", "with-chirps", "--jobs", "1"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    assert "note: few clips of chirp (4)" in done.stderr
    card = json.loads((tmp_path / "models" / "with-chirps" / "card.json").read_text())
    assert card["labels"] == ["beats", "buzz", "chirp", "tones"]
    assert card["data"]["roots"] == [str(tiny_dataset.resolve()), str(examples_dir.resolve())]
    learned = card["data"]["train_clips"]
    assert learned[str(examples_dir.resolve())]["chirp"] >= 3 and "chirp" not in learned[str(tiny_dataset.resolve())]
    write_wav(tmp_path / "new-chirp.wav", chirp(seed=11))  # a chirp it never heard
    said = subprocess.run([sys.executable, "-m", "genre", "predict", str(tmp_path / "new-chirp.wav"), "--model",
                           str(tmp_path / "models" / "with-chirps")], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert said.returncode == 0 and "chirp" in said.stdout.split("\t")[1], said.stdout


def test_correct_retrain_save_use_and_the_clip_is_answered_as_taught(tiny_dataset, examples_dir, models_dir,
                                                                     monkeypatch, tmp_path):
    """The whole loop on the dashboard, with the shipped model's recipe (its features and a
    logistic regression) trained for real in a worker process."""
    monkeypatch.setenv("GENRE_DATA_DIR", str(tiny_dataset))
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=180).run()
    at.switch_page("pages/predict.py").run()
    clip = write_wav(tmp_path / "mine.wav", chirp(seed=3)).read_bytes()
    at = at.file_uploader[0].set_value(("mine.wav", clip, "audio/wav")).run()
    assert not at.exception
    assert not [b for b in at.button if b.key == "predict_retrain"]  # nothing to retrain with yet
    box = at.selectbox(key="predict_teach_label")
    assert teach.NEW_LABEL in box.options and "tones" in box.options
    at = box.select(teach.NEW_LABEL).run()
    at = at.text_input(key="predict_teach_new").input("Chirp").run()
    at = at.button(key="predict_teach_keep").click().run()
    assert not at.exception and any("Kept as an example of **chirp**" in s.value for s in at.success)
    kept = list_examples(examples_dir)
    assert [(e.label, e.original_name) for e in kept] == [("chirp", "mine.wav")]
    assert kept[0].predicted["model"] == "default" and kept[0].predicted["genre"] in json.loads(
        (DEFAULT_MODEL_DIR / "card.json").read_text())["labels"]
    keep_chirps(examples_dir, 2)  # two more chirps, kept from the command line
    at = at.run()
    at = at.button(key="predict_retrain").click().run()
    assert not at.exception
    registry = runs.shared_registry(models_dir)
    run, = registry.list()
    assert run.request.extra_roots == (str(examples_dir.resolve()),) and run.request.root == str(tiny_dataset.resolve())
    assert run.request.spec.family == "logreg" and run.request.config.kind == "MSD_musicnn+mn04"
    assert registry.wait(run.id, 600), "the run did not finish"
    done = registry.get(run.id)
    assert done.state == runs.DONE, done.error
    assert "chirp" in done.card.labels
    end = time.monotonic() + 300
    while registry.get(run.id).comparisons[0].get("state") == "pending":
        assert time.monotonic() < end, "the comparison with the active model did not finish"
        time.sleep(0.2)
    compared = registry.get(run.id).comparisons[0]
    assert compared["state"] == "done", compared
    taught = compared["examples"]  # the person's three chirps: the run knows them, the default model cannot
    assert taught["n"] == 3 and taught["other"] == 0 and taught["this_run"] >= 1
    assert taught["n_unseen"] == 3 - taught["trained_on"] and taught["trained_on"] >= 2
    assert at.query_params["run"] == [run.id] or at.query_params["run"] == run.id  # the button opened the run
    at = at.switch_page("pages/train.py").run()  # the Train page of that run, now with its results
    assert not at.exception
    assert any(m.value.startswith(f"**Your examples:** this run answers **{taught['this_run']} of 3**")
               for m in at.markdown), [m.value for m in at.markdown]
    registry.save(run.id, "taught")
    state_at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=180)
    state_at.session_state[state.MODEL_KEY] = "taught"
    state_at.run().switch_page("pages/predict.py").run()
    state_at = state_at.file_uploader[0].set_value(("mine.wav", clip, "audio/wav")).run()
    assert not state_at.exception
    headings = [m.value for m in state_at.markdown if m.value.startswith("#### ")]
    assert headings and headings[0].startswith("#### chirp"), headings
    assert "Kept as an example of **chirp**" in [e.label for e in state_at.expander]


def test_the_dataset_page_opens_my_examples(tiny_dataset, examples_dir, monkeypatch):
    keep_chirps(examples_dir, 2)
    keep_chirps(examples_dir, 1, label="sweep")  # relabels c0: the same audio is one example
    monkeypatch.setenv("GENRE_DATA_DIR", str(tiny_dataset))
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=120).run()
    at.switch_page("pages/dataset.py").run()
    at = at.button(key="dataset_my_examples").click().run()
    assert not at.exception
    assert at.session_state[state.DATASET_KEY] == str(examples_dir.resolve())
    assert any(str(examples_dir.resolve()) in c.value for c in at.caption)
    assert {m.label: m.value for m in at.metric}["Genres"] == "2"
    assert not [b for b in at.button if b.key == "dataset_my_examples"]  # they are open now
