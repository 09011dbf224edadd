#!/usr/bin/python3
"""PyTorch's side of bench/bench_translator.cpp, bench_gpt2.cpp and bench_attention.cpp: the same workloads.

--workloads translator (the default), gpt2, attention, gemm, or all (translator, GPT-2, then attention, in one
process; bench/report runs them as separate processes so that each peak RSS is that workload's alone).

What it measures: translator (needs DIR)
    The model directory that `EIGENFORMER_BENCH_SAVE=DIR build-bench/bin/bench_translator` wrote
    (DIR/config.json, DIR/model.safetensors: the translation tutorial's Seq2SeqTransformer, whose
    generator.bias at EOS is already -1e4 so that EOS never wins; DIR/bench_greedy.json: the 16
    sources of 20 tokens and Eigenformer's greedy ids) is loaded into the tutorial's model, imported
    from tools/make_translator_fixtures.py (load_state_dict(strict=True), float32, .eval(), dropout 0).
    Workload, as ours: B sources (B = 1 and 16), encode once, then exactly 20 greedy steps; target
    tokens per second = B * 20 / wall time, under torch.no_grad(), torch.set_num_threads(2).
    Two ways of decoding:
      tutorial   the tutorial's greedy_decode: every step re-runs the decoder on the whole prefix
                 (what users of the tutorial run). At B = 1 it is make_translator_fixtures.greedy_decode
                 itself (max_len = 21: 20 steps); at B = 16 the same loop over a [S, 16] batch (all
                 sources have 20 tokens, so no padding masks are needed).
      kv_cache   a hand-written incremental decoder on the same modules' weights (below; not part of
                 the tutorial): each step runs one position, keys and values of earlier positions are
                 cached, the memory's keys and values are projected once. It is checked to give the
                 tutorial's ids.
    Each is run once to warm up, then repeated until 2 s have passed (at least 3 times); the rate is
    total tokens / total time (as Google Benchmark's mean), min and max per repetition are printed.

What it measures: gpt2 (no DIR)
    GPT-2 small's shape (12 layers, 12 heads, 768 wide, vocabulary 50257, 1024 positions) in
    tools/gpt2_reference.py's GPT2LMHeadModel (imported, plain PyTorch, KV cache as Hugging Face's
    layer_past), float32, every parameter drawn from N(0, 0.02) (torch.Generator seeded 1; as
    bench_gpt2.cpp draws its own, so the two sides' weights differ but have the same distribution
    and shapes), under torch.no_grad(), torch.set_num_threads(2). Workloads, as bench_gpt2.cpp:
      prompt T   one forward over T = 128 and 512 random tokens, logits at every position
                 ([1, T, 50257]); tokens/s = T / time.
      decode B   B = 1 and 8 rows of 16 random tokens run as a prompt (not timed), then exactly 32
                 greedy steps with the KV cache (argmax of the last logits, then a one-position
                 forward with `past`); tokens/s = B * 32 / time of the 32 steps.
    Each is run once to warm up, then repeated until --min-time seconds have passed (at least 3
    times); the rate is total tokens / total time, min and max per repetition are printed. Peak
    RSS (resource.getrusage ru_maxrss of this process) is printed after torch's import and first
    matmul, after the model is built, and after each workload.

What it measures: attention (no DIR)
    bench_attention.cpp's workloads, float32, under torch.no_grad(), torch.set_num_threads(2); inputs
    from torch.randn (torch.Generator seeded 2). Masks are bool tensors built before timing (True = not
    allowed): causal, key j allowed for query i iff j <= i; padding, batch item b has real key length
    T - (b + 1) * T / 16 and the keys from there on are masked.
      attention/torch/B:{1,8}/T:{64..2048}/{none,causal,padding}
                 the attention core, H = 12 heads of 64, S = T: q, k, v [B, 12, T, 64] contiguous;
                 scores = torch.matmul(q, k.transpose(-2, -1)), then scores.mul_(1/8) and
                 scores.masked_fill_(mask, -inf) in place on that fresh tensor (out of place would add
                 passes over [B, H, T, T]), p = torch.softmax(scores, -1), out = torch.matmul(p, v).
                 FLOPs: 4 * B * H * T * S * 64 (both products in full, also for causal).
      mha/torch/B:{1,8}/T:{64..2048}/{none,causal,padding}
                 torch.nn.MultiheadAttention(768, 12, batch_first=True, bias=True).eval(), self-attention
                 mha(x, x, x, need_weights=False) on x [B, T, 768]; causal as attn_mask [T, T], padding as
                 key_padding_mask [B, T]. torch 1.13 runs none and padding on its fast path
                 (torch._native_multi_head_attention) and causal (attn_mask) on
                 F.multi_head_attention_forward. FLOPs: 8 * B * T * 768^2 (q, k, v and output
                 projections) + 4 * B * T * T * 768.
      decode/torch/B:{1,8}/L:{128,256,512,1024}
                 one new query per item over a cache: q [B, 12, 1, 64], K, V [B, 12, L, 64]; the same
                 matmul, scale, softmax, matmul, no mask. FLOPs 4 * B * 12 * L * 64; bytes 8 * B * 12 * L * 64
                 (K and V read once).
    Each row is run once to warm up, then repeated until --min-time seconds have passed (default 0.2
    for attention), at least 3 times; seconds per call (mean = total / calls), min and max are recorded.
    --attention-filter REGEX keeps the rows whose name it matches (re.search).

What it measures: gemm (no DIR)
    bench_ops.cpp's prompt-sized products of GPT-2 small, float32, torch.set_num_threads(2): y = F.linear(x, W, b)
    with x [M, K], W [N, K] (the layout of nn.Linear and of our weights), b [N], from torch.randn (Generator
    seeded 3), for M = 128 and 512 and the shapes of c_attn [2304, 768], attn.c_proj [768, 768], c_fc [3072, 768],
    mlp.c_proj [768, 3072] and the tied lm_head [50257, 768]; rows linear/torch/gpt2/<layer>/M:m. F.linear with a
    bias is one addmm, i.e. OpenBLAS's SGEMM onto the broadcast bias. FLOPs 2 * M * N * K. Measured as attention's
    rows (--min-time, default 0.5).

BLAS
    Debian's torch links libblas.so.3; as installed that is the reference BLAS (about 60x slower).
    By default this script re-executes itself with LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp
    (Debian's libopenblas0-openmp: apt-get install -y libopenblas0-openmp), which makes torch load
    OpenBLAS's OpenMP build whatever update-alternatives selects. After the first matmul it reads
    /proc/self/maps, prints which BLAS is mapped and asks OpenBLAS for its config, core and threading
    (openblas_get_parallel: 2 = OpenMP). With the reference BLAS, or OpenBLAS's pthread build, it prints
    the rates marked as unfair and exits with status 3: bench/report then refuses to print ratios.
    --blas system skips the LD_LIBRARY_PATH step (whatever libblas.so.3 points to).

OpenBLAS environment
    Prints OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE as found. --unset-openblas-env removes both for this
    process only (OpenBLAS then detects the core itself); nothing else is changed.

Greedy ids
    Compares the tutorial's ids with Eigenformer's (bench_greedy.json) at B = 1 and B = 16, and the
    kv_cache ids with the tutorial's; prints how many rows agree and the first differing position.

Usage (from the repository root)
    /usr/bin/python3 bench/compare_torch.py DIR [--json OUT] [--unset-openblas-env] [--blas system]
    /usr/bin/python3 bench/compare_torch.py --workloads gpt2 [--json OUT] [--unset-openblas-env]
    /usr/bin/python3 bench/compare_torch.py --workloads attention [--min-time 0.2] [--attention-filter REGEX]
    /usr/bin/python3 bench/compare_torch.py --workloads gemm [--min-time 0.5]
    bench/report runs bench_translator / bench_gpt2 / bench_attention / bench_ops and this script and prints the
    tables.
"""

