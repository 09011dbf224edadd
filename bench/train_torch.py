#!/usr/bin/python3
"""PyTorch's training throughput, the baseline for Eigenformer's C++ training on the same workloads.

Workloads (--workloads translator, gpt2 or all; default all, each in a process of its own so that
each peak RSS is that workload's alone)
  translator  The PyTorch translation tutorial's Seq2SeqTransformer, imported from
              tools/make_translator_fixtures.py: d_model 128 (--d-model), 4 heads, 3 encoder and 3
              decoder layers, dim_feedforward 512, vocabularies of 300 on both sides, max_len 5000
              (the tutorial's), dropout --dropout (default 0.0), the tutorial's xavier init.
              The batch: 64 sentence pairs (--translator-batch); each source and each target is
              BOS, ids drawn from [4, 300), EOS, with lengths (BOS and EOS counted) drawn from
              [8, 12] (mean 10), right-padded with pad_id 1, in the tutorial's [S, B] layout. One
              fixed batch, drawn once from --seed; the JSON gives its lengths (src_lengths,
              tgt_lengths), so that bench_train runs the very same shapes. A step is the
              tutorial's train_epoch body: tgt_input = tgt[:-1], create_mask(src, tgt_input), forward with
              memory_key_padding_mask = the source padding mask,
              CrossEntropyLoss(ignore_index=pad_id, label_smoothing=0.1) against tgt[1:],
              backward, AdamW step. Tokens per step = the targets that are not pad_id.
  gpt2        A GPT-2, by default GPT-2 small (124M: 12 layers, 12 heads, 768 wide, vocabulary
              50257, 1024 positions); any other GPT-2 shape with --gpt2-layers (n_layer, 12),
              --gpt2-heads (n_head, 12; they must divide n_embd), --gpt2-embd (n_embd, 768),
              --gpt2-vocab (vocab_size, 50257) and --gpt2-positions (n_positions, the rows of wpe,
              1024; at least --gpt2-seq), as bench_train takes them. Written below in a few lines
              with Hugging Face's GPT2LMHeadModel math and names: wte + wpe, pre-norm blocks
              (x + attn(ln_1 x), x + mlp(ln_2 x)), fused q|k|v projection c_attn stored [in, out]
              as HF's Conv1D (y = x W + b), causal softmax attention scaled by
              1/sqrt(n_embd / n_head) (1/sqrt(64) for GPT-2 small), MLP n_embd -> 4 n_embd -> n_embd
              with the tanh GELU, ln_f, logits = x wte^T (tied), LayerNorm eps 1e-5, no dropout.
              HF's init: N(0, 0.02), the c_proj weights N(0, 0.02 / sqrt(2 * n_layer)), biases 0,
              LayerNorms 1 and 0. --check-gpt2 compares its logits with tools/gpt2_reference.py
              (tested against HF fixtures) on a small configuration in float64 and exits.
              The batch: B rows (--gpt2-batch, 4) of T + 1 random ids from [0, vocab_size)
              (T = --gpt2-seq, 64), one fixed batch; inputs ids[:, :-1], targets ids[:, 1:] (as
              llm.c), mean cross-entropy over all B * T positions. Tokens per step = B * T.
  Each step: forward, loss, backward, optimizer.step(), optimizer.zero_grad(set_to_none=True).
  Optimizer: torch.optim.AdamW (torch 1.13's default single-tensor loop) with two parameter
  groups, weight decay on the parameters of rank >= 2 only (matrices and embeddings; not biases
  and LayerNorms): translator lr 1e-4, betas (0.9, 0.98), eps 1e-9, weight decay 0.01 (the
  tutorial's Adam settings); GPT-2 lr 3e-4, betas (0.9, 0.95), eps 1e-8, weight decay 0.1
  (nanoGPT's). No gradient clipping unless --max-norm is given. float32, model.train().

What it reports
  --warmup steps (default 2) untimed, then --steps (default 10) timed one by one; steps/s and
  tokens/s are those of the MEDIAN step time (min and max are given too), with the median seconds
  of each phase (forward + loss, backward, optimizer step + zero_grad + clipping if asked). On stdout, one JSON
  object per workload, one line each, and nothing else (progress goes to stderr), e.g.
    {"workload": "translator", "steps_per_s": ..., "tokens_per_s": ..., ...}
  Memory: ru_maxrss (the process's peak RSS) and the current RSS (/proc/self/statm) before the
  model is built, after the model and optimizer exist, and the peak after training; params_mb is
  the parameters' own size (4 bytes each), peak_growth_mb = peak RSS - RSS before the model (what
  the workload added: parameters, gradients, AdamW's two moments, activations, allocator slack),
  and peak_growth_over_params = peak_growth_mb / params_mb. The loss of the first and last step
  is given (one batch repeated: it should fall). cpu_utilisation = process CPU seconds / wall
  seconds over the timed steps (at most --threads; well below it on a busy machine), beside
  the load average at start and end.

BLAS (as bench/compare_torch.py does it)
  Debian's torch calls libblas.so.3, which as installed is the reference BLAS (about 60x slower):
  not a baseline. By default the script re-executes itself with
  LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp (Debian's libopenblas0-openmp, which
  `./setup.sh --bench` installs), so torch loads OpenBLAS's OpenMP build whatever
  update-alternatives selects. After the first matmul it reads /proc/self/maps and asks OpenBLAS
  for its config, core and threading model. If torch is NOT on OpenBLAS's OpenMP build (the
  reference BLAS, or OpenBLAS's pthread build, which competes with torch's own threads), it
  refuses: prints why and exits with status 3 before measuring. --allow-unfair-blas measures
  anyway, with a loud warning on stderr and "blas_fair": false in the JSON (exit status 3 still).
  --blas system skips the LD_LIBRARY_PATH step (whatever libblas.so.3 points to).
  --unset-openblas-env removes OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE for this process only.

Memory allocator (--malloc keep, the default, or system)
  Each step frees and allocates again its activations, gradients (set_to_none) and, for GPT-2, the
  [B, T, vocab_size] logits and the gradient of wte (154 MB for GPT-2 small). With glibc's defaults
  every block above 32 MiB is mmap'ed and returned to the kernel when freed, and the freed top of
  the heap is trimmed, so every step faults its pages in again: on a 2-core machine here (2
  threads, OpenBLAS OpenMP, five short runs each) GPT-2 trained at 47-48 tokens/s with glibc's
  defaults against 116-183 with --malloc keep (backward 3.3-3.6 s against 0.8-1.0 s). --malloc keep
  re-executes with MALLOC_MMAP_THRESHOLD_ and MALLOC_TRIM_THRESHOLD_ at 16 GiB and MALLOC_TOP_PAD_
  at 1 GiB (values already in the environment are kept), so freed memory is reused, as a caching
  allocator would; the peak RSS grows a little. --malloc system measures glibc's defaults. The JSON
  records which ("malloc", "malloc_env").

Usage (from the repository root; Debian's python3-torch; run on an otherwise idle machine)
  /usr/bin/python3 bench/train_torch.py [--workloads translator|gpt2|all] [--threads 2]
        [--steps 10] [--warmup 2] [--d-model 128] [--translator-batch 64] [--gpt2-batch 4]
        [--gpt2-seq 64] [--gpt2-layers 12] [--gpt2-heads 12] [--gpt2-embd 768]
        [--gpt2-vocab 50257] [--gpt2-positions 1024] [--dropout 0.0] [--max-norm X] [--seed 1]
  /usr/bin/python3 bench/train_torch.py --check-gpt2
"""

