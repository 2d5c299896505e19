// parity_harness.h — CPU-vs-candidate parity checks for every Backend op and for whole models,
// in the spirit of ggml's test-backend-ops (used by tests/test_cuda_parity.cpp).
//
// An op case names its tensors (inputs, outputs, in/out) with their initial host contents and a
// function that calls the op. run_case() places every tensor in the backend's memory inside a
// larger allocation with guard bytes before and after, uploads the contents (outputs start as
// NaN, so an element the op never writes cannot pass), runs the op, and downloads everything back:
// a changed guard byte or a modified input is a failure. compare_outcomes() then holds the
// candidate's results against the CPU reference's:
//   * floating tensors: NMSE = sum((a-b)^2) / sum(b^2) <= 1e-7 (float32) or 1e-20 (float64),
//     written as !(nmse <= tol) so NaN fails; any NaN or Inf in the candidate fails, except an
//     infinity the reference has at the same place with the same sign (tiled attention's
//     log-sum-exp of a fully padded row); when the reference is all zero the candidate must be
//     exactly zero;
//   * integer tensors (I32, I64 streams) bit for bit; packed U8 remainders bit for bit in the bits
//     that hold a remainder;
//   * dropout outputs: the positions of the zeros must be identical (masks match bit for bit).
// Candidate memory is only ever touched through Backend::upload / download.
//
// Every check returns a description of what failed (empty when it passed), so the self-check
// tests can assert that the harness reports a fault without causing a test failure themselves.
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/arena.h"
#include "core/backend.h"
#include "model/batch.h"
#include "model/config.h"
#include "peft/method.h"

namespace meft::parity {

// ---- tolerances -------------------------------------------------------------------------------
// float32: a candidate as accurate as the CPU's float32 kernels differs from them by rounding
// only. Measured (the self-check's float32-vs-float64 calibration prints it): <= 5e-13 for every
// op case, <= 7e-13 for every model gradient. 1e-7 is the ceiling test-backend-ops uses.
// float64: the same argument at 2^-53 gives NMSE ~ 1e-30; 1e-20 leaves ten orders for summation
// order (GEMM blocking, atomics) and still catches any float32 shortcut (NMSE >= ~1e-15).
constexpr double kNmseF32 = 1e-7;
constexpr double kNmseF64 = 1e-20;
double nmse_tolerance(DType dt);  // kNmseF32 / kNmseF64; 0 (exact) for integer dtypes

bool is_floating(DType dt);

// ---- host tensors -----------------------------------------------------------------------------
struct HostTensor {
    DType dtype = DType::F32;
    Shape shape;
    std::vector<unsigned char> bytes;

