#!/usr/bin/env python3
"""Three training steps of a tiny GPT-2 in PyTorch, as the fixture of "the loss after a few steps equals PyTorch"
(issue 16; tests/test_gpt2_trainer.cpp).

How to rerun (from the repository root; Debian's python3-torch 1.13 and python3-numpy, nothing else)
    nice -n 10 /usr/bin/python3 tools/make_gpt2_train_fixture.py
    Deterministic: numpy PCG64 generators with a fixed seed, torch in float64 on one thread, tensors in sorted name
    order (tools/safetensors_np.py), config.json with sorted keys; two runs on one machine write the same bytes (the
    script prints each file's sha256). Across BLAS builds the float64 numbers may move in their last bits: torch's
    matrix products go to whichever libblas.so.3 is loaded (metadata "blas" names the one mapped when the committed
    files were written).
    Reused, not copied: the GPT-2 is tools/gpt2_reference.py (plain PyTorch, equal to Hugging Face's
    GPT2LMHeadModel); config.json's field set, the HF tensor names and the independent numpy forward come from
    tools/make_gpt2_fixtures.py; the warmup + cosine rate is get_lr of tools/make_adamw_fixtures.py (nanoGPT's,
    which train/schedule.hpp's WarmupCosineSchedule computes); the BLAS probe is tools/make_train_step_fixture.py's.

The model
    GPT-2 with n_layer 2, n_head 2, n_embd 16, n_positions 16, vocab_size 50 (MLP 4 x 16 = 64 wide), activation
    gelu_new, layer_norm_epsilon 1e-5, the output projection tied to wte (lm_head = wte: its gradient is the sum of
    the lookup's and the projection's), attn_pdrop = embd_pdrop = resid_pdrop = 0 (so no dropout anywhere).
    Initial weights: Hugging Face's GPT2PreTrainedModel._init_weights - wte, wpe and every Conv1D weight N(0, 0.02^2),
    except attn.c_proj.weight and mlp.c_proj.weight N(0, (0.02 / sqrt(2 n_layer))^2) (GPT-2's scaled residual
    init) - then, so that a wrong gradient of any of them shows, every LayerNorm weight 1 + 0.1 N(0, 1) and every bias
    (LayerNorm biases too) 0.1 N(0, 1) instead of HF's 1 and 0. Rounded to float32 and stored; the steps start from
    exactly the stored values, upcast to float64.

One training step s = 1, 2, 3 (torch float64, in this order)
    batch       ids [B = 3, T + 1 = 9], uniform in [0, 50), its own for each step; inputs = ids[:, :-1] [3, 8],
                targets = ids[:, 1:] [3, 8]; positions 0..7 (no padding)
    zero grads  optimizer.zero_grad(set_to_none=True)
    forward     logits = model(inputs) [3, 8, 50]
    loss        F.cross_entropy(logits.reshape(-1, 50), targets.reshape(-1)): the mean over all B T = 24 positions,
                no label smoothing, nothing ignored
    backward    loss.backward()
    clip        total = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0): the L2 norm of every
                gradient together, before clipping (recorded); each gradient is multiplied by
                min(1, 1.0 / (total + 1e-6)). The seed is one whose step 2 is clipped (norm about 1.11) and steps
                1 and 3 are not (about 0.77 and 0.78), so that both branches and a clipped step's effect on AdamW's
                moments are tested (asserted, each norm at least 0.05 from max_norm)
    lr          get_lr(s, peak 1e-2, min 1e-3, warmup 1, end 3): step < warmup: peak s / warmup; step > end: min;
                else min + 0.5 (1 + cos(pi (s - warmup) / (end - warmup))) (peak - min). That is
                WarmupCosineSchedule{1e-2, 1e-3, 1, 3}.lr(s): 1e-2, 5.5e-3, 1e-3. Large, so that the updates show.
    AdamW       torch.optim.AdamW (foreach=False, amsgrad False), betas (0.9, 0.95), eps 1e-8, two parameter groups
                in named_parameters() order: weight_decay 0.1 on the tensors of rank >= 2 (wte, wpe and every
                c_attn / c_proj / c_fc weight), 0 on the rest (biases, LayerNorm weights and biases); the lr of the
                step set in both groups; optimizer.step() (its t = s).

What it writes: tests/fixtures/gpt2_train/
    config.json         a Hugging Face GPT-2 config.json (the hub's field set, make_gpt2_fixtures.hub_config) with
                        the sizes above, the three dropout rates 0.0, bos = eos = 49
    model.safetensors   the INITIAL weights, F32, Hugging Face names and layouts (as load_gpt2 reads them):
                        wte.weight [50, 16], wpe.weight [16, 16], h.{0,1}.ln_1.{weight,bias} [16],
                        h.{i}.attn.c_attn.weight [16, 48] (Conv1D: [in, out], q | k | v) and .bias [48],
                        h.{i}.attn.c_proj.weight [16, 16] / .bias [16], h.{i}.ln_2.*, h.{i}.mlp.c_fc.weight
                        [16, 64] / .bias [64], h.{i}.mlp.c_proj.weight [64, 16] / .bias [16], ln_f.{weight,bias};
                        no lm_head.weight, no mask buffers; metadata {"format": "pt"}
    reference.safetensors  F64 / I64:
        input.ids         I64 [3, 3, 9]  [step, B, T + 1]: the batch of step s is input.ids[s - 1]
        output.loss       F64 [3]        each step's loss (the forward before that step's update)
        output.grad_norm  F64 [3]        what clip_grad_norm_ returned at each step (the norm before clipping)
        output.lr         F64 [3]        the learning rate of each step
        after.<HF name>   F64            every parameter after the third optimizer step, under the names and in
                                         the layouts of model.safetensors (Conv1D weights [in, out])
        __metadata__      every setting above (peak_lr, min_lr, warmup_steps, end_step, beta1, beta2, eps,
                          weight_decay, max_norm, steps, batch, seq_len), the decayed / not decayed names, seed,
                          torch version and BLAS, which steps clipped

Self-checks (the script stops if one fails)
    the first forward's logits equal make_gpt2_fixtures.np_forward (numpy, written separately from the torch model)
    within 1e-12; each loss equals a numpy log-softmax cross-entropy of torch's logits within 1e-13; each norm equals
    numpy's sqrt of the summed squares within 1e-12 relative; the three AdamW steps recomputed in numpy from the
    definition (REFERENCE.md, "Training") from the recorded gradients, clipping included, equal torch's parameters
    within 1e-13; the loss differs from step to step; every parameter tensor moved by more than 1e-3 over the three
    steps (so a test that skipped one would fail); the written files read back bit for bit, and the directory loads
    with gpt2_reference.GPT2LMHeadModel.from_pretrained to exactly the initial weights.
"""

