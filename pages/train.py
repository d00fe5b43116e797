"""Train: pick features, a model and a split, watch the run live, then judge and save it.

Runs belong to the server (:mod:`genre.runs`), not to a browser session: each trains in its own
lower-priority worker process, at most ``$GENRE_MAX_TRAININGS`` at once (the rest queue), and any
tab can reopen one from the list of recent runs or by its link (``?run=<id>``), stop it, save or
discard it. This session remembers the run it has open; the URL carries it across reloads.
"""
from __future__ import annotations

from dataclasses import replace
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from genre import backbones, eta, models, plots, runs
from genre.access import AccessError, check_dataset_folder
from genre.dataset import few_clip_labels, find_split_lists
from genre.examples import default_examples_dir
from genre.models import ModelCard, ModelError, ModelSpec, read_card
from genre.train_defaults import FAMILY_TITLES, families, recommended
from genre.ui import cache, jobs, navigation, state

FEATURES = {jobs.HANDCRAFTED: "Hand-crafted (MFCC, chroma, tempo…)",
            **{kind: backbones.title(kind) for kind in jobs.feature_kinds()[1:]}}
SPLITS = jobs.SPLITS
LEARNING_RATES = [1e-4, 3e-4, 1e-3, 3e-3, 1e-2]
L2_PENALTIES = [0.0, 1e-5, 1e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1]
SEGMENT_SECONDS = jobs.RECOMMENDED_SEGMENT_SECONDS


def model_settings(kind: str, family: str) -> dict:
    """Widget values (session-state keys) of the recommended settings of ``family`` on ``kind``."""
    spec = recommended(kind, family).spec
    values = {"train_family": family, "train_dropout": spec.dropout, "train_lr": spec.learning_rate,
              "train_l2": spec.l2, "train_batch": spec.batch_size}
    if family == "logreg":
        values["train_iterations"] = spec.epochs
    else:
        values.update({f"train_hidden_{family}": ",".join(map(str, spec.hidden)), "train_epochs": spec.epochs})
    return values


DEFAULTS = {"train_features": jobs.HANDCRAFTED, "train_segment": SEGMENT_SECONDS,
            **model_settings(jobs.HANDCRAFTED, "cnn"), **model_settings(jobs.HANDCRAFTED, "logreg"),
            **model_settings(jobs.HANDCRAFTED, "mlp"),  # last: its values of the shared widgets
            "train_split": "artist", "train_valid": 0.2, "train_seed": 0}
KEPT = "train_settings"
RUN_KEY, RUN_PARAM = "train_run", "run"  # the run this session has open; the URL query parameter carrying it


def restore_settings(options: dict[str, list]) -> None:
    """Give every setting widget its last value (Streamlit forgets widget values on other
    pages), falling back to the default when that value is no longer an option."""
    kept = st.session_state.setdefault(KEPT, {})
    for key, default in DEFAULTS.items():
        if key not in st.session_state:
            st.session_state[key] = kept.get(key, default)
        if key in options and st.session_state[key] not in options[key]:
            st.session_state[key] = options[key][0]


def run_settings(request: runs.TrainRequest) -> dict:
    """The widget values (session-state keys) that ask for ``request``: the form of a run opened
    by a reload or a link shows the settings that run was started with."""
    spec, config = request.spec, request.config
    values = {"train_features": config.kind, "train_family": spec.family, "train_l2": spec.l2,
              "train_split": request.split, "train_valid": request.valid_fraction, "train_seed": request.seed}
    if config.kind == jobs.HANDCRAFTED:
        values["train_segment"] = config.segment_seconds
    if spec.family == "logreg":
        values["train_iterations"] = spec.epochs
    else:
        values.update({f"train_hidden_{spec.family}": ",".join(map(str, spec.hidden)), "train_epochs": spec.epochs,
                       "train_dropout": spec.dropout, "train_lr": spec.learning_rate, "train_batch": spec.batch_size})
    return values


def keep_settings() -> None:
    st.session_state[KEPT] = {key: st.session_state[key] for key in DEFAULTS if key in st.session_state}


def use_recommended(*, kind: str | None = None, family: str | None = None) -> None:
    """Put the recommended settings of a feature set and family into the widgets (the feature
    set's default family unless given)."""
    kind = kind or st.session_state["train_features"]
    family = family or families(kind)[0]
    st.session_state.update(model_settings(kind, family))
    st.session_state["train_segment"] = SEGMENT_SECONDS


def on_features() -> None:
    use_recommended(kind=st.session_state["train_features"])


def on_family() -> None:
    use_recommended(family=st.session_state["train_family"])


