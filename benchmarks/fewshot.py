"""How well a genre is learned from a few examples: the "teach it" feature, measured.

On the development clips of ../shared/gtzan (train + valid lists), with the shipped model's
recipe (MusiCNN + mn04 embeddings, class-weighted logistic regression with the few-clip logit
lift, ``--no-lift`` without it). For each draw (seed), the clips are split into 5 artist-grouped
folds (genre.dataset.grouped_folds); each fold in turn is the test side and the others the
training side, so every clip is tested once per draw and no test clip shares an artist with a
training clip.

**A new genre from k examples.** For each fold and genre G: a model is trained on the training
side *without* G (9 genres: the reference for the others), and models trained on the training
side without G plus k clips of G (k in --ks). ``--draw artists`` (default) takes the k clips from
as many artists as it can (one clip per artist, artists in an order drawn by the seed), as a person
choosing examples of a genre would; ``--draw few`` takes them artist by artist, so from as few
artists as possible (the harder case). Reported per k: G's recall on the test side (clips of
artists none of the k came from; per genre over all its test clips, then the mean over genres),
and the accuracy of the other genres' test clips relative to the 9-genre model (negative: they
lost; mean over folds and genres). ``all`` is G with all its training-side clips, the ceiling.

**Corrections of a confused pair.** For (rock, pop) and (blues, jazz): a model trained on three
folds is run on a fourth (the person's library); k of the clips of the pair it got wrong *within
the pair* are added as corrected examples, and both genres' recall is measured on the fifth fold
before and after.

    python benchmarks/fewshot.py [--data ../shared/gtzan] [--seeds 0,1] [--ks 1,3,5,10] [--draw artists|few]
                                 [--no-lift] [--l2 X] [--no-pairs]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from genre.crossval import CVResult, predict_clips  # noqa: E402
from genre.dataset import Split, grouped_folds, listed_clips  # noqa: E402
from genre.models import DEFAULT_MODEL_DIR, ModelSpec, read_card  # noqa: E402
from genre.store import FeatureStore  # noqa: E402
from genre.train import train_model  # noqa: E402

PAIRS = (("rock", "pop"), ("blues", "jazz"))


def fit_and_predict(df, features, config, spec, train: np.ndarray, test: np.ndarray, seed: int) -> dict[int, str]:
    """{row: predicted genre} of the test rows, for a model fitted on the train rows."""
    fit = train_model(df, features, Split(np.sort(train), np.array([], dtype=int)), config, spec, seed=seed)
    rows, probs = predict_clips(fit.keras_model, df, features, test, fit.card.labels)
    return {int(r): fit.card.labels[i] for r, i in zip(rows, probs.argmax(1))}


def artist_order(df, rows: np.ndarray, rng: np.random.Generator, *, spread: bool) -> np.ndarray:
    """``rows`` in the order examples are taken: ``spread`` = one clip of each artist before a
    second of any (artists in a random order), else artist by artist; clips in a random order."""
    artists = df.iloc[rows]["artist"].fillna(df.iloc[rows]["clip_id"]).to_numpy()
    rank = {a: i for i, a in enumerate(rng.permutation(sorted(set(artists))))}
    shuffled, seen, keys = rng.permutation(len(rows)), {}, []
    for i in shuffled:
        seen[artists[i]] = seen.get(artists[i], 0) + 1
        keys.append((seen[artists[i]], rank[artists[i]]) if spread else (rank[artists[i]], seen[artists[i]]))
    return rows[[shuffled[j] for j in sorted(range(len(shuffled)), key=lambda j: keys[j])]]


def accuracy(predicted: dict[int, str], df, rows) -> float:
    return float(np.mean([predicted[r] == df.iloc[r]["label"] for r in rows])) if len(rows) else float("nan")


def new_genre(df, features, config, spec, seeds, ks, *, spread: bool) -> dict:
    """results[k][genre] = (per test clip of the genre: recalled or not, per fold: change of the
    others' accuracy), over all folds of all draws."""
    labels = np.array(df["label"])
    out: dict = {k: {} for k in [*ks, "all"]}
    for seed in seeds:
        rng = np.random.default_rng(seed)
        for fold in grouped_folds(df, n_splits=5, seed=seed):
            train, test = fold.train, fold.valid
            for genre in sorted(set(labels)):
                others_train, others_test = train[labels[train] != genre], test[labels[test] != genre]
                genre_test = test[labels[test] == genre]
                pool = artist_order(df, train[labels[train] == genre], rng, spread=spread)
                base = accuracy(fit_and_predict(df, features, config, spec, others_train, others_test, seed), df,
                                others_test)
                for k in [*ks, "all"]:
                    chosen = pool if k == "all" else pool[:k]
                    said = fit_and_predict(df, features, config, spec, np.concatenate([others_train, chosen]),
                                           test, seed)
                    hits, changes = out[k].setdefault(genre, ([], []))
                    hits.extend(said[r] == genre for r in genre_test)
                    changes.append(accuracy(said, df, others_test) - base)
            print(f"  seed {seed} fold {fold.info['fold']}: " + ", ".join(
                f"k={k} recall {np.mean([np.mean(h) for h, _ in out[k].values() if h]):.2f}" for k in out), flush=True)
    return out


def corrections(df, features, config, spec, seeds, ks) -> dict:
    """results[pair][k] = list over seeds of (recall of the first genre, of the second)."""
    labels = np.array(df["label"])
    out: dict = {}
    for seed in seeds:
        rng = np.random.default_rng(seed)
        folds = grouped_folds(df, n_splits=5, seed=seed)
        test, library = folds[0].valid, folds[1].valid
        train = np.setdiff1d(np.arange(len(df)), np.concatenate([test, library]))
        said_library = fit_and_predict(df, features, config, spec, train, library, seed)
        for pair in PAIRS:
            wrong = np.array([r for r in library if labels[r] in pair and said_library[r] in pair
                              and said_library[r] != labels[r]], dtype=int)
            wrong = rng.permutation(wrong)
            in_pair = test[np.isin(labels[test], pair)]
            for k in [0, *ks]:
                if k > len(wrong):
                    continue
                said = fit_and_predict(df, features, config, spec, np.concatenate([train, wrong[:k]]), in_pair, seed)
                recalls = tuple(float(np.mean([said[r] == g for r in in_pair if labels[r] == g])) for g in pair)
                out.setdefault(pair, {}).setdefault(k, []).append(recalls)
            print(f"  seed {seed} {pair}: {len(wrong)} library clips wrong within the pair", flush=True)
    return out


def interval(values) -> str:
    values = [v for v in values if not np.isnan(v)]
    mean, low, high = CVResult.interval(values)
    return f"{mean:.2f} ({low:.2f}-{high:.2f})" if len(values) > 1 else f"{mean:.2f}"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "gtzan"))
    p.add_argument("--seeds", default="0,1")
    p.add_argument("--ks", default="1,3,5,10")
    p.add_argument("--draw", choices=("artists", "few"), default="artists",
                   help="take the k examples from as many artists as possible (default) or as few")
    p.add_argument("--no-lift", action="store_true", help="without the few-clip logit lift (ModelSpec.logit_adjust)")
    p.add_argument("--l2", type=float, default=None, help="the logistic regression's L2 (default: the shipped model's)")
    p.add_argument("--no-pairs", action="store_true", help="skip the confused-pair part")
    p.add_argument("--jobs", type=int, default=-1)
    args = p.parse_args(argv)
    seeds, ks = [int(s) for s in args.seeds.split(",")], [int(k) for k in args.ks.split(",")]
    try:
        df, _ = listed_clips(args.data)
    except ValueError as err:
        sys.exit(str(err))
    card = read_card(DEFAULT_MODEL_DIR)
    changes = {**({"l2": args.l2} if args.l2 is not None else {}), **({"logit_adjust": False} if args.no_lift else {})}
    config, spec = card.config, ModelSpec(**{**card.spec, **changes})
    started = time.time()
    built = FeatureStore().build(df["path"], config, n_jobs=args.jobs)
    df = df[df["path"].isin(built.features)].reset_index(drop=True)
    print(f"{len(df)} development clips, {config.kind} features ({time.time() - started:.0f} s), "
          f"{spec.family} L2 {spec.l2:g}, few-clip lift {'on' if spec.logit_adjust else 'off'}; seeds {seeds}; "
          f"examples from {'as many' if args.draw == 'artists' else 'as few'} artists as possible\n", flush=True)
    shots = new_genre(df, built.features, config, spec, seeds, ks, spread=args.draw == "artists")
    print(f"\nA new genre from k examples ({len(seeds)} draws x 5 folds x {df['label'].nunique()} genres; recall "
          "per genre over its test clips, then the mean and 95 % interval over genres):\n")
    print("| k | recall of the new genre (unseen artists) | others' accuracy change | genres recalled >= 0.6 |")
    print("|---:|---|---|---:|")
    for k, per_genre in shots.items():
        recalls = [np.mean(hits) for hits, _ in per_genre.values() if hits]
        changes = [c for _, runs in per_genre.values() for c in runs]
        print(f"| {k} | {interval(recalls)} | {np.mean(changes):+.3f} (worst fold {min(changes):+.3f}) | "
              f"{sum(r >= 0.6 for r in recalls)} of {len(recalls)} |")
    k5 = 5 if 5 in shots else ks[-1]
    print(f"\nPer genre, k = {k5} (recall over its test clips; others' accuracy change, mean over folds):\n")
    print("| genre | test clips | recall | others |")
    print("|---|---:|---:|---:|")
    for genre, (hits, runs) in shots[k5].items():
        print(f"| {genre} | {len(hits)} | {np.mean(hits):.2f} | {np.mean(runs):+.3f} |")
    if args.no_pairs:
        return 0
    pairs = corrections(df, built.features, config, spec, seeds, ks)
    print("\nCorrections of a confused pair (k clips the model got wrong within the pair, added with their "
          "true genre; recall of each on a held-out fold):\n")
    print("| pair | k | draws | recall of the first | recall of the second |")
    print("|---|---:|---:|---|---|")
    for pair, by_k in pairs.items():
        for k, values in sorted(by_k.items()):
            print(f"| {pair[0]} / {pair[1]} | {k} | {len(values)} | {interval([v[0] for v in values])} | "
                  f"{interval([v[1] for v in values])} |")
    print(f"\n{time.time() - started:.0f} s in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
