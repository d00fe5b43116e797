"""Train: pick features, a model and a split, watch the run live, then judge and save it.

The run belongs to this browser session (a job in ``st.session_state``) and goes on in a
background thread while you visit other pages.
"""
from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import streamlit as st

from genre import backbones, plots
from genre.dataset import find_split_lists
from genre.models import ModelError, ModelSpec, read_card
from genre.ui import cache, jobs, navigation, state

FEATURES = {jobs.HANDCRAFTED: "Hand-crafted (MFCC, chroma, tempo…)",
            **{kind: backbones.title(kind) for kind in jobs.feature_kinds()[1:]}}
FAMILIES = {"mlp": "MLP on feature rows", "cnn": "CNN on log-mel patches"}
SPLITS = {"artist": "By artist", "stratified": "Stratified random", "lists": "List files (splits/)"}
HIDDEN_DEFAULTS = {"mlp": "256,128", "cnn": "16,32,64"}
LEARNING_RATES = [1e-4, 3e-4, 1e-3, 3e-3, 1e-2]
DEFAULTS = {"train_features": jobs.HANDCRAFTED, "train_family": "mlp", "train_segment": 3.0,
            "train_hidden_mlp": HIDDEN_DEFAULTS["mlp"], "train_hidden_cnn": HIDDEN_DEFAULTS["cnn"],
            "train_dropout": 0.3, "train_lr": 1e-3, "train_epochs": 60, "train_batch": 64,
            "train_split": "artist", "train_valid": 0.2, "train_seed": 0}
KEPT = "train_settings"


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


def settings(root) -> jobs.TrainRequest | None:
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
    return jobs.TrainRequest(root=str(root), config=config, spec=spec, split=split, valid_fraction=valid,
                             seed=int(seed))


def start(job: jobs.Job, request: jobs.TrainRequest) -> None:
    try:
        jobs.start_training(job, request)
    except RuntimeError as err:
        st.warning(str(err))
        return
    st.session_state.pop("train_saved", None)
    st.rerun()


def describe(request: jobs.TrainRequest) -> str:
    """One line on what a run trains."""
    spec, config = request.spec, request.config
    features = (f"hand-crafted features, {config.segment_seconds:g} s segments" if config.kind == jobs.HANDCRAFTED
                else f"{config.kind} embeddings")
    split = SPLITS[request.split] + ("" if request.split == "lists" else f", {request.valid_fraction:.0%} held out")
    return (f"{features} · {spec.family.upper()} {','.join(map(str, spec.hidden))} · dropout {spec.dropout:g} · "
            f"learning rate {spec.learning_rate:g} · batch {spec.batch_size} · {split} · seed {request.seed}")


def live(job: jobs.Job, was_active: bool) -> None:
    """Progress, curves and the Stop button; reruns the whole page when the run ends."""
    snap = job.snapshot()
    if snap.request is not None:
        st.caption(f"{'This run' if snap.active else 'Last run'}: {describe(snap.request)}")
    if snap.active and snap.phase != "training":
        done, total = snap.progress
        st.progress(done / total if total else 0.0,
                    text=f"Extracting features {done}/{total or '?'} clips (cached for next time)…")
    if snap.history or snap.phase == "training":
        last = snap.history[-1] if snap.history else {}
        if snap.active:
            line = f"Epoch {len(snap.history)} of at most {snap.total_epochs}"
            if last:
                line += f" · validation accuracy {last.get('val_accuracy', 0):.0%} (segments)"
            st.markdown(f"**{line}**")
        st.plotly_chart(plots.training_curves(snap.history, total_epochs=snap.total_epochs if snap.active else None),
                        key="train_curves")
    if snap.active:
        stopping = snap.state == jobs.STOPPING
        st.button("Stopping after this epoch…" if stopping else "Stop", on_click=job.stop, disabled=stopping,
                  key="train_stop", help="Ends training after the current epoch and keeps the best weights so far.")
    elif was_active:
        st.rerun()


