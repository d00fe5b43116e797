"""How long the phases of a training run take, for people: an estimate of feature extraction
before it starts (clips missing from the cache x measured seconds per clip of the feature set),
the live rate and time left while it runs, and durations in words.

No Streamlit and no TensorFlow here: the Train page and the training worker both use it.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from genre import backbones
from genre.features import FeatureConfig
from genre.store import FeatureStore, file_digest

SECONDS_PER_CLIP = {
    "handcrafted": 0.107,
    "MSD_musicnn": 0.291,
    "MTT_musicnn": 0.304,
    "mn04": 0.084,
    "MSD_musicnn+mn04": 0.375,
}
"""Wall seconds to decode and featurise one ~30 s clip on one thread, per feature set (see
:data:`MEASURED`); a busy machine takes longer, which the live rate then shows."""
MEASURED = ("2026-12-01, `benchmarks/train_defaults.py --speed 8`: mean over 8 GTZAN clips after a warm-up clip, "
            "one thread, load average 2.6")
"""When and how :data:`SECONDS_PER_CLIP` was measured."""
LONG_EXTRACTION_SECONDS = 60.0
"""An extraction estimated to take longer than this is announced before it starts."""


def seconds_per_clip(kind: str) -> float:
    """Measured seconds per clip of a feature kind; a combination not measured as such costs the
    sum of its backbones."""
    if kind in SECONDS_PER_CLIP:
        return SECONDS_PER_CLIP[kind]
    return sum(SECONDS_PER_CLIP.get(b.name, 0.0) for b in backbones.parts(kind))


def missing_clips(paths: Sequence[str], config: FeatureConfig, *, store: FeatureStore | None = None) -> int:
    """How many of ``paths`` have no cached features for ``config`` (hashes every file: ~0.2 s
    for 370 GTZAN clips). An unreadable file is not counted: it fails at once."""
    store = store or FeatureStore()
    missing = 0
    for path in paths:
        try:
            digest = file_digest(path)
        except OSError:
            continue
        missing += not store.has(digest, config)
    return missing


def extraction_seconds(n_clips: int, kind: str, *, threads: int = 1) -> float:
    """Estimated wall seconds to extract ``n_clips`` clips of ``kind`` with ``threads`` workers."""
    return n_clips * seconds_per_clip(kind) / max(1, threads)


def duration(seconds: float) -> str:
    """'8 s', '50 s', '2 min', '1 h 5 min': rounded the way a person says it."""
    if seconds < 60:
        return f"{max(1, round(seconds))} s"
    minutes = seconds / 60
    if minutes < 60:
        return f"{max(1, round(minutes))} min"
    hours, rest = divmod(round(minutes), 60)
    return f"{hours} h {rest} min" if rest else f"{hours} h"


def extraction_line(what: str, *, done: int, total: int, missing: int, kind: str, computed: int = 0,
                    rate: float = 0.0, eta: float | None = None) -> str:
    """What an extraction is doing, for people: 'Reading the cached <what> features of 370
    clips… 120/370' or 'Extracting <what> features of 40 clips (330 more are cached): 12/40 ·
    0.9 clips/s · about 31 s left. They are cached for next time.' (``done`` of ``total`` clips
    reported, ``missing`` of them to compute, ``computed`` so far at ``rate`` clips/s, ``eta`` s
    left: :meth:`ExtractionClock.update`; before a rate, the estimate for ``kind``)."""
    if not missing:
        return f"Reading the cached {what} features of {total} clips… {done}/{total}"
    cached = total - missing
    line = f"Extracting {what} features of {missing} clips" + (f" ({cached} more are cached)" if cached else "")
    if computed and rate:
        line += f": {computed}/{missing} · {rate:.2f} clips/s · about {duration(eta or 0.0)} left"
    else:
        line += (f": {computed}/{missing} · about {duration(eta or extraction_seconds(missing - computed, kind))} "
                 f"left (estimated from {seconds_per_clip(kind):.2f} s per clip measured on this machine)")
    return line + ". They are cached for next time."


@dataclass
class ExtractionClock:
    """Rate and time left of an extraction that reports every clip, cached ones first (as
    :meth:`genre.store.FeatureStore.build` does): ``total`` clips, ``missing`` of them to compute.
    Until the first computed clip, the time left is the estimate from :data:`SECONDS_PER_CLIP`;
    once a second report of computed clips comes, the rate leaves out the time before the first
    one (it includes one-time costs such as loading a backbone network)."""

    total: int
    missing: int
    kind: str
    threads: int = 1
    clock: Callable[[], float] = time.monotonic
    _since: float = field(default=0.0, repr=False)
    _first: tuple[float, int] | None = field(default=None, repr=False)

    def __post_init__(self):
        self._since = self.clock()

    def update(self, done: int) -> dict:
        """The state after ``done`` clips: ``computed`` (clips extracted now), ``rate`` (clips/s,
        0 before the first) and ``eta`` (s left)."""
        now = self.clock()
        computed = max(0, min(self.missing, done - (self.total - self.missing)))
        if computed == 0:
            self._since = now  # still reading cached clips: computing starts after this
        elif self._first is None:
            self._first = (now, computed)
        left = self.missing - computed
        start, counted = (self._since, 0) if self._first is None or computed == self._first[1] else self._first
        if computed > counted and now > start:
            rate = (computed - counted) / (now - start)
            eta = left / rate
        else:
            rate, eta = 0.0, extraction_seconds(left, self.kind, threads=self.threads)
        return {"computed": computed, "rate": rate, "eta": eta}
