"""Write a predicted genre into an audio file's own tags with mutagen, never touching the audio.

ID3 ``TCON`` (MP3, WAV, AIFF), MP4 ``©gen`` (M4A/MP4), Vorbis comment ``GENRE`` (FLAC, Ogg
Vorbis/Opus), ASF ``WM/Genre`` (WMA). mutagen rewrites only the tag block of the file; the audio
frames are copied byte for byte (``tests/test_library.py`` checks the samples are unchanged).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


class TagError(ValueError):
    """The file's tags cannot be read or written; ``str(err)`` says why."""


@dataclass(frozen=True)
class TagChange:
    """``old``: the genre tag before (None if it had none); ``new``: what it is (or would be) now."""

    path: str
    kind: str
    old: str | None
    new: str

    @property
    def changes(self) -> bool:
        return self.old != self.new

    def describe(self, *, dry_run: bool) -> str:
        verb = ("would set" if dry_run else "set") if self.changes else "kept"
        before = repr(self.old) if self.old is not None else "none"
        return f"{verb} {self.kind} genre of {self.path}: {before} -> {self.new!r}"


def _open(path: Path):
    import mutagen

    try:
        tagged = mutagen.File(path)
    except mutagen.MutagenError as err:
        raise TagError(f"{path.name}: its tags cannot be read ({err})") from err
    if tagged is None:
        raise TagError(f"{path.name}: mutagen knows no tag format for this file type")
    return tagged


def _kind(tagged) -> tuple[str, str]:
    """(tag kind, genre key) for a mutagen file object; TagError for formats without a genre tag."""
    from mutagen.aiff import AIFF
    from mutagen.asf import ASF
    from mutagen.flac import FLAC
    from mutagen.id3 import ID3FileType
    from mutagen.mp4 import MP4
    from mutagen.oggopus import OggOpus
    from mutagen.oggvorbis import OggVorbis
    from mutagen.wave import WAVE

    if isinstance(tagged, (ID3FileType, WAVE, AIFF)):
        return "ID3", "TCON"
    if isinstance(tagged, MP4):
        return "MP4", "\xa9gen"
    if isinstance(tagged, (FLAC, OggVorbis, OggOpus)):
        return "Vorbis", "genre"
    if isinstance(tagged, ASF):
        return "ASF", "WM/Genre"
    raise TagError(f"{type(tagged).__name__} files have no genre tag that this tool writes")


def set_genre(path: str | Path, genre: str, *, dry_run: bool = False) -> TagChange:
    """Set the genre tag of the file at ``path`` to ``genre`` (only if it differs; ``dry_run``:
    only say what would change). Raises :class:`TagError`."""
    import mutagen
    from mutagen.id3 import TCON

    path = Path(path)
    tagged = _open(path)
    try:
        kind, key = _kind(tagged)
    except TagError as err:
        raise TagError(f"{path.name}: {err}") from None
    values = tagged.tags.get(key) if tagged.tags is not None else None
    if kind == "ID3":
        values = values.text if values is not None else None
    change = TagChange(str(path), kind, str(values[0]) if values else None, genre)
    if dry_run or not change.changes:
        return change
    try:
        if tagged.tags is None:
            tagged.add_tags()
        if kind == "ID3":
            tagged.tags.setall("TCON", [TCON(encoding=3, text=[genre])])
        else:
            tagged.tags[key] = [genre]
        tagged.save()
    except (mutagen.MutagenError, OSError) as err:
        raise TagError(f"{path.name}: the genre tag could not be written ({err})") from err
    return change
