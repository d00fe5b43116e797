"""Accuracy of every recipe on the artist-filtered GTZAN subset in ../shared/gtzan.

For each recipe: clip-level accuracy and balanced accuracy on the artist-filtered valid list after
training on the train list, and repeated artist-grouped cross-validation over train+valid (5 folds
x 3 seeds by default: mean and 95 % interval, per-genre recall over all clips), which is steadier:
the valid list holds only 2-3 clips of some genres. Early stopping never watches the clips being
measured: it uses an inner artist-grouped split of the training side (genre.crossval).

    python benchmarks/accuracy.py [--data ../shared/gtzan] [--folds 5] [--seeds 0,1,2] [--recipes seed,mlp,...]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from genre.backbones.embeddings import backbone_config  # noqa: E402
from genre.clip import ClipFeatures  # noqa: E402
from genre.crossval import CVResult, cross_validate, inner_split, predict_clips  # noqa: E402
from genre.dataset import listed_clips  # noqa: E402
from genre.evaluate import classification_report  # noqa: E402
from genre.features import FeatureConfig  # noqa: E402
from genre.models import ModelSpec  # noqa: E402
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
# The two-backbone recipes share one feature store entry (MSD_musicnn+mn04, decoded at 32 kHz, every
# output group stored) and differ in the groups they use; "alone" rows use one backbone's columns.
LINEAR = ModelSpec(family="logreg", hidden=(), dropout=0.0, l2=3e-3, epochs=2000)
FUSED = "MSD_musicnn+mn04"
RECIPES.update({
    "f-msd": Recipe("f-msd", "MusiCNN-MSD penultimate alone -> logistic regression",
                    backbone_config(FUSED, groups=("penultimate",)), LINEAR),
    "f-mn04": Recipe("f-mn04", "mn04 embedding (3 s windows) alone -> logistic regression",
                     backbone_config(FUSED, groups=("embedding",)), LINEAR),
    "f-mn04-as": Recipe("f-mn04-as", "mn04 embedding + AudioSet probabilities -> logistic regression",
                        backbone_config(FUSED, groups=("embedding", "audioset")), LINEAR),
    "fused": Recipe("fused", "MSD penultimate + mn04 embedding -> logistic regression",
                    backbone_config(FUSED, groups=("penultimate", "embedding")), LINEAR),
    "fused-as": Recipe("fused-as", "MSD penultimate + mn04 embedding + AudioSet probabilities -> logistic regression",
                       backbone_config(FUSED), LINEAR),
    "fused-as-nolift": Recipe("fused-as-nolift", "the same without the few-clip logit lift (ModelSpec.logit_adjust)",
                              backbone_config(FUSED), replace(LINEAR, logit_adjust=False)),
    "fused-nocw": Recipe("fused-nocw", "MSD penultimate + mn04 embedding -> logistic regression, no class weights",
                         backbone_config(FUSED, groups=("penultimate", "embedding")),
                         replace(LINEAR, class_weight=False)),
    "fused-mlp": Recipe("fused-mlp", "MSD penultimate + mn04 embedding -> MLP 128",
                        backbone_config(FUSED, groups=("penultimate", "embedding")),
                        ModelSpec(hidden=(128,), dropout=0.5, l2=1e-3, epochs=100, patience=10, batch_size=256)),
    # The Train page's backbone MLP (genre.train_defaults, chosen by CV on each backbone alone).
    "fused-mlp64": Recipe("fused-mlp64", "MSD penultimate + mn04 embedding -> MLP 64, lr 3e-4, L2 1e-2",
                          backbone_config(FUSED, groups=("penultimate", "embedding")),
                          ModelSpec(hidden=(64,), dropout=0.5, learning_rate=3e-4, l2=1e-2, epochs=100, patience=10,
                                    batch_size=256)),
})


def select_columns(features: dict[str, ClipFeatures], suffix: str | None) -> dict[str, ClipFeatures]:
    if not suffix:
        return features
    keep = [i for i, n in enumerate(next(iter(features.values())).names) if n.endswith(suffix)]
    return {p: replace(f, rows=f.rows[:, keep], names=[f.names[i] for i in keep]) for p, f in features.items()}


def evaluate_recipe(recipe: Recipe, df, features, lists_split, *, n_splits: int, seeds: list[int]) -> dict:
    """Valid-list report (trained on the train list, early stopping on an inner split of it) and
    the repeated artist-grouped CV of one recipe."""
    t0 = time.time()
    fit = train_model(df, features, inner_split(df, lists_split.train, seed=0, spec=recipe.spec), recipe.config,
                      recipe.spec)
    ids, probs = predict_clips(fit.keras_model, df, features, lists_split.valid, fit.card.labels)
    lists = classification_report(df.iloc[ids]["label"].tolist(), [fit.card.labels[i] for i in probs.argmax(1)],
                                  sorted(df["label"].unique()))
    cv = cross_validate(df, features, recipe.config, recipe.spec, n_splits=n_splits, seeds=seeds) if n_splits \
        else CVResult()
    return {"lists": lists, "cv": cv, "seconds": time.time() - t0}


def spread(values: list[float]) -> str:
    """'mean (low-high)' of fold results with the 95 % interval, or 'not run' without folds."""
    if not values:
        return "not run"
    mean, low, high = CVResult.interval(values)
    return f"{mean:.3f} ({low:.3f}-{high:.3f})"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "gtzan"))
    p.add_argument("--folds", type=int, default=5, help="artist-grouped CV folds (0: valid list only)")
    p.add_argument("--seeds", default="0,1,2", help="fold seeds: the CV is repeated once per seed")
    p.add_argument("--recipes", default=",".join(RECIPES))
    p.add_argument("--jobs", type=int, default=-1)
    args = p.parse_args(argv)
    try:
        df, lists_split = listed_clips(args.data)
    except ValueError as err:
        sys.exit(str(err))
    seeds = [int(s) for s in args.seeds.split(",")]
    store = FeatureStore()
    print(f"{len(df)} clips (train list {len(lists_split.train)}, valid list {len(lists_split.valid)}); "
          f"{args.folds} artist-grouped folds over both x seeds {seeds}\n", flush=True)
    results = {}
    for name in args.recipes.split(","):
        recipe = RECIPES[name]
        built = store.build(df["path"], recipe.config, n_jobs=args.jobs)
        if built.failed:
            print(f"  {name}: {len(built.failed)} clips failed to extract", file=sys.stderr)
        features = select_columns(built.features, recipe.columns)
        results[name] = r = evaluate_recipe(recipe, df, features, lists_split, n_splits=args.folds, seeds=seeds)
        print(f"{name:<11} valid acc {r['lists']['accuracy']:.3f} bal {r['lists']['balanced_accuracy']:.3f} | "
              f"cv acc {spread(r['cv'].accuracy)} bal {spread(r['cv'].balanced_accuracy)} | "
              f"best epochs {r['cv'].best_epochs} | {r['seconds']:.0f} s", flush=True)
    labels = next(iter(results.values()))["lists"]["labels"]
    print("\n| recipe | valid acc | valid bal. acc | CV acc (mean, 95 % interval) | CV bal. acc (mean, 95 % interval) |")
    print("|---|---|---|---|---|")
    for name, r in results.items():
        print(f"| {RECIPES[name].description} | {r['lists']['accuracy']:.3f} | {r['lists']['balanced_accuracy']:.3f} "
              f"| {spread(r['cv'].accuracy)} | {spread(r['cv'].balanced_accuracy)} |")
    print("\nPer-genre recall over all clips in cross-validation (mean over seeds; clips per genre in brackets):\n")
    counts = df["label"].value_counts()
    print("| recipe | " + " | ".join(f"{lab} ({counts[lab]})" for lab in labels) + " |")
    print("|---|" + "---|" * len(labels))
    for name, r in results.items():
        if r["cv"].recall:
            print(f"| {name} | " + " | ".join(f"{r['cv'].recall[lab]:.2f}" for lab in labels) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