import argparse
import ctypes
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the work tree

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OPENBLAS_OPENMP_DIR = "/usr/lib/x86_64-linux-gnu/openblas-openmp"
OPENBLAS_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
REEXEC_MARK = "EIGENFORMER_TRAIN_TORCH_CHILD"
ORIGINAL_ENV = "EIGENFORMER_TRAIN_TORCH_OPENBLAS_ENV"
EXIT_UNFAIR_BLAS = 3
# --malloc keep: glibc keeps freed memory in the process instead of returning it to the kernel (large
# blocks are otherwise mmap'ed and munmap'ed on every step, and each step faults its pages in again)
MALLOC_KEEP_ENV = {"MALLOC_MMAP_THRESHOLD_": str(16 << 30), "MALLOC_TRIM_THRESHOLD_": str(16 << 30),
                   "MALLOC_TOP_PAD_": str(1 << 30)}


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workloads", choices=("translator", "gpt2", "all"), default="all")
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    p.add_argument("--steps", type=int, default=10, help="timed steps (default 10)")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps first (default 2)")
    p.add_argument("--d-model", type=int, default=128, help="translator d_model (default 128)")
    p.add_argument("--translator-batch", type=int, default=64, help="sentence pairs (default 64)")
    p.add_argument("--gpt2-batch", type=int, default=4, help="GPT-2 rows (default 4)")
    p.add_argument("--gpt2-seq", type=int, default=64,
                   help="GPT-2 tokens per row (default 64; at most --gpt2-positions)")
    p.add_argument("--gpt2-layers", type=int, default=12, help="GPT-2 blocks, n_layer (default 12)")
    p.add_argument("--gpt2-heads", type=int, default=12,
                   help="GPT-2 attention heads, n_head (default 12; must divide --gpt2-embd)")
    p.add_argument("--gpt2-embd", type=int, default=768,
                   help="GPT-2 width, n_embd (default 768; the MLP is 4 * n_embd)")
    p.add_argument("--gpt2-vocab", type=int, default=50257, help="GPT-2 vocabulary, vocab_size (default 50257)")
    p.add_argument("--gpt2-positions", type=int, default=1024,
                   help="GPT-2 context, n_positions: rows of wpe (default 1024; >= --gpt2-seq)")
    p.add_argument("--dropout", type=float, default=0.0, help="translator dropout (default 0.0)")
    p.add_argument("--max-norm", type=float, help="clip_grad_norm_ to this before each step")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--blas", choices=("openblas-openmp", "system"), default="openblas-openmp")
    p.add_argument("--malloc", choices=("keep", "system"), default="keep",
                   help="keep (default): set MALLOC_MMAP_THRESHOLD_, MALLOC_TRIM_THRESHOLD_ and MALLOC_TOP_PAD_ "
                        "so that glibc reuses freed memory; system: glibc's defaults")
    p.add_argument("--unset-openblas-env", action="store_true",
                   help="remove OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE for this process only")
    p.add_argument("--allow-unfair-blas", action="store_true",
                   help="measure even when torch is not on OpenBLAS's OpenMP build (marked unfair)")
    p.add_argument("--check-gpt2", action="store_true",
                   help="compare this file's GPT-2 with tools/gpt2_reference.py and exit")
    args = p.parse_args()
    if args.steps < 1 or args.warmup < 0 or args.threads < 1:
        p.error("--steps and --threads must be >= 1, --warmup >= 0")
    error = gpt2_shape_error(args)
    if error:
        print(f"train_torch.py: {error}", file=sys.stderr)
        sys.exit(2)
    return args


