#!/usr/bin/env python3
"""Reference fixtures for the PyTorch translation tutorial's `Seq2SeqTransformer`.

What it writes
    For each configuration <name> (see CONFIGS below) a directory tests/fixtures/translator/<name>/
    holding
      config.json           the model's hyper-parameters, exactly the fields
                            d_model, nhead, num_encoder_layers, num_decoder_layers,
                            dim_feedforward, activation ("relu"|"gelu"), norm_first (bool),
                            layer_norm_eps, src_vocab_size, tgt_vocab_size, bos_id, eos_id,
                            pad_id, max_len  (max_len = positional_encoding.pos_embedding.shape[0])
      model.safetensors     the model's state_dict() under its own names, all F32, no metadata:
                            the file a user gets from
                            `safetensors.torch.save_file(model.state_dict(), path)` after training
                            the tutorial's model (including the buffer
                            positional_encoding.pos_embedding [max_len, 1, d_model]).
      reference.safetensors inputs and float64 outputs computed by PyTorch (below).

    The model is the one of the official tutorial "Language Translation with nn.Transformer and
    torchtext" (TokenEmbedding, PositionalEncoding, Seq2SeqTransformer, create_mask,
    greedy_decode, translate's max_len rule), re-implemented here without torchtext; the only
    additions are the constructor arguments activation, norm_first, layer_norm_eps and maxlen,
    passed straight to nn.Transformer / PositionalEncoding. nn.Transformer is NOT batch_first:
    tensors inside are [S, B, D] as in the tutorial. tools/check_torch_loads_translator.py
    imports the model from this file.

How to rerun (from the repository root)
    /usr/bin/python3 tools/make_translator_fixtures.py
    Deterministic: per-config seeds come from the config name (plus an attempt number, see
    below), tensors are written in sorted order by tools/safetensors_np.py, config.json with
    sorted keys. Running it twice writes byte-identical files. Every run re-reads what it wrote
    and checks it (assertions), and prints one line per configuration.

How the weights are made
    Built as the tutorial does (float32, xavier_uniform_ on every parameter with dim > 1), then
    every LayerNorm weight (1 + 0.1 randn) and bias (0.1 randn) and every other bias
    (0.1 randn) is randomised, so a loader that skips one fails; then the token embeddings, the
    attention input projections and the generator are scaled (see CONFIGS) so that greedy
    decoding depends on the source, produces varied tokens and the best logit clearly beats
    the second; generator.bias is lowered by 5 at pad_id and bos_id (a trained translator never
    predicts them) and raised by eos_bias at eos_id. For each config, attempts 0, 1, 2, ...
    (seed = sha256(name + "#" + attempt)) are tried until all of these hold:
      * at least one of the 4 sentences stops at EOS and at least one at the length limit;
      * every greedy output has >= 2 tokens and no output is one token repeated; the 4
        outputs are pairwise different and hold >= 6 distinct ids together; none holds
        pad_id or bos_id (unk_id 0 may appear: it is an ordinary output word);
      * the minimum over every greedy step of every sentence of (best - second best logit),
        float64, is > MIN_MARGIN (1e-3), so float32 inference cannot flip an argmax;
      * the float32 model (exactly the stored weights) decodes the same ids as float64.
    The attempt used is stored as metadata "attempt".

reference.safetensors (computed in float64: the stored F32 weights are loaded into a fresh
model with load_state_dict(strict=True), then .double(), so the reference uses exactly the
stored values; .eval(), dropout 0, grad ENABLED: torch 1.13's fast path under torch.no_grad()
zeros padded positions, see the docstring of tools/make_fixtures.py)
    input.src_ids          I64 [B, S]  B = 4 sentences, each BOS + ids + EOS (the tutorial's
                                       tensor_transform), ids drawn from [4, src_vocab),
                                       right-padded with pad_id. Batch-first (transposed from
                                       the tutorial's [S, B]).
    input.src_lengths      I64 [B]     lengths including BOS and EOS.
    input.tgt_ids          I64 [B, T]  teacher-forcing decoder input: BOS + ids from
                                       [4, tgt_vocab), right-padded with pad_id.
    input.tgt_lengths      I64 [B]     lengths including BOS.
    output.memory          F64 [B, S, D]  the encoder output for the padded batch:
                           model.transformer.encoder(model.positional_encoding(
                               model.src_tok_emb(src)), src_mask, src_padding_mask)
                           NOTE: the tutorial's encode() passes no padding mask (it only ever
                           encodes one unpadded sentence); with a padded batch the padding mask
                           must be given, so memory is computed as above. Padded positions hold
                           the (finite, non-zero) values torch computes there.
    output.logits          F64 [B, T, V_tgt]  the tutorial's forward(src, tgt, src_mask,
                           tgt_mask, src_padding_mask, tgt_padding_mask,
                           memory_key_padding_mask=src_padding_mask) with create_mask's masks
                           (src_mask zeros bool [S, S]; tgt_mask the float square subsequent
                           mask; padding masks = ids == pad_id), transposed to batch-first.
                           Rows at padded target positions are included (finite).
    output.greedy_ids      I64 [B, L]  for each sentence ALONE (unpadded, batch 1), the
                           tutorial's greedy_decode(model, src, src_mask, max_len=num_tokens + 5,
                           start_symbol=bos_id) where num_tokens = src.shape[0] counts BOS and
                           EOS; ids returned WITHOUT the leading BOS and WITHOUT a trailing EOS,
                           right-padded with -1.
    output.greedy_lengths  I64 [B]     number of ids in each row of greedy_ids.
    output.greedy_stopped_at_eos I64 [B]  1 when EOS ended the decode, 0 when the limit did
                           (then greedy_lengths = num_tokens + 4 = max_len - 1).
    __metadata__           config (the config name), attempt, seed, greedy_max_len_rule
                           ("num_tokens + 5 (num_tokens counts BOS and EOS)"),
                           min_greedy_margin (repr of a float), greedy_eos_stops,
                           greedy_limit_stops, dtype ("float64 from the F32 weights"),
                           memory_note, special ids, batch_first ("true": every tensor here).

    The script also runs a batched greedy decode of all 4 sentences at once (padded source with
    src_padding_mask / memory_key_padding_mask, target padding mask built from each row's
    length, each row stopping independently at EOS or at its own num_tokens + 5) and asserts
    it gives the same ids as each sentence alone; the C++ decoder must have the same property.
    min_greedy_margin is the minimum over the single-sentence and the batched decodes.
"""