import argparse
import ctypes
import json
import math
import os
import re
import resource
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the work tree

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OPENBLAS_OPENMP_DIR = "/usr/lib/x86_64-linux-gnu/openblas-openmp"
OPENBLAS_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
REEXEC_MARK = "EIGENFORMER_COMPARE_TORCH_CHILD"
ORIGINAL_ENV = "EIGENFORMER_COMPARE_TORCH_OPENBLAS_ENV"
THREADS = 2
BATCHES = (1, 16)
EXIT_UNFAIR_BLAS = 3


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("model_dir", nargs="?",
                   help="directory written by bench_translator (EIGENFORMER_BENCH_SAVE); needed by the translator")
    p.add_argument("--workloads", choices=("translator", "gpt2", "attention", "gemm", "all"), default="translator",
                   help="translator (default; needs DIR), gpt2 (GPT-2 124M shape, random weights), attention "
                        "(attention core, MultiheadAttention, decode over a cache) or all")
    p.add_argument("--json", help="also write the results to this file")
    p.add_argument("--blas", choices=("openblas-openmp", "system"), default="openblas-openmp",
                   help="openblas-openmp (default): LD_LIBRARY_PATH to Debian's OpenBLAS OpenMP build; "
                        "system: whatever libblas.so.3 points to")
    p.add_argument("--unset-openblas-env", action="store_true",
                   help="remove OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE for this process only")
    p.add_argument("--min-time", type=float,
                   help="seconds per measurement (default 2; attention: 0.2 per row; gemm: 0.5 per row)")
    p.add_argument("--attention-filter", help="attention: only the rows whose name matches this regex")
    p.add_argument("--variants", default="tutorial,kv_cache", help="translator, comma-separated: tutorial, kv_cache")
    args = p.parse_args()
    if args.workloads in ("translator", "all") and not args.model_dir:
        p.error("the translator workload needs DIR (written by EIGENFORMER_BENCH_SAVE=DIR bench_translator)")
    return args


