"""Review a library: predict every track of a music folder (or open a predictions file), go
through the doubtful ones first, accept or correct each, then write the genre tags of the
accepted tracks after seeing what each file's tag is and will be."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from genre import eta, examples, review
from genre.access import AccessError, allowed_roots, check_dataset_folder
from genre.audio import AudioError
from genre.models import read_card
from genre.tags import TagError, set_genre
from genre.ui import navigation, state, teach, widgets

NOT_SURE = 0.5


@st.cache_resource
def library_runs() -> review.LibraryRuns:
    """The server's library runs (shared by every session)."""
    return review.LibraryRuns()


def choose_source() -> tuple[Path, Path, bool] | None:
    """The folder to review, its predictions file (under the allowed roots) and whether the
    dashboard makes that file (a music folder) or it was made elsewhere; None if unusable."""
    how = st.radio("Review", ["A music folder", "A predictions file"], horizontal=True, key="review_how",
                   label_visibility="collapsed")
    if how == "A music folder":
        typed = st.text_input("Music folder", key="review_folder", value=state.chosen_dataset(),
                              help="Every audio file under it (any layout) is predicted with the active model.")
    else:
        typed = st.text_input("Predictions file", key="review_file", placeholder="…/out.csv",
                              help="A CSV or Parquet written by `genre predict DIR --csv out.csv --albums`.")
    try:
        path = check_dataset_folder(typed)
    except AccessError as err:
        st.error(str(err))
        return None
    if how == "A music folder":
        if not path.is_dir():
            st.info(f"`{path}` is not a folder.")
            return None
        return path, review.output_for(path, state.active_model_dir()), True
    if not path.is_file():
        st.info(f"`{path}` is not a file.")
        return None
    return path.parent, path, False


def progress_view(folder: Path, output: Path, was_running: bool) -> None:
    """Live progress of the folder's run, with its rate and time left; once a run this view
    followed has ended, the whole page is drawn again (with the queue)."""
    status = library_runs().status(folder, output)
    if was_running and not status.running:
        st.rerun(scope="app")
    if status.total == 0:
        st.info(f"No audio files under `{folder}`.")
        return
    share = min(1.0, status.done / status.total)
    if status.running:
        pace = (f" · {status.rate:.1f} tracks/s · about {eta.duration(status.eta)} left" if status.rate else
                " · loading the model…")
        st.progress(share, text=f"Predicted {status.done} of {status.total} tracks{pace}")
        if st.button("Stop", key="review_stop", help="Stops after the current track; Predict resumes it."):
            library_runs().stop(output)
    elif status.problem:
        st.error(f"The run stopped: {status.problem}")


def start_controls(folder: Path, output: Path) -> None:
    status = library_runs().status(folder, output)
    if status.running or status.total == 0:
        return
    left = status.total - status.done
    if left > 0:
        verb = "Predict every track" if status.done == 0 else f"Predict the {left} tracks not done yet"
        if st.button(verb, type="primary", key="review_start", icon=":material/library_music:",
                     help="Runs `genre predict FOLDER --csv … --albums` on the server; you can leave the page."):
            library_runs().start(folder, state.active_model_dir(), output)
            st.rerun()


def filtered(table: pd.DataFrame) -> pd.DataFrame:
    """The table under the person's filters: genres, doubtful only, odd album tracks only."""
    a, b, c = st.columns([3, 1, 1])
    genres = a.multiselect("Genres", sorted(table["genre"].unique()), key="review_genres",
                           placeholder="All genres")
    unsure = b.toggle(f"Only below {NOT_SURE:.0%}", key="review_unsure")
    odd = c.toggle("Only odd album tracks", key="review_odd", help="Tracks whose genre is not their album's.")
    shown = table
    if genres:
        shown = shown[shown["genre"].isin(genres)]
    if unsure:
        shown = shown[(shown["probability"] < NOT_SURE) | shown["not_music"]]
    if odd:
        shown = shown[shown["album_agrees"] == "false"]
    return shown


def queue(table: pd.DataFrame, decisions: dict[str, dict], labels: list[str], output: Path) -> None:
    """The editable queue: accept, or correct to another genre; saved at every change."""
    view = pd.DataFrame({
        "accept": [bool(decisions.get(p, {}).get("accept")) for p in table["path"]],
        "correct": [decisions.get(p, {}).get("correct") for p in table["path"]],
        "track": table["name"].to_numpy(), "genre": table["genre"].to_numpy(),
        "probability": table["probability"].to_numpy(), "music": ["no" if n else "" for n in table["not_music"]],
        "album": table["album"].to_numpy(),
        "album genre": [g + ("" if a != "false" else " ⚠") for g, a in zip(table["album_genre"], table["album_agrees"])],
    }, index=table["path"])
    edited = st.data_editor(
        view, hide_index=True, key="review_editor", disabled=["track", "genre", "probability", "music", "album",
                                                              "album genre"],
        column_config={"accept": st.column_config.CheckboxColumn("accept", help="Write this genre to the file"),
                       "correct": st.column_config.SelectboxColumn("correct to", options=labels,
                                                                   help="The right genre: becomes an example"),
                       "probability": st.column_config.ProgressColumn("probability", min_value=0.0, max_value=1.0,
                                                                      format="%.2f"),
                       "album genre": st.column_config.TextColumn(help="⚠: this track's genre is not its album's")})
    changed = False
    for path, row in edited.iterrows():
        wanted = {"accept": bool(row["accept"]), "correct": row["correct"] or None}
        if decisions.get(path, {"accept": False, "correct": None}) != wanted:
            decisions[path] = wanted
            changed = True
    if changed:
        review.save_decisions(output, decisions)