import hashlib
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.dont_write_bytecode = True  # no tools/__pycache__ in the work tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gpt2_reference as g  # noqa: E402
import make_adamw_fixtures  # noqa: E402  (get_lr; importing it sets torch's default dtype to float64)
import make_gpt2_fixtures as gf  # noqa: E402  (hub_config, hf_names, np_forward; sets 1 thread)
import make_train_step_fixture  # noqa: E402  (mapped_blas)
import safetensors_np  # noqa: E402

OUT_DIR = os.path.join(gf.ROOT, "tests", "fixtures", "gpt2_train")

SEED = 20261240  # of seeds 20261216..20261255, one whose step 2 is clipped (norm 1.11) and steps 1, 3 not
N_LAYER, N_HEAD, N_EMBD, N_POSITIONS, VOCAB = 2, 2, 16, 16, 50
INIT_STD = 0.02      # HF's initializer_range
STEPS = 3
BATCH = 3
SEQ_LEN = 8          # T; each batch holds T + 1 ids
PEAK_LR, MIN_LR, WARMUP_STEPS, END_STEP = 1e-2, 1e-3, 1, 3
BETAS = (0.9, 0.95)
ADAM_EPS = 1e-8
WEIGHT_DECAY = 0.1
MAX_NORM = 1.0
CLIP_EPS = 1e-6      # clip_grad_norm_'s: coef = max_norm / (total + 1e-6)
MIN_MOVE = 1e-3      # every tensor must move by more than this over the steps
MAX_TOTAL_BYTES = 120_000

