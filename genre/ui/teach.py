"""'Not right? Teach it': wherever the dashboard shows a genre for a clip, the person can say
what it is, and the clip is kept as an example (:mod:`genre.examples`) for the next training."""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from genre import examples
from genre.access import AccessError, check_dataset_folder
from genre.audio import AudioError
from genre.predict import Prediction
from genre.ui import cache

NEW_LABEL = "➕ A new genre…"


def examples_folder(*, say_why: bool = True) -> Path | None:
    """The examples folder if this server may use it (it must lie under the allowed dataset
    roots, like every folder the dashboard reads); None otherwise, after saying why if
    ``say_why`` (once per page is enough)."""
    try:
        return check_dataset_folder(examples.default_examples_dir())
    except AccessError as err:
        if say_why:
            st.caption(f"Teaching is off on this server: {err}")
        return None


def _said(prediction: Prediction | None, model: str) -> dict | None:
    if prediction is None:
        return None
    return {"genre": prediction.genre, "probability": round(float(prediction.confidence), 4), "model": model}


def teach(data: bytes, name: str, *, labels: list[str], prediction: Prediction | None = None, model: str = "",
          key: str) -> None:
    """A folded 'Not right? Teach it' box for the clip ``data`` (file bytes; ``name`` for display
    and its file type only): pick one of ``labels`` (the model's, the dataset's) or of the examples' genres, or
    type a new one, and keep the clip as an example of it; an example already kept can be
    relabelled or removed."""
    folder = examples_folder()
    if folder is None:
        return
    digest = cache.digest(data)
    everything = examples.list_examples(folder)
    kept = next((e for e in everything if e.digest == digest), None)
    known = sorted(set(labels) | {e.label for e in everything})
    title = f"Kept as an example of **{kept.label}**" if kept else "Not right? Teach it"
    with st.expander(title, icon=":material/school:"):
        st.caption("Say what this clip is: it is kept in your examples folder and learned from when you retrain "
                   "with your examples (Predict offers it below; Train: *Also learn from my examples*). "
                   "A genre the model does not have yet can be added from a few clips.")
        choice = st.selectbox("This is", [NEW_LABEL, *known], index=known.index(kept.label) + 1 if kept else None,
                              placeholder="Pick the right genre", key=f"{key}_teach_label")
        typed = st.text_input("New genre", key=f"{key}_teach_new", max_chars=examples.MAX_LABEL_CHARS,
                              placeholder="e.g. phonk, k-pop, ambient") if choice == NEW_LABEL else None
        left, right = st.columns([1, 1])
        label = typed if choice == NEW_LABEL else choice
        if left.button("Keep as an example" if kept is None else "Change its genre", type="primary",
                       key=f"{key}_teach_keep", disabled=not label or (kept is not None and label == kept.label)):
            try:
                example, what = examples.add_example(data, label=label, name=name, examples_dir=folder,
                                                     predicted=_said(prediction, model))
            except (examples.ExampleError, AudioError) as err:
                st.error(str(err))
            else:
                verb = {"added": "Kept", "relabelled": "Moved", "unchanged": "Already kept"}[what]
                count = len(examples.list_examples(folder))
                st.success(f"{verb} as an example of **{example.label}** ({count} example{'s' * (count != 1)} "
                           "in all).")
        if kept is not None and right.button("Remove this example", key=f"{key}_teach_remove"):
            examples.remove_example(digest, examples_dir=folder)
            st.success(f"Removed from your examples of {kept.label}.")
