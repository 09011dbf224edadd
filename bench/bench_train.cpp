// bench_train: training throughput, our side of bench/train_torch.py (the PyTorch 1.13 baseline): the same two models,
// batches, optimiser settings and thread count, timed the same way, printed as the same JSON.
//   build/bin/bench_train --workload translator|gpt2 [--threads 2] [--steps 10] [--warmup 2] [--max-norm X]
//                         [--malloc keep|system] [--src-lengths 9,12,...] [--tgt-lengths ...]
//                         [--gpt2-layers 12] [--gpt2-heads 12] [--gpt2-embd 768] [--gpt2-vocab 50257]
//                         [--gpt2-positions 1024] [--gpt2-batch 4] [--gpt2-seq 64]
// Workloads (train_torch.py's docstring has the full description; the two must stay in step):
//   translator  Transformer<float> the size of train_torch.py's Seq2SeqTransformer: d_model 128 (--d-model), 4 heads,
//               3 + 3 post-norm layers, d_ff 512, ReLU, vocabularies of 300, max_len 5000, no dropout. 64 pairs
//               (--translator-batch), each source and target BOS, ids from [4, 300), EOS, 8 to 12 tokens, right-padded
//               with pad_id 1. Teacher forcing as the tutorial's train_epoch: the decoder reads tgt[:, :-1] (padding
//               keys masked, causal) and predicts tgt[:, 1:]; cross-entropy, label smoothing 0.1, ignore_index 1.
//               Tokens per step: the targets that are not padding. --src-lengths/--tgt-lengths (full lengths, BOS and
//               EOS counted) take PyTorch's batch (its JSON prints them), so that both sides run the same shapes and
//               count the same tokens; without them the lengths are drawn here from [8, 12].
//   gpt2        GPT2<float>, tied wte, of GPT-2 small's shape by default (124M): --gpt2-layers blocks (n_layer, 12),
//               --gpt2-heads heads (n_head, 12; they must divide n_embd), --gpt2-embd wide (n_embd, 768; the MLP
//               4 * n_embd wide, as GPT-2), a vocabulary of --gpt2-vocab (vocab_size, 50257) and --gpt2-positions
//               rows of wpe (n_positions, 1024; at least --gpt2-seq). HF's init: N(0, 0.02), the residual
//               projections N(0, 0.02 / sqrt(2 * n_layer)). B rows (--gpt2-batch, 4) of T + 1 random ids from
//               [0, vocab_size) (T = --gpt2-seq, 64): inputs ids[:, :-1], targets ids[:, 1:], mean cross-entropy over
//               all B * T positions. Tokens per step: B * T. train_torch.py takes the same options.
// A step, as train_torch.py's: forward and cross_entropy_forward ("forward"); cross_entropy_backward and the model's
// backward ("backward"); the gradient norm when --max-norm is given, then AdamW.step scaling the gradients by the
// clipping coefficient and zeroing them in its one pass over them ("optimizer": the counterpart of torch's
// clip_grad_norm_, optimizer.step() and zero_grad()). AdamW with weight decay on the tensors of
// rank >= 2 only: translator lr 1e-4, betas (0.9, 0.98), eps 1e-9, wd 0.01; GPT-2 lr 3e-4, (0.9, 0.95), 1e-8, 0.1.
// --warmup steps untimed, then --steps timed one by one; steps/s and tokens/s are those of the median step.
// A program, not Google Benchmark: each step is timed with its three phases, the median is what PyTorch's side
// reports, and each workload runs in a process of its own so that ru_maxrss (the peak RSS) is that workload's alone.
// --malloc keep (the default, as train_torch.py's) re-executes the program with glibc's MALLOC_MMAP_THRESHOLD_,
// MALLOC_TRIM_THRESHOLD_ and MALLOC_TOP_PAD_ set as train_torch.py sets them, so that both sides reuse freed memory
// alike; --malloc system keeps glibc's defaults. Threads: set_num_threads(--threads).
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <eigenformer/core/random.hpp>
#include <eigenformer/core/threading.hpp>
#include <eigenformer/io/parameters.hpp>
#include <eigenformer/models/gpt2.hpp>
#include <eigenformer/models/transformer.hpp>
#include <eigenformer/train/adamw.hpp>
#include <eigenformer/train/clip.hpp>
#include <eigenformer/train/cross_entropy.hpp>
#include <eigenformer/train/gradients.hpp>

