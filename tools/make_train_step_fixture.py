#!/usr/bin/env python3
"""One full training step of the PyTorch translation tutorial's Seq2SeqTransformer, as a fixture.

What it writes
    For each configuration <name> in CONFIGS, a directory tests/fixtures/train_step/<name>/ with
      config.json            the translator fixtures' layout (tools/make_translator_fixtures.py):
                             d_model, nhead, num_encoder_layers, num_decoder_layers,
                             dim_feedforward, activation, norm_first, layer_norm_eps,
                             src_vocab_size, tgt_vocab_size, bos_id, eos_id, pad_id, max_len.
      model.safetensors      the INITIAL state_dict(), all F32, no metadata, the buffer
                             positional_encoding.pos_embedding [max_len, 1, d_model] included: what
                             load_transformer() already reads.
      reference.safetensors  the batch and everything one step computed, F64 / I64 (below).

    Configurations (both: d_model 16, nhead 2, 2 encoder + 2 decoder layers, dim_feedforward 32,
    src vocab 23, tgt vocab 19, max_len 32, layer_norm_eps 1e-5, dropout 0.0 everywhere):
      post_relu   norm_first False, activation relu   (the tutorial's own choice)
      pre_gelu    norm_first True,  activation gelu   (exact, erf-based GELU)

How the step is computed (float64; the tutorial's train_epoch for one batch, with AdamW)
    model   the tutorial's Seq2SeqTransformer, imported from tools/make_translator_fixtures.py
            (the class tools/check_torch_loads_translator.py also uses), built with dropout=0.0
            (nn.Transformer's dropout and PositionalEncoding's), then load_state_dict(strict=True)
            of exactly the F32 values in model.safetensors, then .double() and .train().
    weights the tutorial's init (xavier_uniform_ on every parameter of rank > 1), then every
            LayerNorm weight 1 + 0.1 randn, every LayerNorm bias and every other bias 0.1 randn
            (so that a wrong gradient of any of them shows). Stored as F32.
    batch   B = 3 pairs. src row b: BOS, ids drawn from [4, src_vocab), EOS: lengths SRC_LENGTHS
            (BOS and EOS counted); tgt row b the same with [4, tgt_vocab): lengths TGT_LENGTHS.
            Right-padded with pad_id 1. In the tutorial's layout, src [S, B], tgt [T, B].
    forward tgt_input = tgt[:-1, :], tgt_out = tgt[1:, :] (teacher forcing, as train_epoch);
            src_mask, tgt_mask, src_padding_mask, tgt_padding_mask = create_mask(src, tgt_input)
            (the tutorial's: src_mask bool zeros [S, S]; tgt_mask the float causal mask
            [T-1, T-1] (0 / -inf); padding masks = (ids == pad_id).T);
            logits = model(src, tgt_input, src_mask, tgt_mask, src_padding_mask,
                           tgt_padding_mask, src_padding_mask)  # memory_key_padding_mask = src's
    loss    nn.CrossEntropyLoss(ignore_index=pad_id, label_smoothing=0.1) (reduction 'mean': over
            the targets that are not pad_id) of logits.reshape(-1, V) and tgt_out.reshape(-1).
    grads   optimizer.zero_grad(set_to_none=True); loss.backward().
    clip    total = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=MAX_NORM) (the L2
            norm of all gradients together; since total > max_norm, which the script asserts,
            every gradient is multiplied by max_norm / (total + 1e-6)).
    AdamW   torch.optim.AdamW with two parameter groups, in named_parameters() order:
              decay     every parameter of rank >= 2 (weight matrices, in_proj_weight, both token
                        embedding tables, generator.weight), weight_decay 0.01;
              no decay  every parameter of rank < 2 (all biases, all LayerNorm weights and
                        biases), weight_decay 0.0;
            lr 1e-3, betas (0.9, 0.98), eps 1e-9, amsgrad False; one optimizer.step() (t = 1).
            pos_embedding is a buffer, not a parameter: no gradient, never updated.

reference.safetensors (batch-first: [B, S], [B, T], not the tutorial's [S, B])
    input.src_ids      I64 [B, S]     BOS + ids + EOS, right-padded with pad_id
    input.src_lengths  I64 [B]        lengths including BOS and EOS
    input.tgt_ids      I64 [B, T]     the whole target, BOS + ids + EOS, right-padded; the decoder
                                      input is tgt_ids[:, :-1], the targets tgt_ids[:, 1:]
    input.tgt_lengths  I64 [B]        lengths including BOS and EOS
    output.logits      F64 [B, T-1, V_tgt]  the forward's logits (rows at padded positions too)
    output.loss        F64 [1]        the loss
    output.loss_count  I64 [1]        how many targets were not pad_id (the mean's divisor)
    output.grad_norm   F64 [1]        the total gradient norm before clipping (clip_grad_norm_'s
                                      return value)
    output.clip_coef   F64 [1]        max_norm / (grad_norm + 1e-6), < 1: the factor applied
    grad.<name>        F64            for every parameter <name> of model.named_parameters() (the
                                      state_dict names, without the pos_embedding buffer): its
                                      gradient after backward, BEFORE clipping
    after.<name>       F64            every parameter after the AdamW step
    __metadata__       config, seed, the hyper-parameters (lr, beta1, beta2, eps, weight_decay,
                       max_norm, label_smoothing, ignore_index: repr of numbers), decay_rule,
                       decayed / not_decayed (comma-separated names), batch_first "true",
                       torch_version, blas (the libraries mapped), fd_max_rel_err (the
                       finite-difference check below).
    The C++ side checks: the loss (output.loss); every grad.<name>; every after.<name> (from the
    initial weights in model.safetensors, the same clipping and AdamW).

    Two things to know when choosing tolerances:
      * The key bias of every attention (in_proj_bias[d_model:2 d_model]) has a gradient that is
        zero in exact arithmetic (adding a constant to one query's scores leaves its softmax
        unchanged); torch's values there are rounding noise, |g| < 5e-18 in both configs. AdamW's
        first step moves an entry by about lr * g / (|g| + eps / clip_coef) - lr * wd * p, so that
        noise moves those entries by up to ~2e-12 here, and a C++ noise of 1e-16 would move them
        by ~1e-10: compare after.* with an absolute tolerance (1e-9 is safe), not a relative one.
      * A few gradients are exactly 0 (ReLU units dead on the whole batch, and the embedding rows
        of ids absent from the batch); the step then leaves biases unchanged and only decays
        the embedding rows.

Checks the script makes (it stops on any failure; it prints what it found)
    * the loss recomputed in numpy from output.logits with the definition in REFERENCE.md;
    * each sentence alone (unpadded, batch 1, reduction 'sum') gives the same summed loss as its
      rows of the padded batch: padding is masked everywhere it must be;
    * central finite differences in float64 (h = 1e-5) of the loss with respect to a few entries
      of 14 parameters (for each, the entry of largest |gradient| and two random ones), against
      grad.<name>: |fd - grad| / max(|grad|, 1e-3) printed and asserted below 1e-6 (at h = 1e-6
      rounding dominates: ~1e-10 absolute);
    * clipping happened (grad_norm > max_norm), and the AdamW step recomputed in numpy from the
      formulas of REFERENCE.md (clip, decoupled decay, moments, bias correction) equals after.*;
    * the files read back: model.safetensors loads strictly into the tutorial's model, the
      reference holds exactly one grad.* and one after.* per parameter, with its shape.

How to rerun (from the repository root; Debian's python3-torch 1.13 and numpy)
    nice -n 10 /usr/bin/python3 tools/make_train_step_fixture.py
    Deterministic: the seed of a configuration is sha256(name) (torch.manual_seed), one thread,
    tensors in sorted order (tools/safetensors_np.py), config.json with sorted keys; running it
    twice on the same machine writes the same bytes. Not across BLAS builds: torch's matrix
    products go to whichever libblas.so.3 is loaded (metadata "blas" names what was mapped). The
    committed files were written on OpenBLAS 0.3.21 (OpenMP build, one thread); against Debian's
    reference BLAS, loss and grad_norm differed by <= 4.4e-16, logits by <= 1.4e-15, gradients
    by <= 1.2e-16 and after.* by <= 3.3e-12 (the key-bias noise, below).
"""