def chosen_spec(family: str, hidden: str) -> ModelSpec:
    """The ModelSpec of the widgets' values; ValueError for unusable layer sizes."""
    kind = st.session_state["train_features"]
    base = recommended(kind, family).spec
    if family == "logreg":
        return replace(base, l2=st.session_state["train_l2"], epochs=int(st.session_state["train_iterations"]))
    return replace(base, hidden=jobs.parse_units(hidden), dropout=st.session_state["train_dropout"],
                   learning_rate=st.session_state["train_lr"], l2=st.session_state["train_l2"],
                   epochs=int(st.session_state["train_epochs"]), batch_size=int(st.session_state["train_batch"]))


def expectation(kind: str, family: str, spec: ModelSpec | None, segment: float) -> None:
    """What the recommended settings reach on unseen artists (cross-validated), beside the settings."""
    rec = recommended(kind, family)
    same = jobs.is_recommended(kind, spec, segment, rec)
    with st.container(border=True):
        if rec.cv is None:
            st.markdown("**What to expect**")
            st.caption("No cross-validated figure for this model on these features yet: the run's own "
                       "validation score is the estimate.")
        else:
            cv = rec.cv
            st.markdown(f"**{'Expected' if same else 'With the recommended settings, expected'}: {cv.expected()}**")
            epochs = (f" Early stopping kept epoch {cv.median_best_epoch} (median over the folds)."
                      if cv.median_best_epoch else "")
            st.caption(f"The mean over {cv.folds} cross-validation folds ({cv.source}); one validation split "
                       f"of a few artists varies by about ± {100 * cv.accuracy_sd:.0f} points, so a single run can "
                       f"land that far from it.{epochs}")
        if not same:
            st.caption("Your settings differ from the recommended ones.")
            st.button("Use the recommended settings", key="train_recommended", on_click=use_recommended,
                      kwargs={"family": family})


def examples_choice(root: Path) -> tuple[Path, pd.DataFrame] | None:
    """'Also learn from my examples': the examples folder and its clips if the person ticks it
    (offered when the folder holds examples, is not the dataset itself and may be read here)."""
    folder = default_examples_dir()
    try:
        folder = check_dataset_folder(folder)
    except AccessError:
        return None
    clips = cache.discover(folder) if folder != Path(root).resolve() else None
    if clips is None:
        return None
    counts = ", ".join(f"{label} {n}" for label, n in clips["label"].value_counts().sort_index().items())
    if not st.checkbox(f"Also learn from my examples ({len(clips)} clips: {counts})", key="train_examples",
                       help=f"The clips you kept as examples on the Predict page (`{folder}`). Their genres join the "
                            "dataset's; each clip is a group of its own in the artist split."):
        return None
    return folder, clips


def few_clips_note(clips: pd.DataFrame) -> None:
    """Say which genres have few clips, and what that means for the run."""
    few = few_clip_labels(clips)
    if few:
        st.info("Few clips of " + ", ".join(f"**{label}** ({n})" for label, n in few.items()) + ". A model on the "
                "pretrained features can still learn a genre from a handful of clips, but the validation side "
                "holds one or two of them at most (often none), so the score says little about them: try the "
                "model on other clips of those genres. Below 3 clips, expect it to be missed often.")


