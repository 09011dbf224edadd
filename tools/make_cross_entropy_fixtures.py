#!/usr/bin/env python3
"""Write the reference fixtures of train/cross_entropy.hpp with PyTorch 1.13 (Debian's python3-torch).

What it writes
    tests/fixtures/cross_entropy_<case>.safetensors (tools/safetensors_np.py; F64 and I64):
        input.logits    F64 [N, V]
        input.targets   I64 [N]   class ids; some equal the case's ignore_index
        output.loss     F64 [1]   nn.CrossEntropyLoss(ignore_index, label_smoothing, reduction='mean')
        output.dlogits  F64 [N, V] d loss / d logits, from torch autograd
    and metadata "case", "label_smoothing" (repr of a float), "ignore_index" (decimal).

How to rerun (from the repository root)
    apt-get install -y python3-torch python3-numpy     # if missing
    /usr/bin/python3 tools/make_cross_entropy_fixtures.py
    Deterministic: a fixed seed per case, the same bytes on every run. Each case is also recomputed in numpy
    from the definition (REFERENCE.md, "Training"), and the script stops if the two disagree.
"""

import os
import sys

import numpy as np
import torch
import torch.nn as nn

sys.dont_write_bytecode = True  # no tools/__pycache__ in the work tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_np  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DIR = os.path.join(ROOT, "tests", "fixtures")

torch.set_default_dtype(torch.float64)
torch.set_num_threads(1)

# name, N, V, label_smoothing, ignore_index, rows whose target is ignore_index, logits' spread, seed
CASES = [
    ("plain", 6, 7, 0.0, -100, [], 1.0, 1),
    ("smoothing_ignore", 8, 5, 0.1, -100, [2, 5], 2.0, 2),
    ("pad_id", 7, 9, 0.2, 0, [0, 6], 8.0, 3),  # ignore_index 0 as a padding id; large logits need the max subtracted
]


def numpy_reference(logits, targets, eps, ignore):
    """The definition, independently: per kept row (1 - eps)(-log p[y]) + eps mean_c(-log p[c]); mean over kept rows."""
    z = logits - logits.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    kept = targets != ignore
    n, v = logits.shape
    total = 0.0
    grad = np.zeros_like(logits)
    p = np.exp(logp)
    for r in range(n):
        if not kept[r]:
            continue
        total += (1 - eps) * -logp[r, targets[r]] + eps * -logp[r].mean()
        grad[r] = p[r] - eps / v
        grad[r, targets[r]] -= 1 - eps
    count = kept.sum()
    return total / count, grad / count


def main():
    for name, n, v, eps, ignore, ignored_rows, spread, seed in CASES:
        torch.manual_seed(seed)
        logits = (spread * torch.randn(n, v)).requires_grad_(True)
        targets = torch.randint(0, v, (n,))
        if ignore >= 0:
            targets[targets == ignore] = (ignore + 1) % v  # ignore_index is a real class id: only the chosen rows hold it
        for r in ignored_rows:
            targets[r] = ignore
        loss = nn.CrossEntropyLoss(ignore_index=ignore, label_smoothing=eps, reduction="mean")(logits, targets)
        loss.backward()
        arrays = {
            "input.logits": logits.detach().numpy().copy(),
            "input.targets": targets.numpy().astype(np.int64),
            "output.loss": np.array([loss.item()], dtype=np.float64),
            "output.dlogits": logits.grad.numpy().copy(),
        }
        want_loss, want_grad = numpy_reference(arrays["input.logits"], arrays["input.targets"], eps, ignore)
        assert abs(want_loss - loss.item()) < 1e-12, f"{name}: numpy loss {want_loss} vs torch {loss.item()}"
        assert np.max(np.abs(want_grad - arrays["output.dlogits"])) < 1e-12, f"{name}: numpy gradient differs from torch"
        meta = {"case": "cross_entropy_" + name, "label_smoothing": repr(eps), "ignore_index": str(ignore)}
        path = os.path.join(OUT_DIR, f"cross_entropy_{name}.safetensors")
        size = safetensors_np.save_file(arrays, path, meta)
        back, back_meta = safetensors_np.load_file(path)
        assert back_meta == meta and all(np.array_equal(back[k], a) for k, a in arrays.items()), f"{name}: round trip"
        print(f"cross_entropy_{name:30s} {size:6d} bytes  loss {loss.item():.6f}")


if __name__ == "__main__":
    main()