def corrections(table: pd.DataFrame, decisions: dict[str, dict]) -> None:
    """Keep the corrected tracks as examples of the genre the person chose."""
    folder = teach.examples_folder()
    rows = table[[bool(decisions.get(p, {}).get("correct")) for p in table["path"]]]
    if folder is None or rows.empty:
        return
    if st.button(f"Keep the {len(rows)} corrected tracks as examples", key="review_examples",
                 icon=":material/school:", help="They join your examples folder, for the next training."):
        kept, refused = 0, []
        for _, row in rows.iterrows():
            try:
                examples.add_example(Path(row["path"]).read_bytes(), label=decisions[row["path"]]["correct"],
                                     name=Path(row["path"]).name, examples_dir=folder,
                                     predicted={"genre": row["genre"], "probability": float(row["probability"]),
                                                "model": "library review"})
                kept += 1
            except (examples.ExampleError, AudioError, OSError) as err:
                refused.append(f"{row['name']}: {err}")
        st.success(f"{kept} tracks kept as examples.")
        for line in refused:
            st.warning(line)


def tagging(table: pd.DataFrame, decisions: dict[str, dict]) -> None:
    """The diff of the accepted tracks' genre tags, then writing them."""
    accepted = table[[bool(decisions.get(p, {}).get("accept")) for p in table["path"]]]
    st.subheader("Write genre tags")
    if accepted.empty:
        st.caption("Tick **accept** on the tracks whose genre should go into their files.")
        return
    use_album = st.toggle("Use the album's genre for tracks of an album", key="review_use_album",
                          help="One consistent genre per album: the mean of its tracks' probabilities.")
    plan, problems = [], []
    for _, row in accepted.iterrows():
        genre = review.tag_genre(row, decisions.get(row["path"], {}), use_album=use_album)
        try:
            plan.append((row, set_genre(row["path"], genre, dry_run=True)))
        except TagError as err:
            problems.append(str(err))
    diff = pd.DataFrame([{"track": row["name"], "tag": change.kind, "now": change.old or "—", "will be": change.new,
                          "changes": "yes" if change.changes else "no"} for row, change in plan])
    st.markdown(f"**{sum(c.changes for _, c in plan)} of {len(accepted)} accepted tracks would change:**")
    st.dataframe(diff, hide_index=True, key="review_diff")
    for problem in problems:
        st.warning(f"Not taggable: {problem}")
    todo = [(row, change) for row, change in plan if change.changes]
    if todo and st.button(f"Write the genre tag of {len(todo)} files", type="primary", key="review_write",
                          help="Only the tag block of each file is rewritten; the audio stays as it is."):
        written, failed = 0, []
        for row, change in todo:
            try:
                set_genre(row["path"], change.new)
                written += 1
            except TagError as err:
                failed.append(str(err))
        st.success(f"Wrote the genre tag of {written} files.")
        for line in failed:
            st.error(line)


def main() -> None:
    st.title("Review a library")
    st.caption("Predict every track of a folder, check the doubtful ones first, accept or correct them, then write "
               "the genre tags of the accepted tracks (after seeing what changes). Corrections can become examples.")
    source = choose_source()
    if source is None:
        return
    folder, output, is_run = source
    if is_run:
        start_controls(folder, output)
        status = library_runs().status(folder, output)
        st.fragment(run_every=1.0 if status.running else None)(progress_view)(folder, output, status.running)
    if not output.is_file() or review.rows_in(output) == 0 and output.suffix == ".csv":
        return
    try:
        table, outside = review.load_predictions(output, roots=allowed_roots())
    except (ValueError, OSError) as err:
        st.error(f"{output.name} cannot be read: {err}")
        return
    if outside:
        st.warning(f"{outside} rows name files outside the folders this dashboard may read; they are left out.")
    if table.empty:
        st.info("No tracks to review yet.")
        return
    labels = read_card(state.active_model_dir()).labels if is_run else sorted(table["genre"].unique())
    labels = sorted(set(labels) | {e.label for e in examples.list_examples()})
    odd = int((table["album_agrees"] == "false").sum())
    albums = table.loc[table["album"] != "", "album"].nunique()
    st.markdown(f"**{len(table)} tracks** · {int(table['not_music'].sum())} not music · "
                f"{int((table['probability'] < NOT_SURE).sum())} below {NOT_SURE:.0%} · {albums} "
                f"album{'s' * (albums != 1)}, {odd} track{'s' * (odd != 1)} disagree{'s' * (odd == 1)} with their "
                "album. Most doubtful first.")
    decisions = review.read_decisions(output)
    shown = filtered(table)
    queue(shown, decisions, labels, output)
    listen = st.selectbox("Listen to", shown["path"], format_func=dict(zip(shown["path"], shown["name"])).get,
                          key="review_listen", index=None, placeholder="Pick a track to hear it")
    if listen:
        try:
            widgets.play(widgets.Clip(Path(listen).read_bytes(), Path(listen).name, listen))
        except OSError as err:
            st.error(f"Cannot read {Path(listen).name}: {err.strerror or err}.")
    corrections(table, decisions)
    tagging(table, decisions)


navigation.run_page(main)