def settings(root, *, several_folders: bool = False) -> runs.TrainRequest | None:
    """The setting widgets; returns the request to train, or None if a setting is invalid.
    They stay editable during a run (it keeps the settings it started with). With
    ``several_folders`` the split lists (which belong to one folder) are not offered."""
    kinds = jobs.feature_kinds()
    splits = ["artist", "stratified"] + (["lists"] if find_split_lists(root) and not several_folders else [])
    restore_settings({"train_features": kinds, "train_split": splits, "train_lr": LEARNING_RATES,
                      "train_l2": L2_PENALTIES})
    offered = families(st.session_state["train_features"])
    restore_settings({"train_family": offered})

    st.subheader("1 · Features and model")
    a, b, c = st.columns([3, 3, 2])
    kind = a.selectbox("Feature set", kinds, format_func=FEATURES.get, key="train_features", on_change=on_features,
                       help="What the model hears. Hand-crafted: MFCC, chroma, spectral shape, contrast, tempo… "
                            "MusiCNN: embeddings of a network pretrained on the Million Song Dataset; EfficientAT "
                            "mn04: one pretrained on AudioSet's 527 sound classes; both: the two side by side (the "
                            "shipped model's features). Features are extracted once per setting and cached on disk. "
                            "Choosing a feature set loads its recommended model settings.")
    family = b.radio("Model", offered, format_func=FAMILY_TITLES.get, key="train_family", on_change=on_family,
                     help="MLP: dense layers on the feature rows of each segment, trained epoch by epoch. Logistic "
                          "regression: one linear layer fitted exactly by scikit-learn in seconds (the shipped "
                          "model's kind). CNN: convolutions on the log-mel spectrogram of each segment "
                          "(hand-crafted set only; slower).")
    segment = c.number_input("Segment length (s)", min_value=1.0, max_value=15.0, step=0.5, key="train_segment",
                             disabled=kind != jobs.HANDCRAFTED,
                             help="Clips are cut into segments of this length; each is one training example and "
                                  "a clip's prediction averages its segments. The pretrained networks use their "
                                  "own ~3 s windows.")

    st.subheader("2 · Hyper-parameters")
    left, right = st.columns([3, 2], gap="medium")
    hidden = ""
    with left:
        if family == "logreg":
            cols = st.columns(2)
            cols[0].select_slider("L2 penalty", L2_PENALTIES, key="train_l2", format_func=lambda v: f"{v:g}",
                                  help="Weight penalty per example (C = 1 / (2 · L2 · segments)); larger is "
                                       "smoother and less over-fitted.")
            cols[1].number_input("Solver iterations (at most)", min_value=10, max_value=10_000, step=100,
                                 key="train_iterations", help="The exact solver stops earlier once it has converged.")
        else:
            row = st.columns(3)
            hidden = row[0].text_input("Hidden layers" if family == "mlp" else "Filters per block",
                                       key=f"train_hidden_{family}",
                                       help="Comma-separated: units per dense layer (MLP) or filters per "
                                            "convolution block (CNN), e.g. 256,128.")
            row[1].slider("Dropout", 0.0, 0.8, step=0.05, key="train_dropout",
                          help="Share of units switched off at random while training; fights over-fitting.")
            row[2].select_slider("Learning rate", LEARNING_RATES, key="train_lr", format_func=lambda v: f"{v:g}",
                                 help="Step size of the Adam optimiser; smaller learns more slowly and steadily.")
            row = st.columns(3)
            row[0].select_slider("L2 penalty", L2_PENALTIES, key="train_l2", format_func=lambda v: f"{v:g}",
                                 help="Weight penalty (loss + L2 · sum of squared weights); fights over-fitting.")
            row[1].number_input("Epochs (at most)", min_value=1, max_value=1000, step=5, key="train_epochs",
                                help="Passes over the training data at most; training stops earlier when the "
                                     "validation loss has not improved for "
                                     f"{recommended(kind, family).spec.patience} epochs (best weights are kept).")
            row[2].select_slider("Batch size", [16, 32, 64, 128, 256], key="train_batch",
                                 help="Segments per gradient step.")
    try:
        spec = chosen_spec(family, hidden)
        config = jobs.feature_config(kind, segment_seconds=segment)
        problem = None
    except (ValueError, ImportError) as err:
        spec, config, problem = None, None, str(err)
    with right:
        expectation(kind, family, spec, segment)

    st.subheader("3 · Validation split")
    a, b, c = st.columns([2, 1, 1])
    split = a.radio("Split", splits, format_func=SPLITS.get, horizontal=True, key="train_split",
                    help="By artist: no artist on both sides, the honest estimate for GTZAN (it repeats artists). "
                         "Stratified: random clips, same genre mix on both sides. List files: the "
                         "splits/*_filtered.txt lists shipped beside the dataset.")
    valid = b.slider("Validation share", 0.1, 0.5, step=0.05, key="train_valid", disabled=split == "lists",
                     help="Share of clips held out to measure the model.")
    seed = c.number_input("Seed", min_value=0, max_value=10_000, key="train_seed",
                          help="Same seed, same split and initial weights.")
    keep_settings()
    if problem:
        st.error(problem)
        return None
    return runs.TrainRequest(root=str(Path(root).resolve()), config=config, spec=spec, split=split,
                             valid_fraction=valid, seed=int(seed), compare_with=str(state.active_model_dir()))


def open_run(run_id: str | None) -> None:
    """Show ``run_id`` in this session (None: no run) and put it in the URL; other query
    parameters (dataset, model) stay as they are."""
    if run_id:
        st.session_state[RUN_KEY] = run_id
        if st.query_params.get(RUN_PARAM) != run_id:
            st.query_params[RUN_PARAM] = run_id
    else:
        st.session_state.pop(RUN_KEY, None)
        if RUN_PARAM in st.query_params:
            del st.query_params[RUN_PARAM]