import hashlib
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn as nn
from torch import Tensor
from torch.nn import Transformer

sys.dont_write_bytecode = True  # no tools/__pycache__ in the work tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_np  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DIR = os.path.join(ROOT, "tests", "fixtures", "translator")

# The tutorial's special symbols.
UNK_IDX, PAD_IDX, BOS_IDX, EOS_IDX = 0, 1, 2, 3
FIRST_WORD_ID = 4
MIN_MARGIN = 1e-3
SPECIAL_BIAS_DROP = 5.0
MIN_DISTINCT = 6
MAX_ATTEMPTS = 200
CONFIG_FIELDS = ("d_model", "nhead", "num_encoder_layers", "num_decoder_layers",
                 "dim_feedforward", "activation", "norm_first", "layer_norm_eps",
                 "src_vocab_size", "tgt_vocab_size", "bos_id", "eos_id", "pad_id", "max_len")
OPTIONAL_CONFIG_FIELDS = ("dropout",)
GREEDY_RULE = "num_tokens + 5 (num_tokens counts BOS and EOS)"
MEMORY_NOTE = ("memory = transformer.encoder(positional_encoding(src_tok_emb(src)), src_mask, "
               "src_padding_mask); the tutorial's encode() passes no padding mask")

torch.set_num_threads(1)  # reduction order independent of the machine's core count


# --------------------------------------------------------------------------------------------
# The tutorial's model (float32 default dtype, as in the tutorial)
# --------------------------------------------------------------------------------------------

class PositionalEncoding(nn.Module):
    def __init__(self, emb_size: int, dropout: float, maxlen: int = 5000):
        super(PositionalEncoding, self).__init__()
        den = torch.exp(- torch.arange(0, emb_size, 2) * math.log(10000) / emb_size)
        pos = torch.arange(0, maxlen).reshape(maxlen, 1)
        pos_embedding = torch.zeros((maxlen, emb_size))
        pos_embedding[:, 0::2] = torch.sin(pos * den)
        pos_embedding[:, 1::2] = torch.cos(pos * den)
        pos_embedding = pos_embedding.unsqueeze(-2)

        self.dropout = nn.Dropout(dropout)
        self.register_buffer('pos_embedding', pos_embedding)

    def forward(self, token_embedding: Tensor):
        return self.dropout(token_embedding + self.pos_embedding[:token_embedding.size(0), :])