using namespace eigenformer;
using json = nlohmann::json;

namespace {

// The values train_torch.py's --malloc keep sets (MALLOC_KEEP_ENV there); a value already in the environment wins.
const std::pair<const char*, const char*> kMallocKeep[] = {
    {"MALLOC_MMAP_THRESHOLD_", "17179869184"}, {"MALLOC_TRIM_THRESHOLD_", "17179869184"}, {"MALLOC_TOP_PAD_", "1073741824"}};
const char* const kReexecMark = "EIGENFORMER_BENCH_TRAIN_CHILD";

struct Options {
  std::string workload;
  int threads = 2;
  int steps = 10;
  int warmup = 2;
  Index d_model = 128;
  Index translator_batch = 64;
  Index gpt2_batch = 4;
  Index gpt2_seq = 64;
  Index gpt2_layers = 12, gpt2_heads = 12, gpt2_embd = 768, gpt2_vocab = 50257, gpt2_positions = 1024;  // GPT-2 small
  double max_norm = 0;  // 0: no clipping
  std::uint64_t seed = 1;
  std::string malloc_mode = "keep";
  std::vector<Index> src_lengths, tgt_lengths;
};

double peak_rss_mb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;  // KiB on Linux
}
double rss_mb() {
  std::ifstream statm("/proc/self/statm");
  long pages = 0, resident = 0;
  statm >> pages >> resident;
  return static_cast<double>(resident) * static_cast<double>(sysconf(_SC_PAGESIZE)) / (1 << 20);
}
std::string loadavg() {
  std::ifstream f("/proc/loadavg");
  std::string a, b, c;
  f >> a >> b >> c;
  return a + " " + b + " " + c;
}
double cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}
double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }
double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// What one workload gives the timing loop: a step in three phases and its description.
struct Workload {
  Index parameters = 0;
  Index tokens_per_step = 0;
  json desc;
  std::function<double()> forward;   // forward + loss; returns the loss
  std::function<void()> backward;    // dlogits + the model's backward
  std::function<void()> optimizer;   // clipping (if asked), AdamW, zeroing the gradients
};

// The parts of a step every workload shares; `Model` is Transformer<float> or GPT2<float>.
template <typename Model>
struct Trainer {
  std::unique_ptr<Model> model;
  AdamW<float> adamw;
  double lr;
  double max_norm;
  void optimizer_phase() {
    const double scale = max_norm > 0 ? clip_coefficient(gradient_norm(*model), max_norm) : 1.0;
    adamw.step(*model, lr, AdamWStepOptions{scale, /*zero_grad=*/true});  // clipping, AdamW and zeroing in one pass
  }
};

std::vector<Index> draw_lengths(Random& rng, Index n) {
  std::vector<Index> lengths;
  for (Index i = 0; i < n; ++i) lengths.push_back(static_cast<Index>(rng.integer(8, 13)));  // [8, 12], as torch.randint(8, 13)
  return lengths;
}

// Right-padded [B, L] ids: BOS, random ids from [4, vocab), EOS, then pad (make_batch of make_translator_fixtures.py).
Tensor<std::int64_t> make_batch(const std::vector<Index>& lengths, Index vocab, const TransformerConfig& c, Random& rng) {
  const Index B = static_cast<Index>(lengths.size()), L = *std::max_element(lengths.begin(), lengths.end());
  Tensor<std::int64_t> ids(Shape{B, L}, c.pad_id);
  for (Index b = 0; b < B; ++b) {
    const Index n = lengths[static_cast<std::size_t>(b)];
    ids.at(b, 0) = c.bos_id;
    for (Index t = 1; t + 1 < n; ++t) ids.at(b, t) = rng.integer(4, vocab);
    ids.at(b, n - 1) = c.eos_id;
  }
  return ids;
}

