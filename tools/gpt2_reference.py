#!/usr/bin/env python3
"""GPT-2 in plain PyTorch, matching Hugging Face's GPT2LMHeadModel at inference (no dropout).

What it is
    An importable reference model for Eigenformer's GPT-2 tests (used by
    tools/make_gpt2_fixtures.py; no `transformers`, no `safetensors` package needed). It runs in
    whatever dtype its parameters have (the fixtures use float64, and float32 for a check).

        import gpt2_reference as g
        model = g.GPT2LMHeadModel.from_pretrained("tests/fixtures/gpt2/tiny_f32_hub")  # float64
        ids, step_logits, margin = g.greedy_generate(model, prompt_ids, attention_mask, 32)

    Running this file (`/usr/bin/python3 tools/gpt2_reference.py [model_dir]`) runs a small
    self-test; to regenerate the fixtures run `/usr/bin/python3 tools/make_gpt2_fixtures.py`.

The model (Hugging Face semantics)
    h = wte[ids] + wpe[position_ids]
    per block (pre-norm):  h = h + attn(ln_1(h));  h = h + mlp(ln_2(h))
        attn: Conv1D c_attn (weight [d, 3d], y = x W + b) -> q | k | v (in that order along the
              last axis), split into n_head heads of d / n_head (head h = columns h*hd..h*hd+hd);
              scores = q k^T / sqrt(hd); causal mask + padding mask; softmax; concat heads;
              Conv1D c_proj [d, d].
        mlp:  Conv1D c_fc [d, n_inner] -> gelu_new -> Conv1D c_proj [n_inner, d];
              n_inner = config n_inner, or 4 d when absent / null.
        gelu_new(x) = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
    ln_f; logits = h wte^T (tied; a stored `lm_head.weight` is ignored, as HF re-ties it to wte).
    LayerNorm: biased variance, eps = config layer_norm_epsilon.

Masks and positions (the semantics the fixtures use)
    attention_mask [B, S_past + T], 1 = real token, 0 = padding (left padding for batches).
    A query at absolute index i (= S_past + t) may attend key j iff j <= i and mask[b, j] == 1.
    Position ids: HF's GPT2Model.forward, given no position_ids, uses arange(S_past, S_past + T)
    regardless of the mask; HF's generate() (GPT2LMHeadModel.prepare_inputs_for_generation)
    instead derives them from the mask:
        position_ids = attention_mask.cumsum(-1) - 1; position_ids[attention_mask == 0] = 1
    and keeps the last T columns. `hf_position_ids(mask)` computes exactly that. With it, each
    real token of a left-padded row gets the position it would have in the unpadded prompt, so
    a row's real-position logits equal those of the prompt run alone. Padding positions get
    position 1 (not 0 and not -1); their outputs are meaningless in HF (all their keys are
    masked; the value HF gives depends on its version). Here a query row whose keys are all
    masked gets an attention output of exactly 0 (never NaN), so it cannot poison anything;
    and real queries never see padded keys, so padded positions never affect real ones.

KV cache
    `past` is a list, one (k, v) per layer, each [B, n_head, S_past, head_dim] (keys and values
    after the c_attn projection, before the scores, exactly HF's layer_past). forward() returns
    the extended cache.

Checkpoint layout (HF)
    Names `wte.weight` [V, d], `wpe.weight` [n_positions, d], `h.{i}.ln_1.{weight,bias}`,
    `h.{i}.attn.c_attn.{weight [d, 3d], bias [3d]}`, `h.{i}.attn.c_proj.{weight [d, d], bias}`,
    `h.{i}.ln_2.*`, `h.{i}.mlp.c_fc.{weight [d, 4d], bias}`, `h.{i}.mlp.c_proj.{weight [4d, d],
    bias}`, `ln_f.*`. Accepted variants: every name prefixed `transformer.` (save_pretrained of
    GPT2LMHeadModel), an extra `lm_head.weight` (== wte), the causal-mask buffers
    `h.{i}.attn.bias` (hub files: F32 [1, 1, n_positions, n_positions] lower-triangular ones;
    later transformers versions saved uint8 / bool) and `h.{i}.attn.masked_bias` (a scalar,
    -1e4, in files from transformers 2.x-4.x) - the buffers are ignored. Stored dtypes F32, F16,
    BF16 (BF16 read here without the safetensors package: see `load_safetensors`), F64.
"""

