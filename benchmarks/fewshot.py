"""How well a genre is learned from a few examples: the "teach it" feature, measured.

On the development clips of ../shared/gtzan (train + valid lists), with the shipped model's
recipe (MusiCNN + mn04 embeddings, class-weighted logistic regression). For each draw (seed), the
clips are split into artist-grouped folds (genre.dataset.grouped_folds): one fold is the test
side, the others the training side, so no test clip shares an artist with a training clip.

**A new genre from k examples.** For each genre G in turn: a model is trained on the training side
*without* G (9 genres: the reference for the others), and models trained on the training side
without G plus k clips of G (k in --ks; the clips are taken artist by artist from G's training
side, in an order drawn by the seed, so k examples come from few artists, as a person's would).
Reported per k: G's recall on the test side (clips of artists none of the k came from), and the
accuracy of the other genres' test clips relative to the 9-genre model (negative: they lost).
``all`` is G with all its training-side clips, the ceiling.

**Corrections of a confused pair.** For (rock, pop) and (blues, jazz): a model trained on three
folds is run on a fourth (the person's library); k of the clips of the pair it got wrong *within
the pair* are added as corrected examples, and both genres' recall is measured on the fifth fold
before and after.

    python benchmarks/fewshot.py [--data ../shared/gtzan] [--seeds 0,1,2] [--ks 1,3,5,10] [--l2 X] [--no-pairs]
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


def artist_order(df, rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``rows`` ordered artist by artist (artists in a random order, clips in a random order)."""
    artists = df.iloc[rows]["artist"].fillna(df.iloc[rows]["clip_id"]).to_numpy()
    order = rng.permutation(sorted(set(artists)))
    rank = {a: i for i, a in enumerate(order)}
    shuffled = rng.permutation(len(rows))
    return rows[sorted(shuffled, key=lambda i: rank[artists[i]])]


def accuracy(predicted: dict[int, str], df, rows) -> float:
    return float(np.mean([predicted[r] == df.iloc[r]["label"] for r in rows])) if len(rows) else float("nan")


def new_genre(df, features, config, spec, seeds, ks) -> dict:
    """results[k][genre] = list over seeds of (recall of the genre, change of the others' accuracy)."""
    labels = np.array(df["label"])
    out: dict = {k: {} for k in [*ks, "all"]}
    for seed in seeds:
        rng = np.random.default_rng(seed)
        fold = grouped_folds(df, n_splits=5, seed=seed)[0]
        train, test = fold.train, fold.valid
        for genre in sorted(set(labels)):
            others_train, others_test = train[labels[train] != genre], test[labels[test] != genre]
            genre_test = test[labels[test] == genre]
            pool = artist_order(df, train[labels[train] == genre], rng)
            base = accuracy(fit_and_predict(df, features, config, spec, others_train, others_test, seed), df,
                            others_test)
            for k in [*ks, "all"]:
                chosen = pool if k == "all" else pool[:k]
                said = fit_and_predict(df, features, config, spec, np.concatenate([others_train, chosen]),
                                       test, seed)
                recall = float(np.mean([said[r] == genre for r in genre_test])) if len(genre_test) else float("nan")
                out[k].setdefault(genre, []).append((recall, accuracy(said, df, others_test) - base))
            print(f"  seed {seed} {genre}: " + ", ".join(f"k={k} recall {out[k][genre][-1][0]:.2f} others "
                                                        f"{out[k][genre][-1][1]:+.3f}" for k in out), flush=True)
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
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--ks", default="1,3,5,10")
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
    config, spec = card.config, ModelSpec(**{**card.spec, **({"l2": args.l2} if args.l2 is not None else {})})
    started = time.time()
    built = FeatureStore().build(df["path"], config, n_jobs=args.jobs)
    df = df[df["path"].isin(built.features)].reset_index(drop=True)
    print(f"{len(df)} development clips, {config.kind} features ({time.time() - started:.0f} s), "
          f"{spec.family} L2 {spec.l2:g}; seeds {seeds}\n", flush=True)
    shots = new_genre(df, built.features, config, spec, seeds, ks)
    print(f"\nA new genre from k examples ({len(seeds)} draws x {df['label'].nunique()} genres; mean and 95 % "
          "interval over genres and draws):\n")
    print("| k | recall of the new genre (unseen artists) | others' accuracy change | genres recalled >= 0.6 |")
    print("|---:|---|---|---:|")
    for k, per_genre in shots.items():
        recalls = [r for runs in per_genre.values() for r, _ in runs]
        changes = [c for runs in per_genre.values() for _, c in runs]
        means = [np.nanmean([r for r, _ in runs]) for runs in per_genre.values()]
        print(f"| {k} | {interval(recalls)} | {np.mean(changes):+.3f} (worst {min(changes):+.3f}) | "
              f"{sum(m >= 0.6 for m in means)} of {len(means)} |")
    k5 = 5 if 5 in shots else ks[-1]
    print(f"\nPer genre, k = {k5} (recall; others' accuracy change), mean over draws:\n")
    print("| genre | recall | others |")
    print("|---|---:|---:|")
    for genre, runs in shots[k5].items():
        print(f"| {genre} | {np.nanmean([r for r, _ in runs]):.2f} | {np.mean([c for _, c in runs]):+.3f} |")
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