def gpt2_shape_error(args):
    """Why the --gpt2-* options are not a GPT-2 shape and batch, or None (bench_train's checks and words)."""
    for name in ("layers", "heads", "embd", "vocab", "positions", "batch", "seq"):
        value = getattr(args, "gpt2_" + name)
        if value < 1:
            return f"--gpt2-{name} is {value}; expected a positive number"
    if args.gpt2_embd % args.gpt2_heads:
        return f"--gpt2-embd {args.gpt2_embd} is not a multiple of --gpt2-heads {args.gpt2_heads}"
    if args.gpt2_seq > args.gpt2_positions:
        return f"--gpt2-seq {args.gpt2_seq} is longer than --gpt2-positions {args.gpt2_positions}"
    return None


def reexec(args):
    """LD_LIBRARY_PATH is read when the process starts: set it, then run this script again."""
    if os.environ.get(REEXEC_MARK):
        return
    env = dict(os.environ)
    env[REEXEC_MARK] = "1"
    env[ORIGINAL_ENV] = json.dumps({k: os.environ.get(k) for k in OPENBLAS_ENV})
    if args.blas == "openblas-openmp":
        if not os.path.isfile(os.path.join(OPENBLAS_OPENMP_DIR, "libblas.so.3")):
            sys.exit(f"train_torch.py: {OPENBLAS_OPENMP_DIR}/libblas.so.3 not found; install Debian's "
                     "OpenBLAS OpenMP build (./setup.sh --bench, or apt-get install -y libopenblas0-openmp)")
        old = env.get("LD_LIBRARY_PATH")
        env["LD_LIBRARY_PATH"] = OPENBLAS_OPENMP_DIR + (":" + old if old else "")
    if args.unset_openblas_env:
        for k in OPENBLAS_ENV:
            env.pop(k, None)
    if args.malloc == "keep":
        for k, v in MALLOC_KEEP_ENV.items():
            env.setdefault(k, v)  # a value set by the caller wins
    os.execve(sys.executable, [sys.executable] + sys.argv, env)