Workload translator_workload(const Options& o) {
  TransformerConfig c;
  c.d_model = o.d_model, c.num_heads = 4, c.num_encoder_layers = 3, c.num_decoder_layers = 3, c.d_ff = 512;
  c.activation = Activation::relu, c.norm_first = false, c.src_vocab_size = 300, c.tgt_vocab_size = 300, c.max_len = 5000;
  auto trainer = std::make_shared<Trainer<Transformer<float>>>(
      Trainer<Transformer<float>>{std::make_unique<Transformer<float>>(c), AdamW<float>(AdamWOptions{1e-4, 0.9, 0.98, 1e-9, 0.01, {}}), 1e-4,
                                  o.max_norm});
  Random rng(o.seed);
  // The tutorial's init: xavier_uniform_ on every matrix; biases and LayerNorms as built (zero, one).
  trainer->model->visit_parameters([&](const std::string&, Tensor<float>& t) {
    if (t.rank() >= 2) {
      const double a = std::sqrt(6.0 / static_cast<double>(t.dim(0) + t.dim(1)));
      fill_uniform(t.view(), rng, -a, a);
    }
  });
  const Index B = o.translator_batch;
  const std::vector<Index> src_lengths = o.src_lengths.empty() ? draw_lengths(rng, B) : o.src_lengths;
  const std::vector<Index> tgt_lengths = o.tgt_lengths.empty() ? draw_lengths(rng, B) : o.tgt_lengths;
  if (static_cast<Index>(src_lengths.size()) != B || static_cast<Index>(tgt_lengths.size()) != B)
    throw RangeError("bench_train: --src-lengths and --tgt-lengths need " + std::to_string(B) + " lengths each (--translator-batch)");
  for (const std::vector<Index>* v : {&src_lengths, &tgt_lengths})
    for (Index n : *v)
      if (n < 2) throw RangeError("bench_train: a length of " + std::to_string(n) + "; every sequence holds BOS and EOS at least");
  const Tensor<std::int64_t> src = make_batch(src_lengths, c.src_vocab_size, c, rng);
  const Tensor<std::int64_t> tgt = make_batch(tgt_lengths, c.tgt_vocab_size, c, rng);
  // Teacher forcing: the decoder reads tgt[:, :-1] and predicts tgt[:, 1:]; the longest target's EOS is only a target.
  const Index T = tgt.dim(1) - 1, V = c.tgt_vocab_size;
  auto tgt_in = std::make_shared<Tensor<std::int64_t>>(Shape{B, T});
  auto targets = std::make_shared<Tensor<std::int64_t>>(Shape{B * T});
  std::vector<Index> in_lengths;
  Index tokens = 0;
  for (Index b = 0; b < B; ++b) {
    for (Index t = 0; t < T; ++t) tgt_in->at(b, t) = tgt.at(b, t), (*targets)[b * T + t] = tgt.at(b, t + 1);
    in_lengths.push_back(std::min<Index>(tgt_lengths[static_cast<std::size_t>(b)], T));
    tokens += tgt_lengths[static_cast<std::size_t>(b)] - 1;
  }
  allocate_gradients(*trainer->model);
  trainer->adamw.initialize(*trainer->model);

  CrossEntropyOptions ce;
  ce.ignore_index = c.pad_id, ce.label_smoothing = 0.1;
  auto saved = std::make_shared<TransformerActivations<float>>();
  auto logits = std::make_shared<Tensor<float>>();
  auto dlogits = std::make_shared<Tensor<float>>();
  auto lse = std::make_shared<std::vector<float>>(static_cast<std::size_t>(B * T));
  auto src_ids = std::make_shared<Tensor<std::int64_t>>(src);

  Workload w;
  w.parameters = count_parameters(*trainer->model);
  w.tokens_per_step = tokens;
  w.forward = [=]() {
    *logits = trainer->model->forward(*src_ids, src_lengths, *tgt_in, in_lengths, *saved);
    return cross_entropy_forward<float>(std::as_const(*logits).matrix(B * T, V), *targets, ce, lse->data());
  };
  w.backward = [=]() {
    dlogits->resize(logits->shape());
    cross_entropy_backward<float>(std::as_const(*logits).matrix(B * T, V), *targets, lse->data(), ce, 1.0f, dlogits->matrix(B * T, V),
                                  Accumulate::no);
    trainer->model->backward(*dlogits, *saved);
  };
  w.optimizer = [=]() { trainer->optimizer_phase(); };
  w.desc = {{"model", "Transformer<float> (the PyTorch translation tutorial's Seq2SeqTransformer shape)"},
            {"d_model", c.d_model}, {"nhead", c.num_heads}, {"num_encoder_layers", c.num_encoder_layers},
            {"num_decoder_layers", c.num_decoder_layers}, {"dim_feedforward", c.d_ff}, {"src_vocab_size", c.src_vocab_size},
            {"tgt_vocab_size", c.tgt_vocab_size}, {"dropout", 0.0}, {"batch", B},
            {"src_shape", {src.dim(1), B}}, {"tgt_shape", {tgt.dim(1), B}},  // PyTorch's [S, B] layout, to compare
            {"src_lengths", src_lengths}, {"tgt_lengths", tgt_lengths},
            {"lengths_from", o.src_lengths.empty() ? "drawn here (seed)" : "given (--src-lengths, --tgt-lengths)"},
            {"src_tokens", std::accumulate(src_lengths.begin(), src_lengths.end(), Index(0))},
            {"tokens_per_step", tokens}, {"tokens_counted", "target tokens (not pad_id) per step"},
            {"optimizer", "AdamW lr 1e-4 betas (0.9, 0.98) eps 1e-9 wd 0.01 on rank >= 2"},
            {"loss", "cross_entropy_forward(ignore_index=1, label_smoothing=0.1)"}};
  return w;
}