    HostTensor() = default;
    HostTensor(DType dt, Shape s);  // zero-filled
    std::int64_t numel() const { return shape.numel(); }
    void* data() { return bytes.data(); }
    const void* data() const { return bytes.data(); }
    // A Tensor over the host bytes, for the host-side CPU backend that prepares derived inputs.
    Tensor view() { return Tensor{dtype, shape, bytes.data()}; }
    double get(std::int64_t i) const;  // any dtype as double
    void set(std::int64_t i, double v);  // any dtype (integers are truncated)
    std::int64_t get_i64(std::int64_t i) const;  // integer dtypes
    void set_i64(std::int64_t i, std::int64_t v);
    std::vector<double> to_doubles() const;
};

// N(mean, stddev^2), never exactly 0 (dropout tests read masks from the zeros of the output).
HostTensor random_normal(DType dt, Shape s, std::uint64_t seed, double mean = 0, double stddev = 1);
HostTensor random_bytes(DType dt, Shape s, std::uint64_t seed);  // any bit pattern
HostTensor filled(DType dt, Shape s, double value);
HostTensor from_values(DType dt, Shape s, const std::vector<double>& v);
HostTensor from_ints(DType dt, Shape s, const std::vector<std::int64_t>& v);  // I32, I64, U8
HostTensor converted(const HostTensor& t, DType dt);  // floating -> floating (rounds)

// ---- guarded placement in a backend's memory ---------------------------------------------------
constexpr std::size_t kGuardBytes = 256;  // a multiple of 64: the tensor keeps the arena's alignment
std::uint8_t guard_byte(bool after, std::size_t i);  // the pattern; never 0

struct GuardedTensor {
    Tensor region;  // U8 [kGuardBytes + bytes + kGuardBytes] from the backend's memory
    Tensor tensor;  // the view an op gets
};
// Allocates from `arena` (built on backend.memory()), uploads guard + contents + guard.
GuardedTensor place_guarded(Backend& be, Arena& arena, const HostTensor& contents);
// Downloads the region; puts the tensor's bytes in *contents (if not null); describes the first
// changed byte before and after the tensor, or nothing when both guards are intact.
std::optional<std::string> check_guards(Backend& be, const GuardedTensor& g, const std::string& name,
                                        HostTensor* contents = nullptr);
HostTensor download(Backend& be, Tensor t);
void upload(Backend& be, Tensor t, const HostTensor& h);

// ---- comparisons (cand: the candidate's result, ref: the CPU reference's) -----------------------
struct CloseStats {
    double nmse = 0;
    std::int64_t nonfinite = 0;
};
double nmse(const std::vector<double>& cand, const std::vector<double>& ref, double min_denominator = 0);
// NMSE <= tol and no NaN/Inf in cand. min_denominator: a floor for sum(ref^2), for tensors whose
// exact value is zero and whose computed value is rounding noise (see compare_model_runs).
std::optional<std::string> compare_close(const HostTensor& cand, const HostTensor& ref, double tol,
                                         const std::string& what, CloseStats* stats = nullptr,
                                         double min_denominator = 0);
std::optional<std::string> compare_exact(const HostTensor& cand, const HostTensor& ref, const std::string& what);
// The positions of exact zeros agree (dropout masks).
std::optional<std::string> compare_zero_positions(const HostTensor& cand, const HostTensor& ref,
                                                  const std::string& what);
// n remainders of remainder_bits(m) bits packed into U8 bytes: every used bit agrees.
std::optional<std::string> compare_packed_remainders(const HostTensor& cand, const HostTensor& ref, std::int64_t n,
                                                     int m, const std::string& what);
std::optional<std::string> compare_scalar(double cand, double ref, double tol, const std::string& what);

// ---- op cases -----------------------------------------------------------------------------------
enum class Role { In, Out, InOut };

struct Slot {
    std::string name;
    Role role = Role::In;
    HostTensor init;            // initial contents; Out slots of floating dtype start as NaN
    bool empty = false;         // passed as an empty Tensor ("not needed"); init gives dtype/shape
    bool mask = false;          // a dropout output: zero positions must agree
    std::int64_t rem_n = 0;     // U8 packed remainders: the number of remainders...
    int rem_m = 0;              // ...and their divisor
    bool keep_dtype = false;    // calibration: leave this F64 slot in float64 (F64 streams)
};
Slot in(std::string name, HostTensor t);
Slot out(std::string name, HostTensor t);  // init: the shape and dtype; contents become NaN/garbage
Slot inout(std::string name, HostTensor t);
Slot none(std::string name, DType dt, Shape s);  // an empty tensor

struct OpCase {
    std::string name;   // op, dtype and shape, e.g. "linear_backward f32 N=14 C=37 OC=19 acc"
    DType dtype = DType::F32;  // compute dtype (tolerance of returned scalars)
    std::vector<Slot> slots;
    // Calls the op on `be` with the placed tensors (slots' order); returns any scalar results.
    std::function<std::vector<double>(Backend& be, const std::vector<Tensor>& t)> run;
    // Extra checks of the candidate's results alone (e.g. coupling_inverse restores its input).
    std::function<void(const std::vector<HostTensor>& after, std::vector<std::string>& failures)> candidate_check;
};

struct Outcome {
    std::vector<HostTensor> after;       // every slot's contents after the op (empty slots: none)
    std::vector<double> scalars;
    std::vector<std::string> failures;   // guard bytes, modified inputs, exceptions
};
Outcome run_case(Backend& be, const OpCase& c);

struct CaseReport {
    std::vector<std::string> failures;
    double worst_nmse = 0;  // over floating outputs and scalars, as a fraction of the tolerance
    std::string line;       // one summary line: case name and each output's NMSE
    bool ok() const { return failures.empty(); }
};
CaseReport compare_outcomes(const OpCase& c, const Outcome& ref, const Outcome& cand);
CaseReport check_parity(Backend& ref, Backend& cand, const OpCase& c);

// The same case in float32 against float64 on the reference backend: inputs rounded to float32,
// F64 slots (except keep_dtype) run in float32; the float32 result must meet the float32
// tolerance against the float64 one. Proves the tolerance admits honest float32 rounding.
CaseReport calibrate_float32(Backend& ref, const OpCase& case_f64);

// ---- decorators ---------------------------------------------------------------------------------
// Forwards every virtual of Backend to `inner` and calls after(op, output) after each op (an op's
// implementation, `<op>_impl`, calls the inner backend's checked entry point). A new virtual in
// Backend makes this class abstract, so the suite cannot silently miss an op.
class ForwardingBackend : public Backend {
public:
    explicit ForwardingBackend(Backend& inner) : inner_(inner) {}
    std::string name() const override { return inner_.name(); }
    MemorySource memory() override { return inner_.memory(); }
    bool is_host() const override { return inner_.is_host(); }
    void upload(Tensor dst, const void* host_src) override { inner_.upload(dst, host_src); }
    void download(void* host_dst, Tensor src) override { inner_.download(host_dst, src); }
    void synchronize() override { inner_.synchronize(); }
    bool device_memory(std::size_t* free_bytes, std::size_t* total_bytes) override {
        return inner_.device_memory(free_bytes, total_bytes);
    }

protected:
    // Every op: the inner backend's (which checks the arguments once more), then after().
    void fill_impl(Tensor t, double value) override;
    void copy_impl(Tensor dst, Tensor src) override;
    void accumulate_impl(Tensor dst, Tensor src) override;
    void axpy_impl(Tensor dst, Tensor src, double alpha) override;
    void add_impl(Tensor out, Tensor a, Tensor b) override;
    void scale_impl(Tensor t, double s) override;
    double sum_squares_impl(Tensor t) override { return inner_.sum_squares(t); }
    void linear_forward_impl(Tensor out, Tensor inp, Tensor w, Tensor b) override;
    void linear_backward_impl(Tensor dinp, Tensor dw, Tensor db, Tensor dout, Tensor inp, Tensor w, bool acc) override;
    void layernorm_forward_impl(Tensor out, Tensor mean, Tensor rstd, Tensor inp, Tensor w, Tensor b, double eps) override;
    void layernorm_backward_impl(Tensor dinp, Tensor dw, Tensor db, Tensor dout, Tensor inp, Tensor w, Tensor mean,
                                 Tensor rstd, bool acc) override;
    void gelu_forward_impl(Tensor out, Tensor inp) override;
    void gelu_backward_impl(Tensor dinp, Tensor dout, Tensor inp) override;
    void tanh_forward_impl(Tensor out, Tensor inp) override;
    void tanh_backward_impl(Tensor dinp, Tensor dout, Tensor out) override;
    void relu_forward_impl(Tensor out, Tensor inp) override;
    void relu_backward_impl(Tensor dinp, Tensor dout, Tensor inp) override;
    void channel_scale_forward_impl(Tensor out, Tensor inp, Tensor scale) override;
    void channel_scale_backward_impl(Tensor dinp, Tensor dscale, Tensor dout, Tensor inp, Tensor scale) override;
    void dropout_forward_impl(Tensor out, Tensor inp, double p, PhiloxKey key, int example_offset) override;
    void dropout_backward_impl(Tensor dinp, Tensor dout, double p, PhiloxKey key, int example_offset) override;
    void embeddings_forward_impl(Tensor out, Tensor ids, Tensor pos, Tensor types, Tensor wte, Tensor wpe,
                                 Tensor wtt) override;
    void embedding_backward_impl(Tensor dtable, Tensor dout, Tensor ids) override;
    void attention_forward_impl(Tensor ctx, Tensor probs, Tensor q, Tensor k, Tensor v, Tensor key_mask, int n_head,
                                double p, PhiloxKey key, int example_offset, bool causal) override;
    void attention_backward_impl(Tensor dq, Tensor dk, Tensor dv, Tensor dctx, Tensor q, Tensor k, Tensor v, Tensor probs,
                                 int n_head, double p, PhiloxKey key, int example_offset) override;
    void attention_tiled_forward_impl(Tensor ctx, Tensor lse, Tensor q, Tensor k, Tensor v, Tensor key_mask, int n_head,
                                      double p, PhiloxKey key, int example_offset, bool causal) override;
    void attention_tiled_backward_impl(Tensor dq, Tensor dk, Tensor dv, Tensor dctx, Tensor q, Tensor k, Tensor v,
                                       Tensor key_mask, Tensor ctx, Tensor lse, int n_head, double p, PhiloxKey key,
                                       int example_offset, bool causal) override;
    void prefix_concat_forward_impl(Tensor out, Tensor prefix, Tensor x) override;
    void prefix_concat_backward_impl(Tensor dprefix, Tensor dx, Tensor dout, bool acc) override;
    void copy_columns_impl(Tensor dst, Tensor src, std::int64_t first) override;
    void weight_norm_forward_impl(Tensor g, Tensor norm, Tensor m, Tensor w) override;
    void weight_norm_backward_impl(Tensor dm, Tensor dw, Tensor dg, Tensor m, Tensor w, Tensor norm) override;
    void first_token_forward_impl(Tensor out, Tensor inp) override;
    void first_token_backward_impl(Tensor dinp, Tensor dout, bool acc) override;
    void cross_entropy_forward_impl(Tensor losses, Tensor probs, Tensor logits, Tensor labels) override;
    void cross_entropy_backward_impl(Tensor dlogits, Tensor probs, Tensor labels, double scale) override;
    void mse_forward_impl(Tensor losses, Tensor preds, Tensor targets) override;
    void mse_backward_impl(Tensor dpreds, Tensor preds, Tensor targets, double scale) override;
    void coupling_forward_impl(Tensor stream, Tensor rem, Tensor f, int m) override;
    void coupling_inverse_impl(Tensor stream, Tensor rem, Tensor f, int m) override;
    void stream_read_impl(Tensor out, Tensor stream) override;
    void stream_write_impl(Tensor stream, Tensor in) override;
    void adamw_update_impl(Tensor param, Tensor grad, Tensor m, Tensor v, double lr, double beta1, double beta2, double eps,
                           double weight_decay, int step) override;

protected:
    // `out`: the op's first output (the in/out tensor of in-place ops).
    virtual void after(const char* op, Tensor out) {
        (void)op;
        (void)out;
    }
    Backend& inner_;
};

// Injects one kind of fault after every call of one op, through the inner backend's upload.
enum class Fault {
    WritePastEnd,      // the element just after the output (the first trailing guard bytes)
    WriteBeforeStart,  // the element just before it
    Perturb,           // the output's element of largest magnitude times (1 + 1e-3)
    NaN,               // the output's last element becomes NaN
};
class FaultyBackend final : public ForwardingBackend {
public:
    FaultyBackend(Backend& inner, Fault fault, std::string op) : ForwardingBackend(inner), fault_(fault), op_(std::move(op)) {}
    int injected() const { return injected_; }

protected:
    void after(const char* op, Tensor out) override;

private:
    Fault fault_;
    std::string op_;
    int injected_ = 0;
};

// ---- whole models -------------------------------------------------------------------------------
struct ModelSpec {
    std::string label;
    ModelConfig config;
    MethodConfig method;
    HostBatch batch;
    DType dtype = DType::F32;
    std::uint64_t init_seed = 5;      // weights
    std::uint64_t dropout_seed = 77;  // Philox key of every dropout mask
    std::uint32_t step = 3;           // optimizer step in the dropout key
    bool perturb_added = true;        // add N(0, 0.02^2) to method parameters (LoRA B, (IA)3 start trivially)
    bool round_weights_to_f32 = false;  // float64 calibration runs: start from float32-representable weights
    double lr = 2e-3;                 // AdamW step after the backward (0: none)
};

struct NamedTensor {
    std::string name;
    HostTensor t;
};

struct ModelRun {
    double loss = 0;
    HostTensor logits;                       // F64 [B, K]
    std::vector<NamedTensor> grads;          // trainable parameters' gradients, F64
    std::vector<char> decay;                 // per gradient: AdamW weight decay applies
    std::vector<NamedTensor> before, after;  // trainable parameters around the AdamW step, F64
    std::vector<double> reconstruction;      // MEFT with keep_true_inputs: per-layer relative error
    std::vector<std::string> failures;       // exceptions
};
ModelRun run_model(Backend& be, const ModelSpec& spec);

// Parameters whose exact gradient is zero: the attention key bias (softmax over keys is invariant
// to adding one vector to every key), in BERT's names and in BART's and OPT's (k_proj.bias). Both backends return rounding noise there, so its gradient
// is held against the scale of the key weight's (or query bias's) gradient instead of its own.
bool structurally_zero_gradient(const std::string& name);
// Loss, logits, every gradient (NMSE <= tol); then the AdamW step: initial values bit for bit,
// each backend's update against AdamW of its own gradient computed on the host, and the updated
// values across backends except where the first step is ill-conditioned (see the .cpp).
CaseReport compare_model_runs(const ModelRun& cand, const ModelRun& ref, double tol, double lr);

// A batch of B examples of length T with random ids in [1, vocab), example i > 0 padded by i
// tokens (at most T - 1), labels in [0, labels); ids drawn from `id_range` tokens only when > 0.
HostBatch random_batch(const ModelConfig& c, int B, int T, std::uint64_t seed, int id_range = 0);

}  // namespace meft::parity