ARGS = parse_args()
reexec(ARGS)

if ARGS.workloads == "all" and not ARGS.check_gpt2:
    # one process per workload: ru_maxrss is a process-wide high-water mark
    status = 0
    for w in ("translator", "gpt2"):  # argparse keeps the last --workloads given
        r = subprocess.run([sys.executable, os.path.abspath(__file__)] + sys.argv[1:] + ["--workloads", w])
        status = max(status, r.returncode)
    sys.exit(status)

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, os.path.join(ROOT, "tools"))
import make_translator_fixtures as T  # noqa: E402  (the tutorial's model; sets 1 thread on import)


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# Which BLAS torch runs on (after the first matmul), as bench/compare_torch.py reads it
# --------------------------------------------------------------------------------------------

def blas_report():
    mapped = []
    with open("/proc/self/maps") as f:
        for line in f:
            parts = line.split()
            path = parts[-1] if len(parts) >= 6 else ""
            name = os.path.basename(path)
            if any(s in name for s in ("libblas", "libopenblas", "liblapack", "libmkl")) and path not in mapped:
                mapped.append(path)
    info = {"mapped": mapped, "kind": "unknown", "fair": False}
    openblas = [p for p in mapped if "libopenblas" in os.path.basename(p)]
    blas_lib = [p for p in mapped if os.path.basename(p).startswith("libblas")]
    if blas_lib and os.path.basename(os.path.dirname(blas_lib[0])) == "blas":
        info["kind"] = "reference BLAS (netlib)"  # libblas.so.3 itself is netlib's: its dgemm wins
    elif openblas:
        lib = ctypes.CDLL(openblas[0])  # already mapped: the instance torch calls
        lib.openblas_get_config.restype = ctypes.c_char_p
        lib.openblas_get_corename.restype = ctypes.c_char_p
        parallel = int(lib.openblas_get_parallel())
        info.update(kind="OpenBLAS", config=lib.openblas_get_config().decode(),
                    core=lib.openblas_get_corename().decode(),
                    parallel={0: "sequential", 1: "pthreads", 2: "OpenMP"}.get(parallel, str(parallel)),
                    blas_threads=int(lib.openblas_get_num_threads()), fair=parallel == 2)
    elif any("libmkl" in p for p in mapped):
        info.update(kind="MKL", fair=True)
    for line in torch.__config__.show().splitlines():
        if "BLAS_INFO=" in line:
            info["torch_build_blas_info"] = line.split("BLAS_INFO=")[1].split(",")[0]
    return info


# --------------------------------------------------------------------------------------------
# GPT-2 (small by default), Hugging Face's GPT2LMHeadModel math and names (training: no cache, no dropout)
# --------------------------------------------------------------------------------------------

class Conv1D(nn.Module):  # HF's: weight [in, out], y = x W + b
    def __init__(self, n_in, n_out):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_in, n_out).normal_(0.0, 0.02))
        self.bias = nn.Parameter(torch.zeros(n_out))

    def forward(self, x):
        return torch.addmm(self.bias, x.reshape(-1, x.shape[-1]), self.weight).view(*x.shape[:-1], -1)


