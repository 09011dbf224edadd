#!/usr/bin/env python3
"""Check that PyTorch loads a translator directory written by Eigenformer, and decodes as the
reference says.

What it does
    For each DIR (a directory holding config.json + model.safetensors in the layout of
    tests/fixtures/translator/<name>/, see tools/make_translator_fixtures.py):
      1. builds the PyTorch translation tutorial's Seq2SeqTransformer from config.json (the
         model code is imported from tools/make_translator_fixtures.py; config.json must hold
         exactly the fields d_model, nhead, num_encoder_layers, num_decoder_layers,
         dim_feedforward, activation, norm_first, layer_norm_eps, src_vocab_size,
         tgt_vocab_size, bos_id, eos_id, pad_id, max_len, and optionally dropout, which
         evaluation ignores);
      2. reads model.safetensors (every tensor must be F32) and calls
         load_state_dict(..., strict=True): every name the model has, no other, right shapes;
         also checks that positional_encoding.pos_embedding is the tutorial's sinusoidal table
         (within 1e-5 of the one torch computes in float32);
      3. if a reference is found, decodes its input.src_ids greedily with PyTorch, each sentence
         alone, exactly as the tutorial's translate() (max_len = num_tokens + 5), in float64
         (the F32 weights, then .double()) and in float32, and compares with output.greedy_ids,
         output.greedy_lengths and output.greedy_stopped_at_eos; it also recomputes
         output.memory and output.logits (float64) and requires them within 1e-9.
    It prints one line per directory, e.g.
        DIR: PyTorch loaded 99 tensors strictly; greedy ids match the reference
    and exits with status 1 if any directory failed (the failure is printed on its line).

Which reference
    --reference PATH   use PATH (repeat it once per DIR, in the same order, for several DIRs);
    otherwise          DIR/reference.safetensors if it exists, else
                       tests/fixtures/translator/<basename of DIR>/reference.safetensors
                       (the fixture config of the same name) if it exists;
    otherwise          no comparison: the line says "no reference", and the directory fails
                       only with --require-reference.

How to run (from the repository root; Debian's torch 1.13, no safetensors package needed)
    /usr/bin/python3 tools/check_torch_loads_translator.py tests/fixtures/translator/*/
    /usr/bin/python3 tools/check_torch_loads_translator.py /tmp/out/post_relu_3layers \\
        --reference tests/fixtures/translator/post_relu_3layers/reference.safetensors

Conventions
    Special ids must be the tutorial's (UNK 0, PAD 1, BOS 2, EOS 3). Reference ids are
    batch-first, right-padded with pad_id; greedy_ids exclude BOS and a trailing EOS and are
    right-padded with -1. Computation runs with grad enabled and .eval() (torch 1.13's
    no_grad fast path zeros padded encoder positions), on one thread.
"""

import argparse
import json
import os
import sys

import numpy as np
import torch

sys.dont_write_bytecode = True  # no tools/__pycache__ in the work tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_translator_fixtures as T  # noqa: E402
import safetensors_np  # noqa: E402

PE_TOL = 1e-5
FLOAT_TOL = 1e-9


def find_reference(d):
    here = os.path.join(d, "reference.safetensors")
    if os.path.isfile(here):
        return here
    name = os.path.basename(os.path.normpath(d))
    fixture = os.path.join(T.OUT_DIR, name, "reference.safetensors")
    if os.path.isfile(fixture):
        return fixture
    return None


def load_dir(d):
    """Build the model from d/config.json, load d/model.safetensors strictly (F32 only)."""
    with open(os.path.join(d, "config.json")) as f:
        conf = json.load(f)
    model = T.model_from_config(conf)
    tensors, _ = safetensors_np.load_file(os.path.join(d, "model.safetensors"))
    bad = sorted(k for k, v in tensors.items() if v.dtype != np.float32)
    if bad:
        raise AssertionError(f"tensors not F32: {bad[:5]}")
    want = set(model.state_dict())
    missing, unexpected = sorted(want - set(tensors)), sorted(set(tensors) - want)
    if missing or unexpected:
        raise AssertionError(f"missing {missing[:5]}, unexpected {unexpected[:5]}")
    expected_pe = model.positional_encoding.pos_embedding.clone()
    n = T.load_numpy_state(model, tensors)  # strict=True
    pe = model.positional_encoding.pos_embedding
    err = float((pe - expected_pe).abs().max())
    if err > PE_TOL:
        raise AssertionError(f"pos_embedding differs from the tutorial's table by {err:.2e}")
    return conf, model, tensors, n


