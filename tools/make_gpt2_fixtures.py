#!/usr/bin/env python3
"""Generate the GPT-2 fixtures of Eigenformer's C++ tests: tiny random-weight checkpoints in the
exact Hugging Face directory layout, with float64 PyTorch reference outputs.

How to rerun (from the repository root; Debian's python3-torch 1.13 and python3-numpy)
    /usr/bin/python3 tools/make_gpt2_fixtures.py
    Deterministic: numpy PCG64 generators with fixed seeds, torch in float64 on one thread,
    tensors in sorted name order; two runs write byte-identical files (the script prints each
    file's sha256). Every run re-reads what it wrote and checks it (assertions, see below).
    The model is tools/gpt2_reference.py (a plain-PyTorch GPT-2 equal to HF's GPT2LMHeadModel at
    inference); an independent numpy forward pass here cross-checks its logits.

What it writes: tests/fixtures/gpt2/
    gpt2_{small,medium,large,xl}_config.json  the config.json of the four published sizes
        (openai-community/gpt2, -medium, -large, -xl): their field sets as published, e.g.
        medium carries n_special / predict_special_tokens, xl carries output_past, none carries
        n_inner (absent = 4 * n_embd).
    <variant>/config.json, <variant>/model.safetensors, <variant>/reference.safetensors
        variant                     L  H  d   P   V    dtype  tensor names in model.safetensors
        tiny_f32_hub                2  3  24  64  300  F32    hub: `wte.weight`, `h.0.ln_1.weight`..
                                                              + `h.{i}.attn.bias` F32 [1,1,P,P]
        tiny_f32_transformer_prefix (same weights)     F32    `transformer.` + every name,
                                                              + `lm_head.weight` (== wte)
        tiny_f16                    (same weights)     F16    `transformer.` prefix, no lm_head
        tiny_bf16                   (same weights)     BF16   hub names, no buffers
        odd_shape                   3  5  40  48  257  F32    `transformer.` prefix, + buffers
                                                              `h.{i}.attn.bias` U8 [1,1,P,P] and
                                                              `h.{i}.attn.masked_bias` F32 [] (-1e4)
        one_layer_one_head          1  1  16  32  100  F32    hub names, no buffers
      config.json: tiny_f32_hub mirrors the hub's gpt2 config.json field set (no n_inner);
      odd_shape mirrors gpt2-medium's (n_special, predict_special_tokens); the others mirror a
      config written by save_pretrained (transformers 4.35: _name_or_path, n_inner null,
      reorder_and_upcast_attn, scale_attn_*, torch_dtype, transformers_version, use_cache).
      bos_token_id = eos_token_id = V - 1; eps 1e-5; activation gelu_new; n_ctx = n_positions.
      model.safetensors metadata {"format": "pt"} as HF writes it. The F16 / BF16 weights are the
      F32 weights rounded to nearest even (BF16: upper 16 bits of the float32, rounded).
      Weights: wte N(0, 0.5^2), wpe N(0, s_p^2) (s_p = 0.5; 1.0 for one_layer_one_head), Conv1D
      weights N(0, (2 / sqrt(fan_in))^2) (larger than HF's 0.02 init, so that greedy text varies
      instead of repeating one token; seeds picked for that and for the margins), every
      bias N(0, 0.1^2), LayerNorm weight 1 + N(0, 0.1^2) and bias N(0, 0.1^2) (all randomised,
      so a loader that skips any tensor fails: asserted here by zeroing each one in turn).

reference.safetensors (float64, computed from exactly the stored weights upcast to float64)
    input.prompt_ids       I64 [B=3, T]  three prompts of different lengths, LEFT-padded with the
                                         eos id (V - 1); prompt tokens are in [0, V - 2]
    input.attention_mask   I64 [B, T]    1 = real token, 0 = padding
    input.prompt_lengths   I64 [B]
    input.position_ids     I64 [B, T]    the positions used: HF generate()'s rule
                                         cumsum(mask) - 1, and 1 at padding (see below)
    output.logits          F64 [B, T, V] batched forward with the mask and those positions; at
                                         padded positions (mask == 0) 0.0 placeholders: HF's
                                         value there is undefined (every key of such a query is
                                         masked) - compare only where attention_mask == 1
    output.logits_alone_<b> F64 [1, len_b, V]  prompt b alone (no padding, positions 0..len_b-1);
                                         equals output.logits[b, T - len_b:] (asserted, 1e-10)
    output.greedy_ids      I64 [B, N]    greedy continuation (argmax, no EOS stopping; EOS never
                                         occurs: asserted), N = min(32, n_positions - T + 1) -
                                         32 everywhere except one_layer_one_head (N = 24: there
                                         the batched sequence fills all 32 positions exactly)
    output.cached_logits   F64 [B, N, V] logits that chose greedy_ids[:, k]: k = 0 from the
                                         batched prompt pass, k > 0 from one-token steps with the
                                         KV cache (mask extended with 1s, position of the new
                                         token = number of real tokens before it)
    output.greedy_margin_min F64 [1]     smallest top-1 minus top-2 logit over all those steps
                                         (>= 1e-2 asserted, so float32 reproduces the ids)
    __metadata__: variant, names / buffers / dtype of the model file, the position rule, N...

Mask and position semantics (Hugging Face, decided here)
    A query at index i may attend key j iff j <= i and attention_mask[b, j] == 1. Positions
    follow HF generate() for GPT-2 (prepare_inputs_for_generation): position_ids =
    attention_mask.cumsum(-1) - 1, then masked_fill(attention_mask == 0, 1) - the padding gets 1,
    not 0 (it only matters at padding, whose outputs are ignored). Note that HF's plain
    GPT2Model.forward without position_ids uses arange(T) even with a mask: the fixtures follow
    generate(), in which a left-padded row gives at its real positions exactly the logits of the
    prompt alone. During generation with the KV cache the batch keeps its left padding: the
    cache holds T + k positions, the mask is extended with 1s, the new token's position is
    mask.sum() - 1 of its row.

Self-checks (assertions): batched logits == alone logits at real positions (1e-10); greedy ids
batched-with-cache == alone-without-cache == batched-without-cache, step logits equal (1e-10);
the torch forward == an independent numpy forward (1e-12); a float32 forward reproduces the
greedy ids; continuations vary (>= 8 distinct tokens of each row's N); every stored tensor
matters (zeroing it, or resetting a LayerNorm weight to 1, moves the logits by > 1e-3); square
Conv1D weights transposed, or q and k swapped, change the logits; F16 bits equal torch's
.half(), BF16 bits equal torch's .bfloat16(); every file re-read (BF16 through
gpt2_reference.deserialize) gives back the same bits; each written directory re-loaded with
GPT2LMHeadModel.from_pretrained reproduces the reference logits; the published configs parse
to the known parameter counts (124,439,808 ... 1,557,611,200).
"""

