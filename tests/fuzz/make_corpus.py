#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets into tests/fuzz/corpus/<target>/ (Python 3 standard library only).

Each target gets small valid inputs, taken from the real fixtures where they are small, and broken ones, one per kind
of damage the target must refuse (truncated, huge lengths, overlapping offsets, bad dtypes, overflowing shapes,
invalid UTF-8, ...). The files are committed; run this again after changing it, from the repository's root:

    python3 tests/fuzz/make_corpus.py          # needs .deps/gpt2 (./setup.sh) for the slice of the real vocabulary

It replaces the whole corpus directory of each target, so a corpus grown by fuzzing is never committed by accident.

    python3 tests/fuzz/make_corpus.py --large TARGET DIR

writes TARGET's large seeds (megabytes, generated, never committed) into DIR instead; tools/fuzz.sh does this for
each run.
"""
import json
import os
import random
import shutil
import struct
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORPUS = os.path.join(ROOT, "tests", "fuzz", "corpus")
FIXTURES = os.path.join(ROOT, "tests", "fixtures")
GPT2_DIR = os.path.join(ROOT, ".deps", "gpt2")


def target(name):
    d = os.path.join(CORPUS, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)

    def write(file_name, data):
        if isinstance(data, str):
            data = data.encode("utf-8")
        with open(os.path.join(d, file_name), "wb") as f:
            f.write(data)

    return write


def read(path):
    with open(path, "rb") as f:
        return f.read()


# --- safetensors ---------------------------------------------------------------------------------------------------

def safetensors(header, data=b"", length=None):
    """header: a dict (dumped compactly) or raw bytes; length: the 8-byte header length, if not the true one."""
    text = header if isinstance(header, bytes) else json.dumps(header, separators=(",", ":")).encode()
    return struct.pack("<Q", len(text) if length is None else length) + text + data


def entry(dtype, shape, begin, end):
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


def safetensors_corpus():
    write = target("safetensors")
    f32 = struct.pack("<6f", 1, 2, 3, 4, 5, 6)
    i64 = struct.pack("<2q", -7, 9)
    valid = safetensors({"__metadata__": {"format": "pt"}, "a.weight": entry("F32", [2, 3], 0, 24), "b": entry("I64", [2], 24, 40)}, f32 + i64)
    write("valid_f32_i64_metadata.safetensors", valid)
    write("valid_tiny_block.safetensors",
          safetensors({"a.weight": entry("F32", [2, 3], 0, 24), "b": entry("F32", [4], 24, 40)}, f32 + struct.pack("<4f", 7, 8, 9, 10)))
    write("valid_empty.safetensors", safetensors({}))
    write("valid_scalar_and_zero_size.safetensors",
          safetensors({"s": entry("F64", [], 0, 8), "z": entry("F32", [0, 3], 8, 8)}, struct.pack("<d", 2.5)))
    every = {}
    data = b""
    for dtype, size in [("F64", 8), ("F32", 4), ("F16", 2), ("BF16", 2), ("I64", 8), ("I32", 4), ("I16", 2), ("I8", 1), ("U8", 1), ("BOOL", 1)]:
        every[dtype.lower()] = entry(dtype, [2], len(data), len(data) + 2 * size)
        data += bytes(range(1, 2 * size + 1))
    write("valid_every_dtype.safetensors", safetensors(every, data))
    write("valid_fraction_for_int.safetensors", safetensors({"x": entry("F64", [2], 0, 16)}, struct.pack("<2d", 2.5, float("nan"))))
    write("valid_bool_two.safetensors", safetensors({"x": entry("BOOL", [3], 0, 3)}, b"\x00\x01\x02"))
    write("valid_header_padded.safetensors", safetensors(b'{"x":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}' + b" " * 3, b"\x05"))
    write("fixture_linear.safetensors", read(os.path.join(FIXTURES, "linear.safetensors")))

    write("broken_empty_file.safetensors", b"")
    write("broken_seven_bytes.safetensors", b"\x10\x00\x00\x00\x00\x00\x00")
    write("broken_truncated_data.safetensors", valid[:-5])
    write("broken_truncated_header.safetensors", valid[:20])
    write("broken_header_length_huge.safetensors", safetensors({}, length=2**63 + 5))
    write("broken_header_length_past_end.safetensors", safetensors({}, length=4096))
    write("broken_header_length_over_limit.safetensors", safetensors({}, length=100000001))
    write("broken_header_not_object.safetensors", safetensors([1, 2, 3]))
    write("broken_header_not_json.safetensors", safetensors(b"{\"a\": "))
    write("broken_header_invalid_utf8.safetensors", safetensors(b'{"\xff\xfe":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', b"\x01"))
    write("broken_header_number_overflow.safetensors", safetensors(b'{"x":{"dtype":"U8","shape":[1e999],"data_offsets":[0,1]}}', b"\x01"))
    write("broken_duplicate_name.safetensors",
          safetensors(b'{"x":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"x":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}', b"\x01\x02"))
    write("broken_overlap.safetensors", safetensors({"a": entry("F32", [2], 0, 8), "b": entry("F32", [2], 4, 12)}, bytes(12)))
    write("broken_gap.safetensors", safetensors({"a": entry("F32", [1], 0, 4), "b": entry("F32", [1], 8, 12)}, bytes(12)))
    write("broken_trailing_bytes.safetensors", safetensors({"a": entry("F32", [1], 0, 4)}, bytes(9)))
    write("broken_offsets_reversed.safetensors", safetensors({"a": entry("F32", [1], 4, 0)}, bytes(4)))
    write("broken_offsets_past_end.safetensors", safetensors({"a": entry("F32", [1024], 0, 4096)}, bytes(16)))
    write("broken_offsets_size_mismatch.safetensors", safetensors({"a": entry("F32", [3], 0, 8)}, bytes(8)))
    write("broken_offsets_missing.safetensors", safetensors({"a": {"dtype": "F32", "shape": [1]}}, bytes(4)))
    write("broken_offsets_not_numbers.safetensors", safetensors({"a": {"dtype": "F32", "shape": [1], "data_offsets": ["0", 4]}}, bytes(4)))
    write("broken_dtype_unknown.safetensors", safetensors({"a": entry("F8_E4M3", [4], 0, 4)}, bytes(4)))
    write("broken_dtype_number.safetensors", safetensors({"a": {"dtype": 32, "shape": [1], "data_offsets": [0, 4]}}, bytes(4)))
    write("broken_shape_overflow.safetensors", safetensors({"a": entry("F32", [2**32, 2**32, 2**32], 0, 4)}, bytes(4)))
    write("broken_shape_bytes_overflow.safetensors", safetensors({"a": entry("F64", [2**31, 2**31], 0, 8)}, bytes(8)))
    write("broken_shape_negative.safetensors", safetensors({"a": entry("F32", [-1, 4], 0, 4)}, bytes(4)))
    write("broken_shape_fraction.safetensors", safetensors({"a": entry("F32", [1.5], 0, 4)}, bytes(4)))
    write("broken_shape_rank_5.safetensors", safetensors({"a": entry("U8", [1, 1, 1, 1, 1], 0, 1)}, bytes(1)))
    write("broken_shape_nested.safetensors", safetensors(b'{"a":{"dtype":"U8","shape":' + b"[" * 200 + b"]" * 200 + b',"data_offsets":[0,1]}}', bytes(1)))
    write("broken_entry_not_object.safetensors", safetensors({"a": [1, 2]}))
    write("broken_metadata_not_strings.safetensors", safetensors({"__metadata__": {"epoch": 3}}))
    write("broken_metadata_not_object.safetensors", safetensors({"__metadata__": "pt"}))


# --- config.json -------------------------------------------------------------------------------------------------

def config_corpus(name, fixtures, edits):
    """fixtures: config.json paths (valid seeds); edits: {file name: function(config dict) -> dict, bytes or str}."""
    write = target(name)
    for path in fixtures:
        write("valid_" + os.path.basename(os.path.dirname(path)) + "_" + os.path.basename(path), read(path))
    base = json.loads(read(fixtures[0]))
    for file_name, edit in edits.items():
        out = edit(dict(base))
        write(file_name, out if isinstance(out, (bytes, str)) else json.dumps(out, indent=1))


def with_field(key, value):
    def edit(c):
        c[key] = value
        return c
    return edit


def without(key):
    def edit(c):
        del c[key]
        return c
    return edit


def common_config_edits(int_field):
    return {
        "broken_not_json.json": lambda c: json.dumps(c)[:-7],
        "broken_not_object.json": lambda c: "[1, 2, 3]",
        "broken_number_overflow.json": lambda c: json.dumps(c).replace(f'"{int_field}": ', f'"{int_field}": 1e999, "x": ', 1),
        "broken_repeated_field.json": lambda c: "{" + f'"{int_field}": 1, ' + json.dumps(c)[1:],
        "broken_missing_field.json": without(int_field),
        "broken_string_field.json": with_field(int_field, "16"),
        "broken_fraction_field.json": with_field(int_field, 12.5),
        "broken_negative_field.json": with_field(int_field, -4),
        "broken_zero_field.json": with_field(int_field, 0),
        "broken_huge_field.json": with_field(int_field, 2**62),
        "broken_unsigned_field.json": with_field(int_field, 2**64 - 1),
        "broken_nested_field.json": lambda c: json.dumps(c).replace(f'"{int_field}": ', f'"{int_field}": ' + "[" * 100 + "]" * 100 + ', "y": ', 1),
        "broken_invalid_utf8.json": lambda c: json.dumps(c).encode()[:-1] + b', "\xc3\x28": 1}',
    }


def gpt2_config_corpus():
    small = os.path.join(FIXTURES, "gpt2", "gpt2_small_config.json")
    fixtures = [small] + [os.path.join(FIXTURES, "gpt2", f"gpt2_{s}_config.json") for s in ("medium", "large", "xl")]
    fixtures += [os.path.join(FIXTURES, "gpt2", d, "config.json") for d in ("one_layer_one_head", "odd_shape", "tiny_f32_hub")]
    edits = common_config_edits("n_embd")
    edits.update({
        "broken_head_not_divisor.json": with_field("n_head", 7),
        "broken_layers_absurd.json": with_field("n_layer", 10**15),
        "broken_embd_overflow.json": with_field("n_embd", 2**40),
        "broken_vocab_overflow.json": lambda c: dict(c, vocab_size=2**40, n_embd=2**30, n_head=1),
        "broken_inner_negative.json": with_field("n_inner", -1),
        "valid_inner_null.json": with_field("n_inner", None),
        "broken_activation_unknown.json": with_field("activation_function", "swish"),
        "broken_activation_number.json": with_field("activation_function", 3),
        "broken_eos_outside_vocab.json": with_field("eos_token_id", 50257),
        "broken_epsilon_nan_string.json": with_field("layer_norm_epsilon", "nan"),
        "broken_epsilon_negative.json": with_field("layer_norm_epsilon", -1e-5),
    })
    config_corpus("gpt2_config", fixtures, edits)


def translator_config_corpus():
    dirs = ("post_gelu_odd", "post_relu_3layers", "pre_gelu_1layer", "pre_relu_2layers")
    fixtures = [os.path.join(FIXTURES, "translator", d, "config.json") for d in dirs]
    edits = common_config_edits("d_model")
    edits.update({
        "broken_head_not_divisor.json": with_field("nhead", 3),
        "broken_layers_absurd.json": with_field("num_decoder_layers", 10**15),
        "broken_max_len_overflow.json": with_field("max_len", 2**61),
        "broken_activation_tanh.json": with_field("activation", "gelu_tanh"),
        "broken_norm_first_number.json": with_field("norm_first", 0),
        "broken_bos_outside_vocab.json": with_field("bos_id", 1000),
        "broken_eps_string.json": with_field("layer_norm_eps", "1e-5"),
        "valid_tied.json": with_field("tie_target_embedding", True),
        "broken_tied_number.json": with_field("tie_target_embedding", 1),
    })
    config_corpus("translator_config", fixtures, edits)


# --- vocab.json + merges.txt ---------------------------------------------------------------------------------------

def byte_char(b):
    """encoder.py's bytes_to_unicode()."""
    if 0x21 <= b <= 0x7E or 0xA1 <= b <= 0xAC or b >= 0xAE:
        return chr(b)
    if b <= 0x20:
        return chr(0x100 + b)
    if b <= 0xA0:
        return chr(0x100 + 33 + (b - 0x7F))
    return chr(0x100 + 33 + 34)