def comparison(outcome: jobs.TrainOutcome) -> None:
    st.markdown("**Compared with the active model** (clip-level validation)")
    new = outcome.result.report
    path = state.active_model_dir()
    try:
        card = read_card(path)
        old = card.metrics.get("validation") or {}
    except ModelError as err:
        card, old = None, {}
        st.caption(f"The active model cannot be read: {err}")
    left, right = st.columns(2)
    for col, key, label in ((left, "accuracy", "Accuracy"), (right, "balanced_accuracy", "Balanced accuracy")):
        delta = f"{new[key] - old[key]:+.1%} vs {path.name}" if key in old else None
        col.metric(f"{label} · this run", f"{new[key]:.1%}", delta=delta,
                   help="Balanced accuracy is the mean recall over genres." if key != "accuracy" else None)
        col.metric(f"{label} · {path.name}", f"{old[key]:.1%}" if key in old else "—")
    if card is not None:
        diff = jobs.split_difference(outcome.result.card.split, card.split)
        if diff:
            st.caption(f"⚠️ {diff}")
        else:
            st.caption("Same validation clips as the active model: a fair comparison.")


def save_form(outcome: jobs.TrainOutcome) -> None:
    st.subheader("Save the model")
    card = outcome.result.card
    default = f"{card.spec['family']}-{card.config.kind}-{date.today():%Y%m%d}"
    with st.form("train_save_form", border=False):
        a, b, c = st.columns([3, 1, 1], vertical_alignment="bottom")
        name = a.text_input("Save as", value=default, key="train_save_name",
                            help="Letters, digits, '-', '_' and '.'; the model goes to models/<name>.")
        overwrite = b.checkbox("Overwrite", key="train_overwrite", help="Replace a model of the same name.")
        submitted = c.form_submit_button("Save", type="primary")
    if submitted:
        try:
            target = jobs.save_trained(outcome, name, overwrite=overwrite)
        except ModelError as err:
            st.error(str(err))
            return
        st.session_state["train_saved"] = target.name
        st.rerun()


def results(snap: jobs.JobSnapshot) -> None:
    outcome: jobs.TrainOutcome = snap.result
    result = outcome.result
    report, card = result.report, result.card
    st.subheader("Results")
    epochs = card.metrics.get("epochs_run", len(snap.history))
    why = "stopped by you" if card.metrics.get("stopped_by_user") else (
        "early stopping: validation loss stopped improving" if result.stopped_early else "all epochs")
    best = card.metrics.get("best_epoch")
    st.caption(f"{outcome.n_clips} clips · {epochs} epochs ({why}) · "
               f"{f'weights of the best epoch ({best}) kept' if best else 'best weights kept'} · "
               f"{report['n']} validation clips, {card.split.get('kind')} split")
    comparison(outcome)
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
            st.caption(f"No validation clips of {', '.join(table.loc[absent, 'genre'])} (the split put them all "
                       "on the training side), so their recall and f1 are undefined (None).")
    if outcome.failed:
        with st.expander(f"{len(outcome.failed)} files failed feature extraction and were left out"):
            st.dataframe(pd.DataFrame(outcome.failed, columns=["path", "reason"]), hide_index=True)
    save_form(outcome)


def main() -> None:
    st.title("Train a model")
    st.markdown("Train a genre classifier on the clips of the dataset folder, watch it learn, compare it with the "
                "active model and save it. The run goes on in the background while you visit other pages.")
    job = jobs.session_job()
    snap = job.snapshot()
    saved = st.session_state.get("train_saved")
    if saved:
        st.success(f"Saved as **{saved}**. Pick it in the sidebar's **Model** list to use it on the other pages.")
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
    label = "Training…" if snap.active else "Start training"
    unsaved = snap.state == jobs.DONE and not saved
    if st.button(label, type="primary", disabled=snap.active or request is None, key="train_start",
                 help="Runs in the background: you can visit other pages meanwhile."
                      + (" Replaces the result below: save it first if you want to keep it." if unsaved else "")):
        start(job, request)
    st.fragment(run_every=1.0 if snap.active else None)(live)(job, snap.active)
    if snap.state == jobs.FAILED:
        st.error(f"Training failed: {snap.error}")
        with st.expander("Details"):
            st.code(snap.details)
    elif snap.state == jobs.IDLE and snap.message:
        st.info(snap.message)
    elif snap.state == jobs.DONE:
        results(snap)


navigation.run_page(main)
