"""Is this music at all? A verdict from AudioSet's outputs (EfficientAT mn04), for any model.

``music`` is the mean over the clip's windows of AudioSet's "Music" probability; the clip counts
as music when it reaches :data:`MUSIC_THRESHOLD`. ``sounds_like`` names what else AudioSet hears
(``Speech 0.85``, ``Bird 0.82``, or for music ``Guitar``, ``Happy music``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MUSIC_LABEL = "Music"
MOOD_LABELS = ("Happy music", "Funny music", "Sad music", "Tender music", "Exciting music", "Angry music",
               "Scary music")
"""AudioSet's music-mood classes."""
MUSIC_THRESHOLD = 0.25
"""Chosen between the 370 development clips (mean "Music" probability 0.52 to 0.92, the lowest a
classical clip) and non-music made with espeak-ng and numpy (speech 0.01-0.12, white and brown
noise, sine tones, clicks 0.01-0.04): about the geometric mean of 0.12 and 0.52, a factor of two
from either side. See README, "Is this music?"."""


@dataclass(frozen=True)
class MusicVerdict:
    """``music``: mean "Music" probability over windows (0-1); ``is_music``: at least
    :data:`MUSIC_THRESHOLD`; ``sounds_like``: the most probable other AudioSet classes (label,
    mean probability), best first; ``moods``: AudioSet's music moods (``Happy music``, ...) the
    same way, best first."""

    music: float
    is_music: bool
    sounds_like: tuple[tuple[str, float], ...]
    moods: tuple[tuple[str, float], ...] = ()

    @property
    def summary(self) -> str:
        """'music (Music 79 %)' or 'not music (sounds like: Speech)'."""
        if self.is_music:
            return f"music ({MUSIC_LABEL} {self.music:.0%})"
        instead = self.sounds_like[0][0] if self.sounds_like else "no sound class in particular"
        return f"not music (sounds like: {instead})"


def music_verdict(audioset: np.ndarray, labels: list[str], *, k: int = 5) -> MusicVerdict:
    """Verdict from (n_windows, n_classes) AudioSet probabilities and their class ``labels``."""
    probs = np.asarray(audioset, dtype=np.float64)
    if probs.ndim != 2 or probs.shape[1] != len(labels) or not len(probs):
        raise ValueError(f"expected (n_windows, {len(labels)}) AudioSet probabilities, got {probs.shape}")
    mean = probs.mean(axis=0)
    music = float(mean[labels.index(MUSIC_LABEL)])
    ranked = [(labels[i], float(mean[i])) for i in np.argsort(mean)[::-1]]
    others = [pair for pair in ranked if pair[0] != MUSIC_LABEL and pair[0] not in MOOD_LABELS][:k]
    moods = [pair for pair in ranked if pair[0] in MOOD_LABELS]
    return MusicVerdict(music, music >= MUSIC_THRESHOLD, tuple(others), tuple(moods))
