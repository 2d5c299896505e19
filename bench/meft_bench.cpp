// SPDX-License-Identifier: GPL-3.0-or-later
// meft-bench — time full training steps of the engine on a backend (CPU reference, or CUDA when
// the plugin and a GPU are there), the same work the trainer does per optimizer step (one
// micro-batch): zero_grads; forward_backward with loss_scale 1/B; clip_grad_norm(1.0);
// AdamW.step. Each --method is applied as a model edit (its own trainable parameters); the
// default is full fine-tuning. Prints a markdown table that lines up with
// bench/torch_gpu_step.py (same presets, shapes, methods and columns).
//
//   meft-bench [--backend cpu|cuda|auto] [--config PRESET:BATCH:SEQ[,...]]... [--method NAME[,...]]...
//              [--arch bert|roberta|bart|opt] [--steps N] [--warmup N] [--dtype float32|float64]
//              [--gemm-precision float32|bf16|tf32[,...]] [--threads N] [--no-phases] [--ops]
//
// Methods: the engine's names (full, bitfit, lora, houlsby, pfeiffer, parallel, prefix, ia3,
// meft1, meft2, meft3) at their defaults, "checkpointing" (full fine-tuning with gradient
// checkpointing) and NAME+checkpointing (that method with gradient checkpointing).
//
// BERT, RoBERTa and BART train a 2-label classification head, OPT its causal LM head on every token.
// Columns, one row per (config, method, attention, GEMM precision): trainable and total parameter counts; ms/step is the
// mean over the timed steps (on a device backend the clock is read after synchronize());
// tokens/s counts padded tokens (B*T); activation MiB is the step's peak over the activation
// arenas (saved activations + backward's gradient buffers + temporaries + recomputed tapes, as
// `meft plan` reports it); total MiB adds the resident arenas (weights, gradients, AdamW state)
// to that peak; device used MiB (only when the backend reports device memory) is the device's
// total minus free bytes after the last timed step (CUDA context and allocator caches included).
// The phase columns split the step: forward is timed in one extra forward(train) call on the
// same batch, backward is the mean forward_backward time minus that, and update is
// zero_grads + clip_grad_norm + AdamW.step, timed inside every timed step.
// CPU backend: GEMM share is the thread time inside GEMM calls (cpu_gemm_stats()) over the pool's
// threads x the timed steps' wall time, GEMM GFLOP/s per core their multiply-adds x 2 over that time.
// --ops wraps the backend in a timer and adds, per config, a table of wall time per backend op
// (on a device backend every op is followed by synchronize(), which serialises the device).
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <ctime>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <CLI/CLI.hpp>

#include "core/backend_select.h"
#include "core/cpu_backend.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "model/batch.h"
#include "model/config.h"
#include "model/checkpoint.h"
#include "peft/method.h"
#include "train/optimizer.h"

// OpenBLAS's thread controls, when the BLAS the engine links is OpenBLAS (weak: absent otherwise).
extern "C" int openblas_get_num_threads(void) __attribute__((weak));

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) {
    return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

struct BenchConfig {
    std::string preset;
    int batch = 0;
    int seq = 0;
};

BenchConfig parse_config(const std::string& s) {
    const std::size_t a = s.find(':');
    const std::size_t b = a == std::string::npos ? a : s.find(':', a + 1);
    if (a == std::string::npos || b == std::string::npos || s.find(':', b + 1) != std::string::npos)
        throw CLI::ValidationError("--config", "'" + s + "': expected PRESET:BATCH:SEQ");
    BenchConfig c;
    c.preset = s.substr(0, a);
    try {
        std::size_t used = 0;
        const std::string bs = s.substr(a + 1, b - a - 1), ts = s.substr(b + 1);
        c.batch = std::stoi(bs, &used);
        if (used != bs.size()) throw std::invalid_argument(bs);
        c.seq = std::stoi(ts, &used);
        if (used != ts.size()) throw std::invalid_argument(ts);
    } catch (const std::exception&) {
        throw CLI::ValidationError("--config", "'" + s + "': BATCH and SEQ must be integers");
    }
    if (c.batch < 1 || c.seq < 1) throw CLI::ValidationError("--config", "'" + s + "': BATCH and SEQ must be >= 1");
    const std::vector<std::string> names = meft::preset_names();
    if (std::find(names.begin(), names.end(), c.preset) == names.end()) {
        std::string list;
        for (const std::string& n : names) list += (list.empty() ? "" : ", ") + n;
        throw CLI::ValidationError("--config", "'" + s + "': unknown preset '" + c.preset + "' (expected " + list + ")");
    }
    return c;
}

std::string cpu_model() {
    std::ifstream in("/proc/cpuinfo");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("model name", 0) == 0) {
            const std::size_t colon = line.find(':');
            if (colon != std::string::npos) {
                std::size_t start = line.find_first_not_of(" \t", colon + 1);
                return start == std::string::npos ? std::string("unknown CPU") : line.substr(start);
            }
        }
    }
    return "unknown CPU";
}