class TokenEmbedding(nn.Module):
    def __init__(self, vocab_size: int, emb_size):
        super(TokenEmbedding, self).__init__()
        self.embedding = nn.Embedding(vocab_size, emb_size)
        self.emb_size = emb_size

    def forward(self, tokens: Tensor):
        return self.embedding(tokens.long()) * math.sqrt(self.emb_size)


class Seq2SeqTransformer(nn.Module):
    def __init__(self,
                 num_encoder_layers: int,
                 num_decoder_layers: int,
                 emb_size: int,
                 nhead: int,
                 src_vocab_size: int,
                 tgt_vocab_size: int,
                 dim_feedforward: int = 512,
                 dropout: float = 0.1,
                 activation: str = "relu",
                 norm_first: bool = False,
                 layer_norm_eps: float = 1e-5,
                 maxlen: int = 5000):
        super(Seq2SeqTransformer, self).__init__()
        self.transformer = Transformer(d_model=emb_size,
                                       nhead=nhead,
                                       num_encoder_layers=num_encoder_layers,
                                       num_decoder_layers=num_decoder_layers,
                                       dim_feedforward=dim_feedforward,
                                       dropout=dropout,
                                       activation=activation,
                                       layer_norm_eps=layer_norm_eps,
                                       norm_first=norm_first)
        self.generator = nn.Linear(emb_size, tgt_vocab_size)
        self.src_tok_emb = TokenEmbedding(src_vocab_size, emb_size)
        self.tgt_tok_emb = TokenEmbedding(tgt_vocab_size, emb_size)
        self.positional_encoding = PositionalEncoding(
            emb_size, dropout=dropout, maxlen=maxlen)

    def forward(self,
                src: Tensor,
                trg: Tensor,
                src_mask: Tensor,
                tgt_mask: Tensor,
                src_padding_mask: Tensor,
                tgt_padding_mask: Tensor,
                memory_key_padding_mask: Tensor):
        src_emb = self.positional_encoding(self.src_tok_emb(src))
        tgt_emb = self.positional_encoding(self.tgt_tok_emb(trg))
        outs = self.transformer(src_emb, tgt_emb, src_mask, tgt_mask, None,
                                src_padding_mask, tgt_padding_mask, memory_key_padding_mask)
        return self.generator(outs)

    def encode(self, src: Tensor, src_mask: Tensor):
        return self.transformer.encoder(self.positional_encoding(
            self.src_tok_emb(src)), src_mask)

    def decode(self, tgt: Tensor, memory: Tensor, tgt_mask: Tensor):
        return self.transformer.decoder(self.positional_encoding(
            self.tgt_tok_emb(tgt)), memory,
            tgt_mask)


def generate_square_subsequent_mask(sz):
    mask = (torch.triu(torch.ones((sz, sz))) == 1).transpose(0, 1)
    mask = mask.float().masked_fill(mask == 0, float('-inf')).masked_fill(mask == 1, float(0.0))
    return mask


def create_mask(src, tgt):
    src_seq_len = src.shape[0]
    tgt_seq_len = tgt.shape[0]

    tgt_mask = generate_square_subsequent_mask(tgt_seq_len)
    src_mask = torch.zeros((src_seq_len, src_seq_len)).type(torch.bool)

    src_padding_mask = (src == PAD_IDX).transpose(0, 1)
    tgt_padding_mask = (tgt == PAD_IDX).transpose(0, 1)
    return src_mask, tgt_mask, src_padding_mask, tgt_padding_mask


def greedy_decode(model, src, src_mask, max_len, start_symbol, margins=None):
    """The tutorial's greedy_decode; `margins` (a list) collects best - second best logit."""
    memory = model.encode(src, src_mask)
    ys = torch.ones(1, 1).fill_(start_symbol).type(torch.long)
    for i in range(max_len - 1):
        tgt_mask = (generate_square_subsequent_mask(ys.size(0))
                    .type(torch.bool))
        out = model.decode(ys, memory, tgt_mask)
        out = out.transpose(0, 1)
        prob = model.generator(out[:, -1])
        _, next_word = torch.max(prob, dim=1)
        next_word = next_word.item()
        if margins is not None:
            top2 = torch.topk(prob[0].detach(), 2).values
            margins.append(float(top2[0] - top2[1]))

        ys = torch.cat([ys,
                        torch.ones(1, 1).type_as(src.data).fill_(next_word)], dim=0)
        if next_word == EOS_IDX:
            break
    return ys