def spelled(text):
    return "".join(byte_char(b) for b in text.encode("utf-8"))


def tokenizer_input(vocab, merges):
    """One fuzz input: vocab.json, a NUL byte, merges.txt."""
    v = vocab if isinstance(vocab, bytes) else json.dumps(vocab, ensure_ascii=False).encode("utf-8")
    m = merges if isinstance(merges, bytes) else merges.encode("utf-8")
    return v + b"\0" + m


def mini_tokenizer(merge_pairs):
    """256 byte tokens, the merges of merge_pairs (spelled pairs), then <|endoftext|>."""
    vocab = {byte_char(b): b for b in range(256)}
    lines = ["#version: 0.2"]
    for left, right in merge_pairs:
        if left + right not in vocab:
            vocab[left + right] = len(vocab)
        lines.append(f"{left} {right}")
    vocab["<|endoftext|>"] = len(vocab)
    return vocab, "\n".join(lines) + "\n"


def tokenizer_files_corpus():
    write = target("tokenizer_files")
    pairs = [("h", "e"), ("l", "l"), ("he", "ll"), ("hell", "o"), (spelled(" "), "w"), ("o", "r"), (spelled(" w"), "or"), ("l", "d"),
             (spelled(" wor"), "ld"), ("'", "s"), (spelled(" "), spelled(" "))]
    vocab, merges = mini_tokenizer(pairs)
    write("valid_mini.bin", tokenizer_input(vocab, merges))
    write("valid_no_merges.bin", tokenizer_input(mini_tokenizer([])[0], "#version: 0.2\n"))
    write("valid_crlf.bin", tokenizer_input(vocab, merges.replace("\n", "\r\n")))
    write("valid_no_final_newline.bin", tokenizer_input(vocab, merges.rstrip("\n")))
    write("valid_vocab_only.bin", json.dumps(mini_tokenizer([])[0], ensure_ascii=False).encode("utf-8"))

    # A slice of the real GPT-2 files: the 256 byte tokens (ids 0..255 there too), the first merges, <|endoftext|>.
    real_vocab_path, real_merges_path = os.path.join(GPT2_DIR, "vocab.json"), os.path.join(GPT2_DIR, "merges.txt")
    if os.path.exists(real_vocab_path) and os.path.exists(real_merges_path):
        real = json.loads(read(real_vocab_path))
        first = [line for line in read(real_merges_path).decode("utf-8").split("\n")[1:] if line][:300]
        slice_vocab = {t: i for t, i in real.items() if i < 256}
        for line in first:
            left, right = line.split(" ")
            slice_vocab.setdefault(left + right, len(slice_vocab))
        slice_vocab["<|endoftext|>"] = len(slice_vocab)
        write("valid_gpt2_slice.bin", tokenizer_input(slice_vocab, "#version: 0.2\n" + "\n".join(first) + "\n"))

    def edited_vocab(edit):
        v = dict(vocab)
        edit(v)
        return tokenizer_input(v, merges)

    write("broken_vocab_not_json.bin", tokenizer_input(json.dumps(vocab, ensure_ascii=False).encode("utf-8")[:-9], merges))
    write("broken_vocab_not_object.bin", tokenizer_input(b'["a", "b"]', merges))
    write("broken_vocab_number_overflow.bin", tokenizer_input(b'{"a": 1e999}', merges))
    write("broken_vocab_nested_id.bin", tokenizer_input(b'{"a": ' + b"[" * 100 + b"]" * 100 + b"}", merges))
    write("broken_vocab_duplicate_token.bin",
          tokenizer_input(json.dumps(vocab, ensure_ascii=False).encode("utf-8")[:-1] + b', "he": 999}', merges))
    write("broken_vocab_duplicate_id.bin", edited_vocab(lambda v: v.__setitem__("he", 0)))
    write("broken_vocab_id_out_of_range.bin", edited_vocab(lambda v: v.__setitem__("he", 10**6)))
    write("broken_vocab_id_negative.bin", edited_vocab(lambda v: v.__setitem__("he", -1)))
    write("broken_vocab_id_string.bin", edited_vocab(lambda v: v.__setitem__("he", "5")))
    write("broken_vocab_empty_token.bin", edited_vocab(lambda v: v.__setitem__("", v.pop("he"))))
    write("broken_vocab_not_byte_alphabet.bin", edited_vocab(lambda v: v.__setitem__("h\u4e2d", v.pop("he"))))
    write("broken_vocab_missing_byte.bin", edited_vocab(lambda v: v.__setitem__("he" + "x", v.pop("a"))))
    write("broken_vocab_missing_eos.bin", edited_vocab(lambda v: v.__setitem__("<|end|>", v.pop("<|endoftext|>"))))
    write("broken_vocab_invalid_utf8.bin", tokenizer_input(b'{"\xc3\x28": 0}', merges))
    write("broken_merges_no_header.bin", tokenizer_input(vocab, merges.split("\n", 1)[1]))
    write("broken_merges_empty.bin", tokenizer_input(vocab, b""))
    write("broken_merges_empty_line.bin", tokenizer_input(vocab, merges.replace("\n", "\n\n", 3)))
    write("broken_merges_three_tokens.bin", tokenizer_input(vocab, merges + "h e l\n"))
    write("broken_merges_two_spaces.bin", tokenizer_input(vocab, merges + "h  e\n"))
    write("broken_merges_unknown_token.bin", tokenizer_input(vocab, merges + "h zz\n"))
    write("broken_merges_result_not_in_vocab.bin", tokenizer_input(vocab, merges + "x y\n"))
    write("broken_merges_repeated.bin", tokenizer_input(vocab, merges + "h e\n"))
    write("broken_merges_nul_and_invalid_utf8.bin", tokenizer_input(vocab, merges.encode() + b"\xff \x00\n"))


