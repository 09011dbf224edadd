#!/usr/bin/env python3
"""Generate the PyTorch reference fixtures used by Eigenformer's C++ tests.

What it writes
    tests/fixtures/<case>.safetensors, one file per case: Linear, Embedding, LayerNorm, the two
    positional encodings, the feed-forward block (relu / exact gelu / tanh gelu), explicit scaled
    dot-product attention under every mask combination, nn.MultiheadAttention,
    nn.TransformerEncoderLayer, nn.TransformerDecoderLayer and a small nn.Transformer.

How to rerun (from the repository root)
    ./setup.sh --fixtures               # installs Debian's python3-torch and python3-numpy
    /usr/bin/python3 tools/make_fixtures.py
    The output is deterministic (torch.manual_seed per case, fixed tensor order in the file):
    running it twice writes byte-identical files. Every run re-reads each file and checks it
    against an independent numpy recomputation (assertions), and prints one line per case.

File format conventions (the C++ tests depend on them exactly)
    * safetensors written by tools/safetensors_np.py; floating tensors F64, integer tensors I64.
      Every torch module is built in float64 (.double()).
    * Names: parameters `param.<PyTorch state_dict name>` (e.g. `param.in_proj_weight`,
      `param.encoder.layers.1.norm2.weight`); inputs `input.<name>`; outputs `output.<name>`.
    * Every bias and every LayerNorm weight/bias is randomised (weight = 1 + 0.1 randn,
      bias = 0.1 randn), so a loader that skips one fails the comparison.
    * `__metadata__`: "case" (the case name) and the configuration as strings: ints in decimal,
      bools "true"/"false", floats as Python repr() (e.g. eps "1e-05").
    * Masks are stored in Eigenformer's convention, never as torch masks:
        input.lengths         I64 [B]: keys at positions >= lengths[b] of the (self-attention)
                              sequence are padding (torch key_padding_mask = arange(S) >= len).
        input.memory_lengths  I64 [B]: the same for the memory / key-value sequence of cross
                              attention (input.src_lengths / input.tgt_lengths in nn.Transformer).
        causal                metadata "causal": "true"|"false" and "causal_offset": "<P>": query i
                              may see keys 0..P+i (P = S - T when S > T, 0 when square).
        input.allowed         I64 [T, S] or [B, T, S]: 1 = attention allowed, 0 = not.
        input.additive        F64 [T, S]: added to the scores; a few entries are -inf.
        metadata "mask"       '+'-joined components used: none, causal, padding, memory_padding,
                              allowed, additive (e.g. "causal+padding").
      No query row is ever fully masked, so no output holds NaN.
    * torch 1.13 pitfall: in eval mode with grad disabled, nn.MultiheadAttention /
      TransformerEncoderLayer / TransformerEncoder take a "fast path" that, with a key padding
      mask, returns zeros at padded positions. This script never uses torch.no_grad(): parameters
      keep requires_grad, modules are in .eval() with dropout=0.0, outputs are detached.
      (Observed on Debian's torch 1.13: the fast path is also skipped for an odd head count;
      with an even count and no_grad, nn.TransformerEncoder returns exact zeros at padded
      positions. The cases here use 1 or 3 heads and grad enabled; the script asserts that
      padded encoder outputs are not zero.)
    * The sinusoidal table uses the translation tutorial's exp() formula; it differs from the
      pow() form sin(pos / 10000^(2i/D)) by up to ~4e-15, so compare with a tolerance.
"""

import hashlib
import math
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.dont_write_bytecode = True  # no tools/__pycache__ in the work tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_np  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DIR = os.path.join(ROOT, "tests", "fixtures")
TOL = 1e-12
NEG_INF = float("-inf")

torch.set_default_dtype(torch.float64)
torch.set_num_threads(1)  # reduction order independent of the machine's core count

WRITTEN = []  # (case, bytes)


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------

def seed(case):
    """A fixed per-case seed derived from the case name (stable across Python runs)."""
    s = int.from_bytes(hashlib.sha256(case.encode()).digest()[:4], "little")
    torch.manual_seed(s)


def b2s(b):
    return "true" if b else "false"


def npy(t):
    return t.detach().cpu().numpy().copy()