class Block(nn.Module):
    def __init__(self, d, n_head, n_layer, eps):
        super().__init__()
        self.n_head = n_head
        self.ln_1, self.ln_2 = nn.LayerNorm(d, eps=eps), nn.LayerNorm(d, eps=eps)
        self.attn = nn.Module()
        self.attn.c_attn, self.attn.c_proj = Conv1D(d, 3 * d), Conv1D(d, d)
        self.mlp = nn.Module()
        self.mlp.c_fc, self.mlp.c_proj = Conv1D(d, 4 * d), Conv1D(4 * d, d)
        for proj in (self.attn.c_proj, self.mlp.c_proj):  # HF's scaled init of the residual projections
            nn.init.normal_(proj.weight, 0.0, 0.02 / math.sqrt(2 * n_layer))

    def forward(self, x, causal):  # x [B, T, d]; causal bool [T, T], True = may attend
        B, T_, d = x.shape
        q, k, v = self.attn.c_attn(self.ln_1(x)).split(d, dim=2)
        q, k, v = (t.view(B, T_, self.n_head, d // self.n_head).transpose(1, 2) for t in (q, k, v))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(d // self.n_head)
        att = torch.matmul(torch.softmax(scores.masked_fill(~causal, float("-inf")), dim=-1), v)
        x = x + self.attn.c_proj(att.transpose(1, 2).reshape(B, T_, d))
        return x + self.mlp.c_proj(F.gelu(self.mlp.c_fc(self.ln_2(x)), approximate="tanh"))


class GPT2(nn.Module):
    def __init__(self, n_layer=12, n_head=12, n_embd=768, n_positions=1024, vocab_size=50257, eps=1e-5):
        super().__init__()
        self.wte = nn.Embedding(vocab_size, n_embd)
        self.wpe = nn.Embedding(n_positions, n_embd)
        nn.init.normal_(self.wte.weight, 0.0, 0.02)
        nn.init.normal_(self.wpe.weight, 0.0, 0.02)
        self.h = nn.ModuleList(Block(n_embd, n_head, n_layer, eps) for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(n_embd, eps=eps)

    def forward(self, ids):  # ids [B, T] -> logits [B, T, V]
        T_ = ids.shape[1]
        causal = torch.ones(T_, T_, dtype=torch.bool).tril_()
        x = self.wte(ids) + self.wpe(torch.arange(T_))
        for block in self.h:
            x = block(x, causal)
        return torch.matmul(self.ln_f(x), self.wte.weight.t())  # tied output projection


def check_gpt2():
    """This GPT2 against tools/gpt2_reference.py (float64, small shape, the same state dict)."""
    import gpt2_reference as G
    torch.manual_seed(0)
    shape = dict(n_layer=2, n_head=4, n_embd=32, n_positions=40, vocab_size=97)
    ours = GPT2(**shape).double()
    with torch.no_grad():  # non-trivial biases and LayerNorms too
        for name, p in ours.named_parameters():
            if p.dim() == 1:
                p.add_(0.1 * torch.randn(p.shape, dtype=p.dtype))
    ref = G.GPT2LMHeadModel(G.GPT2Config(**shape), dtype=torch.float64)
    ref.load_hf_state_dict({k: v.detach().numpy() for k, v in ours.state_dict().items()})
    ids = torch.randint(0, shape["vocab_size"], (3, 17))
    err = float((ours(ids) - ref(ids)[0]).abs().max())
    print(f"GPT-2 of bench/train_torch.py vs tools/gpt2_reference.py: max |logits diff| {err:.2e} "
          f"(float64, {shape})")
    return 0 if err < 1e-12 else 1


# --------------------------------------------------------------------------------------------
# The workloads
# --------------------------------------------------------------------------------------------

def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def adamw(model, lr, betas, eps, weight_decay):
    decay = [p for p in model.parameters() if p.dim() >= 2]
    rest = [p for p in model.parameters() if p.dim() < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                              {"params": rest, "weight_decay": 0.0}], lr=lr, betas=betas, eps=eps)


def translator_setup():
    V, D = 300, ARGS.d_model
    model = T.Seq2SeqTransformer(3, 3, D, 4, V, V, dim_feedforward=512, dropout=ARGS.dropout)
    for p in model.parameters():  # the tutorial's init
        if p.dim() > 1:
            nn.init.xavier_uniform_(p)
    B = ARGS.translator_batch
    src_lengths = torch.randint(8, 13, (B,)).tolist()  # drawn in this order: src lengths, src ids, tgt lengths, tgt ids
    src = T.make_batch(src_lengths, V, with_eos=True).t().contiguous()  # [S, B]
    tgt_lengths = torch.randint(8, 13, (B,)).tolist()
    tgt = T.make_batch(tgt_lengths, V, with_eos=True).t().contiguous()  # [T, B]
    loss_fn = nn.CrossEntropyLoss(ignore_index=T.PAD_IDX, label_smoothing=0.1)
    tokens = int((tgt[1:] != T.PAD_IDX).sum())

    def loss_of_step():
        tgt_input = tgt[:-1, :]
        src_mask, tgt_mask, src_padding_mask, tgt_padding_mask = T.create_mask(src, tgt_input)
        logits = model(src, tgt_input, src_mask, tgt_mask, src_padding_mask, tgt_padding_mask,
                       src_padding_mask)
        return loss_fn(logits.reshape(-1, logits.shape[-1]), tgt[1:, :].reshape(-1))

    opt = adamw(model, 1e-4, (0.9, 0.98), 1e-9, 0.01)
    desc = dict(model="Seq2SeqTransformer (PyTorch translation tutorial)", d_model=D, nhead=4,
                num_encoder_layers=3, num_decoder_layers=3, dim_feedforward=512, src_vocab_size=V,
                tgt_vocab_size=V, dropout=ARGS.dropout, batch=B, src_shape=list(src.shape),
                tgt_shape=list(tgt.shape), src_lengths=src_lengths, tgt_lengths=tgt_lengths,
                src_tokens=int((src != T.PAD_IDX).sum()),
                tokens_per_step=tokens, tokens_counted="target tokens (not pad_id) per step",
                optimizer="AdamW lr 1e-4 betas (0.9, 0.98) eps 1e-9 wd 0.01 on rank >= 2",
                loss="CrossEntropyLoss(ignore_index=1, label_smoothing=0.1)")
    return model, opt, loss_of_step, tokens, desc


GPT2_SMALL = dict(n_layer=12, n_head=12, n_embd=768, n_positions=1024, vocab_size=50257)


def gpt2_setup():
    shape = dict(n_layer=ARGS.gpt2_layers, n_head=ARGS.gpt2_heads, n_embd=ARGS.gpt2_embd,
                 n_positions=ARGS.gpt2_positions, vocab_size=ARGS.gpt2_vocab)
    model = GPT2(**shape)
    name = ("GPT-2 small" if shape == GPT2_SMALL else
            f"GPT-2 shape: {shape['n_layer']} layers, {shape['n_head']} heads, n_embd {shape['n_embd']}, "
            f"n_inner {4 * shape['n_embd']}, vocab {shape['vocab_size']}, {shape['n_positions']} positions")
    B, T_ = ARGS.gpt2_batch, ARGS.gpt2_seq
    ids = torch.randint(0, shape["vocab_size"], (B, T_ + 1))

    def loss_of_step():
        logits = model(ids[:, :-1])
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1))

    opt = adamw(model, 3e-4, (0.9, 0.95), 1e-8, 0.1)
    desc = dict(model=f"{name} (HF GPT2LMHeadModel math, tied wte)", **shape, n_inner=4 * shape["n_embd"],
                batch=B, seq=T_,
                tokens_per_step=B * T_, tokens_counted="all input positions (B * T) per step",
                optimizer="AdamW lr 3e-4 betas (0.9, 0.95) eps 1e-8 wd 0.1 on rank >= 2",
                loss="cross_entropy over all positions, targets shifted by one")
    return model, opt, loss_of_step, B * T_, desc