def check_reference(conf, tensors, ref_path):
    refs, meta = safetensors_np.load_file(ref_path)
    src_ids = refs["input.src_ids"]
    src_lengths = [int(x) for x in refs["input.src_lengths"]]
    want_ids = refs["output.greedy_ids"]
    want_len = [int(x) for x in refs["output.greedy_lengths"]]
    want_eos = [bool(x) for x in refs["output.greedy_stopped_at_eos"]]

    m64 = T.model_from_config(conf)
    T.load_numpy_state(m64, tensors)
    m64 = m64.double()
    m64.eval()
    m32 = T.model_from_config(conf)
    T.load_numpy_state(m32, tensors)

    for b, n in enumerate(src_lengths):
        sentence = [int(x) for x in src_ids[b, :n]]
        want = [int(x) for x in want_ids[b, :want_len[b]]]
        for label, m in (("float64", m64), ("float32", m32)):
            ids, stopped = T.translate_ids(m, sentence)
            if ids != want or stopped != want_eos[b]:
                raise AssertionError(
                    f"sentence {b} ({label}): greedy {ids} (EOS {stopped}) != reference "
                    f"{want} (EOS {want_eos[b]})")

    src = torch.as_tensor(src_ids).transpose(0, 1).contiguous()
    tgt = torch.as_tensor(refs["input.tgt_ids"]).transpose(0, 1).contiguous()
    src_mask, tgt_mask, src_pad, tgt_pad = T.create_mask(src, tgt)
    logits = m64(src, tgt, src_mask, tgt_mask, src_pad, tgt_pad, src_pad)
    memory = m64.transformer.encoder(m64.positional_encoding(m64.src_tok_emb(src)),
                                     src_mask, src_pad)
    for name, got in (("memory", memory), ("logits", logits)):
        got = got.detach().transpose(0, 1).numpy()
        want = refs["output." + name]
        if got.shape != want.shape:
            raise AssertionError(f"{name}: shape {got.shape} != reference {want.shape}")
        err = float(np.max(np.abs(got - want)))
        if not err <= FLOAT_TOL:
            raise AssertionError(f"{name}: max abs diff {err:.2e} > {FLOAT_TOL:.0e}")
    return meta.get("config", "?")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dirs", nargs="+", metavar="DIR")
    ap.add_argument("--reference", action="append", default=[],
                    help="reference.safetensors to compare with (once per DIR, in order)")
    ap.add_argument("--require-reference", action="store_true",
                    help="fail a directory for which no reference is found")
    args = ap.parse_args(argv)
    if args.reference and len(args.reference) != len(args.dirs):
        ap.error(f"{len(args.reference)} --reference for {len(args.dirs)} directories")
    assert torch.is_grad_enabled()
    failures = 0
    for i, d in enumerate(args.dirs):
        label = d.rstrip("/") or d
        try:
            conf, _, tensors, n = load_dir(d)
            line = f"{label}: PyTorch loaded {n} tensors strictly"
            ref = args.reference[i] if args.reference else find_reference(d)
            if ref is None:
                if args.require_reference:
                    raise AssertionError("no reference.safetensors found")
                # still run the decoder once, to show the model works
                m = T.model_from_config(conf)
                T.load_numpy_state(m, tensors)
                T.translate_ids(m, [conf["bos_id"], 4, 5, conf["eos_id"]])
                print(f"{line}; no reference (greedy decode ran)")
            else:
                check_reference(conf, tensors, ref)
                print(f"{line}; greedy ids match the reference")
        except Exception as e:  # report and go on with the next directory
            failures += 1
            print(f"{label}: FAILED: {type(e).__name__}: {e}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