std::string now_utc() {
    const std::time_t t = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
    return buf;
}

// Random token ids in [1000, 20000) (inside both vocabularies and clear of special tokens),
// full attention mask, token type 0, labels 0/1.
// Random tokens; BART's last token is its eos (its head reads it), OPT predicts every token.
meft::HostBatch random_batch(const meft::ModelConfig& cfg, int B, int T, std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::uniform_int_distribution<std::int32_t> tok(1000, 19999), lab(0, 1);
    meft::HostBatch b;
    b.B = B;
    b.T = T;
    const std::size_t n = static_cast<std::size_t>(B) * static_cast<std::size_t>(T);
    b.input_ids.resize(n);
    for (auto& id : b.input_ids) id = tok(rng);
    b.token_type_ids.assign(n, 0);
    b.attention_mask.assign(n, 1);
    b.labels.resize(static_cast<std::size_t>(B));
    for (auto& l : b.labels) l = lab(rng);
    if (cfg.arch == meft::Arch::Bart)
        for (int i = 0; i < B; ++i) b.input_ids[std::size_t(i) * T + T - 1] = cfg.eos_token_id;
    if (meft::is_decoder_only(cfg.arch)) {
        b.token_labels = b.input_ids;
        b.labels.clear();
    }
    return b;
}

// Forwards every op to another backend and adds up wall time per op name (--ops). One clock
// read pair per call: a few hundred calls per step, negligible next to the ops themselves.
class TimingBackend final : public meft::Backend {
public:
    struct Stat {
        std::int64_t calls = 0;
        double ms = 0;
    };
    explicit TimingBackend(meft::Backend& inner) : in_(inner) {}
    void clear() { stats_.clear(); }
    const std::map<std::string, Stat>& stats() const { return stats_; }

    std::string name() const override { return in_.name() + "+timing"; }
    meft::MemorySource memory() override { return in_.memory(); }
    bool is_host() const override { return in_.is_host(); }
    void synchronize() override { in_.synchronize(); }
    bool device_memory(std::size_t* free_bytes, std::size_t* total_bytes) override {
        return in_.device_memory(free_bytes, total_bytes);
    }