def run(workload, blas, original_env):
    torch.manual_seed(ARGS.seed)
    rss_before, peak_before = rss_mb(), peak_rss_mb()
    model, opt, loss_of_step, tokens, desc = (translator_setup if workload == "translator" else gpt2_setup)()
    model.train()
    params = sum(p.numel() for p in model.parameters())
    rss_model = rss_mb()
    log(f"{workload}: {params:,} parameters; {tokens} tokens per step; RSS {rss_before:.0f} MB before the "
        f"model, {rss_model:.0f} MB with it")

    def step():
        """One training step; returns (loss, seconds of forward + loss, backward, optimizer)."""
        t0 = time.perf_counter()
        loss = loss_of_step()
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        if ARGS.max_norm:
            torch.nn.utils.clip_grad_norm_(model.parameters(), ARGS.max_norm)
        opt.step()
        opt.zero_grad(set_to_none=True)
        t3 = time.perf_counter()
        return float(loss.detach()), (t1 - t0, t2 - t1, t3 - t2)

    losses, times, phases = [], [], []
    load_start = loadavg()
    for i in range(ARGS.warmup):
        t0 = time.perf_counter()
        loss, _ = step()
        losses.append(loss)
        log(f"  warm-up step {i + 1}: {time.perf_counter() - t0:.3f} s, loss {loss:.4f}")
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for i in range(ARGS.steps):
        t0 = time.perf_counter()
        loss, phase = step()
        times.append(time.perf_counter() - t0)
        losses.append(loss)
        phases.append(phase)
        log(f"  step {i + 1}: {times[-1]:.3f} s (forward {phase[0]:.3f}, backward {phase[1]:.3f}, "
            f"optimizer {phase[2]:.3f}), loss {loss:.4f}")
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    med = statistics.median(times)
    phase_med = [statistics.median(p[j] for p in phases) for j in range(3)]
    peak = peak_rss_mb()
    params_mb = params * 4 / 2**20
    result = dict(
        workload=workload, **desc, parameters=params, dtype="float32", threads=torch.get_num_threads(),
        warmup_steps=ARGS.warmup, timed_steps=ARGS.steps, max_norm=ARGS.max_norm,
        step_s_median=med, step_s_min=min(times), step_s_max=max(times),
        forward_s_median=phase_med[0], backward_s_median=phase_med[1], optimizer_s_median=phase_med[2],
        steps_per_s=1.0 / med, tokens_per_s=tokens / med,
        tokens_per_s_min=tokens / max(times), tokens_per_s_max=tokens / min(times),
        loss_first=losses[0], loss_last=losses[-1],
        rss_mb_before_model=rss_before, rss_mb_with_model_and_optimizer=rss_model,
        peak_rss_mb_before_model=peak_before, peak_rss_mb=peak, params_mb=params_mb,
        peak_growth_mb=peak - rss_before, peak_growth_over_params=(peak - rss_before) / params_mb,
        cpu_utilisation=cpu / wall, loadavg_start=load_start, loadavg_end=loadavg(),
        torch_version=torch.__version__, blas=blas, blas_fair=blas["fair"],
        openblas_env_found=original_env,
        openblas_env_in_effect={k: os.environ.get(k) for k in OPENBLAS_ENV},
        ld_library_path=os.environ.get("LD_LIBRARY_PATH"), malloc=ARGS.malloc,
        malloc_env={k: os.environ.get(k) for k in MALLOC_KEEP_ENV})
    log(f"{workload}: median step {med:.3f} s (medians: forward + loss {phase_med[0]:.3f}, backward "
        f"{phase_med[1]:.3f}, optimizer {phase_med[2]:.3f}) -> {result['steps_per_s']:.2f} steps/s, "
        f"{result['tokens_per_s']:.1f} tokens/s (per step {result['tokens_per_s_min']:.1f} to "
        f"{result['tokens_per_s_max']:.1f}); peak RSS {peak:.0f} MB, {result['peak_growth_mb']:.0f} MB over "
        f"the RSS before the model = {result['peak_growth_over_params']:.1f} x the parameters' "
        f"{params_mb:.0f} MB; CPU {result['cpu_utilisation']:.2f} of {result['threads']} threads; "
        f"load {load_start} -> {result['loadavg_end']}")
    print(json.dumps(result, sort_keys=True), flush=True)


