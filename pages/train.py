"""Train: pick features, a model and a split, watch the run live, then judge and save it.

Runs belong to the server (:mod:`genre.runs`), not to a browser session: each trains in its own
lower-priority worker process, at most ``$GENRE_MAX_TRAININGS`` at once (the rest queue), and any
tab can reopen one from the list of recent runs or by its link (``?run=<id>``), stop it, save or
discard it. This session remembers the run it has open; the URL carries it across reloads.
"""
from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from genre import backbones, models, plots, runs
from genre.dataset import find_split_lists
from genre.models import ModelCard, ModelError, ModelSpec, read_card
from genre.ui import cache, jobs, navigation, state

FEATURES = {jobs.HANDCRAFTED: "Hand-crafted (MFCC, chroma, tempo…)",
            **{kind: backbones.title(kind) for kind in jobs.feature_kinds()[1:]}}
FAMILIES = {"mlp": "MLP on feature rows", "cnn": "CNN on log-mel patches"}
SPLITS = jobs.SPLITS
HIDDEN_DEFAULTS = {"mlp": "256,128", "cnn": "16,32,64"}
LEARNING_RATES = [1e-4, 3e-4, 1e-3, 3e-3, 1e-2]
DEFAULTS = {"train_features": jobs.HANDCRAFTED, "train_family": "mlp", "train_segment": 3.0,
            "train_hidden_mlp": HIDDEN_DEFAULTS["mlp"], "train_hidden_cnn": HIDDEN_DEFAULTS["cnn"],
            "train_dropout": 0.3, "train_lr": 1e-3, "train_epochs": 60, "train_batch": 64,
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


def keep_settings() -> None:
    st.session_state[KEPT] = {key: st.session_state[key] for key in DEFAULTS if key in st.session_state}


def settings(root) -> runs.TrainRequest | None:
    """The setting widgets; returns the request to train, or None if a setting is invalid.
    They stay editable during a run (it keeps the settings it started with)."""
    kinds = jobs.feature_kinds()
    splits = ["artist", "stratified"] + (["lists"] if find_split_lists(root) else [])
    restore_settings({"train_features": kinds, "train_split": splits})
    families = ["mlp", "cnn"] if st.session_state["train_features"] == jobs.HANDCRAFTED else ["mlp"]
    restore_settings({"train_family": families})

    st.subheader("1 · Features and model")
    a, b, c = st.columns([3, 2, 2])
    kind = a.selectbox("Feature set", kinds, format_func=FEATURES.get, key="train_features",
                       help="What the model hears. Hand-crafted: MFCC, chroma, spectral shape, contrast, tempo… "
                            "MusiCNN: embeddings of a network pretrained on the Million Song Dataset; EfficientAT "
                            "mn04: one pretrained on AudioSet's 527 sound classes; both: the two side by side (the "
                            "shipped model's features). Features are extracted once per setting and cached on disk.")
    family = b.radio("Model", families, format_func=FAMILIES.get, key="train_family",
                     help="MLP: dense layers on the feature rows of each segment. CNN: convolutions on the log-mel "
                          "spectrogram of each segment (hand-crafted set only; slower).")
    segment = c.number_input("Segment length (s)", min_value=1.0, max_value=15.0, step=0.5, key="train_segment",
                             disabled=kind != jobs.HANDCRAFTED,
                             help="Clips are cut into segments of this length; each is one training example and "
                                  "a clip's prediction averages its segments. MusiCNN uses its own 3 s patches.")

    st.subheader("2 · Hyper-parameters")
    cols = st.columns(5)
    hidden = cols[0].text_input("Hidden layers" if family == "mlp" else "Filters per block",
                                key=f"train_hidden_{family}",
                                help="Comma-separated: units per dense layer (MLP) or filters per convolution "
                                     "block (CNN), e.g. 256,128.")
    dropout = cols[1].slider("Dropout", 0.0, 0.8, step=0.05, key="train_dropout",
                             help="Share of units switched off at random while training; fights over-fitting.")
    lr = cols[2].select_slider("Learning rate", LEARNING_RATES, key="train_lr", format_func=lambda v: f"{v:g}",
                               help="Step size of the Adam optimiser.")
    epochs = cols[3].number_input("Epochs", min_value=1, max_value=1000, step=5, key="train_epochs",
                                  help="Passes over the training data at most; training stops earlier when the "
                                       "validation loss has not improved for 10 epochs (best weights are kept).")
    batch = cols[4].select_slider("Batch size", [16, 32, 64, 128, 256], key="train_batch",
                                  help="Segments per gradient step.")

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
    try:
        units = jobs.parse_units(hidden)
        spec = ModelSpec(family=family, hidden=units, dropout=dropout, learning_rate=lr, epochs=int(epochs),
                         batch_size=int(batch))
        config = jobs.feature_config(kind, segment_seconds=segment)
    except (ValueError, ImportError) as err:
        st.error(str(err))
        return None
    return runs.TrainRequest(root=str(Path(root).resolve()), config=config, spec=spec, split=split,
                             valid_fraction=valid, seed=int(seed))


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


def live(registry: runs.RunRegistry, run_id: str, was_active: bool) -> None:
    """Queue position, progress, curves and the Stop button; reruns the page when the run ends."""
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
    elif snap.active and snap.phase != "training":
        done, total = snap.progress
        text = (f"Extracting features {done}/{total or '?'} clips (cached for next time)…" if snap.phase == "features"
                else f"Starting the training process (lower priority, {registry.threads} CPU "
                     f"thread{'s' if registry.threads > 1 else ''})…")
        st.progress(done / total if total else 0.0, text=text)
    if snap.history or snap.phase == "training":
        last = snap.history[-1] if snap.history else {}
        if snap.active:
            line = f"Epoch {len(snap.history)} of at most {snap.total_epochs}"
            if last:
                line += f" · validation accuracy {last.get('val_accuracy', 0):.0%} (segments)"
            st.markdown(f"**{line}**")
        st.plotly_chart(plots.training_curves(list(snap.history),
                                              total_epochs=snap.total_epochs if snap.active else None),
                        key="train_curves")
    if snap.active:
        stopping = snap.state == runs.STOPPING
        st.button("Stopping after this epoch…" if stopping else "Stop", on_click=registry.stop, args=(snap.id,),
                  disabled=stopping, key="train_stop",
                  help="Leaves the queue at once; a running training ends after the current epoch and keeps "
                       "the best weights so far. Works from any tab that has this run open.")
    elif was_active:
        st.rerun()


def comparison(card: ModelCard) -> None:
    st.markdown("**Compared with the active model** (clip-level validation)")
    new = card.metrics.get("validation") or {}
    path = state.active_model_dir()
    try:
        active = read_card(path)
        old = active.metrics.get("validation") or {}
    except ModelError as err:
        active, old = None, {}
        st.caption(f"The active model cannot be read: {err}")
    left, right = st.columns(2)
    for col, key, label in ((left, "accuracy", "Accuracy"), (right, "balanced_accuracy", "Balanced accuracy")):
        delta = f"{new[key] - old[key]:+.1%} vs {path.name}" if key in old else None
        col.metric(f"{label} · this run", f"{new[key]:.1%}", delta=delta,
                   help="Balanced accuracy is the mean recall over genres." if key != "accuracy" else None)
        col.metric(f"{label} · {path.name}", f"{old[key]:.1%}" if key in old else "—")
    if active is not None:
        diff = jobs.split_difference(card.split, active.split)
        if diff:
            st.caption(f"⚠️ {diff}")
        else:
            st.caption("Same validation clips as the active model: a fair comparison.")


def save_form(registry: runs.RunRegistry, snap: runs.RunSnapshot) -> None:
    """Name, Overwrite and Save; a name that cannot be used says why next to the button."""
    st.subheader("Save the model")
    if snap.saved_as:
        st.success(f"Saved as **{', '.join(snap.saved_as)}**. Pick it in the sidebar's **Model** list to use it on "
                   "the other pages.")
    card = snap.card
    st.session_state.setdefault("train_save_name", f"{card.spec['family']}-{card.config.kind}-{date.today():%Y%m%d}")
    a, b, c = st.columns([3, 1, 1], vertical_alignment="bottom")
    name = a.text_input("Save as", key="train_save_name",
                        help="Letters, digits, '-', '_' and '.'; the model goes to models/<name>. 'default', "
                             "'backbones' and folders that are not models are never replaced.")
    overwrite = b.checkbox("Overwrite", key="train_overwrite", help="Replace a saved model of the same name.")
    try:
        models.save_target(name, overwrite=overwrite, root=registry.models_dir)
        refusal = None
    except ModelError as err:
        refusal = str(err)
    clicked = c.button("Save", type="primary", key="train_save", disabled=refusal is not None,
                       help=refusal or "Copies the trained model to models/<name>.")
    if refusal:
        st.error(f"Cannot save as **{name.strip() or '…'}**: {refusal}")
    if clicked:
        try:
            registry.save(snap.id, name, overwrite=overwrite)
        except (ModelError, runs.RunError) as err:
            st.error(f"Not saved: {err}")
            return
        st.rerun()


def results(registry: runs.RunRegistry, snap: runs.RunSnapshot) -> None:
    card = snap.card
    report = card.metrics.get("validation") or {}
    st.subheader("Results")
    epochs = card.metrics.get("epochs_run", len(snap.history))
    why = "stopped by you" if card.metrics.get("stopped_by_user") else (
        "early stopping: validation loss stopped improving" if snap.stopped_early else "all epochs")
    best = card.metrics.get("best_epoch")
    st.caption(f"{snap.n_clips} clips · {epochs} epochs ({why}) · "
               f"{f'weights of the best epoch ({best}) kept' if best else 'best weights kept'} · "
               f"{report.get('n', 0)} validation clips, {card.split.get('kind')} split")
    if report:
        comparison(card)
        left, right = st.columns([3, 2], gap="large")
        with left:
            st.markdown("**Confusion matrix** (validation clips)")
            st.plotly_chart(plots.confusion_heatmap(report["confusion"], report["labels"]), key="train_confusion")
        with right:
            st.markdown("**Per genre**")
            table = pd.DataFrame.from_dict(report["per_class"], orient="index").rename_axis("genre").reset_index()
            # Undefined scores show as None instead of a misleading 0.00: recall and f1 of a genre without
            # validation clips, precision of a genre never predicted (columns of the confusion matrix).
            predicted = np.asarray(report["confusion"]).sum(axis=0)
            absent = table["support"].to_numpy() == 0
            table.loc[absent, ["recall", "f1"]] = np.nan
            table.loc[predicted == 0, "precision"] = np.nan
            st.dataframe(table, hide_index=True, column_config={
                k: st.column_config.NumberColumn(k, format="%.2f") for k in ("precision", "recall", "f1")})
            if absent.any():
                st.caption(f"No validation clips of {', '.join(table.loc[absent, 'genre'])} (the split put them "
                           "all on the training side), so their recall and f1 are undefined (None).")
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
                 hide_index=True)


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
        request = settings(root)
    busy = sum(s.state in (runs.RUNNING, runs.STOPPING) for s in registry.list())
    queued = busy >= registry.max_active
    losing = [s for s in registry.would_drop() if s.unsaved]
    help_text = ("Runs in a worker process on the server: you can visit other pages, reload or close the tab."
                 + (f" {busy} training(s) are running, so this one waits in the queue." if queued else ""))
    if st.button("Queue training" if queued else "Start training", type="primary", disabled=request is None,
                 key="train_start", help=help_text):
        start(registry, request)
    if losing:
        st.caption(f"⚠️ The server keeps {registry.max_runs} runs: starting another drops "
                   + ", ".join(f"run `{s.id}` (finished {jobs.when(s.finished)}, not saved)" for s in losing)
                   + ". Save or discard runs below to choose.")
    if snap is not None:
        st.fragment(run_every=1.0 if snap.active else None)(live)(registry, snap.id, snap.active)
        if not snap.active:
            outcome(registry, snap)
    recent_runs(registry, snap)


navigation.run_page(main)
