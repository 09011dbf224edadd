#!/usr/bin/env python3
"""Write the reference fixtures of train/adamw.hpp, train/clip.hpp and train/schedule.hpp.

What it writes (tools/safetensors_np.py; F64 and I64; 14 KB in all)
    tests/fixtures/adamw_clip.safetensors: three training steps of PyTorch 1.13 on four parameters, each step
        torch.nn.utils.clip_grad_norm_(all parameters, max_norm) and then torch.optim.AdamW.step() (foreach=False,
        the single-tensor path), with two parameter groups: weight_decay on the tensors of rank >= 2, 0 on the others.
        param.<name>               F64  the parameters before the first step
        grad.<t>.<name>            F64  the gradient given at step t = 1, 2, 3 (before clipping)
        lr                         F64 [3]  the learning rate of each step (set in both groups)
        output.norm                F64 [3]  what clip_grad_norm_ returned at each step (the norm before clipping)
        output.<t>.clipped.<name>  F64  the gradient after clipping, as AdamW saw it
        output.<t>.param.<name>    F64  the parameter after step t
        output.<t>.m.<name>        F64  AdamW's state['exp_avg'] after step t
        output.<t>.v.<name>        F64  AdamW's state['exp_avg_sq'] after step t
        metadata: "names" and "decayed" (comma-separated), "beta1", "beta2", "eps", "weight_decay", "max_norm"
        (repr of a float), "steps". The gradients are scaled so that steps 1 and 3 are clipped and step 2 is not.
    tests/fixtures/lr_schedules.safetensors: learning rates of the two schedules, by the references' own code:
        <case>.steps I64 [K], <case>.lr F64 [K]; metadata "<case>.<setting>" for each setting.
        transformer_* cases: rate() of the Annotated Transformer (harvardnlp/annotated-transformer,
        the_annotated_transformer.py), Vaswani et al. 5.3 with a factor.
        cosine_* cases: get_lr() of nanoGPT's train.py (linear warmup, cosine decay to min_lr, then min_lr),
        evaluated at it = step. These are Python transcriptions of those functions, not PyTorch.

How to rerun (from the repository root)
    apt-get install -y python3-torch python3-numpy     # if missing
    /usr/bin/python3 tools/make_adamw_fixtures.py
    Deterministic: a fixed seed, the same bytes on every run. The AdamW steps are also recomputed in numpy from
    the definition (REFERENCE.md, "Training"), and the script stops if the two disagree beyond 1e-13.
"""

import math
import os
import sys

import numpy as np
import torch

sys.dont_write_bytecode = True  # no tools/__pycache__ in the work tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_np  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DIR = os.path.join(ROOT, "tests", "fixtures")

torch.set_default_dtype(torch.float64)
torch.set_num_threads(1)

# The parameters of a small model, as the C++ test's fake model names them: a weight, a bias, a norm weight and an
# embedding table (ranks 2, 1, 1, 2).
SHAPES = [("linear.weight", (3, 4)), ("linear.bias", (3,)), ("norm.weight", (4,)), ("embedding.weight", (5, 4))]
LRS = [0.02, 0.05, 0.03]
GRAD_SCALES = [3.0, 0.05, 2.0]  # gradient norms about 19, 0.3 and 12 against max_norm 1: clipped, not, clipped
BETAS = (0.9, 0.95)
EPS = 1e-8
WEIGHT_DECAY = 0.1
MAX_NORM = 1.0