def reexec(args):
    """LD_LIBRARY_PATH is read by the dynamic loader when the process starts: set it (and drop the
    OpenBLAS variables if asked), then run this script again in the new environment."""
    if os.environ.get(REEXEC_MARK):
        return
    env = dict(os.environ)
    env[REEXEC_MARK] = "1"
    env[ORIGINAL_ENV] = json.dumps({k: os.environ.get(k) for k in OPENBLAS_ENV})
    if args.blas == "openblas-openmp":
        if not os.path.isfile(os.path.join(OPENBLAS_OPENMP_DIR, "libblas.so.3")):
            sys.exit(f"compare_torch.py: {OPENBLAS_OPENMP_DIR}/libblas.so.3 not found; "
                     "install Debian's OpenBLAS OpenMP build: apt-get install -y libopenblas0-openmp")
        old = env.get("LD_LIBRARY_PATH")
        env["LD_LIBRARY_PATH"] = OPENBLAS_OPENMP_DIR + (":" + old if old else "")
    if args.unset_openblas_env:
        for k in OPENBLAS_ENV:
            env.pop(k, None)
    os.execve(sys.executable, [sys.executable] + sys.argv, env)


ARGS = parse_args()
reexec(ARGS)

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, os.path.join(ROOT, "tools"))
import gpt2_reference as G  # noqa: E402  (GPT-2 in plain PyTorch, with a KV cache)
import make_translator_fixtures as T  # noqa: E402  (the tutorial's model; sets 1 thread on import)
import safetensors_np  # noqa: E402


# --------------------------------------------------------------------------------------------
# Which BLAS torch runs on
# --------------------------------------------------------------------------------------------

def blas_report():
    """Call after the first matmul. Returns a dict: mapped libraries, kind, OpenBLAS details, fair."""
    mapped = []
    with open("/proc/self/maps") as f:
        for line in f:
            path = line.split()[-1] if len(line.split()) >= 6 else ""
            name = os.path.basename(path)
            if any(s in name for s in ("libblas", "libopenblas", "liblapack", "libmkl")) and path not in mapped:
                mapped.append(path)
    info = {"mapped": mapped, "kind": "unknown", "fair": False}
    openblas = [p for p in mapped if "libopenblas" in os.path.basename(p)]
    if openblas:
        lib = ctypes.CDLL(openblas[0])  # already mapped: the same instance torch calls
        lib.openblas_get_config.restype = ctypes.c_char_p
        lib.openblas_get_corename.restype = ctypes.c_char_p
        parallel = int(lib.openblas_get_parallel())
        info.update(kind="OpenBLAS", config=lib.openblas_get_config().decode(),
                    core=lib.openblas_get_corename().decode(),
                    parallel={0: "sequential", 1: "pthreads", 2: "OpenMP"}.get(parallel, str(parallel)),
                    blas_threads=int(lib.openblas_get_num_threads()))
        info["fair"] = parallel == 2
    elif any(os.path.basename(os.path.dirname(p)) == "blas" and "libblas" in p for p in mapped):
        info["kind"] = "reference BLAS (netlib)"
    elif any("libmkl" in p for p in mapped):
        info.update(kind="MKL", fair=True)
    return info


# --------------------------------------------------------------------------------------------
# The workload
# --------------------------------------------------------------------------------------------

def load(model_dir):
    with open(os.path.join(model_dir, "config.json")) as f:
        conf = json.load(f)
    model = T.model_from_config(conf)
    weights, _ = safetensors_np.load_file(os.path.join(model_dir, "model.safetensors"))
    T.load_numpy_state(model, weights)
    bench_path = os.path.join(model_dir, "bench_greedy.json")
    if not os.path.isfile(bench_path):
        sys.exit(f"compare_torch.py: {bench_path} is missing; write the model with "
                 "EIGENFORMER_BENCH_SAVE=DIR build-bench/bin/bench_translator")
    with open(bench_path) as f:
        bench = json.load(f)
    eos_bias = float(model.generator.bias[T.EOS_IDX])
    if eos_bias > -1e3:
        sys.exit(f"compare_torch.py: generator.bias[eos_id] is {eos_bias}; bench_translator saves -1e4 "
                 "there so that EOS never ends a row early")
    return model, conf, bench