// "GPT-2 small" or, for another shape, its numbers: the "model" field of the JSON, as train_torch.py words it.
std::string gpt2_shape_text(const GPT2Config& c) {
  if (c.n_layer == 12 && c.n_head == 12 && c.n_embd == 768 && c.vocab_size == 50257 && c.n_positions == 1024) return "GPT-2 small";
  return "GPT-2 shape: " + std::to_string(c.n_layer) + " layers, " + std::to_string(c.n_head) + " heads, n_embd " +
         std::to_string(c.n_embd) + ", n_inner " + std::to_string(c.d_ff()) + ", vocab " + std::to_string(c.vocab_size) + ", " +
         std::to_string(c.n_positions) + " positions";
}

// The GPT-2 shape the options ask for, or why it is not one; the same checks and words as train_torch.py's.
std::string gpt2_shape_error(const Options& o) {
  const std::pair<Index, const char*> sizes[] = {{o.gpt2_layers, "--gpt2-layers"}, {o.gpt2_heads, "--gpt2-heads"},
                                                 {o.gpt2_embd, "--gpt2-embd"},     {o.gpt2_vocab, "--gpt2-vocab"},
                                                 {o.gpt2_positions, "--gpt2-positions"}, {o.gpt2_batch, "--gpt2-batch"},
                                                 {o.gpt2_seq, "--gpt2-seq"}};
  for (const auto& [v, name] : sizes)
    if (v < 1) return std::string(name) + " is " + std::to_string(v) + "; expected a positive number";
  if (o.gpt2_embd % o.gpt2_heads != 0)
    return "--gpt2-embd " + std::to_string(o.gpt2_embd) + " is not a multiple of --gpt2-heads " + std::to_string(o.gpt2_heads);
  if (o.gpt2_seq > o.gpt2_positions)
    return "--gpt2-seq " + std::to_string(o.gpt2_seq) + " is longer than --gpt2-positions " + std::to_string(o.gpt2_positions);
  return "";
}

