"""Choose the Train page's default settings per feature set by artist-grouped cross-validation,
and measure how long each feature set takes to extract per clip (for the page's time estimates).

Cross-validation (:func:`genre.crossval.cross_validate`: artist-grouped folds, early stopping on an
inner artist-grouped split of each training side, never on the measured clips) of a few candidate
settings per feature set and model family on the GTZAN clips in ``--data``:

1. *screen*: every candidate on ``--folds`` folds of the first seed;
2. *confirm*: the chosen candidate of each (feature set, family) on every seed of ``--seeds``.

A candidate is chosen by the highest mean balanced accuracy of the screen; for an MLP only among
those whose median best epoch is at least ``--min-epochs`` (a default run must improve over several
epochs for its live curves to teach anything). The MusiCNN-MSD and mn04 rows use those backbones'
columns of the cached ``MSD_musicnn+mn04`` features (the same segments; MSD hears the 32 kHz decode
resampled to 16 kHz instead of a 16 kHz decode).

``--speed N`` times the extraction of N clips per feature set (decode + features, one thread, as
the training worker on this machine extracts), after one warm-up clip that also loads the backbone.

    GENRE_CACHE_DIR=/work/cache python benchmarks/train_defaults.py [--data ../shared/gtzan]
        [--kinds handcrafted,MSD_musicnn,mn04,MSD_musicnn+mn04] [--folds 5] [--seeds 0,1,2]
        [--min-epochs 5] [--speed 0]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
if __name__ == "__main__":  # before numpy loads BLAS; imported (by a test), it changes nothing
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "TF_NUM_INTRAOP_THREADS"):
        os.environ.setdefault(_var, "1")  # as the training worker on this machine

from genre.backbones.embeddings import DEFAULT_KIND, backbone_config  # noqa: E402
from genre.crossval import CVResult, cross_validate  # noqa: E402
from genre.dataset import discover  # noqa: E402
from genre.features import FeatureConfig  # noqa: E402
from genre.models import ModelSpec  # noqa: E402
from genre.pipeline import features_of, storage_config  # noqa: E402
from genre.store import FeatureStore  # noqa: E402
from genre.ui.jobs import feature_config  # noqa: E402

KINDS = ("handcrafted", "MSD_musicnn", "mn04", DEFAULT_KIND)
SOURCE = {"handcrafted": FeatureConfig(),
          "MSD_musicnn": backbone_config(DEFAULT_KIND, groups=("penultimate",)),
          "mn04": backbone_config(DEFAULT_KIND, groups=("embedding", "audioset")),
          DEFAULT_KIND: backbone_config(DEFAULT_KIND)}
"""Where each feature set's CV features come from (the page's groups; one cache entry for the backbones)."""


@dataclass(frozen=True)
class Candidate:
    name: str
    spec: ModelSpec


def mlp(hidden, dropout, lr, l2, batch=64) -> Candidate:
    return Candidate(f"MLP {','.join(map(str, hidden))} · dropout {dropout:g} · lr {lr:g} · L2 {l2:g} · batch {batch}",
                     ModelSpec(family="mlp", hidden=hidden, dropout=dropout, learning_rate=lr, l2=l2,
                               batch_size=batch, epochs=100, patience=10))


def logreg(l2, iterations=500) -> Candidate:
    return Candidate(f"logistic regression · L2 {l2:g}",
                     ModelSpec(family="logreg", hidden=(), dropout=0.0, l2=l2, epochs=iterations))


CANDIDATES = {
    "handcrafted": {
        "mlp": [mlp((256, 128), 0.3, 1e-3, 1e-4),  # the page's default before this choice
                mlp((128,), 0.5, 3e-4, 1e-3), mlp((128,), 0.5, 1e-4, 1e-3), mlp((64,), 0.5, 3e-4, 1e-2),
                mlp((256,), 0.5, 1e-4, 1e-3), mlp((128,), 0.3, 3e-4, 1e-2), mlp((256, 128), 0.5, 1e-4, 1e-3)],
        "logreg": [logreg(1e-3), logreg(1e-2), logreg(3e-2)],
    },
    **{kind: {"mlp": [mlp((128,), 0.5, 3e-4, 1e-3, 256), mlp((128,), 0.5, 1e-4, 1e-3, 256),
                      mlp((64,), 0.5, 3e-4, 1e-2, 256)],
              "logreg": [logreg(1e-3), logreg(3e-3), logreg(1e-2), logreg(3e-2)]}
       for kind in KINDS[1:]},
}


def interval(values) -> str:
    mean, low, high = CVResult.interval(values)
    return f"{mean:.3f} ({low:.3f}-{high:.3f}, sd {np.std(values):.3f})"


def run_cv(df, features, config, candidate: Candidate, *, folds: int, seeds: list[int]) -> CVResult:
    t0 = time.time()
    cv = cross_validate(df, features, config, candidate.spec, n_splits=folds, seeds=seeds)
    epochs = "-" if candidate.spec.family == "logreg" else f"{np.median(cv.best_epochs):g} {sorted(cv.best_epochs)}"
    print(f"  {candidate.name:<62} seeds {','.join(map(str, seeds))}: acc {interval(cv.accuracy)} "
          f"bal {interval(cv.balanced_accuracy)} | best epochs {epochs} | {time.time() - t0:.0f} s", flush=True)
    return cv


def choose(screened: list[tuple[Candidate, CVResult]], *, min_epochs: int) -> Candidate:
    """Highest mean balanced accuracy; for an MLP among those whose median best epoch >= min_epochs."""
    slow = [(c, cv) for c, cv in screened if c.spec.family == "logreg" or np.median(cv.best_epochs) >= min_epochs]
    pool = slow or screened
    return max(pool, key=lambda item: np.mean(item[1].balanced_accuracy))[0]


def speed(df, kinds, n: int) -> None:
    """Seconds per clip to extract each feature set (decode + features, this process, one thread)."""
    paths = df["path"].iloc[np.linspace(0, len(df) - 1, n + 1).round().astype(int)].tolist()
    print(f"\nExtraction speed: {n} clips per feature set after one warm-up clip; one thread; "
          f"load average {os.getloadavg()[0]:.1f}\n")
    print("| feature set | warm-up clip (s, loads the backbone) | s/clip: mean | min | max |")
    print("|---|---:|---:|---:|---:|")
    for kind in kinds:
        config = storage_config(feature_config(kind))
        t0 = time.perf_counter()
        features_of(paths[0], config)
        warm = time.perf_counter() - t0
        times = []
        for path in paths[1:]:
            t0 = time.perf_counter()
            features_of(path, config)
            times.append(time.perf_counter() - t0)
        print(f"| {kind} | {warm:.2f} | {np.mean(times):.3f} | {min(times):.3f} | {max(times):.3f} |", flush=True)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "gtzan"))
    p.add_argument("--kinds", default=",".join(KINDS))
    p.add_argument("--families", default="mlp,logreg")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--seeds", default="0,1,2", help="the screen uses the first, the confirmation all")
    p.add_argument("--min-epochs", type=int, default=5)
    p.add_argument("--speed", type=int, default=0, help="also time the extraction of N clips per feature set")
    p.add_argument("--speed-kinds", default="handcrafted,MSD_musicnn,MTT_musicnn,mn04," + DEFAULT_KIND)
    args = p.parse_args(argv)
    df = discover(args.data)
    if df.empty:
        sys.exit(f"no clips under {args.data}")
    seeds = [int(s) for s in args.seeds.split(",")]
    store = FeatureStore()
    print(f"{len(df)} clips in {args.data}; {args.folds} artist-grouped folds; screen seed {seeds[0]}, "
          f"confirmation seeds {seeds}; cache {store.root}; {time.strftime('%Y-%m-%d')}", flush=True)
    chosen = []
    for kind in args.kinds.split(","):
        config = SOURCE[kind]
        built = store.build(df["path"], config, n_jobs=1)
        features, rows = built.features, df[df["path"].isin(built.features)].reset_index(drop=True)
        rows.attrs = dict(df.attrs)
        print(f"\n{kind}: {len(rows)} clips, {next(iter(features.values())).rows.shape[1]} features per segment "
              f"({built.computed} extracted now)", flush=True)
        for family in args.families.split(","):
            screened = [(c, run_cv(rows, features, config, c, folds=args.folds, seeds=seeds[:1]))
                        for c in CANDIDATES[kind][family]]
            best = choose(screened, min_epochs=args.min_epochs)
            confirmed = dict((c.name, cv) for c, cv in screened)[best.name]
            if len(seeds) > 1:  # the screen's seed is not run again
                more = run_cv(rows, features, config, best, folds=args.folds, seeds=seeds[1:])
                confirmed = CVResult(accuracy=confirmed.accuracy + more.accuracy,
                                     balanced_accuracy=confirmed.balanced_accuracy + more.balanced_accuracy,
                                     best_epochs=confirmed.best_epochs + more.best_epochs,
                                     n_splits=args.folds, seeds=tuple(seeds))
                print(f"  confirmed on seeds {','.join(map(str, seeds))}: acc {interval(confirmed.accuracy)} "
                      f"bal {interval(confirmed.balanced_accuracy)}", flush=True)
            chosen.append((kind, best, confirmed))
    print("\nChosen defaults (confirmed on every seed):\n")
    print("| feature set | model | CV accuracy (mean, 95 % interval, sd) | CV balanced accuracy | best epochs (median) |")
    print("|---|---|---|---|---|")
    for kind, best, cv in chosen:
        epochs = "-" if best.spec.family == "logreg" else f"{np.median(cv.best_epochs):g}"
        print(f"| {kind} | {best.name} | {interval(cv.accuracy)} | {interval(cv.balanced_accuracy)} | {epochs} |")
    print("\nAs genre/train_defaults.py's _TABLE entries (accuracy, sd, balanced accuracy, sd, median best epoch):\n")
    for kind, best, cv in chosen:
        epochs = 0 if best.spec.family == "logreg" else int(np.median(cv.best_epochs))
        print(f"    _measured({kind!r}, {best.spec!r}, {np.mean(cv.accuracy):.3f}, {np.std(cv.accuracy):.3f}, "
              f"{np.mean(cv.balanced_accuracy):.3f}, {np.std(cv.balanced_accuracy):.3f}, {epochs}),")
    if args.speed:
        speed(df, args.speed_kinds.split(","), args.speed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
