"""A stand-in for ``python -m genre.run_worker`` for the registry's queue and bound tests and the
Train page's AppTests: the real worker's ``main`` (priority, events pipe, stop listener), but
instead of training it reports ``spec.epochs`` epochs, one every 50 ms (until stopped), and
leaves a copy of the shipped model as the run's result; instead of evaluating a model on the
run's validation clips it reports a comparison made up from the request (6 clips, the other
model trained on ``seed`` of them). Run by path: ``python tests/fake_worker.py RUN_DIR FD ...``."""
from __future__ import annotations

import json
import shutil
import time
from datetime import datetime, timezone
from pathlib import Path

from genre import run_worker
from genre.models import DEFAULT_MODEL_DIR, read_card


def fake_train_run(run_dir, *, report, stop, threads):
    request = json.loads((run_dir / "request.json").read_text())
    report("phase", phase="training")
    for epoch in range(1, request["spec"]["epochs"] + 1):
        time.sleep(0.05)
        report("epoch", epoch=epoch, logs={"loss": 1.0 / epoch, "val_loss": 1.0 / epoch,
                                           "val_accuracy": min(1.0, 0.1 * epoch), "seconds": 0.05})
        if stop.is_set():
            break
    shutil.copytree(DEFAULT_MODEL_DIR, run_dir / "model")
    card = json.loads((run_dir / "model" / "card.json").read_text())
    card["created"] = datetime.now(timezone.utc).isoformat()  # a model of its own, not the default itself
    (run_dir / "model" / "card.json").write_text(json.dumps(card))
    return {"n_clips": 3, "failed_files": [["bad.wav", "is empty (0 bytes)"]], "stopped_early": False}


def fake_compare_run(run_dir, model_dir, *, report, threads):
    seed = json.loads((run_dir / "request.json").read_text())["seed"]
    path = str(Path(model_dir).resolve())
    trained = min(seed, 6)
    unseen = None if trained in (0, 6) else {"n": 6 - trained, "this_run": {"accuracy": 0.5, "balanced_accuracy": 0.5},
                                             "other": {"accuracy": 0.25, "balanced_accuracy": 0.25}}
    report("comparison", path=path, created=read_card(path).created, state="done", model=Path(path).name,
           n_valid=6, unknown_labels=[], failed=0, n=6, trained_on=trained,
           this_run={"accuracy": 0.5, "balanced_accuracy": 0.5}, other={"accuracy": 0.75, "balanced_accuracy": 0.7},
           unseen=unseen)


run_worker.train_run = fake_train_run
run_worker.compare_run = fake_compare_run
run_worker.exit_now(run_worker.main())