def opened_run(registry: runs.RunRegistry) -> runs.RunSnapshot | None:
    """The run this session shows: the URL's ``?run=`` (a reload, a new tab, a shared link) or
    the one it opened last; a run that is gone is explained, never silently replaced."""
    wanted = st.query_params.get(RUN_PARAM)
    if wanted and wanted != st.session_state.get(RUN_KEY):
        if not runs.RUN_ID.fullmatch(wanted):
            st.warning("The link's run id is not valid (it is 10 hexadecimal digits); no run is open.")
            open_run(None)
        elif registry.get(wanted) is None:
            why = registry.gone(wanted)
            st.warning(f"Run `{wanted}` was {why}." if why else
                       f"There is no run `{wanted}` on this server (it may have been restarted without it).")
            open_run(None)
        else:
            st.session_state[RUN_KEY] = wanted
            if KEPT not in st.session_state:  # a reload or a link: the form shows that run's settings
                st.session_state[KEPT] = {**DEFAULTS, **run_settings(registry.get(wanted).request)}
    run_id = st.session_state.get(RUN_KEY)
    snap = registry.get(run_id) if run_id else None
    if run_id and snap is None:
        st.info(f"Run `{run_id}` was {registry.gone(run_id) or 'removed'}.")
    open_run(snap.id if snap else None)
    return snap


def start(registry: runs.RunRegistry, request: runs.TrainRequest) -> None:
    same = next((s for s in registry.list() if s.active and s.request == request), None)
    if same is not None:
        st.session_state["train_note"] = f"The same training is already {same.state} as run `{same.id}`: opened it."
        open_run(same.id)
        st.rerun()
    try:
        run_id, dropped = registry.submit(request)
    except runs.RunError as err:
        st.warning(f"{err}.")
        return
    if dropped:
        st.session_state["train_note"] = "; ".join(f"Run `{i}` was {registry.gone(i)}" for i in dropped) + "."
    open_run(run_id)
    st.rerun()


def logistic_fit_table(history: list[dict]) -> None:
    """The one 'epoch' of a logistic regression as a table (a chart of one point says nothing)."""
    last = history[-1]
    rows = [{"side": side, "loss": last.get(f"{prefix}loss"), "accuracy (segments)": last.get(f"{prefix}accuracy")}
            for side, prefix in (("training", ""), ("validation", "val_")) if f"{prefix}loss" in last]
    st.markdown("**The fit** (one exact solve, no epochs)")
    st.dataframe(pd.DataFrame(rows), hide_index=True, column_config={
        "loss": st.column_config.NumberColumn("loss (cross-entropy)", format="%.3f"),
        "accuracy (segments)": st.column_config.ProgressColumn("accuracy (segments)", format="percent",
                                                               min_value=0.0, max_value=1.0)})


def curves(snap: runs.RunSnapshot) -> None:
    """The live (or final) training curves, or the logistic regression's fit table."""
    history = list(snap.history)
    if not history:
        return
    if snap.request.spec.family == "logreg":
        logistic_fit_table(history)
        return
    best = plots.best_epoch(history)
    last = history[-1]
    if snap.active:
        line = f"After epoch {len(history)}"
        if "val_accuracy" in last:
            line += f": validation accuracy {last['val_accuracy']:.0%} (segments)"
        if best is not None:
            kept = next(h for h in history if h.get("epoch") == best)
            line += (f" · best so far: epoch {best} ({kept.get('val_accuracy', 0):.0%}), the lowest validation loss; "
                     "its weights are the ones kept")
        st.caption(line + ".")
    st.plotly_chart(plots.training_curves(history), key="train_curves")


def live(registry: runs.RunRegistry, run_id: str, was_active: bool) -> None:
    """Queue position, what the run does now and how long it takes, curves and the Stop button;
    reruns the page when the run ends."""
    snap = registry.get(run_id)
    if snap is None:  # discarded from another tab meanwhile
        if was_active:
            st.rerun()
        return
    st.caption(f"Run `{snap.id}` · {jobs.describe(snap.request)}")
    if snap.state == runs.QUEUED:
        st.info(f"**Queued: {jobs.ordinal(snap.queue_position)} in line.** At most {registry.max_active} "
                f"training{'s run' if registry.max_active > 1 else ' runs'} at once, so that predictions stay "
                "fast; this one starts by itself when a slot is free.")
    elif snap.active:
        line, fraction = jobs.phase_text(snap, threads=registry.threads,
                                         typical=registry.typical_seconds(snap.phase))
        if fraction is None:
            st.info(line, icon="⏳")
        else:
            st.progress(min(1.0, fraction), text=line)
    curves(snap)
    if snap.active:
        stopping = snap.state == runs.STOPPING
        st.button("Stopping after this epoch…" if stopping else "Stop", on_click=registry.stop, args=(snap.id,),
                  disabled=stopping, key="train_stop",
                  help="Leaves the queue at once; a running training ends after the current epoch and keeps "
                       "the best weights so far. Works from any tab that has this run open.")
    elif was_active:
        st.rerun()


def points(new: float, old: float) -> str:
    """A difference of two shares as percentage points: '+4.2 points'."""
    return f"{100 * (new - old):+.1f} points"