# --- BPE encode, decode --------------------------------------------------------------------------------------------

def bpe_encode_corpus():
    write = target("bpe_encode")
    cases = json.loads(read(os.path.join(FIXTURES, "tokenizer", "cases.json")))
    texts = [c["text"] for c in cases["cases"] if 0 < len(c["text"].encode("utf-8")) <= 200]
    for i, text in enumerate(texts[::30]):  # about a hundred, spread over the kinds of case
        write(f"valid_case_{i:03d}.txt", text)
    for name, text in [("valid_endoftext.txt", "a <|endoftext|> b<|endoftext|><|endoftext|>"),
                       ("valid_contractions.txt", "it's they're we've I'm you'll he'd 'S 'T"),
                       ("valid_whitespace_runs.txt", "a  b   c\t\t\n\n\r\n  \u3000\u00a0x   "),
                       ("valid_emoji_and_marks.txt", "\U0001F600\U0001F468\u200d\U0001F469 e\u0301 \u0915\u094d\u0937"),
                       ("valid_digits.txt", "123 4567 \u0661\u0662 \u00bd 2024-01-01"),
                       ("valid_long_word.txt", "x" * 300 + " " + "ab" * 150)]:
        write(name, text)
    write("valid_nul_and_controls.txt", b"a\x00b\x01\x1f\x7f c")
    for name, data in [("broken_lone_continuation.txt", b"ab\x80cd"), ("broken_ff.txt", b"\xff"), ("broken_overlong.txt", b"\xc0\xaf"),
                       ("broken_surrogate.txt", b"\xed\xa0\x80"), ("broken_above_max.txt", b"\xf4\x90\x80\x80"),
                       ("broken_truncated_at_end.txt", b"caf\xc3"), ("broken_in_endoftext.txt", b"<|endof\xfftext|>")]:
        write(name, data)