import json
import math
import os
import struct
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.dont_write_bytecode = True  # no tools/__pycache__ in the work tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_np  # noqa: E402

# --------------------------------------------------------------------------------------------
# config
# --------------------------------------------------------------------------------------------


class GPT2Config:
    """The fields of a HF GPT-2 config.json that inference depends on."""

    def __init__(self, n_layer, n_head, n_embd, n_positions, vocab_size, layer_norm_epsilon=1e-5,
                 n_inner=None, activation_function="gelu_new", bos_token_id=None,
                 eos_token_id=None):
        self.n_layer = int(n_layer)
        self.n_head = int(n_head)
        self.n_embd = int(n_embd)
        self.n_positions = int(n_positions)
        self.vocab_size = int(vocab_size)
        self.layer_norm_epsilon = float(layer_norm_epsilon)
        self.n_inner = None if n_inner is None else int(n_inner)
        self.activation_function = activation_function
        self.bos_token_id = bos_token_id
        self.eos_token_id = eos_token_id
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd {self.n_embd} is not a multiple of n_head {self.n_head}")
        if activation_function not in ACTIVATIONS:
            raise ValueError(f"unsupported activation_function {activation_function!r}")

    @property
    def inner(self):
        return self.n_inner if self.n_inner is not None else 4 * self.n_embd

    @property
    def head_dim(self):
        return self.n_embd // self.n_head

    @classmethod
    def from_dict(cls, d):
        return cls(n_layer=d["n_layer"], n_head=d["n_head"], n_embd=d["n_embd"],
                   n_positions=d["n_positions"], vocab_size=d["vocab_size"],
                   layer_norm_epsilon=d.get("layer_norm_epsilon", 1e-5),
                   n_inner=d.get("n_inner"),
                   activation_function=d.get("activation_function", "gelu_new"),
                   bos_token_id=d.get("bos_token_id"), eos_token_id=d.get("eos_token_id"))

    @classmethod
    def from_json_file(cls, path):
        with open(path, "r", encoding="utf-8") as f:
            return cls.from_dict(json.load(f))


# --------------------------------------------------------------------------------------------
# layers
# --------------------------------------------------------------------------------------------


def gelu_new(x):
    """HF's gelu_new (== torch gelu(approximate='tanh') == 'gelu_pytorch_tanh')."""
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


ACTIVATIONS = {
    "gelu_new": gelu_new,
    "gelu_pytorch_tanh": gelu_new,
    "gelu": F.gelu,  # exact erf form, as HF's "gelu"
    "relu": F.relu,
}


class Conv1D(nn.Module):
    """HF's Conv1D: weight [nx, nf] ([in, out]); y = x W + b."""

    def __init__(self, nf, nx):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(nx, nf))
        self.bias = nn.Parameter(torch.zeros(nf))

    def forward(self, x):
        shape = x.shape[:-1] + (self.weight.shape[1],)
        return torch.addmm(self.bias, x.reshape(-1, x.shape[-1]), self.weight).view(shape)


class Attention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.n_head = cfg.n_head
        self.head_dim = cfg.head_dim
        self.c_attn = Conv1D(3 * cfg.n_embd, cfg.n_embd)
        self.c_proj = Conv1D(cfg.n_embd, cfg.n_embd)

    def _split(self, x):  # [B, T, d] -> [B, H, T, hd]
        B, T, _ = x.shape
        return x.view(B, T, self.n_head, self.head_dim).permute(0, 2, 1, 3)

    def forward(self, x, allowed, layer_past=None):
        """x [B, T, d]; allowed bool [B, T, S_past + T] (True = may attend)."""
        d = x.shape[-1]
        q, k, v = self.c_attn(x).split(d, dim=2)
        q, k, v = self._split(q), self._split(k), self._split(v)
        if layer_past is not None:
            k = torch.cat((layer_past[0], k), dim=-2)
            v = torch.cat((layer_past[1], v), dim=-2)
        present = (k, v)
        scores = torch.matmul(q, k.transpose(-1, -2)) / (float(v.shape[-1]) ** 0.5)
        allowed = allowed[:, None, :, :]  # broadcast over heads
        scores = scores.masked_fill(~allowed, float("-inf"))
        probs = torch.softmax(scores, dim=-1)
        # a fully masked row (only padded queries have one) gives NaN in softmax: make it 0
        probs = torch.where(allowed.any(dim=-1, keepdim=True), probs, torch.zeros_like(probs))
        out = torch.matmul(probs, v)  # [B, H, T, hd]
        B, H, T, hd = out.shape
        out = out.permute(0, 2, 1, 3).reshape(B, T, H * hd)
        return self.c_proj(out), present