def randomize(module):
    """Randomise every LayerNorm weight/bias and every bias (torch init leaves them 1 / 0)."""
    ln_params = set()
    for mname, m in module.named_modules():
        if isinstance(m, nn.LayerNorm):
            for pname, _ in m.named_parameters(recurse=False):
                ln_params.add(f"{mname}.{pname}" if mname else pname)
    for name, p in module.named_parameters():
        leaf = name.rsplit(".", 1)[-1]
        if name in ln_params and leaf == "weight":
            p.data.copy_(1.0 + 0.1 * torch.randn(p.shape))
        elif name in ln_params or leaf.endswith("bias"):
            p.data.copy_(0.1 * torch.randn(p.shape))


def params_of(module, prefix="param."):
    return {prefix + k: npy(v) for k, v in module.state_dict().items()}


def check_close(name, got, want, tol=TOL):
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, f"{name}: shape {got.shape} vs {want.shape}"
    assert np.all(np.isfinite(got)), f"{name}: non-finite values"
    err = float(np.max(np.abs(got - want))) if got.size else 0.0
    assert err <= tol, f"{name}: max abs diff {err:.3e} > {tol:.0e}"


def write_case(case, tensors, meta):
    """Write tests/fixtures/<case>.safetensors, re-read it and check it round-trips."""
    for name, arr in tensors.items():
        assert name.startswith(("param.", "input.", "output.")), name
        assert arr.dtype in (np.float64, np.int64), f"{case}/{name}: dtype {arr.dtype}"
        if arr.dtype == np.float64 and not name.startswith("input.additive"):
            assert np.all(np.isfinite(arr)), f"{case}/{name}: non-finite values"
        if name.startswith("output."):
            assert not np.any(np.isnan(arr)), f"{case}/{name}: NaN in output"
    metadata = {"case": case}
    metadata.update({k: v for k, v in meta.items()})
    for k, v in metadata.items():
        assert isinstance(v, str), f"{case}: metadata {k} is not a string"
    path = os.path.join(OUT_DIR, case + ".safetensors")
    size = safetensors_np.save_file(tensors, path, metadata)
    back, back_meta = safetensors_np.load_file(path)
    assert back_meta == metadata, f"{case}: metadata round trip"
    assert set(back) == set(tensors), f"{case}: tensor names round trip"
    for name, arr in tensors.items():
        assert back[name].dtype == arr.dtype and back[name].shape == arr.shape, name
        assert np.array_equal(back[name], arr, equal_nan=True), f"{case}/{name}: data round trip"
        assert not np.any(np.isnan(back[name])), f"{case}/{name}: NaN after reading"
    WRITTEN.append((case, size))
    print(f"{case:40s} {size:8d} bytes")


# ---- masks: torch side (torch's own conventions) -------------------------------------------

def torch_causal_float(T, S, offset):
    """Float mask, -inf where key j > offset + i (the torch form of our causal mask)."""
    return torch.full((T, S), NEG_INF).triu(offset + 1)


def torch_causal_bool(T, S, offset):
    return torch.ones(T, S, dtype=torch.bool).triu(offset + 1)


def torch_kpm(lengths, S):
    """key_padding_mask [B, S], True = padding (ignored)."""
    return torch.arange(S)[None, :] >= torch.as_tensor(lengths)[:, None]


# ---- masks: numpy side (independent, from our convention) ----------------------------------

def np_bias(B, T, S, causal=False, offset=0, lengths=None, allowed=None, additive=None):
    """Additive score bias [B, 1, T, S] built from Eigenformer-convention mask inputs."""
    bias = np.zeros((B, 1, T, S))
    if additive is not None:
        bias = bias + np.asarray(additive)[None, None]
    blocked = np.zeros((B, 1, T, S), dtype=bool)
    for b in range(B):
        for i in range(T):
            for j in range(S):
                if causal and j > offset + i:
                    blocked[b, 0, i, j] = True
                if lengths is not None and j >= lengths[b]:
                    blocked[b, 0, i, j] = True
                if allowed is not None:
                    a = allowed[i, j] if allowed.ndim == 2 else allowed[b, i, j]
                    if a == 0:
                        blocked[b, 0, i, j] = True
    bias[blocked] = NEG_INF
    assert np.all(np.isfinite(bias.max(axis=-1))), "a query row is fully masked"
    return bias


def visible_np(B, T, S, causal=False, offset=0, lengths=None):
    """[B, T, S] bool: keys visible under causal and padding masks."""
    vis = np.ones((B, T, S), dtype=bool)
    for b in range(B):
        for i in range(T):
            for j in range(S):
                if causal and j > offset + i:
                    vis[b, i, j] = False
                if lengths is not None and j >= lengths[b]:
                    vis[b, i, j] = False
    return vis