import copy
import hashlib
import json
import math
import os
import sys

import numpy as np
import torch

sys.dont_write_bytecode = True  # no tools/__pycache__ in the work tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gpt2_reference as g  # noqa: E402
import safetensors_np  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DIR = os.path.join(ROOT, "tests", "fixtures", "gpt2")
TOL = 1e-10          # batched vs alone, cached vs full recomputation
NP_TOL = 1e-12       # torch vs numpy forward
MARGIN_MIN = 1e-2    # smallest allowed top-1 / top-2 gap in the greedy steps
MIN_DISTINCT = 8     # each greedy continuation holds at least this many distinct tokens
SENSITIVITY = 1e-3   # a skipped tensor must move some logit by more than this
MAX_TOTAL_BYTES = 3_300_000
POSITIONS_RULE = ("HF generate(): position_ids = attention_mask.cumsum(-1) - 1, "
                  "masked_fill(attention_mask == 0, 1); cached step: position = mask.sum(-1) - 1")

torch.set_num_threads(1)  # reduction order independent of the machine's core count

WRITTEN = []  # (relative path, bytes, sha256)


# --------------------------------------------------------------------------------------------
# configs
# --------------------------------------------------------------------------------------------

TASK_PARAMS = {"text-generation": {"do_sample": True, "max_length": 50}}