class MLP(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.c_fc = Conv1D(cfg.inner, cfg.n_embd)
        self.c_proj = Conv1D(cfg.n_embd, cfg.inner)
        self.act = ACTIVATIONS[cfg.activation_function]

    def forward(self, x):
        return self.c_proj(self.act(self.c_fc(x)))


class Block(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg.n_embd, eps=cfg.layer_norm_epsilon)
        self.attn = Attention(cfg)
        self.ln_2 = nn.LayerNorm(cfg.n_embd, eps=cfg.layer_norm_epsilon)
        self.mlp = MLP(cfg)

    def forward(self, x, allowed, layer_past=None):
        a, present = self.attn(self.ln_1(x), allowed, layer_past)
        x = x + a
        x = x + self.mlp(self.ln_2(x))
        return x, present


class GPT2LMHeadModel(nn.Module):
    """State dict names are HF's GPT2Model names (`wte.weight`, `h.0.attn.c_attn.weight`, ...)."""

    def __init__(self, cfg, dtype=torch.float64):
        super().__init__()
        self.config = cfg
        self.wte = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        self.wpe = nn.Embedding(cfg.n_positions, cfg.n_embd)
        self.h = nn.ModuleList([Block(cfg) for _ in range(cfg.n_layer)])
        self.ln_f = nn.LayerNorm(cfg.n_embd, eps=cfg.layer_norm_epsilon)
        self.to(dtype)
        self.eval()
        for p in self.parameters():
            p.requires_grad_(False)

    @property
    def dtype(self):
        return self.wte.weight.dtype

    def forward(self, input_ids, attention_mask=None, position_ids=None, past=None):
        """input_ids [B, T] (int64). attention_mask [B, S_past + T] (1 = real) or None (all real).
        position_ids [B, T] or None (then arange(S_past, S_past + T), HF forward's default).
        past: list of per-layer (k, v) or None. Returns (logits [B, T, V], new past)."""
        input_ids = torch.as_tensor(input_ids, dtype=torch.long)
        B, T = input_ids.shape
        S_past = 0 if past is None else past[0][0].shape[-2]
        S = S_past + T
        if attention_mask is None:
            attention_mask = torch.ones(B, S, dtype=torch.long)
        attention_mask = torch.as_tensor(attention_mask, dtype=torch.long)
        if tuple(attention_mask.shape) != (B, S):
            raise ValueError(f"attention_mask shape {tuple(attention_mask.shape)} != {(B, S)}")
        if position_ids is None:
            position_ids = torch.arange(S_past, S, dtype=torch.long).unsqueeze(0).expand(B, T)
        position_ids = torch.as_tensor(position_ids, dtype=torch.long)
        if int(position_ids.max()) >= self.config.n_positions or int(position_ids.min()) < 0:
            raise ValueError("position id outside [0, n_positions)")
        if int(input_ids.max()) >= self.config.vocab_size or int(input_ids.min()) < 0:
            raise ValueError("token id outside [0, vocab_size)")
        qpos = torch.arange(S_past, S).view(T, 1)
        kpos = torch.arange(S).view(1, S)
        causal = kpos <= qpos  # [T, S]
        allowed = causal.unsqueeze(0) & (attention_mask != 0).unsqueeze(1)  # [B, T, S]
        x = self.wte(input_ids) + self.wpe(position_ids)
        presents = []
        for i, block in enumerate(self.h):
            x, present = block(x, allowed, None if past is None else past[i])
            presents.append(present)
        x = self.ln_f(x)
        logits = torch.matmul(x, self.wte.weight.t())
        return logits, presents

    # ---- loading ---------------------------------------------------------------------------

    def load_hf_state_dict(self, sd):
        """Load a HF-layout dict name -> array/tensor (any float dtype; converted to self.dtype).

        Strips a `transformer.` prefix, ignores `h.{i}.attn.bias` / `h.{i}.attn.masked_bias`
        buffers and `lm_head.weight` (checked equal to wte). Every other name must be present
        with the right shape; unknown names are an error."""
        clean = {}
        lm_head = None
        prefixed = any(k.startswith("transformer.") for k in sd)
        for name, value in sd.items():
            if name == "lm_head.weight":
                lm_head = value
                continue
            if prefixed:
                if not name.startswith("transformer."):
                    raise KeyError(f"unexpected tensor {name!r} in a `transformer.`-prefixed file")
                name = name[len("transformer."):]
            if name.endswith(".attn.bias") or name.endswith(".attn.masked_bias"):
                continue
            clean[name] = value
        own = self.state_dict()
        missing = sorted(set(own) - set(clean))
        unexpected = sorted(set(clean) - set(own))
        if missing or unexpected:
            raise KeyError(f"missing {missing}, unexpected {unexpected}")
        with torch.no_grad():
            for name, value in clean.items():
                t = torch.as_tensor(np.asarray(value)).to(self.dtype)
                if tuple(t.shape) != tuple(own[name].shape):
                    raise ValueError(f"{name}: shape {tuple(t.shape)} != {tuple(own[name].shape)}")
                own[name].copy_(t)
        if lm_head is not None:
            t = torch.as_tensor(np.asarray(lm_head)).to(self.dtype)
            if not torch.equal(t, self.wte.weight):
                raise ValueError("lm_head.weight differs from wte.weight (GPT-2 ties them)")
        return self

    @classmethod
    def from_pretrained(cls, model_dir, dtype=torch.float64):
        cfg = GPT2Config.from_json_file(os.path.join(model_dir, "config.json"))
        tensors, _ = load_safetensors(os.path.join(model_dir, "model.safetensors"))
        return cls(cfg, dtype).load_hf_state_dict(tensors)


# --------------------------------------------------------------------------------------------
# masks, positions, generation
# --------------------------------------------------------------------------------------------


def hf_position_ids(attention_mask):
    """HF generate()'s position ids for GPT-2: cumsum(mask) - 1, and 1 where mask == 0."""
    m = torch.as_tensor(attention_mask, dtype=torch.long)
    pos = m.cumsum(-1) - 1
    return pos.masked_fill(m == 0, 1)


def left_pad(prompts, pad_id):
    """List of 1-D int sequences -> (ids [B, T], mask [B, T]) left-padded with pad_id."""
    T = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), T), int(pad_id), dtype=torch.long)
    mask = torch.zeros((len(prompts), T), dtype=torch.long)
    for b, p in enumerate(prompts):
        if len(p):
            ids[b, T - len(p):] = torch.as_tensor(list(p), dtype=torch.long)
            mask[b, T - len(p):] = 1
    return ids, mask