def make_allowed(shape, visible):
    """Random 0/1 allowed mask (p ~ 0.6), every row keeping at least one visible allowed key.

    shape is (T, S) or (B, T, S); visible is [B, T, S] (for a 2-D mask a key must work for
    every batch entry, so the visible sets are intersected)."""
    allowed = (torch.rand(shape) < 0.6).to(torch.int64)
    vis = visible.all(axis=0) if len(shape) == 2 else visible
    flat_a = allowed.view(-1, shape[-1])
    flat_v = vis.reshape(-1, shape[-1])
    for r in range(flat_a.shape[0]):
        if not np.any(flat_a[r].numpy().astype(bool) & flat_v[r]):
            cands = np.nonzero(flat_v[r])[0]
            assert len(cands) > 0
            j = int(cands[int(torch.randint(len(cands), (1,)))])
            flat_a[r, j] = 1
    return allowed


def make_additive(T, S, visible, n_inf=3):
    """Random normal [T, S] with a few -inf entries, never a whole (visible) row."""
    add = torch.randn(T, S)
    vis = visible.all(axis=0)
    for _ in range(n_inf):
        i = int(torch.randint(T, (1,)))
        j = int(torch.randint(S, (1,)))
        add[i, j] = NEG_INF
    for i in range(T):
        finite_vis = np.isfinite(add[i].numpy()) & vis[i]
        if not finite_vis.any():
            j = int(np.nonzero(vis[i])[0][0])
            add[i, j] = float(torch.randn(()))
    assert torch.isinf(add).any()
    return add


# ---- numpy reference implementations ---------------------------------------------------------

def np_softmax_attention(q, k, v, bias):
    """q [B,H,T,Dh], k/v [B,H,S,Dh], bias broadcastable to [B,H,T,S]."""
    Dh = q.shape[-1]
    scores = np.einsum("bhtd,bhsd->bhts", q, k) / math.sqrt(Dh) + bias
    m = scores.max(axis=-1, keepdims=True)
    assert np.all(np.isfinite(m))
    e = np.exp(scores - m)
    w = e / e.sum(axis=-1, keepdims=True)
    return np.einsum("bhts,bhsd->bhtd", w, v), w


def np_linear(x, P, name):
    y = x @ P[name + ".weight"].T
    if name + ".bias" in P:
        y = y + P[name + ".bias"]
    return y