def decode_corpus():
    write = target("decode")
    cases = json.loads(read(os.path.join(FIXTURES, "tokenizer", "cases.json")))

    def narrow(ids):
        return b"\x00" + b"".join(struct.pack("<H", i) for i in ids)

    def wide(ids):
        return b"\x01" + b"".join(struct.pack("<q", i) for i in ids)

    with_ids = [c for c in cases["cases"] if 0 < len(c["ids"]) <= 64]
    for i, c in enumerate(with_ids[::60]):
        write(f"valid_case_{i:03d}.bin", narrow(c["ids"]))
    for i, c in enumerate(cases["decode_cases"][:20]):
        write(f"valid_decode_case_{i:03d}.bin", narrow(c["ids"]))
    write("valid_wide.bin", wide([15496, 11, 995, 0, 50256]))
    write("valid_empty_narrow.bin", b"\x00")
    write("broken_narrow_past_vocab.bin", narrow([15496, 50257, 65535]))
    write("broken_wide_negative.bin", wide([-1, 5]))
    write("broken_wide_extremes.bin", wide([-(2**63), 2**63 - 1, 2**32, 50257]))
    write("broken_odd_length.bin", narrow([5, 6]) + b"\x07")


# --- command lines -------------------------------------------------------------------------------------------------

def argv(*args):
    return "\0".join(args).encode("utf-8")