torch.set_num_threads(1)


def initial_weights(cfg, rng):
    """HF-named float32 weights: HF's init, then random LayerNorm parameters and biases (see the top)."""
    d, V, P, inner = cfg.n_embd, cfg.vocab_size, cfg.n_positions, cfg.inner
    proj_std = INIT_STD / math.sqrt(2 * cfg.n_layer)
    w = {"wte.weight": INIT_STD * rng.standard_normal((V, d)),
         "wpe.weight": INIT_STD * rng.standard_normal((P, d))}

    def ln(n):
        w[n + ".weight"] = 1.0 + 0.1 * rng.standard_normal(d)
        w[n + ".bias"] = 0.1 * rng.standard_normal(d)

    def conv(n, nin, nout, std):
        w[n + ".weight"] = std * rng.standard_normal((nin, nout))
        w[n + ".bias"] = 0.1 * rng.standard_normal(nout)

    for i in range(cfg.n_layer):
        p = f"h.{i}."
        ln(p + "ln_1")
        conv(p + "attn.c_attn", d, 3 * d, INIT_STD)
        conv(p + "attn.c_proj", d, d, proj_std)
        ln(p + "ln_2")
        conv(p + "mlp.c_fc", d, inner, INIT_STD)
        conv(p + "mlp.c_proj", inner, d, proj_std)
    ln("ln_f")
    assert sorted(w) == sorted(gf.hf_names(cfg))
    return {k: v.astype(np.float32) for k, v in w.items()}


def numpy_cross_entropy(logits, targets):
    z = logits - logits.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-logp[np.arange(len(targets)), targets].mean())


def numpy_adamw(start, grads, lrs, decayed):
    """The definition (REFERENCE.md, "Training"): clip by max_norm / (total + 1e-6) when < 1, then AdamW, per step."""
    p = {n: v.copy() for n, v in start.items()}
    m = {n: np.zeros_like(v) for n, v in p.items()}
    v2 = {n: np.zeros_like(v) for n, v in p.items()}
    for t, (step_grads, lr) in enumerate(zip(grads, lrs), start=1):
        total = math.sqrt(sum(float((gr * gr).sum()) for gr in step_grads.values()))
        coef = min(1.0, MAX_NORM / (total + CLIP_EPS))
        for n in p:
            gr = step_grads[n] * coef
            if n in decayed:
                p[n] = p[n] * (1 - lr * WEIGHT_DECAY)
            m[n] = BETAS[0] * m[n] + (1 - BETAS[0]) * gr
            v2[n] = BETAS[1] * v2[n] + (1 - BETAS[1]) * gr * gr
            mhat = m[n] / (1 - BETAS[0] ** t)
            vhat = v2[n] / (1 - BETAS[1] ** t)
            p[n] = p[n] - lr * mhat / (np.sqrt(vhat) + ADAM_EPS)
    return p