def hub_config(L, H, d, P, V, bos, eos, extra=None):
    """The field set of the published openai-community/gpt2 config.json."""
    c = {
        "activation_function": "gelu_new",
        "architectures": ["GPT2LMHeadModel"],
        "attn_pdrop": 0.1,
        "bos_token_id": bos,
        "embd_pdrop": 0.1,
        "eos_token_id": eos,
        "initializer_range": 0.02,
        "layer_norm_epsilon": 1e-05,
        "model_type": "gpt2",
        "n_ctx": P,
        "n_embd": d,
        "n_head": H,
        "n_layer": L,
        "n_positions": P,
        "resid_pdrop": 0.1,
        "summary_activation": None,
        "summary_first_dropout": 0.1,
        "summary_proj_to_labels": True,
        "summary_type": "cls_index",
        "summary_use_proj": True,
        "task_specific_params": copy.deepcopy(TASK_PARAMS),
        "vocab_size": V,
    }
    c.update(extra or {})
    return c


MEDIUM_EXTRA = {"n_special": 0, "predict_special_tokens": True}   # gpt2-medium's extra fields
XL_EXTRA = {"output_past": True}                                    # gpt2-xl's extra field


def save_pretrained_config(L, H, d, P, V, bos, eos, torch_dtype):
    """A config.json as transformers 4.35's save_pretrained writes it for a fine-tuned gpt2."""
    c = hub_config(L, H, d, P, V, bos, eos)
    c.update({
        "_name_or_path": "gpt2",
        "n_inner": None,
        "reorder_and_upcast_attn": False,
        "scale_attn_by_inverse_layer_idx": False,
        "scale_attn_weights": True,
        "torch_dtype": torch_dtype,
        "transformers_version": "4.35.0",
        "use_cache": True,
    })
    return c


PUBLISHED = {  # name: (n_layer, n_head, n_embd, extra fields, known parameter count)
    "small": (12, 12, 768, {}, 124_439_808),
    "medium": (24, 16, 1024, MEDIUM_EXTRA, 354_823_168),
    "large": (36, 20, 1280, {}, 774_030_080),
    "xl": (48, 25, 1600, XL_EXTRA, 1_557_611_200),
}


def config_json_text(cfg_dict):
    # HF writes json.dumps(config, indent=2, sort_keys=True) + "\n"
    return json.dumps(cfg_dict, indent=2, sort_keys=True) + "\n"


def param_count(cfg):
    d, L = cfg.n_embd, cfg.n_layer
    per_layer = 4 * d + (d * 3 * d + 3 * d) + (d * d + d) + (d * cfg.inner + cfg.inner) \
        + (cfg.inner * d + d)
    return cfg.vocab_size * d + cfg.n_positions * d + L * per_layer + 2 * d


# --------------------------------------------------------------------------------------------
# weights and file layouts
# --------------------------------------------------------------------------------------------


def hf_names(cfg):
    names = ["wte.weight", "wpe.weight", "ln_f.weight", "ln_f.bias"]
    for i in range(cfg.n_layer):
        p = f"h.{i}."
        names += [p + "ln_1.weight", p + "ln_1.bias", p + "attn.c_attn.weight", p + "attn.c_attn.bias",
                  p + "attn.c_proj.weight", p + "attn.c_proj.bias", p + "ln_2.weight", p + "ln_2.bias",
                  p + "mlp.c_fc.weight", p + "mlp.c_fc.bias", p + "mlp.c_proj.weight",
                  p + "mlp.c_proj.bias"]
    return names


