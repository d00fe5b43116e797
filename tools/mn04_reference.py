"""Reference outputs of EfficientAT mn04_as from the ORIGINAL algorithms, stored as a test fixture.

    python -m venv /tmp/torchenv && /tmp/torchenv/bin/pip install torch==2.13.0 numpy onnxruntime
    /tmp/torchenv/bin/pip download --no-deps torchaudio==2.9.1 -d /tmp/ta
    /tmp/torchenv/bin/python tools/mn04_reference.py /work/shared/backbones/efficientat-mn04 \
        --torchaudio-wheel /tmp/ta/torchaudio-2.9.1-cp311-cp311-manylinux_2_28_x86_64.whl \
        [--out tests/fixtures/mn04_reference.npz]

Independent of ``genre``: the front end is EfficientAT's ``AugmentMelSTFT.forward`` in eval mode
written with torch (conv1d pre-emphasis, ``torch.stft`` with ``torch.hann_window(800,
periodic=False)``, power, torchaudio's own ``compliance.kaldi.get_mel_banks`` + a zero Nyquist
column, ``(log(mel + 1e-5) + 4.5) / 5``); the network is the ONNX export run by onnxruntime.
torchaudio's wheel is only read for ``compliance/kaldi.py`` (pure Python; installing torchaudio
needs a torch build of its own), which is executed with a stand-in ``torchaudio`` module:
``get_mel_banks`` uses nothing from it.

The .npz (load with allow_pickle=False) holds ``audio`` (64000,) float32, 2 s at 32 kHz of an
A-major chord with harmonics and noise bursts; ``spec`` (2, 128, 200): the torch front end of
``audio`` and of 2 s of seeded white noise; ``logits`` (2, 527) / ``features`` (2, 384): the ONNX
outputs for ``spec``; ``spec_short`` (1, 128, 37) (frames 50-86 of the noise), ``logits_short``,
``features_short``; ``mel_banks`` (128, 512) float32 from torchaudio; ``provenance`` (text).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import types
import warnings
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SR = 32000


def load_kaldi(wheel: Path | None) -> tuple[types.ModuleType, str]:
    """torchaudio.compliance.kaldi: the installed one, else the file inside ``wheel``."""
    try:
        import torchaudio.compliance.kaldi as kaldi

        return kaldi, f"torchaudio {kaldi.torchaudio.__version__} (installed)"
    except ImportError:
        if wheel is None:
            raise SystemExit("torchaudio is not installed: pass --torchaudio-wheel") from None
    with zipfile.ZipFile(wheel) as whl:
        source = whl.read("torchaudio/compliance/kaldi.py")
    sys.modules.setdefault("torchaudio", types.ModuleType("torchaudio"))
    kaldi = types.ModuleType("torchaudio_compliance_kaldi")
    exec(compile(source, f"{wheel.name}/torchaudio/compliance/kaldi.py", "exec"), kaldi.__dict__)
    return kaldi, (f"torchaudio/compliance/kaldi.py from {wheel.name} "
                   f"(sha256 {hashlib.sha256(source).hexdigest()})")


def synthetic_audio() -> tuple[np.ndarray, np.ndarray]:
    """(64000,) float32 each: a chord with noise bursts, and white noise (2 s at 32 kHz)."""
    rng = np.random.default_rng(20230604)
    t = np.arange(2 * SR) / SR
    chord = sum(np.sin(2 * np.pi * f * h * t) / h for f in (220.0, 277.18, 329.63)
                for h in (1, 2, 3, 4))
    bursts = rng.standard_normal(t.size) * np.exp(-(t % 0.5) * 40)
    music = (0.08 * chord + 0.1 * bursts).astype(np.float32)
    noise = (0.1 * rng.standard_normal(t.size)).astype(np.float32)
    return music, noise


def torch_front_end(y: np.ndarray, kaldi) -> np.ndarray:
    """EfficientAT's AugmentMelSTFT (n_mels 128, sr 32000, win 800, hop 320, n_fft 1024,
    fmin 0, fmax 15000) in eval mode: (samples,) -> (128, frames) float32."""
    import torch

    x = torch.from_numpy(y)[None]
    x = torch.nn.functional.conv1d(x.unsqueeze(1), torch.as_tensor([[[-0.97, 1]]])).squeeze(1)
    warnings.filterwarnings("ignore", message="stft with return_complex=False")  # as EfficientAT
    x = torch.stft(x, 1024, hop_length=320, win_length=800, center=True, normalized=False,
                   window=torch.hann_window(800, periodic=False), return_complex=False)
    x = (x ** 2).sum(dim=-1)
    banks, _ = kaldi.get_mel_banks(128, 1024, SR, 0.0, 15000, vtln_low=100.0, vtln_high=-500.,
                                   vtln_warp_factor=1.0)
    banks = torch.nn.functional.pad(banks, (0, 1), mode="constant", value=0)
    mel = torch.matmul(banks, x)
    return (((mel + 0.00001).log() + 4.5) / 5.0)[0].numpy().astype(np.float32)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("source", type=Path, help="the efficientat-mn04 folder (mn04_as.onnx)")
    parser.add_argument("--torchaudio-wheel", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=ROOT / "tests/fixtures/mn04_reference.npz")
    args = parser.parse_args()

    import onnxruntime as ort
    import torch

    kaldi, kaldi_origin = load_kaldi(args.torchaudio_wheel)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(args.source / "mn04_as.onnx"), options,
                                   providers=["CPUExecutionProvider"])
    music, noise = synthetic_audio()
    spec = np.stack([torch_front_end(music, kaldi), torch_front_end(noise, kaldi)])
    spec_short = spec[1:, :, 50:87]
    logits, features = session.run(["logits", "features"], {"spec": spec[:, None]})
    logits_short, features_short = session.run(["logits", "features"],
                                               {"spec": spec_short[:, None]})
    banks, _ = kaldi.get_mel_banks(128, 1024, SR, 0.0, 15000, vtln_low=100.0, vtln_high=-500.,
                                   vtln_warp_factor=1.0)
    labels = [line.split(",", 2)[2].strip().strip('"') for line in
              (args.source / "audioset_class_labels_indices.csv").read_text().splitlines()[1:]]
    for name, row in zip(("music", "noise"), logits):
        top = np.argsort(row)[::-1][:5]
        print(name, [(labels[i], round(float(1 / (1 + np.exp(-row[i]))), 3)) for i in top])
    provenance = (f"tools/mn04_reference.py; torch {torch.__version__}; {kaldi_origin}; "
                  f"onnxruntime {ort.__version__} on {args.source / 'mn04_as.onnx'}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        args.out, audio=music, spec=spec, logits=logits, features=features,
        spec_short=np.ascontiguousarray(spec_short), logits_short=logits_short,
        features_short=features_short, mel_banks=banks.numpy().astype(np.float32),
        provenance=np.array(provenance))
    print(provenance)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e3:.0f} kB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