def gpt2_cli_corpus():
    write = target("gpt2_cli")
    m = ("--model", "DIR")
    for name, args in [
        ("valid_prompt", m + ("--prompt", "Hello, my name is", "--max-new-tokens", "40", "--temperature", "0.8", "--top-k", "40", "--seed", "1")),
        ("valid_greedy", m + ("--prompt", "Hi", "--temperature", "0")),
        ("valid_prompt_ids", m + ("--prompt-ids", "15496 11 616 1438 318", "--output-ids")),
        ("valid_tokenize_file", m + ("--tokenize-file", "notes.txt")),
        ("valid_sampling", m + ("--prompt", "x", "--top-p", "0.9", "--repetition-penalty", "1.2", "--threads", "2")),
        ("valid_memory_budget", m + ("--prompt-ids", "5", "--memory-budget", "1.5GiB")),
        ("valid_equals_form", ("--model=DIR", "--prompt-ids=5 6 7", "--max-new-tokens=3", "--memory-budget=512M")),
        ("valid_init_random", ("--init-random", "out", "--tokenizer-dir", ".deps/gpt2", "--n-layer", "1", "--n-head", "2", "--n-embd", "32")),
        ("valid_help", ("--help",)),
        ("broken_two_prompts", m + ("--prompt", "hi", "--prompt-ids", "5")),
        ("broken_no_model", ("--prompt", "hi")),
        ("broken_negative_temperature", m + ("--prompt-ids", "5", "--temperature", "-1")),
        ("broken_top_p_above_one", m + ("--prompt-ids", "5", "--top-p", "1.5")),
        ("broken_max_new_tokens_huge", m + ("--prompt-ids", "5", "--max-new-tokens", "99999999999999999999")),
        ("broken_seed_negative", m + ("--prompt-ids", "5", "--seed", "-1")),
        ("broken_threads_zero", m + ("--prompt-ids", "5", "--threads", "0")),
        ("broken_memory_budget_unit", m + ("--prompt-ids", "5", "--memory-budget", "12Q")),
        ("broken_memory_budget_huge", m + ("--prompt-ids", "5", "--memory-budget", "99999999999T")),
        ("broken_memory_budget_empty", m + ("--prompt-ids", "5", "--memory-budget", "")),
        ("broken_prompt_ids_not_ids", m + ("--prompt-ids", "5 x -3 99999999999999999999 50257")),
        ("broken_unknown_option", m + ("--prompt-ids", "5", "--beam", "4")),
        ("broken_missing_value", m + ("--prompt-ids",)),
        ("broken_init_random_without_tokenizer", ("--init-random", "out")),
        ("broken_n_embd_too_wide", ("--init-random", "out", "--tokenizer-dir", "t", "--n-embd", "100000")),
    ]:
        write(name + ".args", argv(*args))