    void upload(meft::Tensor d, const void* s) override { run("upload", [&] { in_.upload(d, s); }); }
    void download(void* d, meft::Tensor s) override { run("download", [&] { in_.download(d, s); }); }

private:
    void fill_impl(meft::Tensor t, double v) override { run("fill", [&] { in_.fill(t, v); }); }
    void copy_impl(meft::Tensor d, meft::Tensor s) override { run("copy", [&] { in_.copy(d, s); }); }
    void accumulate_impl(meft::Tensor d, meft::Tensor s) override { run("accumulate", [&] { in_.accumulate(d, s); }); }
    void axpy_impl(meft::Tensor d, meft::Tensor s, double a) override { run("axpy", [&] { in_.axpy(d, s, a); }); }
    void add_impl(meft::Tensor o, meft::Tensor a, meft::Tensor b) override { run("add", [&] { in_.add(o, a, b); }); }
    void coupling_forward_impl(meft::Tensor s, meft::Tensor r, meft::Tensor f, int m) override {
        run("coupling_forward", [&] { in_.coupling_forward(s, r, f, m); });
    }
    void coupling_inverse_impl(meft::Tensor s, meft::Tensor r, meft::Tensor f, int m) override {
        run("coupling_inverse", [&] { in_.coupling_inverse(s, r, f, m); });
    }
    void prefix_concat_forward_impl(meft::Tensor o, meft::Tensor p, meft::Tensor x) override {
        run("prefix_concat_forward", [&] { in_.prefix_concat_forward(o, p, x); });
    }
    void prefix_concat_backward_impl(meft::Tensor dp, meft::Tensor dx, meft::Tensor g, bool acc) override {
        run("prefix_concat_backward", [&] { in_.prefix_concat_backward(dp, dx, g, acc); });
    }
    void stream_read_impl(meft::Tensor o, meft::Tensor s) override { run("stream_read", [&] { in_.stream_read(o, s); }); }
    void stream_write_impl(meft::Tensor s, meft::Tensor i) override { run("stream_write", [&] { in_.stream_write(s, i); }); }
    void channel_scale_forward_impl(meft::Tensor o, meft::Tensor i, meft::Tensor s) override {
        run("channel_scale_forward", [&] { in_.channel_scale_forward(o, i, s); });
    }
    void channel_scale_backward_impl(meft::Tensor di, meft::Tensor ds, meft::Tensor g, meft::Tensor i, meft::Tensor s) override {
        run("channel_scale_backward", [&] { in_.channel_scale_backward(di, ds, g, i, s); });
    }
    void scale_impl(meft::Tensor t, double f) override { run("scale", [&] { in_.scale(t, f); }); }
    double sum_squares_impl(meft::Tensor t) override {
        double r = 0;
        run("sum_squares", [&] { r = in_.sum_squares(t); });
        return r;
    }
    void linear_forward_impl(meft::Tensor o, meft::Tensor i, meft::Tensor w, meft::Tensor b) override {
        run("linear_forward", [&] { in_.linear_forward(o, i, w, b); });
    }
    void linear_backward_impl(meft::Tensor di, meft::Tensor dw, meft::Tensor db, meft::Tensor g, meft::Tensor i,
                              meft::Tensor w, bool acc) override {
        run("linear_backward", [&] { in_.linear_backward(di, dw, db, g, i, w, acc); });
    }
    void layernorm_forward_impl(meft::Tensor o, meft::Tensor m, meft::Tensor r, meft::Tensor i, meft::Tensor w,
                                meft::Tensor b, double eps) override {
        run("layernorm_forward", [&] { in_.layernorm_forward(o, m, r, i, w, b, eps); });
    }
    void layernorm_backward_impl(meft::Tensor di, meft::Tensor dw, meft::Tensor db, meft::Tensor g, meft::Tensor i,
                                 meft::Tensor w, meft::Tensor m, meft::Tensor r, bool acc) override {
        run("layernorm_backward", [&] { in_.layernorm_backward(di, dw, db, g, i, w, m, r, acc); });
    }
    void gelu_forward_impl(meft::Tensor o, meft::Tensor i) override { run("gelu_forward", [&] { in_.gelu_forward(o, i); }); }
    void gelu_backward_impl(meft::Tensor di, meft::Tensor g, meft::Tensor i) override {
        run("gelu_backward", [&] { in_.gelu_backward(di, g, i); });
    }
    void tanh_forward_impl(meft::Tensor o, meft::Tensor i) override { run("tanh_forward", [&] { in_.tanh_forward(o, i); }); }
    void tanh_backward_impl(meft::Tensor di, meft::Tensor g, meft::Tensor o) override {
        run("tanh_backward", [&] { in_.tanh_backward(di, g, o); });
    }
    void relu_forward_impl(meft::Tensor o, meft::Tensor i) override { run("relu_forward", [&] { in_.relu_forward(o, i); }); }
    void relu_backward_impl(meft::Tensor di, meft::Tensor g, meft::Tensor i) override {
        run("relu_backward", [&] { in_.relu_backward(di, g, i); });
    }
    void dropout_forward_impl(meft::Tensor o, meft::Tensor i, double p, meft::PhiloxKey k, int off) override {
        run("dropout_forward", [&] { in_.dropout_forward(o, i, p, k, off); });
    }
    void dropout_backward_impl(meft::Tensor di, meft::Tensor g, double p, meft::PhiloxKey k, int off) override {
        run("dropout_backward", [&] { in_.dropout_backward(di, g, p, k, off); });
    }
    void dropout_add_layernorm_forward_impl(meft::Tensor o, meft::Tensor m, meft::Tensor r, meft::Tensor res,
                                            meft::Tensor x, meft::Tensor w, meft::Tensor b, double eps, double p,
                                            meft::PhiloxKey k, int off) override {
        run("dropout_add_layernorm_forward", [&] { in_.dropout_add_layernorm_forward(o, m, r, res, x, w, b, eps, p, k, off); });
    }
    void layernorm_dropout_backward_impl(meft::Tensor dbr, meft::Tensor dres, meft::Tensor dw, meft::Tensor db,
                                         meft::Tensor g, meft::Tensor res, meft::Tensor w, meft::Tensor m, meft::Tensor r,
                                         double p, meft::PhiloxKey k, int off) override {
        run("layernorm_dropout_backward", [&] { in_.layernorm_dropout_backward(dbr, dres, dw, db, g, res, w, m, r, p, k, off); });
    }
    void embeddings_forward_impl(meft::Tensor o, meft::Tensor ids, meft::Tensor pos, meft::Tensor types, meft::Tensor wte,
                                 meft::Tensor wpe, meft::Tensor wtt) override {
        run("embeddings_forward", [&] { in_.embeddings_forward(o, ids, pos, types, wte, wpe, wtt); });
    }
    void embedding_backward_impl(meft::Tensor dt, meft::Tensor g, meft::Tensor ids) override {
        run("embedding_backward", [&] { in_.embedding_backward(dt, g, ids); });
    }
    void attention_forward_impl(meft::Tensor ctx, meft::Tensor probs, meft::Tensor q, meft::Tensor k, meft::Tensor v,
                                meft::Tensor mask, int nh, double p, meft::PhiloxKey key, int off, bool causal) override {
        run("attention_forward", [&] { in_.attention_forward(ctx, probs, q, k, v, mask, nh, p, key, off, causal); });
    }
    void attention_backward_impl(meft::Tensor dq, meft::Tensor dk, meft::Tensor dv, meft::Tensor dctx, meft::Tensor q,
                                 meft::Tensor k, meft::Tensor v, meft::Tensor probs, int nh, double p, meft::PhiloxKey key,
                                 int off) override {
        run("attention_backward", [&] { in_.attention_backward(dq, dk, dv, dctx, q, k, v, probs, nh, p, key, off); });
    }
    void first_token_forward_impl(meft::Tensor o, meft::Tensor i) override {
        run("first_token_forward", [&] { in_.first_token_forward(o, i); });
    }
    void first_token_backward_impl(meft::Tensor di, meft::Tensor g, bool acc) override {
        run("first_token_backward", [&] { in_.first_token_backward(di, g, acc); });
    }
    void cross_entropy_forward_impl(meft::Tensor l, meft::Tensor p, meft::Tensor z, meft::Tensor y) override {
        run("cross_entropy_forward", [&] { in_.cross_entropy_forward(l, p, z, y); });
    }
    void cross_entropy_backward_impl(meft::Tensor dz, meft::Tensor p, meft::Tensor y, double s) override {
        run("cross_entropy_backward", [&] { in_.cross_entropy_backward(dz, p, y, s); });
    }
    void mse_forward_impl(meft::Tensor l, meft::Tensor x, meft::Tensor t) override {
        run("mse_forward", [&] { in_.mse_forward(l, x, t); });
    }
    void mse_backward_impl(meft::Tensor d, meft::Tensor x, meft::Tensor t, double s) override {
        run("mse_backward", [&] { in_.mse_backward(d, x, t, s); });
    }
    void adamw_update_impl(meft::Tensor p, meft::Tensor g, meft::Tensor m, meft::Tensor v, double lr, double b1, double b2,
                           double eps, double wd, int step) override {
        run("adamw_update", [&] { in_.adamw_update(p, g, m, v, lr, b1, b2, eps, wd, step); });
    }

private:
    template <typename F> void run(const char* op, F&& f) {
        const auto t0 = Clock::now();
        f();
        if (!in_.is_host()) in_.synchronize();  // a device op has only been queued until then
        Stat& s = stats_[op];
        ++s.calls;
        s.ms += ms_since(t0);
    }
    meft::Backend& in_;
    std::map<std::string, Stat> stats_;
};