def np_layer_norm(x, w, b, eps):
    mu = x.mean(axis=-1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def np_gelu_erf(x):
    return 0.5 * x * (1.0 + np.vectorize(math.erf)(x / math.sqrt(2.0)))


def np_gelu_tanh(x):
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def np_act(name):
    return {"relu": lambda x: np.maximum(x, 0.0), "gelu_erf": np_gelu_erf,
            "gelu_tanh": np_gelu_tanh}[name]


def np_mha(xq, xkv, P, pre, H, bias):
    """MultiheadAttention from in_proj_weight/out_proj with the explicit formula."""
    B, T, D = xq.shape
    S = xkv.shape[1]
    Dh = D // H
    W, bvec = P[pre + "in_proj_weight"], P[pre + "in_proj_bias"]
    q = xq @ W[:D].T + bvec[:D]
    k = xkv @ W[D:2 * D].T + bvec[D:2 * D]
    v = xkv @ W[2 * D:].T + bvec[2 * D:]
    split = lambda t, L: t.reshape(B, L, H, Dh).transpose(0, 2, 1, 3)
    o, w = np_softmax_attention(split(q, T), split(k, S), split(v, S), bias)
    o = o.transpose(0, 2, 1, 3).reshape(B, T, D)
    return np_linear(o, P, pre + "out_proj"), w


def np_ffn(x, P, pre, act):
    return np_linear(np_act(act)(np_linear(x, P, pre + "linear1")), P, pre + "linear2")


def np_ln(x, P, name, eps):
    return np_layer_norm(x, P[name + ".weight"], P[name + ".bias"], eps)


def np_encoder_layer(x, P, pre, H, act, norm_first, eps, bias):
    if norm_first:
        h = np_ln(x, P, pre + "norm1", eps)
        x = x + np_mha(h, h, P, pre + "self_attn.", H, bias)[0]
        x = x + np_ffn(np_ln(x, P, pre + "norm2", eps), P, pre, act)
    else:
        x = np_ln(x + np_mha(x, x, P, pre + "self_attn.", H, bias)[0], P, pre + "norm1", eps)
        x = np_ln(x + np_ffn(x, P, pre, act), P, pre + "norm2", eps)
    return x


def np_decoder_layer(x, mem, P, pre, H, act, norm_first, eps, self_bias, cross_bias):
    if norm_first:
        h = np_ln(x, P, pre + "norm1", eps)
        x = x + np_mha(h, h, P, pre + "self_attn.", H, self_bias)[0]
        h = np_ln(x, P, pre + "norm2", eps)
        x = x + np_mha(h, mem, P, pre + "multihead_attn.", H, cross_bias)[0]
        x = x + np_ffn(np_ln(x, P, pre + "norm3", eps), P, pre, act)
    else:
        x = np_ln(x + np_mha(x, x, P, pre + "self_attn.", H, self_bias)[0], P, pre + "norm1", eps)
        x = np_ln(x + np_mha(x, mem, P, pre + "multihead_attn.", H, cross_bias)[0],
                  P, pre + "norm2", eps)
        x = np_ln(x + np_ffn(x, P, pre, act), P, pre + "norm3", eps)
    return x


def strip(P):
    """param.* dict -> plain state_dict names for the numpy references."""
    return {k[len("param."):]: v for k, v in P.items()}


# --------------------------------------------------------------------------------------------
# cases
# --------------------------------------------------------------------------------------------

def case_linear(case, bias):
    seed(case)
    m = nn.Linear(5, 7, bias=bias).double()
    randomize(m)
    m.eval()
    x = torch.randn(2, 3, 5)
    y = m(x)
    T = params_of(m)
    T["input.x"] = npy(x)
    T["output.y"] = npy(y)
    ref = T["input.x"] @ T["param.weight"].T + (T["param.bias"] if bias else 0.0)
    check_close(case, T["output.y"], ref)
    write_case(case, T, {"in_features": "5", "out_features": "7", "bias": b2s(bias)})


def case_embedding(case):
    seed(case)
    m = nn.Embedding(11, 6).double()
    m.eval()
    ids = torch.tensor([[0, 3, 10, 3], [7, 10, 0, 1]], dtype=torch.int64)
    y = m(ids)
    T = params_of(m)
    T["input.ids"] = npy(ids)
    T["output.y"] = npy(y)
    check_close(case, T["output.y"], T["param.weight"][T["input.ids"]], 0.0)
    write_case(case, T, {"vocab_size": "11", "d_model": "6"})


def case_layer_norm(case):
    seed(case)
    eps = 1e-5
    m = nn.LayerNorm(10, eps=eps).double()
    randomize(m)
    m.eval()
    x = torch.randn(2, 3, 10)
    x[0, 1] = x[0, 1] * 100.0 + 50.0
    x[1, 2] = x[1, 2] * 100.0 + 50.0
    y = m(x)
    T = params_of(m)
    T["input.x"] = npy(x)
    T["output.y"] = npy(y)
    check_close(case, T["output.y"],
                np_layer_norm(T["input.x"], T["param.weight"], T["param.bias"], eps))
    write_case(case, T, {"d_model": "10", "eps": repr(eps)})


def case_pe_sinusoidal(case):
    seed(case)
    max_len, D, off = 50, 12, 3
    den = torch.exp(-torch.arange(0, D, 2, dtype=torch.float64) * math.log(10000) / D)
    pos = torch.arange(0, max_len, dtype=torch.float64).reshape(max_len, 1)
    pe = torch.zeros(max_len, D, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(pos * den)
    pe[:, 1::2] = torch.cos(pos * den)
    x = torch.randn(2, 5, D)
    y = x + pe[off:off + 5]
    T = {"input.x": npy(x), "output.pe": npy(pe), "output.y": npy(y)}
    # independent: PE(pos, 2i) = sin(pos / 10000^(2i/D)), PE(pos, 2i+1) = cos(...)
    ref = np.zeros((max_len, D))
    for p in range(max_len):
        for i in range(0, D, 2):
            ref[p, i] = math.sin(p / 10000 ** (i / D))
            ref[p, i + 1] = math.cos(p / 10000 ** (i / D))
    check_close(case + "/pe", T["output.pe"], ref, 1e-12)
    check_close(case + "/y", T["output.y"], T["input.x"] + ref[off:off + 5], 1e-12)
    write_case(case, T, {"max_len": str(max_len), "d_model": str(D), "offset": str(off)})


def case_pe_learned(case):
    seed(case)
    max_len, D, off = 50, 12, 3
    w = torch.randn(max_len, D)
    x = torch.randn(2, 5, D)
    y = x + w[off:off + 5]
    T = {"param.weight": npy(w), "input.x": npy(x), "output.y": npy(y)}
    check_close(case, T["output.y"], T["input.x"] + T["param.weight"][off:off + 5], 0.0)
    write_case(case, T, {"max_len": str(max_len), "d_model": str(D), "offset": str(off)})


class FeedForward(nn.Module):
    def __init__(self, d_model, d_ff, act):
        super().__init__()
        self.linear1 = nn.Linear(d_model, d_ff)
        self.linear2 = nn.Linear(d_ff, d_model)
        self.act = act

    def forward(self, x):
        h = self.linear1(x)
        if self.act == "relu":
            h = F.relu(h)
        elif self.act == "gelu_erf":
            h = F.gelu(h)
        else:
            h = F.gelu(h, approximate="tanh")
        return self.linear2(h)


def case_feed_forward(case, act):
    seed(case)
    m = FeedForward(6, 10, act).double()
    randomize(m)
    m.eval()
    x = torch.randn(2, 3, 6) * 2.0
    y = m(x)
    T = params_of(m)
    T["input.x"] = npy(x)
    T["output.y"] = npy(y)
    check_close(case, T["output.y"], np_ffn(T["input.x"], strip(T), "", act))
    write_case(case, T, {"d_model": "6", "d_ff": "10", "activation": act})


def case_sdpa(case, S=6, T=4, causal=False, offset=0, lengths=None, allowed=None,
              additive=False):
    """allowed: None, 'ts' ([T, S]) or 'bts' ([B, T, S])."""
    seed(case)
    B, H, Dh = 2, 3, 5
    q = torch.randn(B, H, T, Dh)
    k = torch.randn(B, H, S, Dh)
    v = torch.randn(B, H, S, Dh)
    vis = visible_np(B, T, S, causal, offset, lengths)
    tensors = {"input.q": npy(q), "input.k": npy(k), "input.v": npy(v)}
    parts = []
    # torch side
    bias = torch.zeros(B, H, T, S)
    add_t = allowed_t = None
    if additive:
        add_t = make_additive(T, S, vis)
        bias = bias + add_t
        tensors["input.additive"] = npy(add_t)
        parts.append("additive")
    if causal:
        bias = bias.masked_fill(torch_causal_bool(T, S, offset), NEG_INF)
        parts.append("causal")
    if lengths is not None:
        bias = bias.masked_fill(torch_kpm(lengths, S)[:, None, None, :], NEG_INF)
        tensors["input.lengths"] = np.asarray(lengths, dtype=np.int64)
        parts.append("padding")
    if allowed is not None:
        shape = (T, S) if allowed == "ts" else (B, T, S)
        allowed_t = make_allowed(shape, vis)
        am = (allowed_t == 0)
        am = am[None, None] if allowed == "ts" else am[:, None]
        bias = bias.masked_fill(am, NEG_INF)
        tensors["input.allowed"] = npy(allowed_t)
        parts.append("allowed")
    scores = q @ k.transpose(-1, -2) / math.sqrt(Dh) + bias
    w = torch.softmax(scores, dim=-1)
    out = w @ v
    tensors["output.out"] = npy(out)
    tensors["output.weights"] = npy(w)
    # numpy side, from our-convention inputs
    nb = np_bias(B, T, S, causal, offset, lengths,
                 None if allowed_t is None else npy(allowed_t),
                 None if add_t is None else npy(add_t))
    ref_out, ref_w = np_softmax_attention(npy(q), npy(k), npy(v), nb)
    check_close(case + "/out", tensors["output.out"], ref_out)
    check_close(case + "/weights", tensors["output.weights"], ref_w)
    order = ["causal", "padding", "allowed", "additive"]
    mask = "+".join(p for p in order if p in parts) or "none"
    if additive and causal:
        mask = "additive+causal"
    write_case(case, tensors, {"heads": str(H), "d_head": str(Dh), "causal": b2s(causal),
                               "causal_offset": str(offset), "mask": mask})


def torch_mha_call(m, xq, xkv, attn_mask, kpm):
    y, w = m(xq, xkv, xkv, key_padding_mask=kpm, attn_mask=attn_mask, need_weights=True,
             average_attn_weights=False)
    return y, w


def case_mha(case, D=12, H=3, B=2, T=5, S=None, causal=False, lengths=None, allowed=False,
             additive=False, cross=False, memory_lengths=None):
    seed(case)
    m = nn.MultiheadAttention(D, H, dropout=0.0, batch_first=True).double()
    randomize(m)
    m.eval()
    S = T if S is None else S
    x = torch.randn(B, T, D)
    mem = torch.randn(B, S, D) if cross else x
    tensors = params_of(m)
    tensors["input.x"] = npy(x)
    if cross:
        tensors["input.memory"] = npy(mem)
    key_lengths = memory_lengths if cross else lengths
    vis = visible_np(B, T, S, causal, 0, key_lengths)
    attn_mask = None
    parts = []
    allowed_np = add_np = None
    if causal:
        attn_mask = torch_causal_float(T, S, 0)
        parts.append("causal")
    if lengths is not None:
        tensors["input.lengths"] = np.asarray(lengths, dtype=np.int64)
        parts.append("padding")
    if memory_lengths is not None:
        tensors["input.memory_lengths"] = np.asarray(memory_lengths, dtype=np.int64)
        parts.append("memory_padding")
    if allowed:
        a = make_allowed((T, S), vis)
        attn_mask = (a == 0)
        allowed_np = npy(a)
        tensors["input.allowed"] = allowed_np
        parts.append("allowed")
    if additive:
        a = make_additive(T, S, vis)
        attn_mask = a
        add_np = npy(a)
        tensors["input.additive"] = add_np
        parts.append("additive")
    kpm = torch_kpm(key_lengths, S) if key_lengths is not None else None
    y, w = torch_mha_call(m, x, mem, attn_mask, kpm)
    tensors["output.y"] = npy(y)
    tensors["output.weights"] = npy(w)
    nb = np_bias(B, T, S, causal, 0, key_lengths, allowed_np, add_np)
    P = strip(tensors)
    ref_y, ref_w = np_mha(tensors["input.x"], npy(mem), P, "", H, nb)
    check_close(case + "/y", tensors["output.y"], ref_y)
    check_close(case + "/weights", tensors["output.weights"], ref_w)
    assert tensors["output.weights"].shape == (B, H, T, S)
    write_case(case, tensors, {"d_model": str(D), "heads": str(H),
                               "mask": "+".join(parts) or "none", "causal": b2s(causal),
                               "causal_offset": "0"})


ACT_META = {"relu": "relu", "gelu": "gelu_erf"}


def case_encoder_layer(case, D=12, H=3, Fd=20, act="relu", norm_first=False, B=2, T=5,
                       lengths=(5, 3), causal=False):
    seed(case)
    eps = 1e-5
    m = nn.TransformerEncoderLayer(D, H, dim_feedforward=Fd, dropout=0.0, activation=act,
                                   layer_norm_eps=eps, batch_first=True,
                                   norm_first=norm_first).double()
    randomize(m)
    m.eval()
    x = torch.randn(B, T, D)
    tensors = params_of(m)
    tensors["input.x"] = npy(x)
    parts = []
    src_mask = kpm = None
    if causal:
        src_mask = torch_causal_float(T, T, 0)
        parts.append("causal")
    if lengths is not None:
        kpm = torch_kpm(list(lengths), T)
        tensors["input.lengths"] = np.asarray(lengths, dtype=np.int64)
        parts.append("padding")
    y = m(x, src_mask=src_mask, src_key_padding_mask=kpm)
    tensors["output.y"] = npy(y)
    if lengths is not None:
        for b, L in enumerate(lengths):
            if L < T:
                assert np.any(tensors["output.y"][b, L:] != 0.0), f"{case}: fast path zeros"
    nb = np_bias(B, T, T, causal, 0, None if lengths is None else list(lengths))
    ref = np_encoder_layer(tensors["input.x"], strip(tensors), "", H, ACT_META[act],
                           norm_first, eps, nb)
    check_close(case, tensors["output.y"], ref)
    write_case(case, tensors, {"d_model": str(D), "heads": str(H), "d_ff": str(Fd),
                               "activation": ACT_META[act], "norm_first": b2s(norm_first),
                               "eps": repr(eps), "mask": "+".join(parts) or "none",
                               "causal": b2s(causal), "causal_offset": "0"})


def case_decoder_layer(case, D=12, H=3, Fd=20, act="relu", norm_first=False, B=2, T=4, S=6,
                       lengths=(4, 2), memory_lengths=(6, 3)):
    seed(case)
    eps = 1e-5
    m = nn.TransformerDecoderLayer(D, H, dim_feedforward=Fd, dropout=0.0, activation=act,
                                   layer_norm_eps=eps, batch_first=True,
                                   norm_first=norm_first).double()
    randomize(m)
    m.eval()
    x = torch.randn(B, T, D)
    mem = torch.randn(B, S, D)
    tensors = params_of(m)
    tensors["input.x"] = npy(x)
    tensors["input.memory"] = npy(mem)
    parts = ["causal"]
    tgt_kpm = mem_kpm = None
    if lengths is not None:
        tgt_kpm = torch_kpm(list(lengths), T)
        tensors["input.lengths"] = np.asarray(lengths, dtype=np.int64)
        parts.append("padding")
    if memory_lengths is not None:
        mem_kpm = torch_kpm(list(memory_lengths), S)
        tensors["input.memory_lengths"] = np.asarray(memory_lengths, dtype=np.int64)
        parts.append("memory_padding")
    y = m(x, mem, tgt_mask=torch_causal_float(T, T, 0), memory_mask=None,
          tgt_key_padding_mask=tgt_kpm, memory_key_padding_mask=mem_kpm)
    tensors["output.y"] = npy(y)
    sb = np_bias(B, T, T, True, 0, None if lengths is None else list(lengths))
    cb = np_bias(B, T, S, False, 0, None if memory_lengths is None else list(memory_lengths))
    ref = np_decoder_layer(tensors["input.x"], tensors["input.memory"], strip(tensors), "", H,
                           ACT_META[act], norm_first, eps, sb, cb)
    check_close(case, tensors["output.y"], ref)
    write_case(case, tensors, {"d_model": str(D), "heads": str(H), "d_ff": str(Fd),
                               "activation": ACT_META[act], "norm_first": b2s(norm_first),
                               "eps": repr(eps), "mask": "+".join(parts),
                               "causal": "true", "causal_offset": "0"})


def case_transformer(case, act, norm_first):
    seed(case)
    D, H, Fd, NE, ND, eps = 12, 3, 20, 2, 2, 1e-5
    B, S, T = 2, 6, 5
    src_lengths, tgt_lengths = [6, 4], [5, 3]
    m = nn.Transformer(d_model=D, nhead=H, num_encoder_layers=NE, num_decoder_layers=ND,
                       dim_feedforward=Fd, dropout=0.0, activation=act, layer_norm_eps=eps,
                       batch_first=True, norm_first=norm_first).double()
    randomize(m)
    m.eval()
    src = torch.randn(B, S, D)
    tgt = torch.randn(B, T, D)
    src_kpm = torch_kpm(src_lengths, S)
    tgt_kpm = torch_kpm(tgt_lengths, T)
    tgt_mask = torch_causal_float(T, T, 0)
    y = m(src, tgt, src_mask=None, tgt_mask=tgt_mask, memory_mask=None,
          src_key_padding_mask=src_kpm, tgt_key_padding_mask=tgt_kpm,
          memory_key_padding_mask=src_kpm)
    memory = m.encoder(src, mask=None, src_key_padding_mask=src_kpm)
    # decoder fed with the separately computed memory reproduces the full model's output
    y2 = m.decoder(tgt, memory, tgt_mask=tgt_mask, memory_mask=None,
                   tgt_key_padding_mask=tgt_kpm, memory_key_padding_mask=src_kpm)
    assert torch.equal(y, y2), f"{case}: model output != decoder(encoder output)"
    tensors = params_of(m)
    tensors["input.src"] = npy(src)
    tensors["input.tgt"] = npy(tgt)
    tensors["input.src_lengths"] = np.asarray(src_lengths, dtype=np.int64)
    tensors["input.tgt_lengths"] = np.asarray(tgt_lengths, dtype=np.int64)
    tensors["output.y"] = npy(y)
    tensors["output.memory"] = npy(memory)
    assert tensors["output.memory"].shape == (B, S, D)
    assert np.any(tensors["output.memory"][1, src_lengths[1]:] != 0.0), \
        f"{case}: encoder output zero at padded positions (nested-tensor fast path)"
    P = strip(tensors)
    enc_bias = np_bias(B, S, S, False, 0, src_lengths)
    h = tensors["input.src"]
    for i in range(NE):
        h = np_encoder_layer(h, P, f"encoder.layers.{i}.", H, ACT_META[act], norm_first, eps,
                             enc_bias)
    ref_mem = np_ln(h, P, "encoder.norm", eps)
    check_close(case + "/memory", tensors["output.memory"], ref_mem)
    self_bias = np_bias(B, T, T, True, 0, tgt_lengths)
    cross_bias = np_bias(B, T, S, False, 0, src_lengths)
    h = tensors["input.tgt"]
    for i in range(ND):
        h = np_decoder_layer(h, ref_mem, P, f"decoder.layers.{i}.", H, ACT_META[act],
                             norm_first, eps, self_bias, cross_bias)
    ref_y = np_ln(h, P, "decoder.norm", eps)
    check_close(case + "/y", tensors["output.y"], ref_y)
    write_case(case, tensors, {"d_model": str(D), "heads": str(H), "d_ff": str(Fd),
                               "activation": ACT_META[act], "norm_first": b2s(norm_first),
                               "eps": repr(eps), "num_encoder_layers": str(NE),
                               "num_decoder_layers": str(ND),
                               "mask": "causal+padding+memory_padding",
                               "causal": "true", "causal_offset": "0"})


def main():
    assert torch.is_grad_enabled(), "fixtures must be generated with grad enabled (fast path)"
    os.makedirs(OUT_DIR, exist_ok=True)

    case_linear("linear", True)
    case_linear("linear_no_bias", False)
    case_embedding("embedding")
    case_layer_norm("layer_norm")
    case_pe_sinusoidal("positional_encoding_sinusoidal")
    case_pe_learned("positional_encoding_learned")
    case_feed_forward("feed_forward_relu", "relu")
    case_feed_forward("feed_forward_gelu_erf", "gelu_erf")
    case_feed_forward("feed_forward_gelu_tanh", "gelu_tanh")

    case_sdpa("sdpa_none")
    case_sdpa("sdpa_causal_square", S=4, causal=True, offset=0)
    case_sdpa("sdpa_causal_offset", S=6, causal=True, offset=2)
    case_sdpa("sdpa_padding", lengths=[6, 3])
    case_sdpa("sdpa_allowed", allowed="ts")
    case_sdpa("sdpa_allowed_batched", allowed="bts")
    case_sdpa("sdpa_additive", additive=True)
    case_sdpa("sdpa_causal_padding", causal=True, offset=2, lengths=[6, 4])
    case_sdpa("sdpa_allowed_padding", allowed="ts", lengths=[6, 3])
    case_sdpa("sdpa_additive_causal", causal=True, offset=2, additive=True)
    case_sdpa("sdpa_t1", T=1, S=6, causal=True, offset=5)

    case_mha("mha_self")
    case_mha("mha_self_causal", causal=True)
    case_mha("mha_self_padding", lengths=[5, 2])
    case_mha("mha_self_causal_padding", causal=True, lengths=[5, 2])
    case_mha("mha_allowed", allowed=True)
    case_mha("mha_additive", additive=True)
    case_mha("mha_one_head_odd", D=7, H=1, B=2, T=1)
    case_mha("mha_cross", T=4, S=6, cross=True, memory_lengths=[6, 3])

    case_encoder_layer("encoder_layer_post_relu", act="relu", norm_first=False)
    case_encoder_layer("encoder_layer_post_gelu", act="gelu", norm_first=False)
    case_encoder_layer("encoder_layer_pre_relu", act="relu", norm_first=True)
    case_encoder_layer("encoder_layer_pre_gelu", act="gelu", norm_first=True)
    case_encoder_layer("encoder_layer_causal", act="relu", norm_first=False, causal=True)
    case_encoder_layer("encoder_layer_odd", D=7, H=1, Fd=9, act="gelu", norm_first=True, T=1,
                       lengths=None)

    case_decoder_layer("decoder_layer_post_relu", act="relu", norm_first=False)
    case_decoder_layer("decoder_layer_post_gelu", act="gelu", norm_first=False)
    case_decoder_layer("decoder_layer_pre_relu", act="relu", norm_first=True)
    case_decoder_layer("decoder_layer_pre_gelu", act="gelu", norm_first=True)
    case_decoder_layer("decoder_layer_odd", D=7, H=1, Fd=9, act="relu", norm_first=False, T=1,
                       S=3, lengths=None, memory_lengths=None)

    case_transformer("transformer_post_relu", "relu", False)
    case_transformer("transformer_pre_gelu", "gelu", True)

    # nothing stale left behind from an older case list
    names = {c + ".safetensors" for c, _ in WRITTEN}
    extra = sorted(f for f in os.listdir(OUT_DIR) if f.endswith(".safetensors") and f not in names)
    assert not extra, f"stale fixtures in tests/fixtures: {extra}"
    total = sum(s for _, s in WRITTEN)
    print(f"{len(WRITTEN)} files, total {total} bytes")
    assert total < 1_000_000


if __name__ == "__main__":
    main()