def translate_ids(model, src_ids, margins=None):
    """translate() on token ids: src_ids = BOS + ids + EOS (1-D). Returns the generated ids
    without the leading BOS and a trailing EOS, and whether EOS ended the decode."""
    model.eval()
    src = torch.as_tensor(src_ids, dtype=torch.long).view(-1, 1)
    num_tokens = src.shape[0]
    src_mask = (torch.zeros(num_tokens, num_tokens)).type(torch.bool)
    tgt_tokens = greedy_decode(
        model, src, src_mask, max_len=num_tokens + 5, start_symbol=BOS_IDX,
        margins=margins).flatten()
    ids = [int(t) for t in tgt_tokens]
    assert ids[0] == BOS_IDX
    ids = ids[1:]
    stopped = bool(ids) and ids[-1] == EOS_IDX
    if stopped:
        ids = ids[:-1]
    else:
        assert len(ids) == num_tokens + 4
    assert EOS_IDX not in ids
    return ids, stopped


def batched_greedy_decode(model, src, src_lengths, margins=None):
    """Greedy decode of a padded batch (src [S, B], right-padded): the source padding mask in
    the encoder and as memory_key_padding_mask, the target padding mask built from each row's
    own length (not from ids == pad, since the model may emit pad_id as a word), each row
    stopping independently at EOS or at its own num_tokens + 5. Returns a list of id lists
    (without BOS / EOS) and stopped-at-EOS flags."""
    S, B = src.shape
    src_padding_mask = torch.arange(S)[None, :] >= torch.as_tensor(src_lengths)[:, None]
    assert torch.equal(src_padding_mask, (src == PAD_IDX).transpose(0, 1))
    src_mask = torch.zeros((S, S)).type(torch.bool)
    memory = model.transformer.encoder(model.positional_encoding(model.src_tok_emb(src)),
                                       src_mask, src_padding_mask)
    max_lens = [int(n) + 5 for n in src_lengths]
    ys = torch.full((1, B), BOS_IDX, dtype=torch.long)
    lengths = [1] * B  # tokens in ys per row, BOS included
    done = [False] * B
    stopped = [False] * B
    for _ in range(max(max_lens) - 1):
        L = ys.size(0)
        tgt_mask = generate_square_subsequent_mask(L).type(torch.bool)
        tgt_padding_mask = torch.arange(L)[None, :] >= torch.as_tensor(lengths)[:, None]
        out = model.transformer.decoder(model.positional_encoding(model.tgt_tok_emb(ys)),
                                        memory, tgt_mask, None, tgt_padding_mask,
                                        src_padding_mask)
        prob = model.generator(out[-1])  # [B, V]
        _, next_word = torch.max(prob, dim=1)
        nxt = []
        for b in range(B):
            if done[b]:
                nxt.append(PAD_IDX)
                continue
            w = int(next_word[b])
            if margins is not None:
                top2 = torch.topk(prob[b].detach(), 2).values
                margins.append(float(top2[0] - top2[1]))
            nxt.append(w)
            lengths[b] += 1
            if w == EOS_IDX:
                done[b] = stopped[b] = True
            elif lengths[b] == max_lens[b]:
                done[b] = True
        ys = torch.cat([ys, torch.as_tensor(nxt, dtype=torch.long)[None, :]], dim=0)
        if all(done):
            break
    assert all(done)
    result = []
    for b in range(B):
        ids = [int(t) for t in ys[1:lengths[b], b]]
        if stopped[b]:
            assert ids[-1] == EOS_IDX
            ids = ids[:-1]
        result.append(ids)
    return result, stopped


# --------------------------------------------------------------------------------------------
# Configurations
# --------------------------------------------------------------------------------------------