def tutorial_greedy(model, src, steps):
    """src [S, B] -> ids [B, steps]. B = 1: the tutorial's greedy_decode itself. B > 1: the same loop
    over a batch (sources of equal length: no padding masks)."""
    S, B = src.shape
    src_mask = torch.zeros((S, S)).type(torch.bool)
    if B == 1:
        ys = T.greedy_decode(model, src, src_mask, max_len=steps + 1, start_symbol=T.BOS_IDX)
        return ys[1:].transpose(0, 1)
    memory = model.encode(src, src_mask)
    ys = torch.full((1, B), T.BOS_IDX, dtype=torch.long)
    for _ in range(steps):
        tgt_mask = T.generate_square_subsequent_mask(ys.size(0)).type(torch.bool)
        out = model.decode(ys, memory, tgt_mask)
        out = out.transpose(0, 1)
        prob = model.generator(out[:, -1])
        _, next_word = torch.max(prob, dim=1)
        ys = torch.cat([ys, next_word[None, :]], dim=0)
    return ys[1:].transpose(0, 1)


class CachedDecoder:
    """Incremental decoding on the tutorial model's own modules: one position per step. Not part of
    the tutorial; written here as what a PyTorch user with a KV cache would run. Tensors batch-first."""

    def __init__(self, model, memory, steps):  # memory [S, B, D], as nn.Transformer returns it
        self.model = model
        tr = model.transformer
        S, B, D = memory.shape
        mem = memory.transpose(0, 1)  # [B, S, D]
        self.layers = []
        for layer in tr.decoder.layers:
            H = layer.self_attn.num_heads
            Dh = D // H
            w, b = layer.multihead_attn.in_proj_weight, layer.multihead_attn.in_proj_bias
            k = F.linear(mem, w[D:2 * D], b[D:2 * D]).view(B, S, H, Dh).transpose(1, 2)  # [B, H, S, Dh]
            v = F.linear(mem, w[2 * D:], b[2 * D:]).view(B, S, H, Dh).transpose(1, 2)
            self.layers.append(dict(layer=layer, H=H, Dh=Dh, mem_k=k, mem_v=v,
                                    k=torch.empty(B, H, steps, Dh), v=torch.empty(B, H, steps, Dh)))
        self.B, self.D, self.t = B, D, 0
        self.pe = model.positional_encoding.pos_embedding[:, 0]  # [max_len, D]

    def _attend(self, q, k, v, H, Dh):  # q [B, 1, D]; k, v [B, H, P, Dh] -> [B, 1, D]
        q = q.view(self.B, 1, H, Dh).transpose(1, 2)  # [B, H, 1, Dh]
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(Dh)  # [B, H, 1, P]
        out = torch.matmul(torch.softmax(scores, dim=-1), v)  # [B, H, 1, Dh]
        return out.transpose(1, 2).reshape(self.B, 1, self.D)

    def _self_attn(self, c, x):
        attn = c["layer"].self_attn
        q, k, v = F.linear(x, attn.in_proj_weight, attn.in_proj_bias).chunk(3, dim=-1)
        H, Dh, t = c["H"], c["Dh"], self.t
        c["k"][:, :, t] = k.view(self.B, H, Dh)
        c["v"][:, :, t] = v.view(self.B, H, Dh)
        out = self._attend(q, c["k"][:, :, :t + 1], c["v"][:, :, :t + 1], H, Dh)
        return attn.out_proj(out)

    def _cross_attn(self, c, x):
        attn = c["layer"].multihead_attn
        q = F.linear(x, attn.in_proj_weight[:self.D], attn.in_proj_bias[:self.D])
        return attn.out_proj(self._attend(q, c["mem_k"], c["mem_v"], c["H"], c["Dh"]))

    @staticmethod
    def _ff(layer, x):
        return layer.linear2(layer.activation(layer.linear1(x)))

    def step(self, tokens):  # tokens [B] -> logits [B, V]
        x = self.model.tgt_tok_emb(tokens)[:, None, :] + self.pe[self.t]  # [B, 1, D]
        for c in self.layers:
            layer = c["layer"]
            if layer.norm_first:
                x = x + self._self_attn(c, layer.norm1(x))
                x = x + self._cross_attn(c, layer.norm2(x))
                x = x + self._ff(layer, layer.norm3(x))
            else:
                x = layer.norm1(x + self._self_attn(c, x))
                x = layer.norm2(x + self._cross_attn(c, x))
                x = layer.norm3(x + self._ff(layer, x))
        x = self.model.transformer.decoder.norm(x)
        self.t += 1
        return self.model.generator(x[:, 0])