Workload gpt2_workload(const Options& o) {
  GPT2Config c;  // GPT-2 small unless the options say otherwise
  c.n_layer = o.gpt2_layers, c.n_head = o.gpt2_heads, c.n_embd = o.gpt2_embd, c.vocab_size = o.gpt2_vocab;
  c.n_positions = o.gpt2_positions;  // n_inner stays 0: 4 * n_embd, as GPT-2
  c.bos_token_id = c.eos_token_id = c.vocab_size - 1;  // GPT-2's 50256 is its last id; unused in training, but checked
  auto trainer = std::make_shared<Trainer<GPT2<float>>>(
      Trainer<GPT2<float>>{std::make_unique<GPT2<float>>(c), AdamW<float>(AdamWOptions{3e-4, 0.9, 0.95, 1e-8, 0.1, {}}), 3e-4, o.max_norm});
  Random rng(o.seed);
  // HF's init: N(0, 0.02) matrices and tables (the residual projections N(0, 0.02 / sqrt(2 L))), zero biases, LayerNorms 1, 0.
  trainer->model->visit_parameters([&](const std::string& name, Tensor<float>& t) {
    if (t.rank() < 2) return;
    const bool residual = name.find("out_proj.weight") != std::string::npos || name.find("linear2.weight") != std::string::npos;
    fill_normal(t.view(), rng, 0.0, residual ? 0.02 / std::sqrt(2.0 * static_cast<double>(c.n_layer)) : 0.02);
  });
  const Index B = o.gpt2_batch, T = o.gpt2_seq, V = c.vocab_size;
  auto ids = std::make_shared<Tensor<std::int64_t>>(Shape{B, T});
  auto targets = std::make_shared<Tensor<std::int64_t>>(Shape{B * T});
  for (Index b = 0; b < B; ++b) {
    std::vector<std::int64_t> row;
    for (Index t = 0; t <= T; ++t) row.push_back(rng.integer(0, V));
    for (Index t = 0; t < T; ++t) ids->at(b, t) = row[static_cast<std::size_t>(t)], (*targets)[b * T + t] = row[static_cast<std::size_t>(t + 1)];
  }
  allocate_gradients(*trainer->model);
  trainer->adamw.initialize(*trainer->model);

  const CrossEntropyOptions ce;  // no smoothing; nothing ignored
  auto saved = std::make_shared<GPT2Activations<float>>();
  auto logits = std::make_shared<Tensor<float>>();
  auto dlogits = std::make_shared<Tensor<float>>();
  auto lse = std::make_shared<std::vector<float>>(static_cast<std::size_t>(B * T));

  Workload w;
  w.parameters = count_parameters(*trainer->model);
  w.tokens_per_step = B * T;
  w.forward = [=]() {
    *logits = trainer->model->forward(*ids, *saved);
    return cross_entropy_forward<float>(std::as_const(*logits).matrix(B * T, V), *targets, ce, lse->data());
  };
  w.backward = [=]() {
    dlogits->resize(logits->shape());
    cross_entropy_backward<float>(std::as_const(*logits).matrix(B * T, V), *targets, lse->data(), ce, 1.0f, dlogits->matrix(B * T, V),
                                  Accumulate::no);
    trainer->model->backward(*dlogits, *saved);
  };
  w.optimizer = [=]() { trainer->optimizer_phase(); };
  w.desc = {{"model", "GPT2<float> (" + gpt2_shape_text(c) + ", tied wte)"}, {"n_layer", c.n_layer}, {"n_head", c.n_head},
            {"n_embd", c.n_embd}, {"n_inner", c.d_ff()}, {"n_positions", c.n_positions}, {"vocab_size", c.vocab_size},
            {"batch", B}, {"seq", T},
            {"tokens_per_step", B * T}, {"tokens_counted", "all input positions (B * T) per step"},
            {"optimizer", "AdamW lr 3e-4 betas (0.9, 0.95) eps 1e-8 wd 0.1 on rank >= 2"},
            {"loss", "cross_entropy_forward over all positions, targets shifted by one"}};
  return w;
}