import hashlib
import json
import os
import sys

import numpy as np
import torch
import torch.nn as nn

sys.dont_write_bytecode = True  # no tools/__pycache__ in the work tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_translator_fixtures as T  # noqa: E402  (the tutorial's model; sets 1 thread)
import safetensors_np  # noqa: E402

OUT_DIR = os.path.join(T.ROOT, "tests", "fixtures", "train_step")

LR = 1e-3
BETAS = (0.9, 0.98)
ADAM_EPS = 1e-9
WEIGHT_DECAY = 0.01
MAX_NORM = 1.0
CLIP_EPS = 1e-6  # clip_grad_norm_'s: coef = max_norm / (total + 1e-6)
LABEL_SMOOTHING = 0.1
SRC_LENGTHS = [7, 4, 9]  # BOS and EOS included
TGT_LENGTHS = [6, 9, 4]
FD_STEP = 1e-5
FD_TOL = 1e-6
FD_FLOOR = 1e-3  # the rounding error of a difference quotient is ~1e-11 here, whatever the gradient
ADAMW_TOL = 1e-15

COMMON = dict(d_model=16, nhead=2, num_encoder_layers=2, num_decoder_layers=2,
              dim_feedforward=32, layer_norm_eps=1e-5, src_vocab_size=23, tgt_vocab_size=19,
              max_len=32)