# src_lengths include BOS and EOS, tgt_lengths include BOS. After the xavier init: emb_scale
# multiplies both token embedding tables, attn_scale every in_proj_weight (sharper attention, so
# the output depends on the source), gen_scale the generator weight (larger logit margins);
# eos_bias is added to generator.bias[eos_id] (so that some sentences end before the limit).
CONFIGS = [
    dict(name="post_relu_3layers", d_model=16, nhead=4, num_encoder_layers=3,
         num_decoder_layers=3, dim_feedforward=24, activation="relu", norm_first=False,
         layer_norm_eps=1e-5, src_vocab_size=31, tgt_vocab_size=27, max_len=64,
         src_lengths=[9, 5, 12, 3], tgt_lengths=[7, 10, 3, 8],
         emb_scale=2.0, attn_scale=1.0, gen_scale=4.0, eos_bias=2.0),
    dict(name="pre_gelu_1layer", d_model=12, nhead=3, num_encoder_layers=1,
         num_decoder_layers=1, dim_feedforward=20, activation="gelu", norm_first=True,
         layer_norm_eps=1e-5, src_vocab_size=24, tgt_vocab_size=33, max_len=64,
         src_lengths=[6, 11, 4, 8], tgt_lengths=[9, 4, 6, 2],
         emb_scale=2.0, attn_scale=2.0, gen_scale=4.0, eos_bias=1.0),
    dict(name="post_gelu_odd", d_model=10, nhead=2, num_encoder_layers=2,
         num_decoder_layers=1, dim_feedforward=14, activation="gelu", norm_first=False,
         layer_norm_eps=1e-5, src_vocab_size=37, tgt_vocab_size=29, max_len=64,
         src_lengths=[7, 3, 10, 5], tgt_lengths=[5, 8, 1, 6],
         emb_scale=2.0, attn_scale=1.0, gen_scale=4.0, eos_bias=1.0),
    dict(name="pre_relu_2layers", d_model=8, nhead=1, num_encoder_layers=2,
         num_decoder_layers=2, dim_feedforward=16, activation="relu", norm_first=True,
         layer_norm_eps=1e-5, src_vocab_size=20, tgt_vocab_size=40, max_len=64,
         src_lengths=[4, 8, 6, 10], tgt_lengths=[6, 3, 9, 7],
         emb_scale=1.0, attn_scale=2.0, gen_scale=4.0, eos_bias=1.0),
]


def seed_for(name, attempt):
    s = int.from_bytes(hashlib.sha256(f"{name}#{attempt}".encode()).digest()[:4], "little")
    torch.manual_seed(s)
    return s


def config_json(cfg):
    return {"d_model": cfg["d_model"], "nhead": cfg["nhead"],
            "num_encoder_layers": cfg["num_encoder_layers"],
            "num_decoder_layers": cfg["num_decoder_layers"],
            "dim_feedforward": cfg["dim_feedforward"], "activation": cfg["activation"],
            "norm_first": cfg["norm_first"], "layer_norm_eps": cfg["layer_norm_eps"],
            "src_vocab_size": cfg["src_vocab_size"], "tgt_vocab_size": cfg["tgt_vocab_size"],
            "bos_id": BOS_IDX, "eos_id": EOS_IDX, "pad_id": PAD_IDX, "max_len": cfg["max_len"]}


def model_from_config(conf):
    """A Seq2SeqTransformer (float32, dropout 0.0, eval) from a config.json dict.

    The optional field "dropout" (Eigenformer's save_transformer writes it when it is not the
    tutorial's 0.1) is a training setting: evaluation runs without dropout whatever it says."""
    fields = set(conf) - set(OPTIONAL_CONFIG_FIELDS)
    assert fields == set(CONFIG_FIELDS), \
        (f"config.json: missing fields {sorted(set(CONFIG_FIELDS) - fields)}, "
         f"unexpected {sorted(fields - set(CONFIG_FIELDS))}")
    if "dropout" in conf:
        assert 0 <= conf["dropout"] < 1, conf["dropout"]
    assert conf["activation"] in ("relu", "gelu"), conf["activation"]
    assert isinstance(conf["norm_first"], bool)
    assert (conf["bos_id"], conf["eos_id"], conf["pad_id"]) == (BOS_IDX, EOS_IDX, PAD_IDX), \
        "the tutorial's special ids are BOS 2, EOS 3, PAD 1"
    m = Seq2SeqTransformer(conf["num_encoder_layers"], conf["num_decoder_layers"],
                           conf["d_model"], conf["nhead"], conf["src_vocab_size"],
                           conf["tgt_vocab_size"], dim_feedforward=conf["dim_feedforward"],
                           dropout=0.0, activation=conf["activation"],
                           norm_first=conf["norm_first"],
                           layer_norm_eps=float(conf["layer_norm_eps"]),
                           maxlen=conf["max_len"])
    m.eval()
    return m


def state_dict_numpy(model):
    return {k: v.detach().cpu().numpy().copy() for k, v in model.state_dict().items()}


def load_numpy_state(model, tensors):
    """load_state_dict(strict=True) from numpy arrays; returns the number of tensors."""
    sd = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in tensors.items()}
    model.load_state_dict(sd, strict=True)
    return len(sd)


