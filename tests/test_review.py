"""The Review page: a music folder predicted on the server (``genre predict --csv --albums`` in a
process of its own), the queue most doubtful first with the album's odd track flagged, and genre
tags written only for the accepted tracks, after their diff was shown."""
from __future__ import annotations

import csv
import time

from mutagen.flac import FLAC
from streamlit.testing.v1 import AppTest

from conftest import ROOT
from genre import locations, review
from genre.models import DEFAULT_MODEL_DIR
from test_albums import flac


def wait_for_albums(output, tracks: int, timeout: float = 300) -> list[dict]:
    """The output's rows once the run has written all ``tracks`` and its album columns."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if output.is_file():
            with open(output, newline="") as fh:
                rows = list(csv.DictReader(fh))
            if len(rows) == tracks and rows and "album_agrees" in rows[0]:
                return rows
        time.sleep(0.5)
    log = output.with_suffix(".log")
    raise AssertionError(f"the library run did not finish: {log.read_text() if log.exists() else 'no log'}")


def test_review_a_folder_flag_the_odd_album_track_and_tag_only_accepted_ones(tmp_path, monkeypatch):
    monkeypatch.setattr(locations, "HOME", tmp_path / "home")  # the run's output goes there, not into data/
    music = tmp_path / "music"
    for i in range(3):
        flac(music / "blue" / f"{i}.flac", "tones", seed=i, album="Blue", albumartist="Band")
    flac(music / "blue" / "odd.flac", "beats", seed=9, album="Blue", albumartist="Band")
    flac(music / "loose.flac", "buzz")
    output = review.output_for(music, DEFAULT_MODEL_DIR)
    assert output.is_relative_to(tmp_path / "home" / "data" / "reviews")

    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=120).run()
    at.switch_page("pages/review.py").run()
    at = at.text_input(key="review_folder").input(str(music)).run()
    assert not at.exception
    at = at.button(key="review_start").click().run()
    rows = wait_for_albums(output, 5)
    odd = [r for r in rows if r["album_agrees"] == "false"]
    assert odd, rows  # the beats track is not the tones album's genre

    at = at.run()
    assert not at.exception
    summary = next(m.value for m in at.markdown if m.value.startswith("**5 tracks**"))
    assert f"1 album, {len(odd)} track{'s' * (len(odd) != 1)} disagree" in summary
    queue = next(d for d in at.dataframe if d.key == "review_editor").value
    assert len(queue) == 5 and (queue["album genre"].str.endswith("⚠")).sum() == len(odd)
    assert sorted(queue["track"]) == ["blue/0.flac", "blue/1.flac", "blue/2.flac", "blue/odd.flac", "loose.flac"]
    assert set(queue["genre"]) <= set(r["genre"] for r in rows) and queue["album"].tolist().count("Blue — Band") == 4
    doubt = list(zip(queue["music"] != "no", queue["probability"]))
    assert doubt == sorted(doubt)  # most doubtful first: not music, then the lowest probability

    # The person accepts two tracks (what the queue's checkboxes save) and corrects nothing.
    by_name = {r["path"].rsplit("/", 1)[-1]: r["path"] for r in rows}
    accepted = [str(music.resolve() / "blue" / "0.flac"), str((music / "loose.flac").resolve())]
    review.save_decisions(output, {p: {"accept": True, "correct": None} for p in accepted})
    at = at.run()
    diff = next(d.value for d in at.dataframe if "will be" in d.value.columns)
    assert sorted(diff["track"]) == ["blue/0.flac", "loose.flac"] and set(diff["now"]) == {"—"}
    assert all(FLAC(p).get("genre") is None for p in by_name.values())  # the diff wrote nothing
    at = at.button(key="review_write").click().run()
    assert not at.exception and any("Wrote the genre tag of 2 files" in s.value for s in at.success)
    written = {p: (FLAC(p).get("genre") or [None])[0] for p in by_name.values()}
    genre_of = {r["path"]: r["genre"] for r in rows}
    for path, tag in written.items():
        resolved = str((music / path).resolve()) if not path.startswith("/") else path
        expected = genre_of[path] if resolved in accepted else None
        assert tag == expected, (path, tag, expected)


def test_a_predictions_file_never_opens_files_outside_the_allowed_folders(tmp_path):
    inside = flac(tmp_path / "music" / "a.flac", "tones", album="Blue")
    output = tmp_path / "made-elsewhere.csv"
    with open(output, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "genre", "probability", "p_jazz", "p_rock"])
        writer.writerow([str(inside), "jazz", "0.9000", "0.9000", "0.1000"])
        writer.writerow(["/etc/hostname", "rock", "0.4000", "0.6000", "0.4000"])
        writer.writerow([str(tmp_path / ".." / ".." / "outside.flac"), "rock", "0.3000", "0.3000", "0.7000"])
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=120).run()
    at.switch_page("pages/review.py").run()
    at = at.radio(key="review_how").set_value("A predictions file").run()
    at = at.text_input(key="review_file").input(str(output)).run()
    assert not at.exception
    assert any("2 rows name files outside the folders this dashboard may read" in w.value for w in at.warning)
    queue = next(d for d in at.dataframe if d.key == "review_editor").value
    assert queue["track"].tolist() == ["a.flac"]
    assert not [b for b in at.button if b.key == "review_start"]  # a file made elsewhere is not re-run here