CONFIGS = [
    dict(name="post_relu", activation="relu", norm_first=False, **COMMON),
    dict(name="pre_gelu", activation="gelu", norm_first=True, **COMMON),
]

# parameters whose gradient is checked by finite differences (a few of every kind)
FD_PARAMS = [
    "src_tok_emb.embedding.weight",
    "tgt_tok_emb.embedding.weight",
    "transformer.encoder.layers.0.self_attn.in_proj_weight",
    "transformer.encoder.layers.1.linear1.bias",
    "transformer.encoder.layers.1.norm2.weight",
    "transformer.encoder.norm.bias",
    "transformer.decoder.layers.0.self_attn.out_proj.weight",
    "transformer.decoder.layers.1.multihead_attn.in_proj_weight",
    "transformer.decoder.layers.1.multihead_attn.in_proj_bias",
    "transformer.decoder.layers.0.linear2.weight",
    "transformer.decoder.layers.1.norm3.bias",
    "transformer.decoder.norm.weight",
    "generator.weight",
    "generator.bias",
]


def mapped_blas():
    """Basenames of the BLAS / LAPACK libraries this process has mapped (after a matmul)."""
    with open("/proc/self/maps") as f:
        paths = {line.split()[-1] for line in f if len(line.split()) >= 6}
    return ",".join(sorted(os.path.relpath(p, "/usr/lib") for p in paths
                           if any(s in os.path.basename(p) for s in ("blas", "lapack"))))


def seed_for(name):
    s = int.from_bytes(hashlib.sha256(f"train_step/{name}".encode()).digest()[:4], "little")
    torch.manual_seed(s)
    return s


def initial_weights(conf):
    """The tutorial's xavier init, then random LayerNorm parameters and biases. F32 numpy."""
    m = T.model_from_config(conf)
    for p in m.parameters():
        if p.dim() > 1:
            nn.init.xavier_uniform_(p)
    ln = set()
    for mname, mod in m.named_modules():
        if isinstance(mod, nn.LayerNorm):
            ln.update(f"{mname}.{p}" for p, _ in mod.named_parameters(recurse=False))
    with torch.no_grad():
        for name, p in m.named_parameters():
            if name in ln and name.endswith(".weight"):
                p.copy_(1.0 + 0.1 * torch.randn(p.shape))
            elif name in ln or name.endswith("bias"):
                p.copy_(0.1 * torch.randn(p.shape))
    return T.state_dict_numpy(m)


def model64(conf, weights):
    m = T.model_from_config(conf)
    T.load_numpy_state(m, weights)  # strict=True
    m = m.double()
    m.train()  # as train_epoch; dropout is 0, so this only keeps torch off its inference fast path
    return m