def adamw_case():
    gen = torch.Generator().manual_seed(20261204)
    names = [n for n, _ in SHAPES]
    params = {n: torch.nn.Parameter(torch.randn(s, generator=gen)) for n, s in SHAPES}
    grads = [{n: torch.randn(s, generator=gen) * scale for n, s in SHAPES} for scale in GRAD_SCALES]
    decayed = [n for n in names if params[n].dim() >= 2]
    groups = [{"params": [params[n] for n in decayed], "weight_decay": WEIGHT_DECAY},
              {"params": [params[n] for n in names if n not in decayed], "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=LRS[0], betas=BETAS, eps=EPS, foreach=False)

    out = {f"param.{n}": params[n].detach().numpy().copy() for n in names}
    out["lr"] = np.array(LRS)
    norms = []
    for t, (lr, step_grads) in enumerate(zip(LRS, grads), start=1):
        for n in names:
            params[n].grad = step_grads[n].clone()
            out[f"grad.{t}.{n}"] = step_grads[n].numpy().copy()
        norm = torch.nn.utils.clip_grad_norm_([params[n] for n in names], MAX_NORM)
        norms.append(float(norm))
        for g in opt.param_groups:
            g["lr"] = lr
        for n in names:
            out[f"output.{t}.clipped.{n}"] = params[n].grad.numpy().copy()
        opt.step()
        for n in names:
            state = opt.state[params[n]]
            out[f"output.{t}.param.{n}"] = params[n].detach().numpy().copy()
            out[f"output.{t}.m.{n}"] = state["exp_avg"].numpy().copy()
            out[f"output.{t}.v.{n}"] = state["exp_avg_sq"].numpy().copy()
    out["output.norm"] = np.array(norms)
    clipped = [norm > MAX_NORM for norm in norms]
    if clipped != [True, False, True]:
        sys.exit(f"make_adamw_fixtures: expected steps 1 and 3 clipped and step 2 not; norms {norms}")
    check_with_numpy(out, names, decayed)
    metadata = {"names": ",".join(names), "decayed": ",".join(decayed), "beta1": repr(BETAS[0]), "beta2": repr(BETAS[1]),
                "eps": repr(EPS), "weight_decay": repr(WEIGHT_DECAY), "max_norm": repr(MAX_NORM), "steps": str(len(LRS))}
    return out, metadata


def check_with_numpy(out, names, decayed):
    """The definition, independently: clip by max_norm / (total + 1e-6) when that is < 1, then AdamW."""
    p = {n: out[f"param.{n}"].copy() for n in names}
    m = {n: np.zeros_like(p[n]) for n in names}
    v = {n: np.zeros_like(p[n]) for n in names}
    for t, lr in enumerate(LRS, start=1):
        g = {n: out[f"grad.{t}.{n}"].copy() for n in names}
        total = math.sqrt(sum(float((g[n] ** 2).sum()) for n in names))
        coef = MAX_NORM / (total + 1e-6)
        if coef < 1:
            g = {n: g[n] * coef for n in names}
        for n in names:
            if n in decayed:
                p[n] = p[n] * (1 - lr * WEIGHT_DECAY)
            m[n] = BETAS[0] * m[n] + (1 - BETAS[0]) * g[n]
            v[n] = BETAS[1] * v[n] + (1 - BETAS[1]) * g[n] * g[n]
            mhat = m[n] / (1 - BETAS[0] ** t)
            vhat = v[n] / (1 - BETAS[1] ** t)
            p[n] = p[n] - lr * mhat / (np.sqrt(vhat) + EPS)
            for key, ours in (("clipped", g[n]), ("param", p[n]), ("m", m[n]), ("v", v[n])):
                theirs = out[f"output.{t}.{key}.{n}"]
                err = np.max(np.abs(ours - theirs) / np.maximum(1.0, np.abs(theirs)))
                if err > 1e-13:
                    sys.exit(f"make_adamw_fixtures: numpy and torch disagree on {key}.{n} at step {t}: {err}")


def rate(step, model_size, factor, warmup):
    """The Annotated Transformer's rate() (its step-0 guard dropped: our steps count from 1)."""
    return factor * (model_size ** (-0.5) * min(step ** (-0.5), step * warmup ** (-1.5)))


def get_lr(it, learning_rate, min_lr, warmup_iters, lr_decay_iters):
    """nanoGPT's get_lr(), its settings as arguments."""
    if it < warmup_iters:
        return learning_rate * it / warmup_iters
    if it > lr_decay_iters:
        return min_lr
    decay_ratio = (it - warmup_iters) / (lr_decay_iters - warmup_iters)
    assert 0 <= decay_ratio <= 1
    coeff = 0.5 * (1.0 + math.cos(math.pi * decay_ratio))
    return min_lr + coeff * (learning_rate - min_lr)


def schedule_cases():
    out, metadata = {}, {}

    def add(case, steps, lrs, settings):
        out[f"{case}.steps"] = np.array(steps, dtype=np.int64)
        out[f"{case}.lr"] = np.array(lrs, dtype=np.float64)
        for k, val in settings.items():
            metadata[f"{case}.{k}"] = repr(val)

    paper_steps = [1, 2, 3, 10, 100, 1000, 3999, 4000, 4001, 5000, 10000, 100000, 1000000]
    add("transformer_paper", paper_steps, [rate(s, 512, 1.0, 4000) for s in paper_steps],
        {"d_model": 512, "warmup_steps": 4000, "factor": 1.0})
    small_steps = list(range(1, 31))
    add("transformer_small", small_steps, [rate(s, 32, 2.0, 7) for s in small_steps], {"d_model": 32, "warmup_steps": 7, "factor": 2.0})
    cosine_steps = list(range(1, 61))
    add("cosine_nanogpt", cosine_steps, [get_lr(s, 6e-4, 6e-5, 10, 50) for s in cosine_steps],
        {"peak_lr": 6e-4, "min_lr": 6e-5, "warmup_steps": 10, "end_step": 50})
    no_warmup_steps = list(range(1, 26))
    add("cosine_no_warmup", no_warmup_steps, [get_lr(s, 0.1, 0.0, 0, 20) for s in no_warmup_steps],
        {"peak_lr": 0.1, "min_lr": 0.0, "warmup_steps": 0, "end_step": 20})
    return out, metadata


def main():
    tensors, metadata = adamw_case()
    path = os.path.join(OUT_DIR, "adamw_clip.safetensors")
    print(f"{path}: {safetensors_np.save_file(tensors, path, metadata)} bytes")
    tensors, metadata = schedule_cases()
    path = os.path.join(OUT_DIR, "lr_schedules.safetensors")
    print(f"{path}: {safetensors_np.save_file(tensors, path, metadata)} bytes")


if __name__ == "__main__":
    main()