def random_weights(cfg, seed, wte_std, wpe_std, gain):
    """HF-named float32 weights. Every tensor random (no 1 / 0 defaults left)."""
    rng = np.random.default_rng(seed)
    d, V, P, I = cfg.n_embd, cfg.vocab_size, cfg.n_positions, cfg.inner
    sd = {"wte.weight": wte_std * rng.standard_normal((V, d)),
          "wpe.weight": wpe_std * rng.standard_normal((P, d))}

    def ln(n):
        sd[n + ".weight"] = 1.0 + 0.1 * rng.standard_normal(d)
        sd[n + ".bias"] = 0.1 * rng.standard_normal(d)

    def conv(n, nin, nout):
        sd[n + ".weight"] = gain * rng.standard_normal((nin, nout)) / math.sqrt(nin)
        sd[n + ".bias"] = 0.1 * rng.standard_normal(nout)

    for i in range(cfg.n_layer):
        p = f"h.{i}."
        ln(p + "ln_1")
        conv(p + "attn.c_attn", d, 3 * d)
        conv(p + "attn.c_proj", d, d)
        ln(p + "ln_2")
        conv(p + "mlp.c_fc", d, I)
        conv(p + "mlp.c_proj", I, d)
    ln("ln_f")
    assert sorted(sd) == sorted(hf_names(cfg))
    return {k: v.astype(np.float32) for k, v in sd.items()}


def stored_form(w32, dtype):
    """float32 weights -> (arrays as stored in the file, their exact values as float64)."""
    stored, exact = {}, {}
    for k, v in w32.items():
        if dtype == "F32":
            s = v
            e = v.astype(np.float64)
        elif dtype == "F16":
            s = v.astype(np.float16)  # round to nearest even
            ref = torch.from_numpy(v).half().numpy()
            assert np.array_equal(s.view(np.uint16), ref.view(np.uint16)), f"{k}: F16 vs torch"
            assert np.all(np.isfinite(s)), k
            e = s.astype(np.float64)
        elif dtype == "BF16":
            s = g.f32_to_bf16_bits(v)  # uint16 bit patterns
            ref = torch.from_numpy(v).to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)
            assert np.array_equal(s, ref), f"{k}: BF16 rounding differs from torch"
            e = g.bf16_bits_to_f32(s).astype(np.float64)
        else:
            raise ValueError(dtype)
        stored[k], exact[k] = s, e
    return stored, exact


def layout(cfg, stored, names, buffers):
    """Apply a naming variant and add buffers. names: 'hub' | 'prefix' | 'prefix+lm_head'.
    buffers: None | 'f32_bias' | 'u8_bias+masked_bias'. Returns (tensors, bf16-free)."""
    P = cfg.n_positions
    out = {}
    pre = "transformer." if names.startswith("prefix") else ""
    for k, v in stored.items():
        out[pre + k] = v
    tril = np.tril(np.ones((P, P))).reshape(1, 1, P, P)
    for i in range(cfg.n_layer):
        if buffers == "f32_bias":
            out[f"{pre}h.{i}.attn.bias"] = tril.astype(np.float32)
        elif buffers == "u8_bias+masked_bias":
            out[f"{pre}h.{i}.attn.bias"] = tril.astype(np.uint8)
            out[f"{pre}h.{i}.attn.masked_bias"] = np.array(-1e4, dtype=np.float32)  # shape []
        else:
            assert buffers is None, buffers
    if names == "prefix+lm_head":
        out["lm_head.weight"] = stored["wte.weight"].copy()
    return out


# --------------------------------------------------------------------------------------------
# independent numpy forward (no cache), to cross-check gpt2_reference
# --------------------------------------------------------------------------------------------


def np_forward(cfg, W, ids, mask, pos):
    d, H = cfg.n_embd, cfg.n_head
    hd = d // H
    eps = cfg.layer_norm_epsilon

    def ln(x, n):
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + eps) * W[n + ".weight"] + W[n + ".bias"]

    def gelu(x):
        return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))

    B, T = ids.shape
    x = W["wte.weight"][ids] + W["wpe.weight"][pos]
    allowed = (np.arange(T)[None, :] <= np.arange(T)[:, None])[None] & (mask[:, None, :] == 1)
    for i in range(cfg.n_layer):
        p = f"h.{i}."
        a = ln(x, p + "ln_1") @ W[p + "attn.c_attn.weight"] + W[p + "attn.c_attn.bias"]
        q, k, v = a[..., :d], a[..., d:2 * d], a[..., 2 * d:]
        heads = []
        for h in range(H):
            sl = slice(h * hd, (h + 1) * hd)
            s = q[..., sl] @ np.swapaxes(k[..., sl], -1, -2) / math.sqrt(hd)
            s = np.where(allowed, s, -np.inf)
            m = s.max(-1, keepdims=True)
            m = np.where(np.isfinite(m), m, 0.0)
            e = np.where(allowed, np.exp(s - m), 0.0)
            den = e.sum(-1, keepdims=True)
            pr = np.divide(e, den, out=np.zeros_like(e), where=den > 0)
            heads.append(pr @ v[..., sl])
        o = np.concatenate(heads, -1) @ W[p + "attn.c_proj.weight"] + W[p + "attn.c_proj.bias"]
        x = x + o
        f = gelu(ln(x, p + "ln_2") @ W[p + "mlp.c_fc.weight"] + W[p + "mlp.c_fc.bias"])
        x = x + f @ W[p + "mlp.c_proj.weight"] + W[p + "mlp.c_proj.bias"]
    return ln(x, "ln_f") @ W["wte.weight"].T