def comparison_result(entry: dict, card: ModelCard) -> None:
    """The active model and this run scored on the same clips (this run's validation clips)."""
    name = entry.get("model") or Path(entry["path"]).name
    n, n_valid = entry.get("n", 0), entry.get("n_valid", 0)
    if entry.get("state") == "failed":
        st.warning(f"`{name}` could not be evaluated on this run's validation clips: {entry.get('error')}")
        return
    if not n:
        unknown = entry.get("unknown_labels") or []
        st.caption(f"`{name}` knows none of these genres ({', '.join(unknown)}), so it cannot be scored on this "
                   "run's validation clips." if unknown else f"`{name}` could not be scored on any of these clips.")
        taught_examples(entry, name)
        return
    st.markdown(f"**Compared with the active model `{name}` on the same {n} validation clips** (clip level)")
    this_run, other = entry["this_run"], entry["other"]
    left, right = st.columns(2)
    for col, key, label in ((left, "accuracy", "Accuracy"), (right, "balanced_accuracy", "Balanced accuracy")):
        col.metric(f"{label} · this run", f"{this_run[key]:.1%}",
                   delta=f"{points(this_run[key], other[key])} vs {name}",
                   help="Difference in percentage points, on the same clips."
                        + (" Balanced accuracy is the mean recall over genres." if key != "accuracy" else ""))
        col.metric(f"{label} · {name}", f"{other[key]:.1%}")
    trained_on = entry.get("trained_on", 0)
    if trained_on:
        line = (f"⚠️ `{name}` was trained on {trained_on} of these {n} clips, so its score here is inflated: "
                "it has heard them before.")
        unseen = entry.get("unseen")
        if unseen:
            line += (f" On the {unseen['n']} clips it never trained on: this run {unseen['this_run']['accuracy']:.1%}, "
                     f"`{name}` {unseen['other']['accuracy']:.1%} accuracy "
                     f"({points(unseen['this_run']['accuracy'], unseen['other']['accuracy'])}).")
        else:
            line += " None of them is new to it, so this comparison says little about unseen music."
        st.warning(line)
    else:
        st.caption(f"`{name}` never trained on any of these clips: a like-for-like comparison.")
    notes = []
    if entry.get("unknown_labels"):
        notes.append(f"{n_valid - n - entry.get('failed', 0)} clips of genres `{name}` does not know "
                     f"({', '.join(entry['unknown_labels'])}) are left out")
    if entry.get("failed"):
        notes.append(f"{entry['failed']} clips could not be featurised for both models")
    if notes:
        st.caption("; ".join(notes).capitalize() + ".")
    taught_examples(entry, name)


def taught_examples(entry: dict, name: str) -> None:
    """For a run that learned from the person's examples: how each model answers them."""
    taught = entry.get("examples")
    if not taught or not taught.get("n"):
        return
    unseen = (f" On the {taught['n_unseen']} it never trained on: this run {taught['this_run_unseen']}, "
              f"`{name}` {taught['other_unseen']}." if taught.get("n_unseen") else "")
    st.markdown(f"**Your examples:** this run answers **{taught['this_run']} of {taught['n']}** as you taught "
                f"them (it trained on {taught['trained_on']} of them), `{name}` {taught['other']} of "
                f"{taught['n']}.{unseen}")


def request_comparison(registry: runs.RunRegistry, snap: runs.RunSnapshot) -> None:
    """Ask for the active model's evaluation on this run's validation clips unless it is there
    (it runs in a worker process; the page never waits for it)."""
    path = state.active_model_dir()
    try:
        active = read_card(path)
    except ModelError:
        return
    if active.created != snap.card.created and snap.comparison(path, active.created) is None:
        registry.compare(snap.id, path)


def comparison(registry: runs.RunRegistry, run_id: str, was_pending: bool) -> None:
    """Evaluates the active model on this run's validation clips (in a worker process; the page
    does not wait) and shows both models' scores on exactly those clips."""
    snap = registry.get(run_id)
    if snap is None or snap.card is None:
        return
    path = state.active_model_dir()
    try:
        active = read_card(path)
    except ModelError as err:
        st.caption(f"The active model cannot be read, so there is no comparison: {err}")
        return
    if active.created == snap.card.created:
        st.caption(f"The active model `{path.name}` is this run's model: nothing to compare it with.")
        return
    entry = snap.comparison(path, active.created)
    if entry is None or entry.get("state") == "pending":
        done, total = (entry or {}).get("done", 0), (entry or {}).get("total", 0)
        n = len(snap.card.split.get("valid_clip_ids", []))
        st.info(f"Evaluating the active model `{path.name}` on this run's {n} validation clips in the background "
                f"(loading it{f', features {done}/{total}' if total else ''})…", icon="⏳")
        return
    if was_pending:
        st.rerun()  # stop refreshing
    comparison_result(entry, snap.card)