def train(cfg, w32, batches):
    """The three steps in torch float64. Returns (losses, norms, lrs, grads per step, final params, first logits)."""
    model = g.GPT2LMHeadModel(cfg, torch.float64).load_hf_state_dict(w32)
    for p in model.parameters():
        p.requires_grad_(True)  # gpt2_reference builds an inference model
    model.train()  # no dropout modules: this changes nothing but says what we do
    named = list(model.named_parameters())
    optimizer = torch.optim.AdamW(
        [{"params": [p for _, p in named if p.dim() >= 2], "weight_decay": WEIGHT_DECAY},
         {"params": [p for _, p in named if p.dim() < 2], "weight_decay": 0.0}],
        lr=PEAK_LR, betas=BETAS, eps=ADAM_EPS, foreach=False)
    losses, norms, lrs, grads = [], [], [], []
    first_logits = None
    for step in range(1, STEPS + 1):
        ids = torch.from_numpy(batches[step - 1])
        inputs, targets = ids[:, :-1], ids[:, 1:]
        optimizer.zero_grad(set_to_none=True)
        logits, _ = model(inputs)
        loss = F.cross_entropy(logits.reshape(-1, cfg.vocab_size), targets.reshape(-1))
        want = numpy_cross_entropy(logits.detach().reshape(-1, cfg.vocab_size).numpy(), targets.reshape(-1).numpy())
        assert abs(want - loss.item()) < 1e-13, f"step {step}: numpy loss {want} vs torch {loss.item()}"
        if first_logits is None:
            first_logits = logits.detach().numpy().copy()
        loss.backward()
        grads.append({n: p.grad.detach().numpy().copy() for n, p in named})
        total = float(torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=MAX_NORM))
        want = math.sqrt(sum(float((gr * gr).sum()) for gr in grads[-1].values()))
        assert abs(want - total) < 1e-12 * total, f"step {step}: numpy norm {want} vs torch {total}"
        lr = make_adamw_fixtures.get_lr(step, PEAK_LR, MIN_LR, WARMUP_STEPS, END_STEP)
        for group in optimizer.param_groups:
            group["lr"] = lr
        optimizer.step()
        losses.append(loss.item())
        norms.append(total)
        lrs.append(lr)
    final = {n: p.detach().numpy().copy() for n, p in named}
    decayed = [n for n, p in named if p.dim() >= 2]
    return losses, norms, lrs, grads, final, first_logits, decayed