def translator_cli_corpus():
    write = target("translator_cli")
    t = ("translate", "--model", "DIR")
    for name, args in [
        ("valid_two_sources", t + ("--src-ids", "5 9 23 7", "--src-ids", "4 4 4")),
        ("valid_stdin", t),
        ("valid_options", t + ("--src-ids", "5", "--max-new-tokens", "2", "--threads", "1", "--batch-size", "8", "--memory-budget", "64M")),
        ("valid_resave", ("resave", "--model", "DIR", "--output", "OUT")),
        ("valid_help", ("translate", "--help")),
        ("broken_no_subcommand", ("--model", "DIR")),
        ("broken_two_subcommands", t + ("resave", "--model", "DIR", "--output", "OUT")),
        ("broken_not_an_id", t + ("--src-ids", "5 x 7")),
        ("broken_id_out_of_vocabulary", t + ("--src-ids", "5 99 -1")),
        ("broken_source_too_long", t + ("--src-ids", " ".join(["4"] * 63))),
        ("broken_zero_tokens", t + ("--src-ids", "5", "--max-new-tokens", "0")),
        ("broken_batch_size_huge", t + ("--batch-size", "1000000")),
        ("broken_memory_budget", t + ("--memory-budget", "lots")),
        ("broken_resave_without_output", ("resave", "--model", "DIR")),
        ("broken_model_missing_value", ("translate", "--model")),
        ("valid_make_corpus", ("make-corpus", "--output", "OUT", "--seed", "7", "--train", "100", "--test", "10", "--force")),
        ("broken_make_corpus_without_output", ("make-corpus", "--seed", "1")),
        ("broken_make_corpus_seed", ("make-corpus", "--output", "OUT", "--seed", "-1")),
        ("broken_make_corpus_train_zero", ("make-corpus", "--output", "OUT", "--train", "0")),
    ]:
        write(name + ".args", argv(*args))