SAVED = "train_saved"  # the last save of this session: run id, the name typed and the name saved under
NAME_RULE = ("model names keep only letters, digits, '-', '_' and '.' (at most 64 characters, no leading dot, "
             "no '..')")


def save_form(registry: runs.RunRegistry, snap: runs.RunSnapshot) -> None:
    """Name, Overwrite and Save, and under them one message: the refusal of the name, what the
    name becomes, or the outcome of the last save (which replaces any earlier message)."""
    st.subheader("Save the model")
    card = snap.card
    kind = card.config.kind.replace("+", "-")  # a name Save takes as it is ('+' is not allowed)
    st.session_state.setdefault("train_save_name", f"{card.spec['family']}-{kind}-{date.today():%Y%m%d}")
    a, b, c = st.columns([3, 1, 1], vertical_alignment="bottom")
    name = a.text_input("Save as", key="train_save_name",
                        help="Letters, digits, '-', '_' and '.'; the model goes to models/<name>. 'default', "
                             "'backbones' and folders that are not models are never replaced. Enter only checks "
                             "the name; the Save button saves.")
    overwrite = b.checkbox("Overwrite", key="train_overwrite", help="Replace a saved model of the same name.")
    last = st.session_state.get(SAVED) or {}
    just_saved = last.get("run") == snap.id and last.get("typed") == name and last.get("saved") in snap.saved_as
    refusal = cleaned = None
    try:
        cleaned = models.sanitize_name(name)
        if not just_saved:
            models.save_target(name, overwrite=overwrite, root=registry.models_dir)
    except ModelError as err:
        refusal = str(err)
    clicked = c.button("Save", type="primary", key="train_save", disabled=refusal is not None or just_saved,
                       help=refusal or ("Saved; change the name to save another copy." if just_saved
                                        else "Copies the trained model to models/<name>."))
    message = st.empty()
    if clicked:
        try:
            target = registry.save(snap.id, name, overwrite=overwrite)
        except (ModelError, runs.RunError) as err:
            message.error(f"Not saved: {err}")
            return
        st.session_state[SAVED] = {"run": snap.id, "typed": name, "saved": target.name}
        st.rerun()
    if just_saved:
        saved = last["saved"]
        renamed = (f" The name you typed, `{name.strip()}`, was changed to **{saved}**: {NAME_RULE}."
                   if saved != name.strip() else "")
        message.success(f"Saved as **{saved}** (models/{saved}).{renamed} Pick it in the sidebar's **Model** list "
                        "to use it on the other pages, or:")
        if st.session_state.get(state.MODEL_KEY) != saved and st.button(f"Use {saved} now", key="train_use_saved"):
            st.session_state[state.MODEL_KEY] = saved
            st.rerun()
    elif refusal:
        message.error(f"Cannot save as **{name.strip() or '…'}**: {refusal}")
    elif cleaned != name.strip():
        message.info(f"Will be saved as **{cleaned}**, not `{name.strip()}`: {NAME_RULE}.")
    elif snap.saved_as:
        message.caption(f"This run is saved as {', '.join(snap.saved_as)}.")


def timings(snap: runs.RunSnapshot) -> str:
    """'features 1 min · TensorFlow 12 s · building 2 s · 34 epochs 40 s': where the run's time went."""
    names = {"features": "features", "loading": "TensorFlow", "building": "building", "fitting": "fit"}
    took = snap.phase_seconds()
    parts = [f"{names[p]} {eta.duration(took[p])}" for p in names if p in took]
    if "training" in took:
        parts.append(f"{len(snap.history)} epochs {eta.duration(took['training'])}")
    return " · ".join(parts)