def forward_loss(model, src, tgt, reduction="mean"):
    """The tutorial's train_epoch body up to the loss. src [S, B], tgt [T, B]."""
    tgt_input = tgt[:-1, :]
    src_mask, tgt_mask, src_padding_mask, tgt_padding_mask = T.create_mask(src, tgt_input)
    logits = model(src, tgt_input, src_mask, tgt_mask, src_padding_mask, tgt_padding_mask,
                   src_padding_mask)
    loss_fn = nn.CrossEntropyLoss(ignore_index=T.PAD_IDX, label_smoothing=LABEL_SMOOTHING,
                                  reduction=reduction)
    tgt_out = tgt[1:, :]
    return loss_fn(logits.reshape(-1, logits.shape[-1]), tgt_out.reshape(-1)), logits


def numpy_loss(logits, targets):
    """REFERENCE.md's definition: (1 - eps)(-log p[y]) + eps mean_c(-log p[c]), mean over kept."""
    z = logits - logits.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    kept = targets != T.PAD_IDX
    per = (1 - LABEL_SMOOTHING) * -logp[np.arange(len(targets)), targets] \
        + LABEL_SMOOTHING * -logp.mean(axis=1)
    return per[kept].sum() / kept.sum(), int(kept.sum())


def numpy_adamw(p, g, coef, decay):
    """One clipped AdamW step from zero state (t = 1), in torch 1.13's order of operations."""
    g = g * coef
    b1, b2 = BETAS
    p = p * (1 - LR * (WEIGHT_DECAY if decay else 0.0))
    m = (1 - b1) * g
    v = (1 - b2) * (g * g)
    denom = np.sqrt(v) / np.sqrt(1 - b2) + ADAM_EPS
    return p - (LR / (1 - b1)) * (m / denom)


def finite_differences(model, src, tgt, grads, gen):
    """Central differences of the loss for a few entries of FD_PARAMS; returns the rows."""
    params = dict(model.named_parameters())
    rows = []
    for name in FD_PARAMS:
        p = params[name]
        g = grads[name].reshape(-1)
        top = int(np.argmax(np.abs(g)))
        others = [int(i) for i in torch.randperm(g.size, generator=gen)[:3] if int(i) != top]
        picks = [top] + others[:2]
        for i in picks:
            flat = p.data.view(-1)
            old = float(flat[i])
            with torch.no_grad():
                flat[i] = old + FD_STEP
            up = float(forward_loss(model, src, tgt)[0])
            with torch.no_grad():
                flat[i] = old - FD_STEP
            down = float(forward_loss(model, src, tgt)[0])
            with torch.no_grad():
                flat[i] = old
            fd = (up - down) / (2 * FD_STEP)
            err = abs(fd - g[i]) / max(abs(g[i]), FD_FLOOR)  # relative; absolute below FD_FLOOR
            rows.append((name, i, float(g[i]), fd, err))
    return rows


