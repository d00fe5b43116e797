"""How long "Retrain with my examples" takes: the Predict page's run, timed end to end.

The shipped model's recipe (genre.runs.retrain_request) on the development clips of
../shared/gtzan plus an examples folder of --examples clips of a new genre (clips of another
dataset genre relabelled, from the Ogg files), as a server-side run in a worker process, exactly
as the page submits it. The features are extracted first (and cached), so the figure is what a
person waits for when their dataset's embeddings are already in the cache, as after any earlier
training or Dataset map; a cold run adds the extraction, which the Train page announces.

    python benchmarks/retrain.py [--data ../shared/gtzan] [--examples 5] [--repeats 3]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from genre import runs  # noqa: E402
from genre.dataset import discover_all  # noqa: E402
from genre.examples import add_example  # noqa: E402
from genre.models import DEFAULT_MODEL_DIR, read_card  # noqa: E402
from genre.store import FeatureStore  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "gtzan"))
    p.add_argument("--examples", type=int, default=5)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)
    card = read_card(DEFAULT_MODEL_DIR)
    with tempfile.TemporaryDirectory() as tmp:
        examples = Path(tmp) / "examples"
        clips = discover_all([args.data])
        for path in clips[clips["label"] == "reggae"]["path"].tolist()[:args.examples]:
            add_example(Path(path).read_bytes(), label="my genre", name=Path(path).name, examples_dir=examples)
        request = runs.retrain_request(card, root=args.data, examples_root=examples)
        started = time.time()
        everything = discover_all(request.roots)
        FeatureStore().build(everything["path"], request.config, n_jobs=-1)
        print(f"{len(everything)} clips ({args.examples} examples), features cached in {time.time() - started:.0f} s; "
              f"recipe: {card.spec['family']} on {card.config.kind}\n")
        print("| run | submit to done s | phases |")
        print("|---:|---:|---|")
        for repeat in range(args.repeats):
            registry = runs.RunRegistry(Path(tmp) / f"models-{repeat}")
            began = time.monotonic()
            run_id, _ = registry.submit(request)
            registry.wait(run_id)
            took = time.monotonic() - began
            snap = registry.get(run_id)
            if snap.state != runs.DONE:
                sys.exit(f"the run ended {snap.state}: {snap.error}")
            phases = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in snap.phase_seconds().items())
            print(f"| {repeat + 1} | {took:.1f} | {phases} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