def cached_greedy(model, src, steps):
    S, B = src.shape
    memory = model.encode(src, torch.zeros((S, S)).type(torch.bool))
    dec = CachedDecoder(model, memory, steps)
    tokens = torch.full((B,), T.BOS_IDX, dtype=torch.long)
    out = []
    for _ in range(steps):
        tokens = torch.argmax(dec.step(tokens), dim=1)  # the first maximum, as torch.max
        out.append(tokens)
    return torch.stack(out, dim=1)


VARIANTS = {"tutorial": tutorial_greedy, "kv_cache": cached_greedy}


def seconds_per_measurement(default):
    """--min-time if given, else the workload set's default (2 s; attention 0.2 s, gemm 0.5 s per row)."""
    return default if ARGS.min_time is None else ARGS.min_time


def measure(fn, min_time):
    fn()  # warm-up
    times = []
    start = time.perf_counter()
    while len(times) < 3 or time.perf_counter() - start < min_time:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def agreement(ours, theirs):
    """Rows equal, and for each differing row its first differing position."""
    diffs = []
    for b, (a, t) in enumerate(zip(ours, theirs)):
        if list(a) != list(t):
            first = next((i for i, (x, y) in enumerate(zip(a, t)) if x != y), min(len(a), len(t)))
            diffs.append(dict(row=b, position=first))
    return dict(rows=len(ours), equal=len(ours) - len(diffs), diffs=diffs)


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # ru_maxrss is in KiB on Linux


def run_translator(result):
    model, conf, bench = load(ARGS.model_dir)
    steps = int(bench["new_tokens"])
    sources = torch.as_tensor(bench["sources"], dtype=torch.long)  # [16, S]
    result.update(model_dir=os.path.abspath(ARGS.model_dir), origin=bench.get("origin"),
                  new_tokens=steps, source_tokens=int(bench["source_tokens"]), runs=[], agreement={})
    print(f"model: {ARGS.model_dir} ({bench.get('origin')}): D {conf['d_model']}, H {conf['nhead']}, "
          f"{conf['num_encoder_layers']}+{conf['num_decoder_layers']} layers, F {conf['dim_feedforward']}, "
          f"V {conf['src_vocab_size']}/{conf['tgt_vocab_size']}; sources of {sources.shape[1]} tokens, "
          f"{steps} greedy steps")

    variants = [v.strip() for v in ARGS.variants.split(",") if v.strip()]
    for B in BATCHES:
        src = sources[:B].transpose(0, 1).contiguous()  # [S, B], as the tutorial's model takes it
        tutorial_ids = tutorial_greedy(model, src, steps).tolist()
        if any(T.EOS_IDX in row for row in tutorial_ids):
            sys.exit("compare_torch.py: PyTorch chose EOS although generator.bias[eos_id] is -1e4")
        ours = bench[f"greedy_batch_{B}"]
        result["agreement"][f"ours_vs_tutorial_batch_{B}"] = agreement(ours, tutorial_ids)
        for name in variants:
            fn = VARIANTS[name]
            if name != "tutorial":
                result["agreement"][f"{name}_vs_tutorial_batch_{B}"] = agreement(fn(model, src, steps).tolist(),
                                                                                  tutorial_ids)
            times = measure(lambda: fn(model, src, steps), seconds_per_measurement(2.0))
            tokens = B * steps
            run = dict(variant=name, batch=B, reps=len(times), tok_per_s=tokens * len(times) / sum(times),
                       tok_per_s_min=tokens / max(times), tok_per_s_max=tokens / min(times))
            result["runs"].append(run)
            print(f"PyTorch {name:9s} B={B:2d}: {run['tok_per_s']:9.1f} target tok/s "
                  f"(per repetition {run['tok_per_s_min']:.1f} to {run['tok_per_s_max']:.1f}, "
                  f"{len(times)} repetitions)")
    for key, ag in result["agreement"].items():
        detail = "; ".join(f"row {d['row']} first differs at step {d['position']}" for d in ag["diffs"][:5])
        print(f"greedy ids {key}: {ag['equal']}/{ag['rows']} rows identical" + (f" ({detail})" if detail else ""))