def randomize(model, cfg):
    """The tutorial's xavier init, then random LayerNorm params and biases, then scaling."""
    for p in model.parameters():
        if p.dim() > 1:
            nn.init.xavier_uniform_(p)
    ln_params = set()
    for mname, mod in model.named_modules():
        if isinstance(mod, nn.LayerNorm):
            for pname, _ in mod.named_parameters(recurse=False):
                ln_params.add(f"{mname}.{pname}")
    with torch.no_grad():
        for name, p in model.named_parameters():
            leaf = name.rsplit(".", 1)[-1]
            if name in ln_params and leaf == "weight":
                p.copy_(1.0 + 0.1 * torch.randn(p.shape))
            elif name in ln_params or leaf.endswith("bias"):
                p.copy_(0.1 * torch.randn(p.shape))
        model.src_tok_emb.embedding.weight.mul_(cfg["emb_scale"])
        model.tgt_tok_emb.embedding.weight.mul_(cfg["emb_scale"])
        model.generator.weight.mul_(cfg["gen_scale"])
        for mod in model.modules():
            if isinstance(mod, nn.MultiheadAttention):
                mod.in_proj_weight.mul_(cfg["attn_scale"])
        # a trained translator never predicts PAD or BOS (never targets): push them down
        model.generator.bias[PAD_IDX] -= SPECIAL_BIAS_DROP
        model.generator.bias[BOS_IDX] -= SPECIAL_BIAS_DROP
        # ... and does predict EOS: raise it so that some sentences end before the limit
        model.generator.bias[EOS_IDX] += cfg["eos_bias"]


def make_batch(lengths, vocab, with_eos):
    """Batch-first right-padded ids: BOS + random ids from [4, vocab) (+ EOS)."""
    B, L = len(lengths), max(lengths)
    ids = torch.full((B, L), PAD_IDX, dtype=torch.long)
    for b, n in enumerate(lengths):
        n_words = n - (2 if with_eos else 1)
        assert n_words >= 0
        row = [BOS_IDX] + torch.randint(FIRST_WORD_ID, vocab, (n_words,)).tolist()
        if with_eos:
            row.append(EOS_IDX)
        ids[b, :n] = torch.as_tensor(row)
    return ids


def pad_rows(rows, fill=-1):
    L = max(1, max(len(r) for r in rows))
    out = np.full((len(rows), L), fill, dtype=np.int64)
    for b, r in enumerate(rows):
        out[b, :len(r)] = r
    return out


# --------------------------------------------------------------------------------------------
# One configuration
# --------------------------------------------------------------------------------------------