struct Result {
    double step_ms = 0;        // mean full step
    double fb_ms = 0;          // mean forward_backward
    double update_ms = 0;      // mean zero_grads + clip + AdamW
    double forward_ms = -1;    // one extra forward(train) call; < 0 when not measured
    std::size_t peak_act = 0;  // bytes: activation arenas' peak
    std::size_t total = 0;     // bytes: resident arenas (weights, gradients, AdamW state) + peak_act
    std::int64_t device_used = -1;  // bytes in use on the device after the last timed step; < 0: not a device
    std::int64_t params = 0, trainable = 0;
    std::map<std::string, TimingBackend::Stat> ops;  // --ops: totals over the timed steps
    meft::CpuGemmStats gemm;   // CPU backend: its GEMMs during the timed steps (thread time, flops)
};

// A --method entry: the engine's method names, "checkpointing" (= full fine-tuning with
// gradient checkpointing, as transformers' gradient_checkpointing_enable()) and NAME+checkpointing.
struct MethodSpec {
    std::string label;
    meft::MethodConfig config;
};

MethodSpec parse_method_spec(const std::string& s) {
    static const std::string kSuffix = "+checkpointing";
    std::string base = s;
    bool checkpointing = false;
    if (s == "checkpointing") {
        base = "full";
        checkpointing = true;
    } else if (s.size() > kSuffix.size() && s.compare(s.size() - kSuffix.size(), kSuffix.size(), kSuffix) == 0) {
        base = s.substr(0, s.size() - kSuffix.size());
        checkpointing = true;
    }
    const std::vector<std::string> names = meft::method_names();
    if (std::find(names.begin(), names.end(), base) == names.end()) {
        std::string list;
        for (const std::string& n : names) list += n + ", ";
        throw CLI::ValidationError("--method", "'" + s + "': unknown method (expected one of " + list +
                                                   "checkpointing, or NAME+checkpointing)");
    }
    nlohmann::json j = {{"name", base}};
    if (checkpointing) j["gradient_checkpointing"] = true;
    return {s, meft::parse_method(j, "--method " + s)};
}