def make_step(cfg):
    name = cfg["name"]
    seed = seed_for(name)
    conf = T.config_json(cfg)
    weights = initial_weights(conf)
    src_bf = T.make_batch(SRC_LENGTHS, conf["src_vocab_size"], with_eos=True)  # [B, S]
    tgt_bf = T.make_batch(TGT_LENGTHS, conf["tgt_vocab_size"], with_eos=True)  # [B, T]
    fd_gen = torch.Generator().manual_seed(seed)

    model_bytes = safetensors_np.serialize(weights)
    stored, _ = safetensors_np.deserialize(model_bytes)
    model = model64(conf, stored)
    names = [n for n, _ in model.named_parameters()]
    decayed = [n for n, p in model.named_parameters() if p.dim() >= 2]
    not_decayed = [n for n, p in model.named_parameters() if p.dim() < 2]
    before = {n: p.detach().numpy().copy() for n, p in model.named_parameters()}

    src = src_bf.transpose(0, 1).contiguous()  # the tutorial's [S, B]
    tgt = tgt_bf.transpose(0, 1).contiguous()
    optimizer = torch.optim.AdamW(
        [{"params": [p for p in model.parameters() if p.dim() >= 2], "weight_decay": WEIGHT_DECAY},
         {"params": [p for p in model.parameters() if p.dim() < 2], "weight_decay": 0.0}],
        lr=LR, betas=BETAS, eps=ADAM_EPS)
    optimizer.zero_grad(set_to_none=True)
    loss, logits = forward_loss(model, src, tgt)
    loss.backward()
    grads = {n: p.grad.detach().numpy().copy() for n, p in model.named_parameters()}
    total = float(torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=MAX_NORM))
    optimizer.step()
    after = {n: p.detach().numpy().copy() for n, p in model.named_parameters()}

    # --- checks --------------------------------------------------------------------------
    logits_bf = logits.detach().transpose(0, 1).numpy().copy()  # [B, T-1, V]
    want_loss, count = numpy_loss(logits.detach().reshape(-1, logits.shape[-1]).numpy(),
                                  tgt[1:, :].reshape(-1).numpy())
    assert abs(want_loss - loss.item()) < 1e-13, f"{name}: numpy loss {want_loss} vs {loss.item()}"

    fresh = model64(conf, stored)
    alone_sum = 0.0
    for b in range(len(SRC_LENGTHS)):
        s = src[:SRC_LENGTHS[b], b:b + 1]
        t = tgt[:TGT_LENGTHS[b], b:b + 1]
        alone_sum += float(forward_loss(fresh, s, t, reduction="sum")[0])
    err_alone = abs(alone_sum - loss.item() * count)
    assert err_alone < 1e-12, \
        f"{name}: sentences alone sum to {alone_sum}, batch {loss.item() * count}"

    fd_rows = finite_differences(fresh, src, tgt, grads, fd_gen)
    fd_max = max(r[4] for r in fd_rows)
    assert fd_max < FD_TOL, f"{name}: finite differences disagree, max rel err {fd_max:.2e}"

    want_total = float(np.sqrt(sum(float((g * g).sum()) for g in grads.values())))
    assert abs(want_total - total) < 1e-12 * total, \
        f"{name}: grad norm {total} vs numpy {want_total}"
    assert total > MAX_NORM, f"{name}: grad norm {total} <= max_norm {MAX_NORM}: no clipping"
    coef = MAX_NORM / (total + CLIP_EPS)
    adam_err = 0.0
    for n in names:
        want = numpy_adamw(before[n], grads[n], coef, n in decayed)
        adam_err = max(adam_err, float(np.max(np.abs(want - after[n]))))
    assert adam_err < ADAMW_TOL, f"{name}: AdamW in numpy differs by {adam_err:.2e}"
    moved = sum(int(np.sum(after[n] != before[n])) for n in names)

    reference = {
        "input.src_ids": src_bf.numpy().astype(np.int64),
        "input.src_lengths": np.asarray(SRC_LENGTHS, dtype=np.int64),
        "input.tgt_ids": tgt_bf.numpy().astype(np.int64),
        "input.tgt_lengths": np.asarray(TGT_LENGTHS, dtype=np.int64),
        "output.logits": logits_bf,
        "output.loss": np.array([loss.item()], dtype=np.float64),
        "output.loss_count": np.array([count], dtype=np.int64),
        "output.grad_norm": np.array([total], dtype=np.float64),
        "output.clip_coef": np.array([coef], dtype=np.float64),
    }
    for n in names:
        assert grads[n].dtype == np.float64 and after[n].dtype == np.float64
        reference["grad." + n] = grads[n]
        reference["after." + n] = after[n]
    meta = {
        "config": name, "seed": str(seed), "batch_first": "true",
        "lr": repr(LR), "beta1": repr(BETAS[0]), "beta2": repr(BETAS[1]), "eps": repr(ADAM_EPS),
        "weight_decay": repr(WEIGHT_DECAY), "max_norm": repr(MAX_NORM),
        "label_smoothing": repr(LABEL_SMOOTHING), "ignore_index": str(T.PAD_IDX),
        "decay_rule": "weight_decay on parameters of rank >= 2, 0 on the rest",
        "decayed": ",".join(decayed), "not_decayed": ",".join(not_decayed),
        "teacher_forcing": "decoder input tgt_ids[:, :-1], targets tgt_ids[:, 1:]",
        "grad_note": "grad.* are the gradients after backward, before clipping",
        "dtype": "float64 from the F32 weights of model.safetensors",
        "fd_max_rel_err": repr(fd_max),
        "torch_version": torch.__version__,
        "blas": mapped_blas(),
    }
    files = {"config.json": (json.dumps(conf, indent=2, sort_keys=True) + "\n").encode(),
             "model.safetensors": model_bytes,
             "reference.safetensors": safetensors_np.serialize(reference, meta)}
    report = dict(loss=loss.item(), count=count, total=total, coef=coef, fd_rows=fd_rows,
                  fd_max=fd_max, adam_err=adam_err, err_alone=err_alone, moved=moved,
                  n_params=len(names), n_values=sum(g.size for g in grads.values()),
                  n_decayed=len(decayed))
    return files, report