def try_attempt(cfg, attempt):
    """Build weights and inputs for one attempt; return (files, report) or None if rejected."""
    name = cfg["name"]
    s = seed_for(name, attempt)
    conf = config_json(cfg)
    m32 = model_from_config(conf)
    randomize(m32, cfg)
    weights = state_dict_numpy(m32)
    for k, v in weights.items():
        assert v.dtype == np.float32, f"{k}: {v.dtype}"
    src_ids = make_batch(cfg["src_lengths"], cfg["src_vocab_size"], with_eos=True)
    tgt_ids = make_batch(cfg["tgt_lengths"], cfg["tgt_vocab_size"], with_eos=False)

    # the reference model: exactly the stored F32 values, then float64
    model_bytes = safetensors_np.serialize(weights)
    back, back_meta = safetensors_np.deserialize(model_bytes)
    assert back_meta == {}
    ref = model_from_config(conf)
    n_tensors = load_numpy_state(ref, back)
    ref = ref.double()
    ref.eval()
    f32 = model_from_config(conf)
    load_numpy_state(f32, back)

    src_lengths = list(cfg["src_lengths"])
    greedy, stopped, margins = [], [], []
    for b, n in enumerate(src_lengths):
        ids, st = translate_ids(ref, src_ids[b, :n].tolist(), margins)
        greedy.append(ids)
        stopped.append(st)
    min_margin_alone = min(margins)

    # reject weights that make a poor test
    n_eos = sum(stopped)
    if n_eos == 0 or n_eos == len(stopped):
        return None, f"eos stops {n_eos}/{len(stopped)}"
    if any(len(g) < 2 for g in greedy):
        return None, "an output shorter than 2 tokens"
    if any(len(set(g)) == 1 for g in greedy):
        return None, "an output repeats one token"
    if any(PAD_IDX in g or BOS_IDX in g for g in greedy):
        return None, "an output holds PAD or BOS"
    if len(set(tuple(g) for g in greedy)) < len(greedy):
        return None, "two outputs are equal"
    if len(set(t for g in greedy for t in g)) < MIN_DISTINCT:
        return None, "too few distinct tokens"
    if min_margin_alone <= MIN_MARGIN:
        return None, f"margin {min_margin_alone:.2e}"

    # the float32 model (what PyTorch users run) decodes the same ids
    for b, n in enumerate(src_lengths):
        ids32, st32 = translate_ids(f32, src_ids[b, :n].tolist())
        if ids32 != greedy[b] or st32 != stopped[b]:
            return None, "float32 decode differs"

    # batched decode with padding == each sentence alone
    src_sb = src_ids.transpose(0, 1).contiguous()
    bmargins = []
    bgreedy, bstopped = batched_greedy_decode(ref, src_sb, src_lengths, bmargins)
    assert bgreedy == greedy, f"{name}: batched greedy {bgreedy} != alone {greedy}"
    assert bstopped == stopped, f"{name}: batched stops {bstopped} != alone {stopped}"
    min_margin = min(min_margin_alone, min(bmargins))
    if min_margin <= MIN_MARGIN:
        return None, f"batched margin {min_margin:.2e}"

    # teacher-forced logits and the padded memory, as the tutorial's training loop computes them
    tgt_sb = tgt_ids.transpose(0, 1).contiguous()
    src_mask, tgt_mask, src_padding_mask, tgt_padding_mask = create_mask(src_sb, tgt_sb)
    assert torch.equal(src_padding_mask, torch.arange(src_sb.shape[0])[None, :]
                       >= torch.as_tensor(src_lengths)[:, None])
    assert torch.equal(tgt_padding_mask, torch.arange(tgt_sb.shape[0])[None, :]
                       >= torch.as_tensor(cfg["tgt_lengths"])[:, None])
    logits = ref(src_sb, tgt_sb, src_mask, tgt_mask, src_padding_mask, tgt_padding_mask,
                 src_padding_mask)
    memory = ref.transformer.encoder(ref.positional_encoding(ref.src_tok_emb(src_sb)),
                                     src_mask, src_padding_mask)
    # forward() == generator(decoder(memory)) (the model's two halves agree)
    dec = ref.transformer.decoder(ref.positional_encoding(ref.tgt_tok_emb(tgt_sb)), memory,
                                  tgt_mask, None, tgt_padding_mask, src_padding_mask)
    assert torch.equal(ref.generator(dec), logits), f"{name}: forward != decode(encode)"
    logits_np = logits.detach().transpose(0, 1).numpy().copy()
    memory_np = memory.detach().transpose(0, 1).numpy().copy()
    assert logits_np.dtype == np.float64 and memory_np.dtype == np.float64
    assert np.all(np.isfinite(logits_np)) and np.all(np.isfinite(memory_np))
    for b, n in enumerate(src_lengths):
        if n < memory_np.shape[1]:
            assert np.all(memory_np[b, n:] != 0.0), \
                f"{name}: memory zero at padded positions (nested-tensor fast path)"
        # the memory of a sentence alone (tutorial's encode, no padding) equals its padded rows
        alone = ref.encode(src_sb[:n, b:b + 1], torch.zeros((n, n)).type(torch.bool))
        err = float((alone[:, 0].detach() - memory[:n, b].detach()).abs().max())
        assert err < 1e-12, f"{name}: memory alone vs padded differs by {err:.2e}"
    # teacher forcing: the first logit row of a sentence = the first greedy step's logits
    for b, n in enumerate(src_lengths):
        first = ref.generator(ref.decode(torch.full((1, 1), BOS_IDX, dtype=torch.long),
                                         ref.encode(src_sb[:n, b:b + 1],
                                                    torch.zeros((n, n)).type(torch.bool)),
                                         torch.zeros((1, 1)).type(torch.bool)))
        err = float((first[0, 0].detach() - logits[0, b].detach()).abs().max())
        assert err < 1e-12, f"{name}: first logits row differs by {err:.2e}"

    greedy_ids = pad_rows(greedy)
    reference = {
        "input.src_ids": src_ids.numpy().astype(np.int64),
        "input.src_lengths": np.asarray(src_lengths, dtype=np.int64),
        "input.tgt_ids": tgt_ids.numpy().astype(np.int64),
        "input.tgt_lengths": np.asarray(cfg["tgt_lengths"], dtype=np.int64),
        "output.memory": memory_np,
        "output.logits": logits_np,
        "output.greedy_ids": greedy_ids,
        "output.greedy_lengths": np.asarray([len(g) for g in greedy], dtype=np.int64),
        "output.greedy_stopped_at_eos": np.asarray(stopped, dtype=np.int64),
    }
    meta = {
        "config": name, "attempt": str(attempt), "seed": str(s),
        "greedy_max_len_rule": GREEDY_RULE,
        "min_greedy_margin": repr(min_margin),
        "greedy_eos_stops": str(n_eos), "greedy_limit_stops": str(len(stopped) - n_eos),
        "dtype": "float64 from the F32 weights of model.safetensors",
        "memory_note": MEMORY_NOTE,
        "batch_first": "true",
        "unk_id": str(UNK_IDX), "pad_id": str(PAD_IDX), "bos_id": str(BOS_IDX),
        "eos_id": str(EOS_IDX),
        "greedy_padding": "-1",
        "src_ids_rule": "BOS + ids from [4, src_vocab_size) + EOS, right-padded with pad_id",
        "tgt_ids_rule": "BOS + ids from [4, tgt_vocab_size), right-padded with pad_id",
        "torch_version": torch.__version__,
    }
    report = dict(n_tensors=n_tensors, min_margin=min_margin, n_eos=n_eos,
                  n_limit=len(stopped) - n_eos, attempt=attempt, greedy=greedy,
                  stopped=stopped, emits_pad=any(PAD_IDX in g for g in greedy))
    files = {"config.json": (json.dumps(conf, indent=2, sort_keys=True) + "\n").encode(),
             "model.safetensors": model_bytes,
             "reference.safetensors": safetensors_np.serialize(reference, meta)}
    return files, report


