"""Similar: the dataset clips nearest to a clip in the active model's feature space, or the
tracks of a whole collection indexed with ``python -m genre similar FILE --index DIR``."""
from __future__ import annotations

import os
from pathlib import Path

import streamlit as st

from genre import eta
from genre.models import DEFAULT_MODEL_DIR, ModelError, read_card
from genre.similar import CollectionIndex
from genre.ui import cache, navigation, state, teach, widgets

PER_ROW = 3


def _config():
    """FeatureConfig of the active model's card (the default model's if that card is unusable)."""
    path = state.active_model_dir()
    try:
        return read_card(path).config
    except ModelError as err:
        st.warning(f"{err} Using the default model's features instead.")
        return read_card(DEFAULT_MODEL_DIR).config


def not_music(verdict) -> None:
    """Say so when the query clip does not sound like music: its neighbours are then the clips
    nearest in sound, not songs of its kind."""
    if verdict is not None and not verdict.is_music:
        st.warning(f"**This doesn't sound like music** (AudioSet's Music: {verdict.music:.0%}; it sounds like "
                   f"{widgets.percentages(verdict.sounds_like)}). The clips below are the nearest in sound, "
                   "not songs like it.")


def _cards(neighbours) -> None:
    for start in range(0, len(neighbours), PER_ROW):
        for column, (_, row) in zip(st.columns(PER_ROW), neighbours.iloc[start:start + PER_ROW].iterrows()):
            with column.container(border=True):
                st.markdown(f"**{row['label']}** · similarity {row['similarity']:.2f}")
                st.caption(widgets.clip_label(row))
                try:
                    widgets.play(widgets.Clip(Path(row["path"]).read_bytes(), Path(row["path"]).name, row["path"]))
                except OSError as err:
                    st.error(f"Cannot read {Path(row['path']).name}: {err.strerror or err}.")


@st.cache_resource(show_spinner="Loading the collection index…", max_entries=2)
def _collection(file: str, mtime_ns: int, _config) -> CollectionIndex | None:
    return CollectionIndex.load(Path(file), _config)


def collection_page(root: str, file: Path, config) -> None:
    """Neighbours of an uploaded clip among the tracks of a saved collection index."""
    index = _collection(str(file), file.stat().st_mtime_ns, config)
    if index is None:
        st.error(f"The index of {root} cannot be read; rebuild it with `python -m genre similar FILE --index {root}`.")
        return
    st.caption(f"{len(index):,} tracks under {root}, compared by their mean {config.kind} feature vector "
               "(exact cosine search).")
    left, right = st.columns([3, 1])
    with left:
        clip = widgets.upload_clip("similar_collection_upload", label="A clip to find neighbours of")
    with right:
        k = st.slider("Neighbours", 3, 12, 6, key="similar_collection_k")
    if clip is None:
        return
    widgets.play(clip)
    query = cache.query_features(clip.data, name=clip.name, config=config)
    if query is None:
        return
    not_music(query[1])
    try:
        hits = index.query(query[0], k=k)
    except ValueError as err:
        st.error(str(err))
        return
    st.dataframe([{"track": str(Path(path).relative_to(root)) if Path(path).is_relative_to(root) else path,
                   "similarity": sim} for path, sim in hits], hide_index=True,
                 column_config={"similarity": st.column_config.ProgressColumn(
                     "similarity", min_value=0.0, max_value=1.0, format="%.2f")})
    for start in range(0, len(hits), PER_ROW):
        for column, (path, sim) in zip(st.columns(PER_ROW), hits[start:start + PER_ROW]):
            with column.container(border=True):
                st.markdown(f"**{Path(path).name}** · similarity {sim:.2f}")
                try:  # indexed paths only, never a name from the browser
                    widgets.play(widgets.Clip(Path(path).read_bytes(), Path(path).name, path))
                except OSError as err:
                    st.error(f"Cannot read {Path(path).name}: {err.strerror or err}.")


def main() -> None:
    st.title("Similar clips")
    config = _config()
    collections = CollectionIndex.saved(config)
    clips = cache.dataset()
    if collections:
        names = ["dataset", *(root for root, _ in collections)]
        where = st.selectbox("Search in", names, format_func=lambda n: "the sidebar's dataset" if n == "dataset"
                             else f"collection {n}", key="similar_where",
                             help="Collections are indexed on the command line: "
                                  "`python -m genre similar FILE --index DIR`.")
        if where != "dataset":
            collection_page(where, dict(collections)[where], config)
            return
    if clips is None:
        st.info("This page needs a dataset: put GTZAN under data/ or set the folder in the sidebar. "
                "Then every clip is compared with yours. A whole music collection can be indexed with "
                "`python -m genre similar FILE --index DIR` and then searched here.")
        return
    st.caption(f"Clips are compared by their mean {config.kind} feature vector (the active model's "
               "features), standardised over the dataset; similarity is the cosine (1 = same direction).")
    index = cache.neighbour_index(clips, config)
    if index is None:
        missing = eta.missing_clips(clips["path"].tolist(), config)
        if missing:
            seconds = eta.extraction_seconds(missing, config.kind, threads=os.cpu_count() or 1)
            st.info(f"First the features of all {len(clips)} clips are needed: {missing} are not cached yet and are "
                    f"extracted now, in parallel (about {eta.duration(seconds)}), and cached on disk for next time.")
        else:
            st.info(f"The features of all {len(clips)} clips are cached: building the index takes a few seconds.")
        if not st.button("Build the similarity index", type="primary"):
            return
        if cache.neighbour_index(clips, config, build=True) is not None:
            st.rerun()  # redraw without the note and the button, now that the index is cached
        return
    if index.failed:
        with st.expander(f"{len(index.failed)} clips could not be read and are left out"):
            st.dataframe([{"clip": Path(p).name, "reason": r} for p, r in index.failed], hide_index=True)
    left, right = st.columns([3, 1])
    with left:
        clip = widgets.audio_source("similar", sources=("dataset", "upload"))
    with right:
        k = st.slider("Neighbours", 3, 12, 6)
        other_artists = st.toggle("Other artists only", help="GTZAN holds several clips per artist; hide the "
                                  "query's artist to see which genre its sound is closest to.")
    if clip is None:
        return
    widgets.play(clip)
    teach.teach(clip.data, clip.name, labels=sorted(set(clips["label"])), key="similar")
    neighbours = index.neighbours_of(clip.path, k=k, other_artists=other_artists) if clip.path else None
    if neighbours is None:
        query = cache.query_features(clip.data, name=clip.name, config=config)
        if query is None:
            return
        not_music(query[1])
        try:
            neighbours = index.query(query[0], k=k)
        except ValueError as err:
            st.error(str(err))
            return
    if clip.path:
        label = clips.loc[clips["path"] == clip.path, "label"].iloc[0]
        same = int((neighbours["label"] == label).sum())
        st.markdown(f"**{same} of {len(neighbours)}** nearest clips are {label} too.")
    shown = neighbours[["label", "artist", "title", "similarity"]].fillna({"artist": "", "title": ""})
    st.dataframe(shown, hide_index=True,
                 column_config={"label": "genre", "similarity": st.column_config.ProgressColumn(
                     "similarity", min_value=0.0, max_value=1.0, format="%.2f")})
    _cards(neighbours)


navigation.run_page(main)
