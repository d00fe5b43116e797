"""Dataset: what the folder holds — clips per genre, durations and rates, a searchable clip
table with a player, per-genre feature distributions and a 2-D map of every clip."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from genre import examples, plots
from genre.backbones.embeddings import DEFAULT_KIND, backbone_config
from genre.features import FeatureConfig, feature_label
from genre.ui import cache, dataset_cache, navigation, state, teach, widgets

METHODS = {"pca": "PCA", "tsne": "t-SNE"}
DEFAULT_FEATURE = "centroid_mean"
SAME_LENGTH_SECONDS = 1.0  # clips whose durations all lie within this span are of one length: no histogram


def no_dataset() -> None:
    refusal = state.dataset_refusal()
    if refusal:
        st.error(refusal)
        return
    st.info(
        f"No labelled clips found in `{state.chosen_dataset()}`.\n\n"
        "**To get started**, either put GTZAN under `data/` in the project (one sub-folder of audio files "
        "per genre, e.g. `data/genres/blues/blues.00000.au`) or type the folder that holds your dataset "
        "in the sidebar under **Dataset folder**."
    )


def player(path: str, caption: str, *, autoplay: bool = False) -> None:
    """An audio player for a dataset file, with a caption (``autoplay``: start at once)."""
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        st.error(f"Cannot play {caption}: {err.strerror or err}")
        return
    widgets.play(widgets.Clip(data, Path(path).name, path), autoplay=autoplay)
    st.caption(caption)


def overview(clips: pd.DataFrame) -> None:
    info = dataset_cache.audio_info(clips)
    counts = clips["label"].value_counts()
    artists = clips["artist"].dropna().nunique()
    total = info["seconds"].sum()
    cols = st.columns(4)
    cols[0].metric("Clips", len(clips))
    cols[1].metric("Genres", len(counts))
    cols[2].metric("Artists known", artists or "—", help="From a GTZANindex.txt (artist ::: title) in the folder.")
    cols[3].metric("Total audio", f"{total / 3600:.1f} h" if total >= 3600 else f"{total / 60:.1f} min")
    left, right = st.columns(2, gap="large")
    with left:
        st.markdown("**Clips per genre**")
        st.plotly_chart(plots.genre_counts_bar(counts.to_dict()), key="dataset_counts")
    with right:
        st.markdown("**Durations**")
        readable = info["seconds"].notna()
        seconds = info.loc[readable, "seconds"]
        if len(seconds) and seconds.max() - seconds.min() < SAME_LENGTH_SECONDS:  # a histogram of one bar says less
            st.markdown(f"All {len(seconds)} readable clips last **{seconds.median():.1f} s** "
                        f"({seconds.min():.2f}–{seconds.max():.2f} s).")
        elif len(seconds):
            st.plotly_chart(plots.durations_histogram(seconds, clips.loc[readable, "label"]), key="dataset_durations")
        rates = (info[readable].groupby(["samplerate", "channels"]).size().reset_index(name="clips")
                 .astype({"samplerate": int, "channels": int}))
        st.dataframe(rates.rename(columns={"samplerate": "sample rate (Hz)"}), hide_index=True)


def browser(clips: pd.DataFrame) -> None:
    st.subheader("Clips")
    query = st.text_input("Search", key="dataset_search", placeholder="clip id, genre, artist or title",
                          help="Case-insensitive; shows clips whose id, genre, artist or title contains the text.")
    shown = clips[["clip_id", "label", "artist", "title"]]
    if query:
        text = shown.fillna("").astype(str).agg(" ".join, axis=1).str.lower()
        shown = shown[text.str.contains(query.strip().lower(), regex=False)]
    st.dataframe(shown.fillna({"artist": "", "title": ""}).rename(columns={"clip_id": "clip", "label": "genre"}),
                 hide_index=True, height=280,
                 key="dataset_table")
    st.caption(f"{len(shown)} of {len(clips)} clips")
    if shown.empty:
        return
    labels = {i: widgets.clip_label(clips.loc[i]) for i in shown.index}
    pick = st.selectbox("Play a clip", list(labels), format_func=labels.get, key="dataset_play",
                        help="Pick any clip of the table above (the search narrows this list too).")
    player(clips.loc[pick, "path"], f"{labels[pick]} ({clips.loc[pick, 'label']})")


def distributions(table: dataset_cache.ClipTable) -> None:
    st.subheader("Feature distributions per genre")
    st.caption("Each point is a clip: the feature's mean over its 3-second segments.")
    left, right = st.columns([3, 1])
    names = table.names
    feature = left.selectbox("Feature", names, key="dataset_feature", format_func=feature_label,
                             index=names.index(DEFAULT_FEATURE) if DEFAULT_FEATURE in names else 0,
                             help="Each is a statistic of one measure over a clip's 3-second segments, in its unit.")
    kind = right.radio("Plot", ["box", "violin"], horizontal=True, key="dataset_plot_kind")
    frame = table.frame
    st.plotly_chart(plots.feature_by_genre(frame[feature], frame["label"], feature=feature, kind=kind,
                                           hover=frame["clip_id"]), key="dataset_distribution")


MAP_FEATURES = {"handcrafted": "Hand-crafted features", "embeddings": "Pretrained embeddings (MusiCNN + mn04)"}


def clip_map(clips: pd.DataFrame, table: dataset_cache.ClipTable) -> None:
    st.subheader("Map of the clips")
    left, middle, right = st.columns([1, 1, 2])
    method = left.radio("Projection", list(METHODS), format_func=METHODS.get, horizontal=True, key="dataset_map_method",
                        help="PCA keeps the largest directions of variation; t-SNE keeps neighbours together "
                             "(clusters are meaningful, distances between them less so).")
    source = middle.radio("Features", list(MAP_FEATURES), format_func=MAP_FEATURES.get, key="dataset_map_features",
                          help="Hand-crafted: the statistics above. Embeddings: what the shipped model hears, "
                               "MusiCNN-MSD and EfficientAT mn04 side by side (extracted once, ~0.3 s per clip).")
    right.caption("Every clip's mean feature vector, standardised and projected to 2-D. Similar-sounding clips "
                  "land close together. Hover a dot for the clip, **click it to play it**.")
    if source == "embeddings":
        table = dataset_cache.clip_table(clips, backbone_config(DEFAULT_KIND, groups=("penultimate", "embedding")))
        if table.computed:
            st.toast(f"Embedded {table.computed} clips; the embeddings are cached for your next visit.")
        if table.frame.empty:
            st.warning("No clip could be embedded; see the list of problems below.")
            return
    frame = table.frame
    with st.spinner(f"Computing the {METHODS[method]} map…"):
        xy = dataset_cache.projection(frame[table.names].to_numpy(), method)
    fig = plots.clip_map(xy, frame["label"], clip_ids=frame["clip_id"], artists=frame["artist"],
                         titles=frame["title"], method=method)
    event = st.plotly_chart(fig, on_select="rerun", selection_mode="points", key="dataset_map")
    points = event["selection"]["points"] if event else []
    picked = points[0].get("customdata") if points else None
    if not picked or not 0 <= int(picked[0]) < len(frame) or frame["clip_id"].iloc[int(picked[0])] != picked[1]:
        st.caption("No clip selected yet: click a dot.")
        return
    row = frame.iloc[int(picked[0])]
    player(row["path"], f"{widgets.clip_label(row)} ({row['label']})", autoplay=True)  # the click was the "play"


def problems(clips: pd.DataFrame, table: dataset_cache.ClipTable | None) -> None:
    """Files that were skipped, and why."""
    failed = list(table.failed) if table else []
    ignored = clips.attrs.get("ignored", [])
    if not failed and not ignored:
        return
    with st.expander(f"Files that could not be used ({len(failed)} failed extraction, {len(ignored)} ignored)"):
        if failed:
            st.markdown("**Feature extraction failed** — these clips are left out of the plots and of training.")
            st.dataframe(pd.DataFrame(failed, columns=["path", "reason"]), hide_index=True)
        if ignored:
            st.markdown("**Ignored** — not audio, or not inside a genre folder.")
            st.dataframe(pd.DataFrame(ignored, columns=["file", "reason"]), hide_index=True)


def my_examples(root: Path | None) -> None:
    """A button that opens the person's examples folder (a dataset like any other)."""
    folder = teach.examples_folder(say_why=False)
    if folder is None or folder == root:
        return
    kept = examples.list_examples(folder)
    if kept and st.button(f"Open my examples ({len(kept)} clips)", key="dataset_my_examples",
                          icon=":material/school:", help=f"The clips you taught on Predict or Similar: `{folder}`"):
        state.open_dataset(str(folder))
        st.rerun()


def main() -> None:
    st.title("Dataset")
    root = state.dataset_dir()
    my_examples(root)
    clips = cache.discover(root) if root else None
    if clips is None:
        no_dataset()
        return
    st.caption(f"`{root}` · one sub-folder per genre")
    overview(clips)
    st.divider()
    browser(clips)
    st.divider()
    table = dataset_cache.clip_table(clips, FeatureConfig())
    if table.computed:
        st.toast(f"Extracted features of {table.computed} clips; they are cached for your next visit.")
    if table.frame.empty:
        st.warning("No clip could be featurised, so there are no distributions or map; see the list below.")
    else:
        distributions(table)
        st.divider()
        clip_map(clips, table)
    problems(clips, table)


navigation.run_page(main)