# --------------------------------------------------------------------------------------------
# checks
# --------------------------------------------------------------------------------------------


def max_diff(a, b):
    a = torch.as_tensor(a, dtype=torch.float64)
    b = torch.as_tensor(b, dtype=torch.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    return float((a - b).abs().max()) if a.numel() else 0.0


def real_logits(model, ids, mask, pos):
    logits, _ = model(ids, mask, pos)
    return logits * mask[..., None].to(logits.dtype)


def check_every_tensor_matters(cfg, exact, ids, mask, pos, label):
    base = real_logits(g.GPT2LMHeadModel(cfg).load_hf_state_dict(exact), ids, mask, pos)

    def moved(w):
        return max_diff(real_logits(g.GPT2LMHeadModel(cfg).load_hf_state_dict(w), ids, mask, pos),
                        base)

    for name in sorted(exact):
        w = dict(exact)
        is_ln_weight = name.endswith(".weight") and (".ln_" in name or name.startswith("ln_"))
        w[name] = np.ones_like(exact[name]) if is_ln_weight else np.zeros_like(exact[name])
        delta = moved(w)
        assert delta > SENSITIVITY, f"{label}: skipping {name} only moves the logits by {delta}"
    d = cfg.n_embd
    for i in range(cfg.n_layer):
        w = dict(exact)
        n = f"h.{i}.attn.c_proj.weight"
        w[n] = exact[n].T.copy()
        assert moved(w) > SENSITIVITY, f"{label}: transposed {n} is not detected"
        w = dict(exact)
        for n in (f"h.{i}.attn.c_attn.weight", f"h.{i}.attn.c_attn.bias"):
            a = exact[n].copy()
            a[..., :d], a[..., d:2 * d] = exact[n][..., d:2 * d], exact[n][..., :d]
            w[n] = a
        assert moved(w) > SENSITIVITY, f"{label}: q/k swap in layer {i} is not detected"


def compute_reference(cfg, exact, prompts, n_new, label):
    """All float64 reference outputs for one set of exact weights. Returns (tensors, info)."""
    eos = cfg.eos_token_id
    model = g.GPT2LMHeadModel(cfg, torch.float64).load_hf_state_dict(exact)
    ids, mask = g.left_pad(prompts, eos)
    pos = g.hf_position_ids(mask)
    B, T = ids.shape
    assert T + n_new - 1 <= cfg.n_positions

    logits, _ = model(ids, mask, pos)
    npl = np_forward(cfg, exact, ids.numpy(), mask.numpy(), pos.numpy())
    m = mask.numpy()[..., None] == 1
    err = float(np.max(np.abs(np.where(m, npl - logits.numpy(), 0.0))))
    assert err < NP_TOL, f"{label}: torch vs numpy forward {err}"

    out = {}
    for b, p in enumerate(prompts):
        alone, _ = model(torch.tensor([p]))
        err = max_diff(logits[b, T - len(p):], alone[0])
        assert err < TOL, f"{label}: batched vs alone logits, prompt {b}: {err}"
        out[f"output.logits_alone_{b}"] = alone.numpy().copy()
    assert torch.all(torch.isfinite(logits))
    out["output.logits"] = (logits * mask[..., None].double()).numpy().copy()

    # greedy: batched with the KV cache; batched recomputing everything; each prompt alone
    gid, glog, gmargin = g.greedy_generate(model, ids, mask, n_new, use_cache=True)
    fid, flog, fmargin = g.greedy_generate(model, ids, mask, n_new, use_cache=False)
    assert torch.equal(gid, fid), f"{label}: cached vs full greedy ids"
    err = max_diff(glog, flog)
    assert err < TOL, f"{label}: cached vs full step logits {err}"
    margin = min(gmargin, fmargin)
    for b, p in enumerate(prompts):
        aid, alog, amargin = g.greedy_generate(model, torch.tensor([p]), None, n_new,
                                               use_cache=False)
        assert torch.equal(aid[0], gid[b]), f"{label}: prompt {b} greedy alone vs batched"
        err = max_diff(alog[0], glog[b])
        assert err < TOL, f"{label}: prompt {b} step logits alone vs batched {err}"
        cid, clog, cmargin = g.greedy_generate(model, torch.tensor([p]), None, n_new,
                                               use_cache=True)
        assert torch.equal(cid, aid) and max_diff(clog, alog) < TOL
        margin = min(margin, amargin, cmargin)
    assert margin >= MARGIN_MIN, f"{label}: greedy margin {margin} < {MARGIN_MIN}"
    assert not torch.any(gid == eos), f"{label}: EOS among the greedy ids"
    for b in range(B):
        distinct = len(set(gid[b].tolist()))
        assert distinct >= MIN_DISTINCT, f"{label}: prompt {b} continuation has {distinct} tokens"

    # float32 reproduces the greedy ids
    m32 = g.GPT2LMHeadModel(cfg, torch.float32).load_hf_state_dict(exact)
    id32, log32, _ = g.greedy_generate(m32, ids, mask, n_new, use_cache=True)
    assert torch.equal(id32, gid), f"{label}: float32 greedy differs"
    f32_err = max_diff(log32, glog)

    check_every_tensor_matters(cfg, exact, ids, mask, pos, label)

    out.update({
        "input.prompt_ids": ids.numpy().copy(),
        "input.attention_mask": mask.numpy().copy(),
        "input.prompt_lengths": np.array([len(p) for p in prompts], dtype=np.int64),
        "input.position_ids": pos.numpy().copy(),
        "output.greedy_ids": gid.numpy().copy(),
        "output.cached_logits": glog.numpy().copy(),
        "output.greedy_margin_min": np.array([margin], dtype=np.float64),
    })
    info = {"margin": margin, "f32_err": f32_err, "model": model,
            "distinct": [len(set(r)) for r in gid.tolist()]}
    return out, info


# --------------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------------


def record(path, data):
    with open(path, "wb") as f:
        f.write(data)
    rel = os.path.relpath(path, OUT_DIR)
    WRITTEN.append((rel, len(data), hashlib.sha256(data).hexdigest()))


def write_json(path, obj):
    record(path, config_json_text(obj).encode("utf-8"))


def write_model(path, tensors, bf16_names):
    data = g.serialize(tensors, {"format": "pt"}, bf16=bf16_names)
    record(path, data)
    back, meta, back_bf16 = g.deserialize(data)
    assert meta == {"format": "pt"} and back_bf16 == set(bf16_names)
    assert set(back) == set(tensors)
    for k, v in tensors.items():
        if k in bf16_names:
            assert np.array_equal(g.f32_to_bf16_bits(back[k]), v), f"{k}: BF16 bits round trip"
        else:
            assert back[k].dtype == v.dtype and back[k].shape == v.shape, k
            assert back[k].tobytes() == np.ascontiguousarray(v).tobytes(), k
    if bf16_names:  # the tags really say BF16, and without them the plain reader refuses
        try:
            safetensors_np.deserialize(data)
            raise AssertionError("safetensors_np accepted BF16")
        except ValueError:
            pass


def write_reference(path, tensors, meta):
    for k, v in tensors.items():
        assert v.dtype in (np.float64, np.int64), k
        assert not np.any(np.isnan(v)), k
    data = safetensors_np.serialize(tensors, meta)
    record(path, data)
    back, bmeta = safetensors_np.deserialize(data)
    assert bmeta == meta and set(back) == set(tensors)
    for k, v in tensors.items():
        assert back[k].dtype == v.dtype and np.array_equal(back[k], v), k


# --------------------------------------------------------------------------------------------
# variants
# --------------------------------------------------------------------------------------------

GROUPS = {
    # group: architecture, weight seed and scales, prompt seed and lengths
    "tiny": dict(L=2, H=3, d=24, P=64, V=300, seed=6, wpe_std=0.5, lengths=[5, 11, 2]),
    "odd": dict(L=3, H=5, d=40, P=48, V=257, seed=8, wpe_std=0.5, lengths=[5, 11, 2]),
    "one": dict(L=1, H=1, d=16, P=32, V=100, seed=3, wpe_std=1.0, lengths=[5, 9, 1]),
}
WTE_STD = 0.5
GAIN = 2.0

VARIANTS = [
    # name, group, dtype, names, buffers, config style
    ("tiny_f32_hub", "tiny", "F32", "hub", "f32_bias", "hub"),
    ("tiny_f32_transformer_prefix", "tiny", "F32", "prefix+lm_head", None, "save_pretrained"),
    ("tiny_f16", "tiny", "F16", "prefix", None, "save_pretrained"),
    ("tiny_bf16", "tiny", "BF16", "hub", None, "save_pretrained"),
    ("odd_shape", "odd", "F32", "prefix", "u8_bias+masked_bias", "medium"),
    ("one_layer_one_head", "one", "F32", "hub", None, "save_pretrained"),
]
TORCH_DTYPE = {"F32": "float32", "F16": "float16", "BF16": "bfloat16"}


def group_setup(name):
    p = GROUPS[name]
    V = p["V"]
    cfg = g.GPT2Config(n_layer=p["L"], n_head=p["H"], n_embd=p["d"], n_positions=p["P"],
                       vocab_size=V, layer_norm_epsilon=1e-5, activation_function="gelu_new",
                       bos_token_id=V - 1, eos_token_id=V - 1)
    w32 = random_weights(cfg, p["seed"], WTE_STD, p["wpe_std"], GAIN)
    rng = np.random.default_rng(p["seed"] + 1000)
    prompts = [rng.integers(0, V - 1, n).tolist() for n in p["lengths"]]  # never the eos id
    T = max(p["lengths"])
    n_new = min(32, cfg.n_positions - T + 1)
    return cfg, w32, prompts, n_new


def make_variant(name, group, dtype, names, buffers, style, cache):
    if group not in cache:
        cache[group] = group_setup(group)
    cfg, w32, prompts, n_new = cache[group]
    L, H, d, P, V = cfg.n_layer, cfg.n_head, cfg.n_embd, cfg.n_positions, cfg.vocab_size
    vdir = os.path.join(OUT_DIR, name)
    os.makedirs(vdir, exist_ok=True)

    if style == "hub":
        cj = hub_config(L, H, d, P, V, V - 1, V - 1)
    elif style == "medium":
        cj = hub_config(L, H, d, P, V, V - 1, V - 1, MEDIUM_EXTRA)
    else:
        cj = save_pretrained_config(L, H, d, P, V, V - 1, V - 1, TORCH_DTYPE[dtype])
    write_json(os.path.join(vdir, "config.json"), cj)
    pc = g.GPT2Config.from_json_file(os.path.join(vdir, "config.json"))
    assert (pc.n_layer, pc.n_head, pc.n_embd, pc.n_positions, pc.vocab_size, pc.inner,
            pc.layer_norm_epsilon, pc.eos_token_id) == (L, H, d, P, V, 4 * d, 1e-5, V - 1)

    stored, exact = stored_form(w32, dtype)
    tensors = layout(cfg, stored, names, buffers)
    bf16_names = [] if dtype != "BF16" else \
        [k for k in tensors if not k.endswith((".attn.bias", ".attn.masked_bias"))]
    write_model(os.path.join(vdir, "model.safetensors"), tensors, bf16_names)

    key = (group, dtype)
    if key not in cache:
        cache[key] = compute_reference(cfg, exact, prompts, n_new, name)
    ref, info = cache[key]

    # the directory as written loads (prefix / buffers / lm_head handled) and reproduces it
    loaded = g.GPT2LMHeadModel.from_pretrained(vdir)
    for k, v in loaded.state_dict().items():
        assert torch.equal(v, torch.from_numpy(exact[k])), f"{name}: {k} after loading"
    ids = torch.from_numpy(ref["input.prompt_ids"])
    mask = torch.from_numpy(ref["input.attention_mask"])
    lg, _ = loaded(ids, mask, torch.from_numpy(ref["input.position_ids"]))
    assert max_diff(lg * mask[..., None].double(), ref["output.logits"]) == 0.0

    meta = {
        "variant": name,
        "model_dtype": dtype,
        "model_names": {"hub": "hub (wte.weight, h.{i}.*, ln_f.*)",
                        "prefix": "transformer.-prefixed",
                        "prefix+lm_head": "transformer.-prefixed + lm_head.weight"}[names],
        "model_buffers": {None: "none", "f32_bias": "h.{i}.attn.bias F32 [1,1,P,P]",
                          "u8_bias+masked_bias": "h.{i}.attn.bias U8 [1,1,P,P] + "
                                                 "h.{i}.attn.masked_bias F32 []"}[buffers],
        "config_style": style,
        "n_layer": str(L), "n_head": str(H), "n_embd": str(d), "n_positions": str(P),
        "vocab_size": str(V), "layer_norm_epsilon": repr(cfg.layer_norm_epsilon),
        "pad_token_id": str(V - 1), "padding_side": "left",
        "positions": POSITIONS_RULE,
        "logits_at_padding": "0.0 placeholders (undefined in HF); compare where attention_mask == 1",
        "greedy_steps": str(n_new),
        "greedy": "argmax, exactly greedy_steps tokens, no EOS stopping (no EOS is generated)",
        "cached_logits": "step 0 = batched prompt pass; step k > 0 = one-token step with KV cache",
        "reference_precision": "float64 from the stored weights upcast exactly",
        "tolerance_self_checks": repr(TOL),
    }
    write_reference(os.path.join(vdir, "reference.safetensors"), ref, meta)
    return info, n_new


def main():
    assert torch.get_default_dtype() == torch.float32  # the model sets its own dtype
    os.makedirs(OUT_DIR, exist_ok=True)

    for size, (L, H, d, extra, count) in PUBLISHED.items():
        path = os.path.join(OUT_DIR, f"gpt2_{size}_config.json")
        write_json(path, hub_config(L, H, d, 1024, 50257, 50256, 50256, extra))
        c = g.GPT2Config.from_json_file(path)
        assert (c.n_layer, c.n_head, c.n_embd, c.n_positions, c.vocab_size) == (L, H, d, 1024, 50257)
        assert c.head_dim == 64 and c.inner == 4 * d and c.layer_norm_epsilon == 1e-5
        assert c.bos_token_id == c.eos_token_id == 50256
        assert param_count(c) == count, f"{size}: {param_count(c)} parameters, expected {count}"

    cache = {}
    summary = []
    for name, group, dtype, names, buffers, style in VARIANTS:
        info, n_new = make_variant(name, group, dtype, names, buffers, style, cache)
        summary.append((name, info, n_new))

    expected = {rel for rel, _, _ in WRITTEN}
    found = set()
    for dirpath, _, files in os.walk(OUT_DIR):
        for f in files:
            found.add(os.path.relpath(os.path.join(dirpath, f), OUT_DIR))
    stale = sorted(found - expected)
    assert not stale, f"stale files in tests/fixtures/gpt2: {stale}"

    for rel, size, sha in WRITTEN:
        print(f"{rel:48s} {size:8d}  {sha}")
    for name, info, n_new in summary:
        print(f"{name:30s} greedy steps {n_new:2d}  margin_min {info['margin']:.4f}  distinct "
              f"{info['distinct']}  float32 step-logit err {info['f32_err']:.1e}")
    total = sum(s for _, s, _ in WRITTEN)
    print(f"{len(WRITTEN)} files, total {total} bytes")
    assert total < MAX_TOTAL_BYTES, total


if __name__ == "__main__":
    main()