Result bench_one(const BenchConfig& bc, meft::Arch arch, meft::DType dt, const meft::MethodConfig& method,
                 meft::AttentionKind attention, int steps, int warmup, bool phases, meft::Backend& backend,
                 TimingBackend* timing) {
    meft::ModelConfig cfg = meft::preset_config(arch, bc.preset);
    if (!meft::is_decoder_only(arch)) cfg.set_num_labels(2);
    cfg.attention = attention;
    const std::unique_ptr<meft::Model> owned = meft::make_model(cfg, backend, dt, method);
    meft::Model& model = *owned;
    model.init_weights(42);
    meft::ParameterStore& ps = model.params();
    meft::AdamW opt(ps, meft::AdamWConfig{});
    const meft::HostBatch batch = random_batch(cfg, bc.batch, bc.seq, 1234);
    const double lr = 2e-5;
    const std::uint64_t seed = 42;
    const bool device = !backend.is_host();

    Result r;
    r.params = ps.count(false);
    r.trainable = ps.count(true);
    double step_total = 0, fb_total = 0, upd_total = 0;
    meft::CpuGemmStats gemm0;
    for (int s = 0; s < warmup + steps; ++s) {
        const meft::ForwardOptions o{true, seed, static_cast<std::uint32_t>(s)};
        if (timing && s == warmup) timing->clear();  // op times cover the timed steps only
        if (s == warmup) gemm0 = meft::cpu_gemm_stats();
        const auto t0 = Clock::now();
        ps.zero_grads();
        if (device) backend.synchronize();  // else the zeroing would be counted in forward_backward
        const double t_zero = ms_since(t0);
        const auto t1 = Clock::now();
        model.forward_backward(batch, o, 1.0 / double(batch.B));
        backend.synchronize();
        const double t_fb = ms_since(t1);
        const auto t2 = Clock::now();
        meft::clip_grad_norm(ps, 1.0);
        opt.step(lr);
        backend.synchronize();
        const double t_upd = ms_since(t2);
        const double t_step = ms_since(t0);
        if (s >= warmup) {
            step_total += t_step;
            fb_total += t_fb;
            upd_total += t_zero + t_upd;
        }
    }
    const meft::CpuGemmStats gemm1 = meft::cpu_gemm_stats();
    r.gemm = {gemm1.seconds - gemm0.seconds, gemm1.flops - gemm0.flops, gemm1.calls - gemm0.calls};
    r.step_ms = step_total / steps;
    r.fb_ms = fb_total / steps;
    r.update_ms = upd_total / steps;
    const meft::MemoryReport mem = model.memory_report();
    r.peak_act = mem.activation_peak;
    r.total = mem.peak();
    std::size_t free_b = 0, total_b = 0;
    if (backend.device_memory(&free_b, &total_b) && total_b >= free_b)
        r.device_used = static_cast<std::int64_t>(total_b - free_b);
    if (timing) r.ops = timing->stats();  // before the extra forward call
    if (phases) {
        const meft::ForwardOptions o{true, seed, static_cast<std::uint32_t>(warmup + steps)};
        const auto t0 = Clock::now();
        model.forward(batch, o);
        backend.synchronize();
        r.forward_ms = ms_since(t0);
    }
    return r;
}

