"""genre.train_defaults: the Train page's defaults are exactly settings that
benchmarks/train_defaults.py cross-validated, one per feature set and family, and their figures
read as a person would say them."""
from __future__ import annotations

from benchmarks.train_defaults import CANDIDATES, KINDS
from genre import backbones
from genre.train_defaults import families, recommended, table


def test_every_measured_default_is_a_benchmarked_candidate():
    measured = {(rec.kind, rec.spec.family): rec for rec in table()}
    assert set(measured) == {(kind, family) for kind in KINDS for family in ("mlp", "logreg")}
    for (kind, family), rec in measured.items():
        assert rec.spec in [c.spec for c in CANDIDATES[kind][family]], (kind, family)
        assert recommended(kind, family) is rec
        assert rec.cv.folds == 15 and 0 < rec.cv.accuracy < 1 and 0 < rec.cv.balanced_sd < 1
        assert (rec.cv.median_best_epoch == 0) == (family == "logreg")


def test_families_and_unmeasured_pairs():
    assert families(backbones.HANDCRAFTED) == ["mlp", "logreg", "cnn"]
    assert all(families(kind) == ["logreg", "mlp"] for kind in (*backbones.BACKBONES, "MSD_musicnn+mn04"))
    assert recommended("MTT_musicnn", "logreg").cv is None  # never measured: no figure is shown
    assert recommended(backbones.HANDCRAFTED, "cnn").cv.folds == 5


def test_the_figure_in_words():
    cv = recommended(backbones.HANDCRAFTED, "mlp").cv
    text = cv.expected()
    assert text == (f"about {round(100 * cv.accuracy)} % ± {round(100 * cv.accuracy_sd)} accuracy on unseen "
                    f"artists (balanced {round(100 * cv.balanced)} % ± {round(100 * cv.balanced_sd)})")
