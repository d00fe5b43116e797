"""Train the shipped default model (models/default) on the artist-filtered GTZAN subset.

Recipe: chosen by repeated artist-grouped cross-validation in benchmarks/accuracy.py (default
``fused-as``: frozen MusiCNN-MSD and EfficientAT mn04 embeddings and AudioSet probabilities of every ~3 s segment, side by side
-> linear softmax head with class weights; clip = mean of its segment probabilities). Its card
records the figures measured here before the final fit: the artist-filtered valid list (trained
on the train list) and the repeated artist-grouped cross-validation over train+valid (early
stopping on inner splits, never on the measured clips). The final model is then fitted on
train+valid for the median best epoch count of the cross-validation fits.

    python tools/train_default.py [--data ../shared/gtzan] [--recipe fused-as] [--out models/default]
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from benchmarks.accuracy import RECIPES, evaluate_recipe  # noqa: E402
from genre import backbones  # noqa: E402
from genre.dataset import Split, listed_clips  # noqa: E402
from genre.evaluate import format_report  # noqa: E402
from genre.models import DEFAULT_MODEL_DIR, save_model  # noqa: E402
from genre.store import FeatureStore  # noqa: E402
from genre.train import train_model  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "gtzan"))
    p.add_argument("--recipe", default="fused-as", choices=sorted(RECIPES))
    p.add_argument("--out", default=str(DEFAULT_MODEL_DIR))
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--seeds", default="0,1,2")
    args = p.parse_args(argv)
    recipe = RECIPES[args.recipe]
    df, lists_split = listed_clips(args.data)
    built = FeatureStore().build(df["path"], recipe.config)
    for path, reason in built.failed:
        print(f"skipped {path}: {reason}", file=sys.stderr)

    measured = evaluate_recipe(recipe, df, built.features, lists_split, n_splits=args.folds,
                               seeds=[int(s) for s in args.seeds.split(",")])
    cv = measured["cv"]
    print("artist-filtered valid list (trained on the train list):\n" + format_report(measured["lists"]))
    epochs = int(np.median(cv.best_epochs))
    print(f"cross-validation: accuracy {cv.summary('accuracy')}, balanced {cv.summary()}; final fit {epochs} epochs")

    everything = Split(np.arange(len(df)), np.array([], dtype=int), {"kind": "all (train + valid lists)"})
    final = train_model(df, built.features, everything, recipe.config,
                        type(recipe.spec)(**{**recipe.spec.to_dict(), "epochs": epochs}))
    card = final.card
    card.metrics = {
        "validation": measured["lists"],
        "validation_note": "trained on the artist-filtered train list, measured on the valid list; the shipped "
                           "model was then refitted on both lists",
        "cross_validation": cv.to_dict(),
        "epochs_run": epochs,
    }
    card.data = {"dataset": "GTZAN (Tzanetakis & Cook 2002), artist-filtered train+valid lists "
                            "(Kereliuk, Sturm & Larsen 2015), the clips held in ../shared/gtzan",
                 "n_clips": len(df), "clips_per_genre": df["label"].value_counts().sort_index().to_dict(),
                 "class_weights": "balanced" if recipe.spec.class_weight else "none",
                 "backbones": [b.title for b in backbones.parts(recipe.config.kind)]}
    card.notes = recipe.description
    save_model(final.keras_model, card, args.out, overwrite=True)
    print(f"saved {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