# --- large seeds, written at run time ------------------------------------------------------------------------------

def large_seeds(name, directory):
    """Inputs of realistic size for one target, a megabyte or so for the JSON readers, written into `directory`.
    tools/fuzz.sh runs the target once over them, under its time limits, before fuzzing (they are generated, never
    committed). Each one is valid, so that it goes deep into the reader. Returns how many were written."""
    written = []

    def write(file_name, data):
        data = data.encode("utf-8") if isinstance(data, str) else data
        with open(os.path.join(directory, "large_" + file_name), "wb") as f:
            f.write(data)
        written.append(file_name)

    rng = random.Random(13)
    if name == "safetensors":
        # 15,000 one-byte tensors (a header of 1 MB; GPT-2 small has about 150 tensors, a 70B Llama 723 in all).
        n = 15000
        write("many_tensors.safetensors", safetensors({f"h.{i}.w": entry("U8", [1], i, i + 1) for i in range(n)}, bytes(n)))
        write("long_metadata.safetensors", safetensors({"__metadata__": {"notes": "x" * 1000000}, "a": entry("F32", [1], 0, 4)}, bytes(4)))
    elif name in ("gpt2_config", "translator_config"):
        # A config with label maps of 20,000 classes, about 1 MB (Hugging Face's largest configs are such maps).
        fixture = (os.path.join(FIXTURES, "gpt2", "gpt2_small_config.json") if name == "gpt2_config"
                   else os.path.join(FIXTURES, "translator", "pre_gelu_1layer", "config.json"))
        config = json.loads(read(fixture))
        config["id2label"] = {str(i): f"LABEL_{i}" for i in range(20000)}
        config["label2id"] = {f"LABEL_{i}": i for i in range(20000)}
        write("label_maps.json", json.dumps(config, indent=1))
    elif name == "tokenizer_files":
        vocab_path, merges_path = os.path.join(GPT2_DIR, "vocab.json"), os.path.join(GPT2_DIR, "merges.txt")
        if os.path.exists(vocab_path) and os.path.exists(merges_path):  # the real files, 1.5 MB
            write("gpt2.bin", read(vocab_path) + b"\0" + read(merges_path))
    elif name == "bpe_encode":
        # Words over the 16 KiB that bpe_piece takes (longer ones go to bpe_long_piece), and 16 KB of prose.
        n = 20000
        write("word_one_letter.txt", "a" * n)
        write("word_letters.txt", "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(n)))
        write("word_cjk.txt", "".join(chr(0x4E00 + rng.randrange(0x5000)) for _ in range(n // 3)))
        write("word_digits.txt", "".join(rng.choice("0123456789") for _ in range(n)))
        write("spaces.txt", "x" + " " * n)
        words = ["the", "tokenizer", "of", "GPT-2,", "it's", "caf\u00e9", "\u4e2d\u6587", "2024", "\n\n", "\U0001F600"]
        write("prose.txt", " ".join(rng.choice(words) for _ in range(3000)))
    elif name == "decode":
        write("many_ids.bin", b"\x00" + b"".join(struct.pack("<H", rng.randrange(50257)) for _ in range(30000)))
    return len(written)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--large":
        print(large_seeds(sys.argv[2], sys.argv[3]))
        sys.exit(0)
    safetensors_corpus()
    gpt2_config_corpus()
    translator_config_corpus()
    tokenizer_files_corpus()
    bpe_encode_corpus()
    decode_corpus()
    gpt2_cli_corpus()
    translator_cli_corpus()
    for name in sorted(os.listdir(CORPUS)):
        files = os.listdir(os.path.join(CORPUS, name))
        size = sum(os.path.getsize(os.path.join(CORPUS, name, f)) for f in files)
        print(f"{name}: {len(files)} files, {size} bytes")