def main():
    if ARGS.check_gpt2:
        return check_gpt2()
    torch.set_num_threads(ARGS.threads)  # after importing make_translator_fixtures, which sets 1
    original_env = json.loads(os.environ.get(ORIGINAL_ENV, "{}"))
    a = torch.randn(256, 256)
    torch.matmul(a, a)  # the first matmul: the BLAS is mapped now
    blas = blas_report()
    detail = (f"{blas['config']}; core {blas['core']}; threading {blas['parallel']}"
              if blas["kind"] == "OpenBLAS" else blas["kind"])
    log(f"torch {torch.__version__} (built with BLAS_INFO={blas.get('torch_build_blas_info')}), "
        f"{torch.get_num_threads()} threads; BLAS: {detail}; mapped: {', '.join(blas['mapped']) or 'none'}")
    log(f"malloc: {ARGS.malloc} (" + ", ".join(f"{k}={os.environ.get(k)}" for k in MALLOC_KEEP_ENV) + ")")
    log("OpenBLAS environment found: " + ", ".join(f"{k}={v}" for k, v in original_env.items())
        + "; in effect: " + ", ".join(f"{k}={os.environ.get(k)}" for k in OPENBLAS_ENV))
    if not blas["fair"]:
        msg = (f"train_torch.py: torch is on {blas['kind']}"
               + (f" ({blas.get('parallel')} build)" if blas["kind"] == "OpenBLAS" else "")
               + ", not OpenBLAS's OpenMP build: its training rate is NOT a fair baseline")
        if not ARGS.allow_unfair_blas:
            log(msg + "; refusing to measure (--allow-unfair-blas measures anyway)")
            return EXIT_UNFAIR_BLAS
        log("!" * 100 + "\n" + msg + "; measuring anyway (--allow-unfair-blas); draw no ratio from it\n"
            + "!" * 100)
    run(ARGS.workloads, blas, original_env)
    return 0 if blas["fair"] else EXIT_UNFAIR_BLAS


if __name__ == "__main__":
    sys.exit(main())
