"""The Train page's default settings per feature set and model family, and what to expect from
them: the artist-grouped cross-validation figures they were chosen by (measured, never guessed).

The MLP settings (width, dropout, learning rate, L2) and the logistic regressions' L2 were chosen
by ``benchmarks/train_defaults.py`` (see :data:`MEASURED`): among a few candidates, the highest
CV balanced accuracy, for an MLP only among those whose median best epoch is 5 or more, so that a
default run improves over several epochs and its live curves mean something. A run on the page
holds out one artist-grouped split, so its score lands within about one fold standard deviation
of the CV mean.
"""
from __future__ import annotations

from dataclasses import dataclass

from genre import backbones
from genre.models import ModelSpec

FAMILY_TITLES = {"mlp": "MLP on feature rows", "logreg": "Logistic regression (exact fit, seconds)",
                 "cnn": "CNN on log-mel patches"}


@dataclass(frozen=True)
class CVFigure:
    """Repeated artist-grouped cross-validation of one setting: mean and standard deviation over
    ``folds`` folds of clip-level accuracy and balanced accuracy (in [0, 1]), and the median epoch
    whose weights early stopping kept (0 for a logistic regression); ``source`` says how it was
    measured."""

    accuracy: float
    accuracy_sd: float
    balanced: float
    balanced_sd: float
    folds: int
    median_best_epoch: int
    source: str

    def expected(self) -> str:
        """'about 62 % ± 9 accuracy on unseen artists (balanced 60 % ± 10)': means and standard
        deviations over the folds, in percent and percentage points."""
        return (f"about {100 * self.accuracy:.0f} % ± {100 * self.accuracy_sd:.0f} accuracy on unseen artists "
                f"(balanced {100 * self.balanced:.0f} % ± {100 * self.balanced_sd:.0f})")


@dataclass(frozen=True)
class Recommendation:
    """The default ``spec`` of a feature kind and family, with its ``cv`` figure (None if none was
    measured for exactly these settings)."""

    kind: str
    spec: ModelSpec
    cv: CVFigure | None


MEASURED = "5 artist-grouped folds x 3 seeds on 370 GTZAN clips, `benchmarks/train_defaults.py`, 2026-12-01"
"""How the table was measured (the command and its full output are in benchmarks/README.md)."""
_CNN_SOURCE = "5 artist-grouped folds on 370 GTZAN clips, `benchmarks/accuracy.py --recipes cnn`, 2026-11-30"

_HANDCRAFTED_MLP = ModelSpec(family="mlp", hidden=(128,), dropout=0.3, learning_rate=3e-4, l2=1e-2, epochs=100,
                             patience=10, batch_size=64)
_BACKBONE_MLP = ModelSpec(family="mlp", hidden=(64,), dropout=0.5, learning_rate=3e-4, l2=1e-2, epochs=100,
                          patience=10, batch_size=256)


def _logreg(l2: float) -> ModelSpec:
    return ModelSpec(family="logreg", hidden=(), dropout=0.0, l2=l2, epochs=500)


def _measured(kind: str, spec: ModelSpec, accuracy: float, accuracy_sd: float, balanced: float, balanced_sd: float,
              best_epoch: int) -> Recommendation:
    return Recommendation(kind, spec, CVFigure(accuracy=accuracy, accuracy_sd=accuracy_sd, balanced=balanced,
                                               balanced_sd=balanced_sd, folds=15, median_best_epoch=best_epoch,
                                               source=MEASURED))


_TABLE = (
    _measured(backbones.HANDCRAFTED, _HANDCRAFTED_MLP, 0.622, 0.091, 0.598, 0.101, 78),
    _measured(backbones.HANDCRAFTED, _logreg(3e-2), 0.604, 0.076, 0.594, 0.103, 0),
    _measured("MSD_musicnn", _BACKBONE_MLP, 0.721, 0.086, 0.734, 0.102, 100),
    _measured("MSD_musicnn", _logreg(3e-2), 0.749, 0.085, 0.761, 0.102, 0),
    _measured("mn04", _BACKBONE_MLP, 0.736, 0.072, 0.713, 0.085, 100),
    _measured("mn04", _logreg(1e-3), 0.777, 0.076, 0.744, 0.074, 0),
    _measured("MSD_musicnn+mn04", _BACKBONE_MLP, 0.770, 0.075, 0.746, 0.092, 100),
    _measured("MSD_musicnn+mn04", _logreg(1e-3), 0.810, 0.074, 0.785, 0.076, 0),
)
"""The chosen defaults with (accuracy, its sd, balanced accuracy, its sd, median best epoch) over the
15 folds, copied from the output of ``benchmarks/train_defaults.py`` (README, "The Train page")."""
_CNN = Recommendation(backbones.HANDCRAFTED,
                      ModelSpec(family="cnn", hidden=(16, 32, 64), dropout=0.3, epochs=30, patience=6, batch_size=32),
                      CVFigure(accuracy=0.582, accuracy_sd=0.047, balanced=0.525, balanced_sd=0.116, folds=5,
                               median_best_epoch=16, source=_CNN_SOURCE))
"""The CNN recipe of ``benchmarks/accuracy.py`` (README's accuracy table; best epochs 16, 23, 21, 6, 16)."""


def families(kind: str) -> list[str]:
    """Model families offered for a feature kind, the default first: an MLP for the hand-crafted
    features (CNN on their log-mel patches too), a logistic regression for backbone embeddings."""
    return ["mlp", "logreg", "cnn"] if kind == backbones.HANDCRAFTED else ["logreg", "mlp"]


def recommended(kind: str, family: str) -> Recommendation:
    """The default settings of ``family`` on ``kind`` and their measured CV figure; for a pair
    never measured (MusiCNN-MTT, a CNN), settings like the measured ones and no figure."""
    if family == "cnn":
        return _CNN if kind == backbones.HANDCRAFTED else Recommendation(kind, _CNN.spec, None)
    for rec in _TABLE:
        if rec.kind == kind and rec.spec.family == family:
            return rec
    mlp = _HANDCRAFTED_MLP if kind == backbones.HANDCRAFTED else _BACKBONE_MLP
    return Recommendation(kind, mlp if family == "mlp" else _logreg(3e-3), None)


def table() -> tuple[Recommendation, ...]:
    """Every measured default (for the README and tests)."""
    return _TABLE