def results(registry: runs.RunRegistry, snap: runs.RunSnapshot) -> None:
    card = snap.card
    report = card.metrics.get("validation") or {}
    st.subheader("Results")
    if card.spec.get("family") == "logreg":
        how = "logistic regression fitted exactly"
    else:
        epochs = card.metrics.get("epochs_run", len(snap.history))
        why = "stopped by you" if card.metrics.get("stopped_by_user") else (
            "early stopping: validation loss stopped improving" if snap.stopped_early else "all epochs")
        best = card.metrics.get("best_epoch")
        how = (f"{epochs} epochs ({why}) · "
               f"{f'weights of the best epoch ({best}) kept' if best else 'best weights kept'}")
    took = timings(snap)
    st.caption(f"{snap.n_clips} clips · {how} · {report.get('n', 0)} validation clips, {card.split.get('kind')} "
               f"split" + (f" · time: {took}" if took else ""))
    if report:
        left, right = st.columns(2)
        left.metric("Accuracy · this run", f"{report['accuracy']:.1%}", help="Validation clips, clip level.")
        right.metric("Balanced accuracy · this run", f"{report['balanced_accuracy']:.1%}",
                     help="The mean recall over genres, on the validation clips.")
        where = jobs.against_expectation(report, snap.request, recommended(snap.request.config.kind,
                                                                           snap.request.spec.family))
        if where:
            st.caption(where)
        request_comparison(registry, snap)
        snap = registry.get(snap.id) or snap
        pending = any(c.get("state") == "pending" for c in snap.comparisons)
        st.fragment(run_every=1.0 if pending else None)(comparison)(registry, snap.id, pending)
        left, right = st.columns([3, 2], gap="large")
        with left:
            st.markdown("**Confusion matrix** (validation clips)")
            st.plotly_chart(plots.confusion_heatmap(report["confusion"], report["labels"]), key="train_confusion")
        with right:
            st.markdown("**Per genre**")
            table = pd.DataFrame.from_dict(report["per_class"], orient="index").rename_axis("genre").reset_index()
            # Undefined scores show as a dash instead of a misleading 0.00: recall and f1 of a genre without
            # validation clips, precision of a genre never predicted (columns of the confusion matrix).
            predicted = np.asarray(report["confusion"]).sum(axis=0)
            absent = table["support"].to_numpy() == 0
            undefined = {"recall": absent, "f1": absent, "precision": predicted == 0}
            for column, mask in undefined.items():
                table[column] = [UNDEFINED if gone else f"{value:.2f}" for value, gone in zip(table[column], mask)]
            st.dataframe(table, hide_index=True)
            if absent.any():
                st.caption(f"No validation clips of {', '.join(table.loc[absent, 'genre'])} (the split put them "
                           f"all on the training side), so their recall and f1 are undefined ({UNDEFINED}).")
    if snap.failed_files:
        with st.expander(f"{len(snap.failed_files)} files failed feature extraction and were left out"):
            st.dataframe(pd.DataFrame(list(snap.failed_files), columns=["path", "reason"]), hide_index=True)
    save_form(registry, snap)


def discard(registry: runs.RunRegistry, run_id: str) -> None:
    try:
        registry.discard(run_id)
    except runs.RunError as err:
        st.session_state["train_note"] = f"{err}."
        return
    open_run(None)


def outcome(registry: runs.RunRegistry, snap: runs.RunSnapshot) -> None:
    """What a finished run left: its results and Save, or why it failed or stopped; Discard."""
    if snap.state == runs.FAILED:
        st.error(f"Training failed: {snap.error}")
        if snap.details:
            with st.expander("Details"):
                st.code(snap.details)
    elif snap.state == runs.STOPPED:
        st.info(snap.message)
    elif snap.state == runs.DONE:
        results(registry, snap)
    unsaved = snap.unsaved
    st.button("Discard this run" if unsaved else "Remove from the list", key="train_discard",
              on_click=discard, args=(registry, snap.id),
              help="Deletes the run and its trained model, which was never saved." if unsaved else
                   "Removes the run from the server's list (saved models stay).")


def pick(registry: runs.RunRegistry) -> None:
    run_id = st.session_state.get("train_pick")
    if isinstance(run_id, str) and registry.get(run_id) is not None:
        open_run(run_id)


def runs_table(registry: runs.RunRegistry) -> None:
    """The table of kept runs; it refreshes itself while any run is queued or running."""
    kept = registry.list()
    st.dataframe(pd.DataFrame([{"run": s.id, "state": jobs.state_label(s), "settings": jobs.summary(s.request),
                                "best score": jobs.score(s), "started": jobs.when(s.started or s.created)}
                               for s in kept], columns=["run", "state", "settings", "best score", "started"]),
                 hide_index=True, column_config={"run": st.column_config.TextColumn(width=100),
                                                 "state": st.column_config.TextColumn(width=170)})


def recent_runs(registry: runs.RunRegistry, snap: runs.RunSnapshot | None) -> None:
    """The server's runs, newest first, for every tab; picking one opens it."""
    kept = registry.list()
    if not kept:
        return
    st.subheader("Recent runs")
    st.caption(f"Kept by the server for every tab until saved or discarded (the {registry.max_runs} most recent). "
               f"At most {registry.max_active} train at once, in a worker process at lower priority, so predictions "
               "stay fast; the others wait in the queue.")
    st.fragment(run_every=2.0 if any(s.active for s in kept) else None)(runs_table)(registry)
    # Labels that never change (no state in them): the browser sends the chosen label back.
    labels = {s.id: f"{s.id} · {jobs.summary(s.request)} · {jobs.when(s.created)}" for s in kept}
    st.session_state["train_pick"] = snap.id if snap else None
    st.selectbox("Open a run", list(labels), format_func=labels.get, key="train_pick", index=None,
                 placeholder="Choose a run to see its curves and results…", on_change=pick, args=(registry,))