# --------------------------------------------------------------------------------------------
# GPT-2 124M shape (bench_gpt2.cpp's workloads)
# --------------------------------------------------------------------------------------------

GPT2_SHAPE = dict(n_layer=12, n_head=12, n_embd=768, n_positions=1024, vocab_size=50257)
GPT2_PROMPTS = (128, 512)
GPT2_DECODE_BATCHES = (1, 8)
GPT2_DECODE_PROMPT = 16
GPT2_DECODE_STEPS = 32


def gpt2_model(generator):
    cfg = G.GPT2Config(**GPT2_SHAPE)
    model = G.GPT2LMHeadModel(cfg, dtype=torch.float32)  # .eval(), requires_grad False
    for p in model.parameters():
        p.normal_(0.0, 0.02, generator=generator)
    return model


def measure_timed(fn, min_time):
    """fn() does its own untimed setup and returns the seconds of its timed part."""
    fn()  # warm-up
    times = []
    start = time.perf_counter()
    while len(times) < 3 or time.perf_counter() - start < min_time:
        times.append(fn())
    return times


def gpt2_prompt(model, ids):
    t0 = time.perf_counter()
    logits, _ = model(ids)  # [1, T, V]: logits at every position
    elapsed = time.perf_counter() - t0
    assert logits.shape == (1, ids.shape[1], GPT2_SHAPE["vocab_size"])
    return elapsed


def gpt2_decode(model, ids, steps):
    """ids [B, 16]: the prompt (not timed), then `steps` greedy steps with the KV cache (timed)."""
    logits, past = model(ids)
    t0 = time.perf_counter()
    for _ in range(steps):
        tokens = torch.argmax(logits[:, -1], dim=-1)
        logits, past = model(tokens[:, None], past=past)  # one position; keys and values from `past`
    elapsed = time.perf_counter() - t0
    assert past[0][0].shape[-2] == ids.shape[1] + steps
    return elapsed


def run_gpt2(result):
    gen = torch.Generator().manual_seed(1)
    model = gpt2_model(gen)
    params = sum(p.numel() for p in model.parameters())
    V = GPT2_SHAPE["vocab_size"]
    gpt2 = dict(shape=GPT2_SHAPE, parameters=params, runs=[], peak_rss_mb_after_import=result["peak_rss_mb_after_import"],
                peak_rss_mb_after_model=peak_rss_mb())
    result["gpt2"] = gpt2
    print(f"GPT-2: {GPT2_SHAPE}, {params:,} parameters, float32, N(0, 0.02) weights; peak RSS "
          f"{gpt2['peak_rss_mb_after_import']:.0f} MB after import, {gpt2['peak_rss_mb_after_model']:.0f} MB with the model")

    def record(run, times):
        run.update(reps=len(times), tok_per_s=run["tokens"] * len(times) / sum(times),
                   tok_per_s_min=run["tokens"] / max(times), tok_per_s_max=run["tokens"] / min(times),
                   peak_rss_mb=peak_rss_mb())
        gpt2["runs"].append(run)
        label = f"prompt T={run['T']}" if run["workload"] == "prompt" else f"decode B={run['B']}"
        print(f"PyTorch GPT-2 {label:13s}: {run['tok_per_s']:9.1f} tok/s (per repetition {run['tok_per_s_min']:.1f} "
              f"to {run['tok_per_s_max']:.1f}, {len(times)} repetitions); peak RSS so far {run['peak_rss_mb']:.0f} MB",
              flush=True)

    for T_ in GPT2_PROMPTS:
        ids = torch.randint(0, V, (1, T_), generator=gen)
        record(dict(workload="prompt", T=T_, B=1, tokens=T_),
               measure_timed(lambda: gpt2_prompt(model, ids), seconds_per_measurement(2.0)))
    for B in GPT2_DECODE_BATCHES:
        ids = torch.randint(0, V, (B, GPT2_DECODE_PROMPT), generator=gen)
        record(dict(workload="decode", B=B, prompt=GPT2_DECODE_PROMPT, steps=GPT2_DECODE_STEPS,
                    tokens=B * GPT2_DECODE_STEPS),
               measure_timed(lambda: gpt2_decode(model, ids, GPT2_DECODE_STEPS), seconds_per_measurement(2.0)))
    gpt2["peak_rss_mb"] = peak_rss_mb()


# --------------------------------------------------------------------------------------------
# Attention (bench_attention.cpp's workloads)
# --------------------------------------------------------------------------------------------