def write_config(cfg):
    reasons = []
    for attempt in range(MAX_ATTEMPTS):
        files, report = try_attempt(cfg, attempt)
        if files is not None:
            break
        reasons.append(report)
    else:
        raise AssertionError(f"{cfg['name']}: no acceptable attempt: {reasons[:10]}")
    d = os.path.join(OUT_DIR, cfg["name"])
    os.makedirs(d, exist_ok=True)
    sizes = {}
    for fname, data in files.items():
        with open(os.path.join(d, fname), "wb") as f:
            f.write(data)
        sizes[fname] = len(data)
    # re-read and check what was written
    with open(os.path.join(d, "config.json")) as f:
        conf = json.load(f)
    assert list(sorted(conf)) == sorted(CONFIG_FIELDS)
    weights, wmeta = safetensors_np.load_file(os.path.join(d, "model.safetensors"))
    assert wmeta == {}
    assert all(v.dtype == np.float32 for v in weights.values())
    pe = weights["positional_encoding.pos_embedding"]
    assert pe.shape == (conf["max_len"], 1, conf["d_model"]), pe.shape
    m = model_from_config(conf)
    assert load_numpy_state(m, weights) == report["n_tensors"]
    refs, rmeta = safetensors_np.load_file(os.path.join(d, "reference.safetensors"))
    assert rmeta["config"] == cfg["name"]
    for k, v in refs.items():
        assert v.dtype in (np.float64, np.int64), f"{k}: {v.dtype}"
    B = len(cfg["src_lengths"])
    assert refs["output.memory"].shape == (B, max(cfg["src_lengths"]), conf["d_model"])
    assert refs["output.logits"].shape == (B, max(cfg["tgt_lengths"]), conf["tgt_vocab_size"])
    gl = refs["output.greedy_lengths"]
    for b in range(B):
        row = refs["output.greedy_ids"][b]
        assert np.all(row[:gl[b]] >= 0) and np.all(row[gl[b]:] == -1)
        assert list(row[:gl[b]]) == report["greedy"][b]
    sizes_s = ", ".join(f"{k} {v}" for k, v in sizes.items())
    print(f"{cfg['name']:20s} attempt {report['attempt']:2d}, {report['n_tensors']} tensors, "
          f"min margin {report['min_margin']:.4f}, EOS stops {report['n_eos']}, limit stops "
          f"{report['n_limit']}, emits pad {report['emits_pad']}; {sizes_s}")
    for b, g in enumerate(report["greedy"]):
        print(f"    {b}: {'EOS  ' if report['stopped'][b] else 'limit'} {g}")
    return sum(sizes.values())


def main():
    assert torch.is_grad_enabled(), "fixtures must be generated with grad enabled (fast path)"
    assert torch.get_default_dtype() == torch.float32, "the tutorial builds in float32"
    os.makedirs(OUT_DIR, exist_ok=True)
    total = 0
    for cfg in CONFIGS:
        total += write_config(cfg)
    names = {c["name"] for c in CONFIGS}
    extra = sorted(set(os.listdir(OUT_DIR)) - names)
    assert not extra, f"stale entries in {OUT_DIR}: {extra}"
    print(f"{len(CONFIGS)} configs, total {total} bytes")
    assert total < 2_000_000


if __name__ == "__main__":
    main()