def main():
    assert torch.get_default_dtype() == torch.float64  # make_adamw_fixtures' setting; the model sets its own anyway
    cfg = g.GPT2Config(n_layer=N_LAYER, n_head=N_HEAD, n_embd=N_EMBD, n_positions=N_POSITIONS, vocab_size=VOCAB,
                       layer_norm_epsilon=1e-5, activation_function="gelu_new", bos_token_id=VOCAB - 1,
                       eos_token_id=VOCAB - 1)
    rng = np.random.default_rng(SEED)
    w32 = initial_weights(cfg, rng)
    batches = rng.integers(0, VOCAB, size=(STEPS, BATCH, SEQ_LEN + 1)).astype(np.int64)

    model_bytes = safetensors_np.serialize(w32, {"format": "pt"})
    stored, _ = safetensors_np.deserialize(model_bytes)
    start = {k: v.astype(np.float64) for k, v in stored.items()}
    losses, norms, lrs, grads, final, first_logits, decayed = train(cfg, stored, batches)

    # --- checks ----------------------------------------------------------------------------------------------------
    inputs = batches[0][:, :-1]
    npl = gf.np_forward(cfg, start, inputs, np.ones_like(inputs), np.broadcast_to(np.arange(SEQ_LEN), inputs.shape))
    err_np = float(np.max(np.abs(npl - first_logits)))
    assert err_np < 1e-12, f"torch vs numpy forward: {err_np}"
    want_final = numpy_adamw(start, grads, lrs, set(decayed))
    err_adam = max(float(np.max(np.abs(want_final[n] - final[n]))) for n in final)
    assert err_adam < 1e-13, f"AdamW recomputed in numpy differs by {err_adam}"
    assert len(set(losses)) == STEPS, losses
    moved = {n: float(np.max(np.abs(final[n] - start[n]))) for n in final}
    least = min(moved, key=moved.get)
    assert moved[least] > MIN_MOVE, f"{least} moved by only {moved[least]}"
    clipped = [n > MAX_NORM for n in norms]
    assert clipped == [False, True, False], f"grad norms {norms}: expected only step 2 above max_norm {MAX_NORM}"
    assert min(abs(n - MAX_NORM) for n in norms) > 0.05, f"grad norms {norms}: too close to max_norm"

    conf = gf.hub_config(N_LAYER, N_HEAD, N_EMBD, N_POSITIONS, VOCAB, VOCAB - 1, VOCAB - 1,
                         {"attn_pdrop": 0.0, "embd_pdrop": 0.0, "resid_pdrop": 0.0})
    reference = {"input.ids": batches,
                 "output.loss": np.array(losses, dtype=np.float64),
                 "output.grad_norm": np.array(norms, dtype=np.float64),
                 "output.lr": np.array(lrs, dtype=np.float64)}
    for n, v in final.items():
        assert v.dtype == np.float64 and v.shape == stored[n].shape, n
        reference["after." + n] = v
    meta = {
        "steps": str(STEPS), "batch": str(BATCH), "seq_len": str(SEQ_LEN),
        "inputs_targets": "inputs = ids[:, :-1], targets = ids[:, 1:]; loss = mean cross-entropy over all B*T",
        "peak_lr": repr(PEAK_LR), "min_lr": repr(MIN_LR), "warmup_steps": str(WARMUP_STEPS), "end_step": str(END_STEP),
        "beta1": repr(BETAS[0]), "beta2": repr(BETAS[1]), "eps": repr(ADAM_EPS), "weight_decay": repr(WEIGHT_DECAY),
        "max_norm": repr(MAX_NORM),
        "decay_rule": "weight_decay on parameters of rank >= 2, 0 on the rest",
        "decayed": ",".join(decayed), "not_decayed": ",".join(n for n in final if n not in decayed),
        "clipped": ",".join("true" if c else "false" for c in clipped),
        "after": "parameters after the last optimizer step, HF names and layouts (Conv1D weights [in, out])",
        "dtype": "float64 from the F32 weights of model.safetensors",
        "seed": str(SEED), "torch_version": torch.__version__, "blas": make_train_step_fixture.mapped_blas(),
    }
    files = {"config.json": gf.config_json_text(conf).encode("utf-8"),
             "model.safetensors": model_bytes,
             "reference.safetensors": safetensors_np.serialize(reference, meta)}

    os.makedirs(OUT_DIR, exist_ok=True)
    stale = sorted(set(os.listdir(OUT_DIR)) - set(files))
    assert not stale, f"stale files in {OUT_DIR}: {stale}"
    for name, data in files.items():
        with open(os.path.join(OUT_DIR, name), "wb") as f:
            f.write(data)

    # --- read back what was written ------------------------------------------------------------------------------
    back, bmeta = safetensors_np.load_file(os.path.join(OUT_DIR, "reference.safetensors"))
    assert bmeta == meta and set(back) == set(reference)
    for k, v in reference.items():
        assert back[k].dtype == v.dtype and np.array_equal(back[k], v), k
    loaded = g.GPT2LMHeadModel.from_pretrained(OUT_DIR)
    with open(os.path.join(OUT_DIR, "config.json")) as f:
        assert json.load(f)["resid_pdrop"] == 0.0
    for k, v in loaded.state_dict().items():
        assert torch.equal(v, torch.from_numpy(start[k])), f"{k} after loading"

    for step in range(STEPS):
        print(f"step {step + 1}: loss {losses[step]:.15f}  grad norm {norms[step]:.15f} "
              f"({'clipped' if clipped[step] else 'not clipped'})  lr {lrs[step]!r}")
    print(f"torch vs numpy forward {err_np:.1e}; AdamW in numpy vs torch {err_adam:.1e}; "
          f"least moved tensor {least} by {moved[least]:.2e}")
    total = 0
    for name, data in files.items():
        total += len(data)
        print(f"gpt2_train/{name:24s} {len(data):7d}  {hashlib.sha256(data).hexdigest()}")
    print(f"{len(files)} files, {total} bytes")
    assert total < MAX_TOTAL_BYTES, total


if __name__ == "__main__":
    main()
