"""Accuracy of every recipe on the artist-filtered GTZAN subset in ../shared/gtzan.

For each recipe: clip-level accuracy, balanced accuracy and per-genre recall on the
artist-filtered valid list after training on the train list (early stopping on that valid list,
as the Train page does), plus 5-fold cross-validation over train+valid grouped by artist
(mean +- std), which is steadier: the valid list holds only 2-3 clips of some genres.

    python benchmarks/accuracy.py [--data ../shared/gtzan] [--folds 5] [--recipes seed,mlp,...]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from genre.backbones.embeddings import backbone_config  # noqa: E402
from genre.dataset import discover, find_split_lists, grouped_folds, split_from_lists  # noqa: E402
from genre.features import FeatureConfig  # noqa: E402
from genre.models import ModelSpec  # noqa: E402
from genre.pipeline import ClipFeatures  # noqa: E402
from genre.store import FeatureStore  # noqa: E402
from genre.train import train_model  # noqa: E402

SEED_GROUPS = ("mfcc", "mel", "chroma", "tonnetz")


@dataclass(frozen=True)
class Recipe:
    name: str
    description: str
    config: FeatureConfig
    spec: ModelSpec
    columns: str | None = None  # keep only feature columns ending with this suffix


RECIPES = {
    "seed": Recipe("seed", "seed: clip means of MFCC, mel, chroma, tonnetz -> MLP",
                   FeatureConfig(segment_seconds=30.0, groups=SEED_GROUPS), ModelSpec(hidden=(256, 128)), "_mean"),
    "mlp": Recipe("mlp", "hand-crafted 3 s segment stats -> MLP", FeatureConfig(),
                  ModelSpec(hidden=(128,), dropout=0.5, l2=1e-3)),
    "cnn": Recipe("cnn", "log-mel 3 s patches -> CNN", FeatureConfig(),
                  ModelSpec(family="cnn", hidden=(16, 32, 64), dropout=0.3, epochs=30, patience=6, batch_size=32)),
    "msd": Recipe("msd", "MusiCNN-MSD penultimate (3 s) -> linear head", backbone_config("MSD_musicnn"),
                  ModelSpec(hidden=(), dropout=0.0, l2=3e-2, learning_rate=3e-4, epochs=150, patience=15)),
    "mtt": Recipe("mtt", "MusiCNN-MTT penultimate (3 s) -> linear head", backbone_config("MTT_musicnn"),
                  ModelSpec(hidden=(), dropout=0.0, l2=1e-3, epochs=100, patience=10)),
    "msd-pooled": Recipe("msd-pooled", "MusiCNN-MSD pooled mid-end (3 s) -> linear head",
                         backbone_config("MSD_musicnn", groups=("pooled",)),
                         ModelSpec(hidden=(), dropout=0.0, l2=3e-2, learning_rate=3e-4, epochs=150, patience=15)),
    "msd-both": Recipe("msd-both", "MusiCNN-MSD penultimate + pooled (3 s) -> linear head",
                       backbone_config("MSD_musicnn", groups=("penultimate", "pooled")),
                       ModelSpec(hidden=(), dropout=0.0, l2=3e-2, learning_rate=3e-4, epochs=150, patience=15)),
    "msd-mlp": Recipe("msd-mlp", "MusiCNN-MSD penultimate (3 s) -> MLP 128", backbone_config("MSD_musicnn"),
                      ModelSpec(hidden=(128,), dropout=0.5, l2=1e-3, epochs=100, patience=10)),
    "mtt-mlp": Recipe("mtt-mlp", "MusiCNN-MTT penultimate (3 s) -> MLP 128", backbone_config("MTT_musicnn"),
                      ModelSpec(hidden=(128,), dropout=0.5, l2=1e-3, epochs=100, patience=10)),
}


def select_columns(features: dict[str, ClipFeatures], suffix: str | None) -> dict[str, ClipFeatures]:
    if not suffix:
        return features
    keep = [i for i, n in enumerate(next(iter(features.values())).names) if n.endswith(suffix)]
    return {p: replace(f, rows=f.rows[:, keep], names=[f.names[i] for i in keep]) for p, f in features.items()}


def evaluate_recipe(recipe: Recipe, df, features, lists_split, folds) -> dict:
    t0 = time.time()
    lists = train_model(df, features, lists_split, recipe.config, recipe.spec)
    cv = [train_model(df, features, fold, recipe.config, recipe.spec) for fold in folds]
    return {"lists": lists.report, "best_epoch_lists": lists.card.metrics["best_epoch"],
            "cv_acc": [r.report["accuracy"] for r in cv], "cv_bal": [r.report["balanced_accuracy"] for r in cv],
            "cv_best_epochs": [r.card.metrics["best_epoch"] for r in cv], "seconds": time.time() - t0}


def spread(values: list[float], sep: str = " ± ") -> str:
    """'mean ± sd' of fold results, or 'not run' without folds."""
    return f"{np.mean(values):.3f}{sep}{np.std(values):.3f}" if values else "not run"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "gtzan"))
    p.add_argument("--folds", type=int, default=5, help="artist-grouped CV folds (0: valid list only)")
    p.add_argument("--recipes", default=",".join(RECIPES))
    p.add_argument("--jobs", type=int, default=-1)
    args = p.parse_args(argv)
    df = discover(args.data)
    lists = find_split_lists(args.data)
    if lists is None:
        sys.exit(f"no splits/ list files under {args.data}")
    lists_split = split_from_lists(df, *lists)
    df = df.iloc[np.sort(np.concatenate([lists_split.train, lists_split.valid]))].reset_index(drop=True)
    df.attrs["root"] = args.data
    lists_split = split_from_lists(df, *lists)
    folds = grouped_folds(df, n_splits=args.folds) if args.folds else []
    store = FeatureStore()
    print(f"{len(df)} clips (train list {len(lists_split.train)}, valid list {len(lists_split.valid)}); "
          f"{len(folds)} artist-grouped folds over both\n", flush=True)
    results = {}
    for name in args.recipes.split(","):
        recipe = RECIPES[name]
        built = store.build(df["path"], recipe.config, n_jobs=args.jobs)
        if built.failed:
            print(f"  {name}: {len(built.failed)} clips failed to extract", file=sys.stderr)
        results[name] = evaluate_recipe(recipe, df, select_columns(built.features, recipe.columns), lists_split, folds)
        r = results[name]
        print(f"{name:<11} valid acc {r['lists']['accuracy']:.3f} bal {r['lists']['balanced_accuracy']:.3f} | "
              f"cv acc {spread(r['cv_acc'], '+-')} bal {spread(r['cv_bal'], '+-')} | best epochs {r['cv_best_epochs']} "
              f"| {r['seconds']:.0f} s", flush=True)
    labels = next(iter(results.values()))["lists"]["labels"]
    print("\n| recipe | valid acc | valid bal. acc | CV acc (mean ± sd) | CV bal. acc (mean ± sd) |")
    print("|---|---|---|---|---|")
    for name, r in results.items():
        print(f"| {RECIPES[name].description} | {r['lists']['accuracy']:.3f} | {r['lists']['balanced_accuracy']:.3f} "
              f"| {spread(r['cv_acc'])} | {spread(r['cv_bal'])} |")
    print("\nPer-genre recall on the valid list (support in brackets):\n")
    support = next(iter(results.values()))["lists"]["per_class"]
    print("| recipe | " + " | ".join(f"{lab} ({support[lab]['support']})" for lab in labels) + " |")
    print("|---|" + "---|" * len(labels))
    for name, r in results.items():
        print(f"| {name} | " + " | ".join(f"{r['lists']['per_class'][lab]['recall']:.2f}" for lab in labels) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