std::string fixed(double v, int digits) {
    std::ostringstream s;
    s << std::fixed << std::setprecision(digits) << v;
    return s.str();
}

double mib(double bytes) { return bytes / (1024.0 * 1024.0); }

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"meft-bench — time full training steps (forward, backward, clip, AdamW) of every method on a backend"};
    std::vector<std::string> config_strs;
    std::string arch_str = "bert", dtype_str = "float32", backend_name = "cpu";
    int steps = 5, warmup = 1, threads = 0;
    std::vector<std::string> methods, attentions, precisions;
    std::vector<int> recompute_tokens;
    bool no_phases = false, want_ops = false;
    app.add_option("--backend", backend_name, "compute backend: cpu, cuda (fails with the reason when unusable) or auto")
        ->check(CLI::IsMember({"cpu", "cuda", "auto"}))->capture_default_str();
    app.add_option("--config", config_strs,
                   "PRESET:BATCH:SEQ, repeatable or comma-separated (default: toy:8:128 toy:32:64 toy:8:256 base:8:128)")
        ->delimiter(',');
    app.add_option("--method", methods,
                   "fine-tuning method, repeatable or comma-separated: " + [] {
                       std::string l;
                       for (const std::string& n : meft::method_names()) l += n + ", ";
                       return l;
                   }() + "checkpointing or NAME+checkpointing (default: full)")
        ->delimiter(',');
    app.add_option("--arch", arch_str, "backbone family")->check(CLI::IsMember({"bert", "roberta", "bart", "opt"}))->capture_default_str();
    app.add_option("--steps", steps, "timed steps")->check(CLI::PositiveNumber)->capture_default_str();
    app.add_option("--warmup", warmup, "untimed warm-up steps")->check(CLI::NonNegativeNumber)->capture_default_str();
    app.add_option("--dtype", dtype_str, "parameter and activation type")->check(CLI::IsMember({"float32", "float64"}))->capture_default_str();
    app.add_option("--threads", threads, "CPU backend threads (0: all cores); OpenBLAS runs single-threaded inside them")
        ->check(CLI::NonNegativeNumber)->capture_default_str();
    app.add_option("--attention", attentions, "attention, repeatable or comma-separated: standard, tiled (default: standard)")
        ->delimiter(',')
        ->check(CLI::IsMember({"standard", "tiled"}));
    app.add_option("--recompute-tokens", recompute_tokens,
                   "MEFT and checkpointing methods: recompute_tokens (examples per recomputed chunk x seq), repeatable or "
                   "comma-separated; 0: the whole batch (default: the method's default)")
        ->delimiter(',')
        ->check(CLI::NonNegativeNumber);
    app.add_option("--gemm-precision", precisions,
                   "the linear layers' float32 GEMMs, repeatable or comma-separated: float32, bf16 (operands rounded to "
                   "bf16, float32 accumulation; CPU: oneDNN with AVX512_BF16), tf32 (CUDA) (default: float32)")
        ->delimiter(',')
        ->check(CLI::IsMember({"float32", "bf16", "tf32"}));
    app.add_flag("--no-phases", no_phases, "skip the extra forward call that splits forward from backward");
    app.add_flag("--ops", want_ops, "also time every backend op and print a per-op table for each config");
    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        app.exit(e);
        return 2;
    }

    std::vector<BenchConfig> configs;
    std::vector<MethodSpec> specs;
    try {
        if (config_strs.empty()) config_strs = {"toy:8:128", "toy:32:64", "toy:8:256", "base:8:128"};
        for (const std::string& s : config_strs) configs.push_back(parse_config(s));
        if (methods.empty()) methods = {"full"};
        for (const std::string& m : methods) {
            const MethodSpec spec = parse_method_spec(m);
            if (recompute_tokens.empty() || !(spec.config.is_meft() || spec.config.gradient_checkpointing)) {
                specs.push_back(spec);
                continue;
            }
            for (int t : recompute_tokens) {  // one row per chunk size
                MethodSpec chunked = spec;
                chunked.config.recompute_tokens = t;
                chunked.label += " (chunk " + (t > 0 ? std::to_string(t) : std::string("whole batch")) + ")";
                specs.push_back(chunked);
            }
        }
        if (attentions.empty()) attentions = {"standard"};
        if (precisions.empty()) precisions = {"float32"};
    } catch (const CLI::ParseError& e) {
        app.exit(e);
        return 2;
    } catch (const std::exception& e) {
        std::cerr << "error: " << e.what() << "\n";
        return 2;
    }

    try {
        const meft::Arch arch = meft::parse_arch(arch_str);
        for (const BenchConfig& c : configs) {  // fail before the header, not halfway through the table
            const meft::ModelConfig mc = meft::preset_config(arch, c.preset);
            const int max_t = mc.max_position_embeddings - (arch == meft::Arch::Roberta ? mc.pad_token_id + 1 : 0);
            if (c.seq > max_t)
                throw meft::Error("--config " + c.preset + ":" + std::to_string(c.batch) + ":" + std::to_string(c.seq) +
                                  ": sequence length exceeds the " + arch_str + " maximum of " + std::to_string(max_t));
        }
        const meft::DType dt = dtype_str == "float64" ? meft::DType::F64 : meft::DType::F32;
        std::unique_ptr<meft::ThreadPool> own_pool;
        meft::ThreadPool* pool = &meft::default_thread_pool();
        if (threads > 0) {
            own_pool = std::make_unique<meft::ThreadPool>(threads);
            pool = own_pool.get();
        }
        // "cpu" keeps the pool of --threads; "cuda" and "auto" go through the engine's backend
        // selection (the CUDA plugin), and "auto" that lands on the CPU gets the same pool. One
        // backend per --gemm-precision, all made before the header, so a refusal comes first.
        std::vector<std::unique_ptr<meft::Backend>> chosen;
        std::vector<std::unique_ptr<TimingBackend>> timings;
        for (const std::string& gp : precisions) {
            if (dt != meft::DType::F32 && gp != "float32")
                throw meft::Error("--gemm-precision " + gp + " needs --dtype float32");
            meft::BackendOptions bo;
            bo.tf32 = gp == "tf32";
            bo.bf16_gemm = gp == "bf16";
            std::unique_ptr<meft::Backend> b;
            if (backend_name != "cpu") b = meft::make_backend(backend_name, bo);
            if (!b || b->is_host()) b = meft::make_cpu_backend(meft::CpuBackendOptions{bo.bf16_gemm}, *pool);
            timings.push_back(want_ops ? std::make_unique<TimingBackend>(*b) : nullptr);
            chosen.push_back(std::move(b));
        }
        const bool host = chosen.front()->is_host();
        if (!host && threads > 0) std::cerr << "note: --threads applies to the CPU backend only; ignored\n";
        meft::Backend* backend = timings.front() ? static_cast<meft::Backend*>(timings.front().get()) : chosen.front().get();
        std::size_t dev_free = 0, dev_total = 0;
        const bool has_device_memory = backend->device_memory(&dev_free, &dev_total);
        std::vector<std::tuple<BenchConfig, std::string, Result>> op_tables;

        std::string command;
        for (int i = 0; i < argc; ++i) command += (i ? " " : "") + std::string(argv[i]);
        std::cout << "<!-- meft-bench: " << cpu_model() << ", " << std::thread::hardware_concurrency()
                  << " logical cores; " << now_utc() << "; " << command << " -->\n"
                  << "<!-- backend: " << backend->name();
        if (has_device_memory) std::cout << " (device memory " << fixed(mib(double(dev_total)), 0) << " MiB)";
        std::cout << "; " << arch_str << ", " << dtype_str;
        if (host) {
            const std::string blas_threads =
                openblas_get_num_threads ? std::to_string(openblas_get_num_threads()) : std::string("?");
            std::cout << ", pool threads=" << pool->size() << ", float32 GEMMs: " << meft::cpu_gemm_name(meft::cpu_gemm())
                      << ", OpenBLAS threads=" << blas_threads;
        }
        std::cout << ", forward+backward+clip+AdamW, steps=" << steps << " warmup=" << warmup << " -->\n";
        // CPU: the share of the pool's core time spent inside GEMM calls, and their rate per core.
        std::cout << "| preset | batch | seq | method | attention | GEMMs | trainable | parameters | ms/step | tokens/s | activation MiB | total MiB"
                  << (has_device_memory ? " | device used MiB" : "") << (host ? " | GEMM share | GEMM GFLOP/s per core" : "")
                  << (no_phases ? "" : " | forward ms | backward ms | zero+clip+AdamW ms") << " |\n"
                  << "|---|---|---|---|---|---|---|---|---|---|---|---" << (has_device_memory ? "|---" : "")
                  << (host ? "|---|---" : "") << (no_phases ? "" : "|---|---|---") << "|\n"
                  << std::flush;
        for (const BenchConfig& c : configs)
        for (const MethodSpec& m : specs)
        for (const std::string& att : attentions)
        for (std::size_t g = 0; g < precisions.size(); ++g) {
            TimingBackend* timing = timings[g].get();
            meft::Backend& be = timing ? static_cast<meft::Backend&>(*timing) : *chosen[g];
            const Result r = bench_one(c, arch, dt, m.config, meft::parse_attention_kind(att), steps, warmup, !no_phases,
                                       be, timing);
            const double tok_s = double(c.batch) * c.seq / (r.step_ms / 1000.0);
            if (want_ops) op_tables.emplace_back(c, m.label + ", " + att + ", " + precisions[g], r);
            std::cout << "| " << c.preset << " | " << c.batch << " | " << c.seq << " | " << m.label << " | " << att << " | "
                      << precisions[g] << " | " << r.trainable
                      << " | " << r.params << " | " << fixed(r.step_ms, 1) << " | " << fixed(tok_s, 0) << " | "
                      << fixed(mib(double(r.peak_act)), 1) << " | " << fixed(mib(double(r.total)), 1);
            if (has_device_memory) std::cout << " | " << (r.device_used >= 0 ? fixed(mib(double(r.device_used)), 0) : "?");
            if (host) {
                const double core_s = double(pool->size()) * r.step_ms * steps / 1000.0;
                std::cout << " | " << fixed(100.0 * r.gemm.seconds / core_s, 1) << "% | "
                          << (r.gemm.seconds > 0 ? fixed(r.gemm.flops / r.gemm.seconds / 1e9, 1) : "-");
            }
            if (!no_phases)
                std::cout << " | " << fixed(r.forward_ms, 1) << " | " << fixed(r.fb_ms - r.forward_ms, 1) << " | "
                          << fixed(r.update_ms, 1);
            std::cout << " |\n" << std::flush;
        }
        for (const auto& [c, label, r] : op_tables) {
            std::vector<std::pair<std::string, TimingBackend::Stat>> rows(r.ops.begin(), r.ops.end());
            std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.second.ms > b.second.ms; });
            double covered = 0;
            for (const auto& row : rows) covered += row.second.ms;
            std::cout << "\n<!-- ops of " << c.preset << ":" << c.batch << ":" << c.seq << " " << label << ", per timed step; "
                      << fixed(covered / steps, 1) << " of " << fixed(r.step_ms, 1) << " ms/step inside backend ops -->\n"
                      << "| op | calls/step | ms/step | % of step |\n|---|---|---|---|\n";
            for (const auto& [name, st] : rows)
                std::cout << "| " << name << " | " << st.calls / steps << " | " << fixed(st.ms / steps, 2) << " | "
                          << fixed(100.0 * st.ms / steps / r.step_ms, 1) << " |\n";
        }
    } catch (const std::exception& e) {
        std::cerr << "error: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
