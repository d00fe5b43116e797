"""Clip -> per-segment probabilities -> aggregated top-k genres, for clips of any length.

Audio is decoded up to ``audio.DEFAULT_MAX_SECONDS`` (15 min) and featurised in ~30 s chunks,
so a long track costs bounded memory; every segment of it is classified and the clip's
probabilities are the mean over its sounding segments (silent ones, e.g. room tone before and
after a song, do not vote: :func:`genre.clip.silent_segments`).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from genre.audio import AudioInfo, Decoded, decode, ensure_audible
from genre.backbones import embeddings
from genre.clip import ClipFeatures
from genre.models import LoadedModel, ModelError
from genre.pipeline import clip_features
from genre.verdict import MusicVerdict

UNSURE_BELOW = 0.5
"""A top probability under this is reported as 'not sure'."""


@dataclass
class Prediction:
    """``probs``: (n_labels,) clip probabilities, the mean of the sounding segments' (see
    ``features.silent()``); ``segment_probs``: (n_segments, n_labels) of every segment; ``starts``:
    segment start times in s; ``audio``: what was decoded (rate, length, channels;
    not the samples, so a prediction stays small enough to cache); ``verdict``: whether it is
    music at all (None if AudioSet's outputs could not be had)."""

    labels: list[str]
    probs: np.ndarray
    segment_probs: np.ndarray
    starts: np.ndarray
    features: ClipFeatures
    audio: AudioInfo | None = None
    verdict: MusicVerdict | None = None

    def top(self, k: int = 3) -> list[tuple[str, float]]:
        order = np.argsort(self.probs)[::-1][:k]
        return [(self.labels[i], float(self.probs[i])) for i in order]

    @property
    def genre(self) -> str:
        return self.labels[int(np.argmax(self.probs))]

    @property
    def confidence(self) -> float:
        return float(np.max(self.probs))

    @property
    def unsure(self) -> bool:
        return self.confidence < UNSURE_BELOW


def model_input(model: LoadedModel, feats: ClipFeatures) -> np.ndarray:
    """The array the network eats for these features; ModelError if they do not match it."""
    if model.card.input == "log_mel":
        if feats.log_mel is None:
            raise ModelError(f"{model.name}: needs log-mel patches, which these features lack.")
        x = feats.log_mel.astype(np.float32)
    else:
        if model.card.feature_names and list(model.card.feature_names) != list(feats.names):
            raise ModelError(f"{model.name}: the features computed now differ from the ones it was trained on.")
        x = feats.rows.astype(np.float32)
    expected = tuple(model.keras_model.inputs[0].shape[1:])
    if len(expected) != x.ndim - 1 or any(e is not None and e != n for e, n in zip(expected, x.shape[1:])):
        raise ModelError(f"{model.name}: the network expects inputs of shape {expected}, but its features "
                         f"have shape {tuple(x.shape[1:])}.")
    return x


def predict_features(model: LoadedModel, feats: ClipFeatures) -> Prediction:
    """Classify every segment and average (no decoding); the music verdict comes with it when the
    features carry AudioSet's outputs (else see :func:`predict_decoded`)."""
    x = model_input(model, feats)
    segment_probs = np.asarray(model.keras_model.predict_on_batch(x) if len(x) <= 256
                               else model.keras_model.predict(x, batch_size=256, verbose=0))
    return Prediction(model.labels, feats.sounding(segment_probs).mean(axis=0), segment_probs, feats.starts,
                      feats, verdict=embeddings.music_verdict_of(feats))


def predict_source(model: LoadedModel, source, *, name: str | None = None) -> Prediction:
    """Decode ``source`` (a path or the file's bytes; ``name`` only labels messages), check it is
    not silent, featurise it with the model's own FeatureConfig and classify it.
    Raises AudioError for unusable audio."""
    if name is None and isinstance(source, (str, Path)):
        name = Path(source).name
    decoded = decode(source, sr=model.card.config.sr, name=name)
    return predict_decoded(model, decoded, name=name)


def predict_decoded(model: LoadedModel, decoded: Decoded, *, name: str | None = None) -> Prediction:
    """Check decoded audio (at the model's rate) is not silent, featurise and classify it.
    Raises AudioError for silence."""
    config = model.card.config
    if decoded.sr != config.sr:
        raise ValueError(f"audio decoded at {decoded.sr} Hz; {model.name} needs {config.sr} Hz")
    ensure_audible(decoded.y, name=name or "The clip")
    feats = clip_features(decoded.y, config)
    prediction = predict_features(model, feats)
    prediction.audio = decoded.info
    if prediction.verdict is None:  # features without AudioSet's outputs: mn04 hears the audio itself
        prediction.verdict = embeddings.music_verdict_of(feats, decoded.y, config)
    return prediction