def write_config(cfg):
    files, r = make_step(cfg)
    d = os.path.join(OUT_DIR, cfg["name"])
    os.makedirs(d, exist_ok=True)
    for fname, data in files.items():
        with open(os.path.join(d, fname), "wb") as f:
            f.write(data)
    # read back what was written
    with open(os.path.join(d, "config.json")) as f:
        conf = json.load(f)
    weights, wmeta = safetensors_np.load_file(os.path.join(d, "model.safetensors"))
    assert wmeta == {} and all(v.dtype == np.float32 for v in weights.values())
    m = T.model_from_config(conf)
    T.load_numpy_state(m, weights)
    pe = weights["positional_encoding.pos_embedding"]
    assert pe.shape == (conf["max_len"], 1, conf["d_model"]), pe.shape
    refs, rmeta = safetensors_np.load_file(os.path.join(d, "reference.safetensors"))
    assert rmeta["config"] == cfg["name"]
    params = dict(m.named_parameters())
    for prefix in ("grad.", "after."):
        got = {k[len(prefix):]: v for k, v in refs.items() if k.startswith(prefix)}
        assert set(got) == set(params), f"{prefix}: {sorted(set(got) ^ set(params))[:5]}"
        for k, v in got.items():
            assert v.shape == tuple(params[k].shape) and v.dtype == np.float64, k
    sizes = {f: len(b) for f, b in files.items()}
    assert sum(sizes.values()) < 1_000_000

    print(f"{cfg['name']}: loss {r['loss']:.12f} over {r['count']} targets; grad norm "
          f"{r['total']:.9f} > max_norm {MAX_NORM} (clip coef {r['coef']:.9f}); "
          f"{r['n_params']} parameters ({r['n_decayed']} decayed), {r['n_values']} values, "
          f"{r['moved']} changed by the step")
    print(f"    sentences alone vs padded batch: |diff of summed loss| {r['err_alone']:.1e}; "
          f"AdamW recomputed in numpy: max |diff| {r['adam_err']:.1e}")
    print(f"    finite differences (h {FD_STEP:g}), {len(r['fd_rows'])} entries, max rel err "
          f"{r['fd_max']:.2e}:")
    for pname, i, g, fd, err in r["fd_rows"]:
        print(f"      {pname}[{i}]: autograd {g: .10e}  central diff {fd: .10e}  rel err {err:.1e}")
    print("    files: " + ", ".join(f"{k} {v} bytes" for k, v in sizes.items()))
    return sum(sizes.values())


def main():
    assert torch.get_default_dtype() == torch.float32, "the tutorial builds in float32"
    os.makedirs(OUT_DIR, exist_ok=True)
    total = sum(write_config(cfg) for cfg in CONFIGS)
    extra = sorted(set(os.listdir(OUT_DIR)) - {c["name"] for c in CONFIGS})
    assert not extra, f"stale entries in {OUT_DIR}: {extra}"
    print(f"{len(CONFIGS)} configs, total {total} bytes")


if __name__ == "__main__":
    main()
