"""Run musicnn's ORIGINAL TF1 graph on fixed inputs and store its outputs as a test fixture.

    python tools/musicnn_reference.py /tmp/musicnn_wheel/musicnn-0.1.0-py3-none-any.whl \
        [--out tests/fixtures/musicnn_reference.npz]

For MSD_musicnn and MTT_musicnn: parse the checkpoint's ``.meta`` MetaGraphDef, keep only the
inference sub-graph of the output nodes, drop the stale ``_output_shapes`` attributes, import it
in graph mode, restore its variables from the checkpoint and feed ``model/Placeholder`` (log-mel
patches) with ``model/Placeholder_2`` (is_training) = False.

The .npz (load with allow_pickle=False) holds ``inputs`` (3, 187, 96) float32 log-mel patches
(two seeded-random, one from a synthesised chord + drum signal through `log_mel`) and per model
``<name>.tags`` (3, 50) sigmoid probabilities, ``<name>.mean_pool`` / ``<name>.max_pool``
(3, 753) and ``<name>.penultimate`` (3, 200), named as in musicnn's extractor.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from genre.backbones.musicnn import (  # noqa: E402
    MODEL_NAMES, PATCH_FRAMES, SAMPLE_RATE, checkpoint_prefix, log_mel, musicnn_package,
    to_patches,
)

INPUT = "model/Placeholder"
IS_TRAINING = "model/Placeholder_2"
OUTPUTS = {
    "tags": "model/Sigmoid",
    "mean_pool": "model/moments/Squeeze",  # (n, 753, 1): tf.nn.moments mean over time
    "max_pool": "model/Max",  # (n, 753, 1)
    "penultimate": "model/batch_normalization_10/batchnorm/add_1",
    "flat_pool": "model/Flatten/flatten/Reshape",  # (n, 1506): input of batch norm _9
}


def synthetic_inputs() -> np.ndarray:
    """(3, 187, 96) float32: two seeded-random log-mel patches and one of a chord + drums."""
    rng = np.random.default_rng(20190801)
    smooth = np.cumsum(rng.normal(0, 0.15, (PATCH_FRAMES, 96)), axis=0)
    random_patches = [
        rng.uniform(0.0, 4.0, (PATCH_FRAMES, 96)),
        np.clip(2.0 + smooth - smooth.mean(axis=0), 0.0, 6.0),
    ]
    t = np.arange(int(3.5 * SAMPLE_RATE)) / SAMPLE_RATE
    chord = sum(np.sin(2 * np.pi * f * h * t) / h for f in (261.63, 329.63, 392.0)
                for h in (1, 2, 3))
    beat = t % 0.5
    kick = np.sin(2 * np.pi * 55 * beat) * np.exp(-beat * 25)
    hat = rng.normal(0, 1, t.size) * np.exp(-((t + 0.25) % 0.5) * 60)
    y = (0.1 * chord + 0.6 * kick + 0.1 * hat).astype(np.float32)
    music = to_patches(log_mel(y))[0]
    return np.stack([*random_patches, music]).astype(np.float32)


def run_graph(prefix: str, inputs: np.ndarray) -> dict[str, np.ndarray]:
    """Values of the OUTPUTS tensors of the original graph in checkpoint ``prefix``
    for (n, 187, 96) ``inputs``."""
    import tensorflow as tf

    meta = tf.compat.v1.MetaGraphDef()
    meta.ParseFromString(Path(prefix + ".meta").read_bytes())
    graph_def = tf.compat.v1.graph_util.extract_sub_graph(
        meta.graph_def, [*OUTPUTS.values(), INPUT, IS_TRAINING])
    for node in graph_def.node:
        node.attr.pop("_output_shapes", None)
    with tf.Graph().as_default() as graph:
        tf.compat.v1.import_graph_def(graph_def, name="")
        variables = {node.name: graph.get_tensor_by_name(f"{node.name}:0")
                     for node in graph_def.node if node.op == "VariableV2"}
        saver = tf.compat.v1.train.Saver(var_list=variables)
        with tf.compat.v1.Session(graph=graph) as session:
            saver.restore(session, prefix)
            values = session.run({key: f"{name}:0" for key, name in OUTPUTS.items()},
                                 feed_dict={f"{INPUT}:0": inputs, f"{IS_TRAINING}:0": False})
    print(f"{prefix}: restored {len(variables)} variables")
    return values


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("source", metavar="WHEEL_OR_DIR", help="musicnn 0.1.0 wheel or folder")
    parser.add_argument("--out", type=Path, default=ROOT / "tests/fixtures/musicnn_reference.npz")
    args = parser.parse_args()

    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")  # extract_sub_graph's deprecation notice
    tf.compat.v1.disable_eager_execution()
    inputs = synthetic_inputs()
    arrays = {"inputs": inputs}
    with musicnn_package(args.source) as package:
        for name in MODEL_NAMES:
            out = run_graph(checkpoint_prefix(package, name), inputs)
            for key in ("mean_pool", "max_pool"):
                out[key] = out[key][..., 0]  # (n, 753, 1) -> (n, 753), as the extractor does
            # The graph flattens a (753, 2) [max, mean] stack: check the layout we document.
            interleaved = np.stack([out["max_pool"], out["mean_pool"]], axis=-1)
            interleaved = interleaved.reshape(len(inputs), -1)
            assert np.array_equal(out.pop("flat_pool"), interleaved), "unexpected pooled layout"
            arrays.update({f"{name}.{key}": value.astype(np.float32) for key, value in out.items()})
            print(name, {key: value.shape for key, value in out.items()},
                  "top tags of the music patch:", np.argsort(out["tags"][-1])[::-1][:5])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **arrays)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e3:.0f} kB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