int run(const Options& o) {
  set_num_threads(o.threads);
  const double rss_before = rss_mb(), peak_before = peak_rss_mb();
  Workload w = o.workload == "translator" ? translator_workload(o) : gpt2_workload(o);
  const double rss_model = rss_mb();
  std::fprintf(stderr, "%s: %lld parameters; %lld tokens per step; RSS %.0f MB before the model, %.0f MB with it, its gradients and "
               "AdamW's moments\n", o.workload.c_str(), static_cast<long long>(w.parameters), static_cast<long long>(w.tokens_per_step),
               rss_before, rss_model);

  std::vector<double> losses, times, fwd, bwd, opt;
  auto step = [&](bool timed) {
    const double t0 = now();
    const double loss = w.forward();
    const double t1 = now();
    w.backward();
    const double t2 = now();
    w.optimizer();
    const double t3 = now();
    losses.push_back(loss);
    if (timed) times.push_back(t3 - t0), fwd.push_back(t1 - t0), bwd.push_back(t2 - t1), opt.push_back(t3 - t2);
    return std::array<double, 4>{t3 - t0, t1 - t0, t2 - t1, t3 - t2};
  };
  const std::string load_start = loadavg();
  for (int i = 0; i < o.warmup; ++i) {
    const auto t = step(false);
    std::fprintf(stderr, "  warm-up step %d: %.3f s, loss %.4f\n", i + 1, t[0], losses.back());
  }
  const double cpu0 = cpu_seconds(), wall0 = now();
  for (int i = 0; i < o.steps; ++i) {
    const auto t = step(true);
    std::fprintf(stderr, "  step %d: %.3f s (forward %.3f, backward %.3f, optimizer %.3f), loss %.4f\n", i + 1, t[0], t[1], t[2], t[3],
                 losses.back());
  }
  const double cpu = cpu_seconds() - cpu0, wall = now() - wall0;
  const double med = median(times), peak = peak_rss_mb();
  const double params_mb = static_cast<double>(w.parameters) * 4 / (1 << 20);
  const double tokens = static_cast<double>(w.tokens_per_step);
  json r = w.desc;
  r["workload"] = o.workload;
  r["implementation"] = "eigenformer";
  r["parameters"] = w.parameters;
  r["dtype"] = "float32";
  r["threads"] = num_threads();
  r["warmup_steps"] = o.warmup;
  r["timed_steps"] = o.steps;
  r["max_norm"] = o.max_norm > 0 ? json(o.max_norm) : json(nullptr);
  r["step_s_median"] = med;
  r["step_s_min"] = *std::min_element(times.begin(), times.end());
  r["step_s_max"] = *std::max_element(times.begin(), times.end());
  r["forward_s_median"] = median(fwd);
  r["backward_s_median"] = median(bwd);
  r["optimizer_s_median"] = median(opt);
  r["steps_per_s"] = 1.0 / med;
  r["tokens_per_s"] = tokens / med;
  r["tokens_per_s_min"] = tokens / r["step_s_max"].get<double>();
  r["tokens_per_s_max"] = tokens / r["step_s_min"].get<double>();
  r["loss_first"] = losses.front();
  r["loss_last"] = losses.back();
  r["rss_mb_before_model"] = rss_before;
  r["rss_mb_with_model_and_optimizer"] = rss_model;
  r["peak_rss_mb_before_model"] = peak_before;
  r["peak_rss_mb"] = peak;
  r["params_mb"] = params_mb;
  r["peak_growth_mb"] = peak - rss_before;
  r["peak_growth_over_params"] = (peak - rss_before) / params_mb;
  r["cpu_utilisation"] = cpu / wall;
  r["loadavg_start"] = load_start;
  r["loadavg_end"] = loadavg();
  r["malloc"] = o.malloc_mode;
  json malloc_env;
  for (const auto& entry : kMallocKeep) {
    const char* v = std::getenv(entry.first);
    malloc_env[entry.first] = v ? json(v) : json(nullptr);
  }
  r["malloc_env"] = malloc_env;
  std::fprintf(stderr, "%s: median step %.3f s (medians: forward + loss %.3f, backward %.3f, optimizer %.3f) -> %.2f steps/s, %.1f tokens/s; "
               "peak RSS %.0f MB, %.0f MB over the RSS before the model = %.1f x the parameters' %.0f MB; CPU %.2f of %d threads; load %s -> %s\n",
               o.workload.c_str(), med, median(fwd), median(bwd), median(opt), 1.0 / med, tokens / med, peak, peak - rss_before,
               (peak - rss_before) / params_mb, params_mb, cpu / wall, num_threads(), load_start.c_str(), loadavg().c_str());
  std::cout << r.dump() << std::endl;
  return 0;
}