def top2_margin(logits):
    """logits [..., V] -> top-1 minus top-2 value [...]."""
    top = torch.topk(logits, 2, dim=-1).values
    return top[..., 0] - top[..., 1]


@torch.no_grad()
def greedy_generate(model, input_ids, attention_mask=None, max_new_tokens=32, use_cache=True):
    """Greedy decoding of exactly max_new_tokens tokens (no stopping at EOS), HF semantics:
    positions from the mask (hf_position_ids), the mask extended with 1 per new token.

    Returns (new_ids [B, N], step_logits [B, N, V], min top-1/top-2 margin over all steps):
    step_logits[:, k] are the logits that chose new_ids[:, k] (k = 0: the prompt's last
    position). use_cache=False recomputes the whole sequence at every step."""
    input_ids = torch.as_tensor(input_ids, dtype=torch.long)
    B, T = input_ids.shape
    mask = (torch.ones(B, T, dtype=torch.long) if attention_mask is None
            else torch.as_tensor(attention_mask, dtype=torch.long).clone())
    ids = input_ids.clone()
    new_ids, step_logits = [], []
    past = None
    for k in range(max_new_tokens):
        pos = hf_position_ids(mask)
        if use_cache and past is not None:
            logits, past = model(ids[:, -1:], mask, pos[:, -1:], past)
        else:
            logits, past = model(ids, mask, pos, None)
        last = logits[:, -1, :]
        nxt = torch.argmax(last, dim=-1)
        step_logits.append(last)
        new_ids.append(nxt)
        if k + 1 < max_new_tokens:
            ids = torch.cat([ids, nxt[:, None]], dim=1)
            mask = torch.cat([mask, torch.ones(B, 1, dtype=torch.long)], dim=1)
    step_logits = torch.stack(step_logits, dim=1)
    margin = float(top2_margin(step_logits).min())
    return torch.stack(new_ids, dim=1), step_logits, margin