ATT_HEADS, ATT_DHEAD = 12, 64
ATT_EMBED = ATT_HEADS * ATT_DHEAD  # 768
ATT_BATCHES = (1, 8)
ATT_LENGTHS = (64, 128, 256, 512, 1024, 2048)
ATT_MASKS = ("none", "causal", "padding")
DECODE_LENGTHS = (128, 256, 512, 1024)


def padding_lengths(B, T):
    """Real key length of each batch item: T - (b + 1) * T / 16 (T is a multiple of 16)."""
    return [T - (b + 1) * T // 16 for b in range(B)]


def core_mask(mask, B, T):
    """Bool, True = not allowed, broadcastable to the scores [B, H, T, S = T]; None for no mask."""
    if mask == "causal":
        return torch.ones(T, T, dtype=torch.bool).triu_(1)  # key j > query i
    if mask == "padding":
        lengths = torch.tensor(padding_lengths(B, T))
        return (torch.arange(T)[None, :] >= lengths[:, None])[:, None, None, :]  # [B, 1, 1, S]
    return None


def attention_core(q, k, v, mask, scale):
    scores = torch.matmul(q, k.transpose(-2, -1))  # [B, H, T, S], a fresh tensor: scaled and masked in place
    scores.mul_(scale)
    if mask is not None:
        scores.masked_fill_(mask, float("-inf"))
    return torch.matmul(torch.softmax(scores, dim=-1), v)


def run_attention(result):
    gen = torch.Generator().manual_seed(2)
    rows = []
    result["attention"] = dict(heads=ATT_HEADS, d_head=ATT_DHEAD, embed=ATT_EMBED,
                               min_time=seconds_per_measurement(0.2), rows=rows)
    wanted = re.compile(ARGS.attention_filter) if ARGS.attention_filter else None
    scale = 1.0 / math.sqrt(ATT_DHEAD)

    def record(name, fn, flops, **fields):
        if wanted and not wanted.search(name):
            return
        times = measure(fn, seconds_per_measurement(0.2))
        row = dict(name=name, **fields, reps=len(times), seconds=sum(times) / len(times), seconds_min=min(times),
                   seconds_max=max(times), flops=flops)
        row["gflops"] = flops / row["seconds"] / 1e9
        extra = ""
        if "bytes" in row:
            row["bytes_per_s"] = row["bytes"] / row["seconds"]
            extra = f", {row['bytes_per_s'] / 1e9:6.1f} GB/s of K and V"
        rows.append(row)
        print(f"PyTorch {name:38s} {1e6 * row['seconds']:12.1f} us per call (min {1e6 * row['seconds_min']:.1f}, "
              f"max {1e6 * row['seconds_max']:.1f}, {len(times)} calls), {row['gflops']:6.1f} GFLOP/s{extra}", flush=True)

    def randn(*shape):
        return torch.randn(*shape, generator=gen)

    H, Dh, E = ATT_HEADS, ATT_DHEAD, ATT_EMBED
    for B in ATT_BATCHES:
        for T_ in ATT_LENGTHS:
            q, k, v = randn(B, H, T_, Dh), randn(B, H, T_, Dh), randn(B, H, T_, Dh)
            for mask in ATT_MASKS:
                m = core_mask(mask, B, T_)
                record(f"attention/torch/B:{B}/T:{T_}/{mask}", lambda: attention_core(q, k, v, m, scale),
                       4 * B * H * T_ * T_ * Dh, workload="attention", B=B, T=T_, mask=mask)

    mha = torch.nn.MultiheadAttention(E, H, batch_first=True, bias=True).eval()  # its default initialisation
    for B in ATT_BATCHES:
        for T_ in ATT_LENGTHS:
            x = randn(B, T_, E)
            for mask in ATT_MASKS:
                attn_mask = torch.ones(T_, T_, dtype=torch.bool).triu_(1) if mask == "causal" else None
                key_padding = (torch.arange(T_)[None, :] >= torch.tensor(padding_lengths(B, T_))[:, None]) \
                    if mask == "padding" else None
                path = "F.multi_head_attention_forward" if attn_mask is not None else "torch._native_multi_head_attention"
                record(f"mha/torch/B:{B}/T:{T_}/{mask}",
                       lambda: mha(x, x, x, need_weights=False, attn_mask=attn_mask, key_padding_mask=key_padding),
                       8 * B * T_ * E * E + 4 * B * T_ * T_ * E, workload="mha", B=B, T=T_, mask=mask, path=path)

    for B in ATT_BATCHES:
        for L in DECODE_LENGTHS:
            q, k, v = randn(B, H, 1, Dh), randn(B, H, L, Dh), randn(B, H, L, Dh)
            record(f"decode/torch/B:{B}/L:{L}", lambda: attention_core(q, k, v, None, scale), 4 * B * H * L * Dh,
                   workload="decode", B=B, L=L, mask="none", bytes=2 * 4 * B * H * L * Dh)
    result["attention"]["peak_rss_mb"] = peak_rss_mb()


# The products bench_ops.cpp times as linear/gpt2/<layer>/M:m/f32: (layer, N, K).
GEMM_SHAPES = (("c_attn", 2304, 768), ("attn.c_proj", 768, 768), ("c_fc", 3072, 768), ("mlp.c_proj", 768, 3072),
               ("lm_head", 50257, 768))
GEMM_ROWS = (128, 512)


def run_gemm(result):
    gen = torch.Generator().manual_seed(3)
    rows = []
    min_time = seconds_per_measurement(0.5)
    result["gemm"] = dict(min_time=min_time, rows=rows)
    for layer, N, K in GEMM_SHAPES:
        w, b = torch.randn(N, K, generator=gen), torch.randn(N, generator=gen)
        for M in GEMM_ROWS:
            x = torch.randn(M, K, generator=gen)
            times = measure(lambda: F.linear(x, w, b), min_time)
            name = f"linear/torch/gpt2/{layer}/M:{M}"
            row = dict(name=name, layer=layer, M=M, N=N, K=K, reps=len(times), seconds=sum(times) / len(times),
                       seconds_min=min(times), seconds_max=max(times), flops=2 * M * N * K)
            row["gflops"] = row["flops"] / row["seconds"] / 1e9
            rows.append(row)
            print(f"PyTorch {name:34s} {1e6 * row['seconds']:10.1f} us per call (min {1e6 * row['seconds_min']:.1f}, "
                  f"max {1e6 * row['seconds_max']:.1f}, {len(times)} calls), {row['gflops']:6.1f} GFLOP/s", flush=True)
    result["gemm"]["peak_rss_mb"] = peak_rss_mb()


def main():
    torch.set_num_threads(THREADS)
    original_env = json.loads(os.environ.get(ORIGINAL_ENV, "{}"))
    result = dict(torch_version=torch.__version__, threads=THREADS, workloads=ARGS.workloads,
                  openblas_env_found=original_env,
                  openblas_env_in_effect={k: os.environ.get(k) for k in OPENBLAS_ENV},
                  ld_library_path=os.environ.get("LD_LIBRARY_PATH"),
                  loadavg_start=loadavg())
    with torch.no_grad():
        a = torch.randn(256, 256)
        torch.matmul(a, a)  # the first matmul: BLAS is mapped now
        result["peak_rss_mb_after_import"] = peak_rss_mb()
        blas = blas_report()
        result["blas"] = blas
        print(f"torch {torch.__version__}, torch.get_num_threads() = {torch.get_num_threads()}")
        print("BLAS mapped: " + (", ".join(blas["mapped"]) or "none"))
        if blas["kind"] == "OpenBLAS":
            print(f"BLAS: {blas['config']}; core {blas['core']}; threading {blas['parallel']}, "
                  f"{blas['blas_threads']} threads")
        else:
            print(f"BLAS: {blas['kind']}")
        env_line = ", ".join(f"{k}={v if v is not None else '(unset)'}" for k, v in original_env.items())
        eff_line = ", ".join(f"{k}={v if v is not None else '(unset)'}"
                             for k, v in result["openblas_env_in_effect"].items())
        print(f"OpenBLAS environment found: {env_line}; in effect here: {eff_line}")
        if not blas["fair"]:
            print("compare_torch.py: torch is NOT on OpenBLAS's OpenMP build: its rates below are not a fair "
                  "baseline and no ratio may be drawn from them", file=sys.stderr)

        if ARGS.workloads in ("translator", "all"):
            run_translator(result)
        if ARGS.workloads in ("gpt2", "all"):
            run_gpt2(result)
        if ARGS.workloads in ("attention", "all"):
            run_attention(result)
        if ARGS.workloads == "gemm":
            run_gemm(result)
    result["loadavg_end"] = loadavg()
    result["peak_rss_mb"] = peak_rss_mb()
    print(f"load average: {result['loadavg_start']} at start, {result['loadavg_end']} at end; "
          f"peak RSS {result['peak_rss_mb']:.0f} MB")
    if ARGS.json:
        with open(ARGS.json, "w") as f:
            json.dump(result, f, indent=1)
    return 0 if blas["fair"] else EXIT_UNFAIR_BLAS


if __name__ == "__main__":
    sys.exit(main())