def estimate(registry: runs.RunRegistry, clips: pd.DataFrame, request: runs.TrainRequest) -> tuple[int, float]:
    """Clips of the dataset missing from the feature cache for ``request`` and the estimated
    seconds to extract them in the training process."""
    missing = eta.missing_clips(clips["path"], request.config)
    return missing, eta.extraction_seconds(missing, request.config.kind, threads=registry.threads)


# How the per-genre table shows a score that is undefined (no clips to compute it from). A comment,
# not a docstring: Streamlit's magic would draw a bare string of a page script on the page.
UNDEFINED = "—"

CONFIRM = "train_confirm"  # a start waiting for the person's go-ahead: the request and its extraction estimate


def start_controls(registry: runs.RunRegistry, clips: pd.DataFrame | None, request: runs.TrainRequest | None) -> None:
    """Start (or Queue) training; a long feature extraction is announced first, with the choice
    to go on or not."""
    busy = sum(s.state in (runs.RUNNING, runs.STOPPING) for s in registry.list())
    queued = busy >= registry.max_active
    losing = [s for s in registry.would_drop() if s.unsaved]
    help_text = ("Runs in a worker process on the server: you can visit other pages, reload or close the tab."
                 + (f" {busy} training(s) are running, so this one waits in the queue." if queued else ""))
    waiting = st.session_state.get(CONFIRM)
    if waiting and (request is None or runs.TrainRequest.from_dict(waiting["request"]) != request):
        st.session_state.pop(CONFIRM)  # the settings changed: ask again on the next Start
        waiting = None
    if st.button("Queue training" if queued else "Start training", type="primary",
                 disabled=request is None or waiting is not None, key="train_start", help=help_text):
        missing, seconds = estimate(registry, clips, request)
        if seconds > eta.LONG_EXTRACTION_SECONDS:
            st.session_state[CONFIRM] = {"request": request.to_dict(), "missing": missing, "seconds": seconds}
            st.rerun()
        start(registry, request)
    if waiting:
        kind = request.config.kind
        st.warning(f"**This run first extracts the {jobs.features_title(kind)} features of {waiting['missing']} clips "
                   f"that are not in the cache yet: about {eta.duration(waiting['seconds'])}** "
                   f"({eta.seconds_per_clip(kind):.2f} s per clip measured on this machine, "
                   f"{registry.threads} thread{'s' if registry.threads > 1 else ''}). They are cached, so the next "
                   "run with these features starts at once. You can leave the page while it works.", icon="⏱️")
        go, cancel, _ = st.columns([1, 1, 4])
        if go.button("Start anyway", type="primary", key="train_go"):
            st.session_state.pop(CONFIRM)
            start(registry, request)
        if cancel.button("Cancel", key="train_cancel"):
            st.session_state.pop(CONFIRM)
            st.rerun()
    if losing:
        st.caption(f"⚠️ The server keeps {registry.max_runs} runs: starting another drops "
                   + ", ".join(f"run `{s.id}` (finished {jobs.when(s.finished)}, not saved)" for s in losing)
                   + ". Save or discard runs below to choose.")


def main() -> None:
    st.title("Train a model")
    st.markdown("Train a genre classifier on the clips of the dataset folder, watch it learn, compare it with the "
                "active model and save it. Runs belong to the server: reload the page, open it in another tab or "
                "share its link and the run is still there.")
    registry = runs.shared_registry()
    snap = opened_run(registry)
    note = st.session_state.pop("train_note", None)
    if note:
        st.info(note)
    root = state.dataset_dir()
    clips = cache.discover(root) if root else None
    request = None
    if clips is None:
        refusal = state.dataset_refusal()
        if refusal:
            st.error(refusal)
        else:
            st.info(f"No labelled clips in `{state.chosen_dataset()}`. Put GTZAN under `data/` or set the dataset "
                    "folder in the sidebar, then come back to train.")
    else:
        counts = clips["label"].value_counts()
        st.caption(f"`{root}` · {len(clips)} clips in {len(counts)} genres")
        mine = examples_choice(root)
        if mine is not None:
            folder, extra = mine
            clips = pd.concat([clips, extra], ignore_index=True)
        few_clips_note(clips)
        request = settings(root, several_folders=mine is not None)
        if request is not None and mine is not None:
            request = replace(request, extra_roots=(str(folder),))
    start_controls(registry, clips, request)
    if snap is not None:
        st.fragment(run_every=1.0 if snap.active else None)(live)(registry, snap.id, snap.active)
        if not snap.active:
            outcome(registry, snap)
    recent_runs(registry, snap)


navigation.run_page(main)
