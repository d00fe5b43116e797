"""A stand-in for ``python -m genre.run_worker`` for the registry's queue and bound tests: the
real worker's ``main`` (priority, events pipe, stop listener), but instead of training it reports
``spec.epochs`` epochs, one every 50 ms (until stopped), and leaves a copy of the shipped
model as the run's result. Run by path: ``python tests/fake_worker.py RUN_DIR FD ...``."""
from __future__ import annotations

import json
import shutil
import sys
import time

from genre import run_worker
from genre.models import DEFAULT_MODEL_DIR


def fake_train_run(run_dir, *, report, stop, threads):
    request = json.loads((run_dir / "request.json").read_text())
    report("phase", phase="training")
    for epoch in range(1, request["spec"]["epochs"] + 1):
        time.sleep(0.05)
        report("epoch", epoch=epoch, logs={"loss": 1.0 / epoch, "val_accuracy": min(1.0, 0.1 * epoch)})
        if stop.is_set():
            break
    shutil.copytree(DEFAULT_MODEL_DIR, run_dir / "model")
    return {"n_clips": 3, "failed_files": [["bad.wav", "is empty (0 bytes)"]], "stopped_early": False}


run_worker.train_run = fake_train_run
sys.exit(run_worker.main())