# --------------------------------------------------------------------------------------------
# safetensors with F16 / BF16 (on top of tools/safetensors_np.py)
# --------------------------------------------------------------------------------------------


def f32_to_bf16_bits(x):
    """float32 array -> uint16 BF16 bit patterns, round to nearest even (finite inputs)."""
    u = np.ascontiguousarray(x, dtype="<f4").view("<u4").astype(np.uint64)
    if not np.all(np.isfinite(np.asarray(x, dtype=np.float32))):
        raise ValueError("non-finite value in BF16 conversion")
    rounded = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    return rounded.astype("<u2")


def bf16_bits_to_f32(bits):
    return (np.asarray(bits).astype("<u4") << 16).view("<f4")


def _retag(buf, names_to_dtype):
    """Rewrite the dtype strings of some tensors in safetensors bytes (same byte sizes only)."""
    (n,) = struct.unpack("<Q", buf[:8])
    header = json.loads(buf[8:8 + n].decode("utf-8"))
    for name, dt in names_to_dtype.items():
        header[name]["dtype"] = dt
    hjson = json.dumps(header, separators=(",", ":"), ensure_ascii=True).encode("utf-8")
    hjson += b" " * ((-len(hjson)) % 8)
    return struct.pack("<Q", len(hjson)) + hjson + buf[8 + n:]


def serialize(tensors, metadata=None, bf16=()):
    """safetensors_np.serialize, but the names in `bf16` (uint16 bit arrays) are tagged BF16."""
    prepared = {}
    for name, arr in tensors.items():
        if name in bf16:
            arr = np.asarray(arr)
            assert arr.dtype == np.uint16, f"{name}: BF16 tensors are passed as uint16 bits"
            prepared[name] = arr.view("<i2")  # same bytes, a dtype the writer knows (I16)
        else:
            prepared[name] = arr
    buf = safetensors_np.serialize(prepared, metadata)
    return _retag(buf, {name: "BF16" for name in bf16}) if bf16 else buf


def deserialize(buf):
    """Like safetensors_np.deserialize, also accepting BF16 (returned as float32 values, plus
    the set of names that were BF16). Returns (tensors, metadata, bf16_names)."""
    (n,) = struct.unpack("<Q", buf[:8])
    header = json.loads(buf[8:8 + n].decode("utf-8"))
    bf16 = sorted(k for k, v in header.items() if k != "__metadata__" and v.get("dtype") == "BF16")
    if bf16:
        buf = _retag(buf, {name: "I16" for name in bf16})
    tensors, metadata = safetensors_np.deserialize(buf)
    for name in bf16:
        tensors[name] = bf16_bits_to_f32(tensors[name].view("<u2"))
    return tensors, metadata, set(bf16)


def load_safetensors(path):
    """Returns (tensors, metadata); BF16 tensors come back as float32 (exact)."""
    with open(path, "rb") as f:
        tensors, metadata, _ = deserialize(f.read())
    return tensors, metadata


# --------------------------------------------------------------------------------------------
# self-test
# --------------------------------------------------------------------------------------------


def _self_test(model_dir=None):
    torch.manual_seed(0)
    if model_dir:
        model = GPT2LMHeadModel.from_pretrained(model_dir)
    else:
        cfg = GPT2Config(n_layer=2, n_head=2, n_embd=8, n_positions=16, vocab_size=11)
        model = GPT2LMHeadModel(cfg)
        with torch.no_grad():
            for p in model.parameters():
                p.copy_(torch.randn(p.shape, dtype=p.dtype))
    V = model.config.vocab_size
    prompts = [[1, 2, 3, 4], [5, 6]]
    ids, mask = left_pad(prompts, 0)
    logits, _ = model(ids, mask, hf_position_ids(mask))
    for b, p in enumerate(prompts):
        alone, _ = model(torch.tensor([p]))
        err = (logits[b, ids.shape[1] - len(p):] - alone[0]).abs().max().item()
        assert err < 1e-10, err
    g1, l1, _ = greedy_generate(model, ids, mask, 6, use_cache=True)
    g2, l2, _ = greedy_generate(model, ids, mask, 6, use_cache=False)
    assert torch.equal(g1, g2) and (l1 - l2).abs().max().item() < 1e-10
    assert l1.shape == (2, 6, V)
    print("gpt2_reference self-test ok; greedy:", g1.tolist())


if __name__ == "__main__":
    _self_test(sys.argv[1] if len(sys.argv) > 1 else None)