// --malloc keep: glibc reads these variables when the process starts, so set them and start again. They are the very
// values train_torch.py sets (mallopt takes an int, so it could not give the same 16 GiB thresholds).
void reexec_for_malloc(const Options& o, char** argv) {
  if (o.malloc_mode != "keep" || std::getenv(kReexecMark)) return;
  for (const auto& [name, value] : kMallocKeep) setenv(name, value, /*overwrite=*/0);
  setenv(kReexecMark, "1", 1);
  execv("/proc/self/exe", argv);
  std::perror("bench_train: execv /proc/self/exe");  // only reached on failure
  std::exit(1);
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"Training throughput of Eigenformer, the counterpart of bench/train_torch.py (one workload per process)"};
  app.add_option("--workload", o.workload, "translator or gpt2")->required()->check(CLI::IsMember({"translator", "gpt2"}));
  app.add_option("--threads", o.threads, "set_num_threads (default 2)")->check(CLI::PositiveNumber);
  app.add_option("--steps", o.steps, "timed steps (default 10)")->check(CLI::PositiveNumber);
  app.add_option("--warmup", o.warmup, "untimed steps first (default 2)")->check(CLI::NonNegativeNumber);
  app.add_option("--d-model", o.d_model, "translator d_model (default 128)")->check(CLI::PositiveNumber);
  app.add_option("--translator-batch", o.translator_batch, "sentence pairs (default 64)")->check(CLI::PositiveNumber);
  // The GPT-2 shape and batch are checked below (gpt2_shape_error), with one-line messages as train_torch.py's.
  app.add_option("--gpt2-batch", o.gpt2_batch, "GPT-2 rows (default 4)");
  app.add_option("--gpt2-seq", o.gpt2_seq, "GPT-2 tokens per row (default 64; at most --gpt2-positions)");
  app.add_option("--gpt2-layers", o.gpt2_layers, "GPT-2 blocks, n_layer (default 12)");
  app.add_option("--gpt2-heads", o.gpt2_heads, "GPT-2 attention heads, n_head (default 12; must divide --gpt2-embd)");
  app.add_option("--gpt2-embd", o.gpt2_embd, "GPT-2 width, n_embd (default 768; the MLP is 4 * n_embd)");
  app.add_option("--gpt2-vocab", o.gpt2_vocab, "GPT-2 vocabulary, vocab_size (default 50257)");
  app.add_option("--gpt2-positions", o.gpt2_positions, "GPT-2 context, n_positions: rows of wpe (default 1024; >= --gpt2-seq)");
  app.add_option("--max-norm", o.max_norm, "clip_gradient_norm to this before each AdamW step (default: no clipping)")
      ->check(CLI::PositiveNumber);
  app.add_option("--seed", o.seed, "weights and batch (default 1)");
  app.add_option("--malloc", o.malloc_mode, "keep (default): glibc reuses freed memory, as train_torch.py sets it; system: glibc's defaults")
      ->check(CLI::IsMember({"keep", "system"}));
  app.add_option("--src-lengths", o.src_lengths, "translator: each source's length, BOS and EOS counted (PyTorch's batch)")->delimiter(',');
  app.add_option("--tgt-lengths", o.tgt_lengths, "translator: each target's length, BOS and EOS counted")->delimiter(',');
  CLI11_PARSE(app, argc, argv);
  if (o.src_lengths.empty() != o.tgt_lengths.empty()) {
    std::cerr << "bench_train: give both --src-lengths and --tgt-lengths, or neither\n";
    return 2;
  }
  if (const std::string error = gpt2_shape_error(o); !error.empty()) {
    std::cerr << "bench_train: " << error << "\n";
    return 2;
  }
  reexec_for_malloc(o, argv);
  try {
    return run(o);
  } catch (const std::exception& e) {
    std::cerr << "bench_train: " << e.what() << "\n";
    return 1;
  }
}
