#include "core/shape_backend.h"

#include "core/cpu_backend.h"

#include <algorithm>
#include <cstdint>
#include <string>

#include "core/error.h"
#include "core/thread_pool.h"

namespace meft {

namespace {

std::size_t whole_mib(std::size_t bytes) { return (bytes + (1u << 20) - 1) & ~std::size_t((1u << 20) - 1); }

// The largest head size of the CUDA backend's tiled attention (kMaxHead, kernels/attention_tiled.cu).
constexpr std::int64_t kCudaTiledMaxHead = 128;

// Rows per chunk of the CUDA backend's column reductions (kernels/reduce.cu).
std::int64_t cuda_row_chunks(std::int64_t N) { return std::clamp<std::int64_t>((N + 31) / 32, 1, 64); }

class ShapeBackend final : public Backend {
public:
    explicit ShapeBackend(const WorkspaceRule& rule) : rule_(rule) {}
    std::string name() const override { return "shape-only"; }
    std::size_t op_workspace_bytes() const override {
        if (!rule_.cuda) return cpu_ws_[0] + cpu_ws_[1] + cpu_bf16_;
        std::size_t n = 0;
        for (std::size_t b : cuda_) n += b;
        return n;
    }
    MemorySource memory() override {
        MemorySource s;
        // Distinct, never-dereferenced addresses (1 TiB apart), so views into chunks stay distinct.
        s.allocate = [this](std::size_t) -> void* {
            return reinterpret_cast<void*>((++next_) << 40);
        };
        s.release = [](void*) {};
        s.zero = [](void*, std::size_t) {};
        return s;
    }
    bool is_host() const override { return false; }
    bool computes_in(DType t) const override { return t == DType::F32 || t == DType::F64 || t == DType::F16 || t == DType::BF16; }

    void upload(Tensor, const void*) override {}
    void download(void*, Tensor) override {}

private:  // the ops: Backend checks their arguments, then calls these
    void fill_impl(Tensor, double) override {}
    void copy_impl(Tensor, Tensor) override {}
    void accumulate_impl(Tensor, Tensor) override {}
    void axpy_impl(Tensor, Tensor, double) override {}
    void add_impl(Tensor, Tensor, Tensor) override {}
    void scale_impl(Tensor, double) override {}
    double sum_squares_impl(Tensor) override {
        cuda_scratch(kPartials, 256 * sizeof(double));  // kSumSquaresBlocks partial sums
        return 0.0;
    }
    void linear_forward_impl(Tensor, Tensor inp, Tensor w, Tensor) override {
        const std::int64_t OC = w.dim(0), C = w.dim(1), N = inp.numel() / C;
        bf16_gemm(inp.dtype, N * C + OC * C);
    }
    void linear_backward_impl(Tensor dinp, Tensor dw, Tensor db, Tensor, Tensor inp, Tensor w, bool) override {
        const std::int64_t OC = w.dim(0), C = w.dim(1), N = inp.numel() / C;
        if (dinp) bf16_gemm(inp.dtype, N * OC + OC * C);
        if (dw) bf16_gemm(inp.dtype, N * OC + N * C);
        if (db) cuda_scratch(kPartials, std::size_t(cuda_row_chunks(N) * OC) * dtype_size(inp.dtype));
    }
    void layernorm_forward_impl(Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, double) override {}
    void layernorm_backward_impl(Tensor, Tensor dw, Tensor db, Tensor, Tensor inp, Tensor, Tensor, Tensor, bool) override {
        const std::int64_t C = inp.dim(inp.shape.ndim - 1), N = inp.numel() / C;
        if (dw || db) cuda_scratch(kPartials, std::size_t(cuda_row_chunks(N) * C) * dtype_size(inp.dtype));
    }
    void gelu_forward_impl(Tensor, Tensor) override {}
    void gelu_backward_impl(Tensor, Tensor, Tensor) override {}
    void tanh_forward_impl(Tensor, Tensor) override {}
    void tanh_backward_impl(Tensor, Tensor, Tensor) override {}
    void relu_forward_impl(Tensor, Tensor) override {}
    void relu_backward_impl(Tensor, Tensor, Tensor) override {}
    void channel_scale_forward_impl(Tensor, Tensor, Tensor) override {}
    void channel_scale_backward_impl(Tensor, Tensor dscale, Tensor, Tensor inp, Tensor) override {
        const std::int64_t C = inp.dim(inp.shape.ndim - 1), N = inp.numel() / C;
        if (dscale) cuda_scratch(kPartials, std::size_t(cuda_row_chunks(N) * C) * dtype_size(inp.dtype));
    }
    void dropout_forward_impl(Tensor, Tensor, double, PhiloxKey, int) override {}
    void dropout_backward_impl(Tensor, Tensor, double, PhiloxKey, int) override {}
    void embeddings_forward_impl(Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor) override {}
    void embedding_backward_impl(Tensor, Tensor, Tensor ids) override {
        // table rows, run starts and the sorted order: at most 3 N + 1 indices
        cuda_scratch(kIndex, std::size_t(3 * ids.numel() + 1) * sizeof(std::int32_t));
    }
    void attention_forward_impl(Tensor, Tensor, Tensor q, Tensor k, Tensor, Tensor, int NH, double p, PhiloxKey, int,
                                bool) override {
        attention(q, k, NH, p, false);
    }
    void attention_backward_impl(Tensor, Tensor, Tensor, Tensor, Tensor q, Tensor k, Tensor, Tensor, int NH, double p, PhiloxKey,
                                 int) override {
        attention(q, k, NH, p, true);
    }
    void attention_tiled_forward_impl(Tensor, Tensor, Tensor q, Tensor, Tensor, Tensor, int NH, double, PhiloxKey, int,
                                      bool) override {
        tiled_attention(q, NH, false);
    }
    void attention_tiled_backward_impl(Tensor, Tensor, Tensor, Tensor, Tensor q, Tensor, Tensor, Tensor, Tensor, Tensor, int NH,
                                       double, PhiloxKey, int, bool) override {
        tiled_attention(q, NH, true);
    }
    void prefix_concat_forward_impl(Tensor, Tensor, Tensor) override {}
    void prefix_concat_backward_impl(Tensor, Tensor, Tensor, bool) override {}
    void copy_columns_impl(Tensor, Tensor, std::int64_t) override {}
    void weight_norm_forward_impl(Tensor, Tensor, Tensor, Tensor) override {}
    void weight_norm_backward_impl(Tensor, Tensor, Tensor, Tensor, Tensor, Tensor) override {}
    void first_token_forward_impl(Tensor, Tensor) override {}
    void first_token_backward_impl(Tensor, Tensor, bool) override {}
    void cross_entropy_forward_impl(Tensor, Tensor, Tensor, Tensor) override {}
    void cross_entropy_backward_impl(Tensor, Tensor, Tensor, double) override {}
    void mse_forward_impl(Tensor, Tensor, Tensor) override {}
    void mse_backward_impl(Tensor, Tensor, Tensor, double) override {}
    void coupling_forward_impl(Tensor, Tensor, Tensor, int) override {}
    void coupling_inverse_impl(Tensor, Tensor, Tensor, int) override {}
    void stream_read_impl(Tensor, Tensor) override {}
    void stream_write_impl(Tensor, Tensor) override {}
    void adamw_update_impl(Tensor, Tensor, Tensor, Tensor, double, double, double, double, double, int) override {}

private:
    enum { kPartials, kPointers, kDrop, kDprobs, kIndex, kBf16, kScratches };
    // A CUDA Scratch grows to the largest request, in whole MiB, and never shrinks.
    void cuda_scratch(int which, std::size_t bytes) {
        if (rule_.cuda) cuda_[which] = std::max(cuda_[which], whole_mib(bytes));
    }
    // The rounded operands of a bf16 GEMM: a CUDA Scratch, or the CPU backend's one buffer (exact size).
    void bf16_gemm(DType dt, std::int64_t operand_elements) {
        if (!rule_.bf16_gemm || dt != DType::F32) return;
        if (rule_.cuda) cuda_scratch(kBf16, std::size_t(operand_elements) * 2);
        else cpu_bf16_ = std::max(cpu_bf16_, std::size_t(operand_elements) * 2);
    }
    void attention(Tensor q, Tensor k, int NH, double p, bool backward) {
        const std::int64_t B = q.dim(0), TT = q.dim(1) * k.dim(1);
        const std::size_t es = dtype_size(q.dtype);
        if (rule_.cuda) {
            const std::size_t heads = std::size_t(B * NH);
            cuda_scratch(kPointers, sizeof(void*) * heads * (backward ? 9 : 6));
            if (p > 0) cuda_scratch(kDrop, heads * std::size_t(TT) * es);
            if (backward) cuda_scratch(kDprobs, heads * std::size_t(TT) * es);
            return;
        }
        // One workspace per thread that takes a share of the B x NH heads: Tq x Tk elements for
        // forward's dropped probabilities, 2 Tq x Tk in backward (its gradient and the dropped ones).
        if (!backward && p <= 0) return;
        const std::size_t threads = std::size_t(std::min<std::int64_t>(rule_.threads, B * NH));
        const std::size_t per = std::size_t(backward ? 2 * TT : TT) * es;
        std::size_t& ws = cpu_ws_[q.dtype == DType::F64 ? 1 : 0];
        cpu_threads_[q.dtype == DType::F64 ? 1 : 0] = std::max(cpu_threads_[q.dtype == DType::F64 ? 1 : 0], threads);
        cpu_per_[q.dtype == DType::F64 ? 1 : 0] = std::max(cpu_per_[q.dtype == DType::F64 ? 1 : 0], per);
        ws = cpu_threads_[q.dtype == DType::F64 ? 1 : 0] * cpu_per_[q.dtype == DType::F64 ? 1 : 0];
    }

    // The CPU's tiled attention: one tile workspace per thread (cpu_tiled_attention_workspace),
    // in the same per-thread buffer as the standard attention's. The CUDA kernels keep their
    // tiles in shared memory; backward's only scratch is the rows' <dctx, ctx>, B x NH x Tq
    // elements, in the buffer the standard backward uses for dP (kernels/cuda_backend.cpp).
    void tiled_attention(Tensor q, int NH, bool backward) {
        const std::int64_t B = q.dim(0), HS = q.dim(2) / NH;
        if (rule_.cuda) {
            if (HS > kCudaTiledMaxHead)  // refused as the kernels refuse it, so a plan never promises more
                throw Error(std::string(backward ? "attention_tiled_backward" : "attention_tiled_forward") +
                            ": the CUDA backend's tiled attention takes head sizes 1 to " +
                            std::to_string(kCudaTiledMaxHead) + ", not " + std::to_string(HS) +
                            " (use training.attention \"standard\" for this model)");
            if (backward) cuda_scratch(kDprobs, std::size_t(B * NH * q.dim(1)) * dtype_size(q.dtype));
            return;
        }
        const int f = q.dtype == DType::F64 ? 1 : 0;
        cpu_threads_[f] = std::max(cpu_threads_[f], std::size_t(std::min<std::int64_t>(rule_.threads, B * NH)));
        cpu_per_[f] = std::max(cpu_per_[f], cpu_tiled_attention_workspace(HS, backward) * dtype_size(q.dtype));
        cpu_ws_[f] = cpu_threads_[f] * cpu_per_[f];
    }

    WorkspaceRule rule_;
    std::uintptr_t next_ = 0;
    std::size_t cuda_[kScratches] = {};
    std::size_t cpu_ws_[2] = {}, cpu_threads_[2] = {}, cpu_per_[2] = {};  // [float, double]
    std::size_t cpu_bf16_ = 0;
};

}  // namespace

WorkspaceRule WorkspaceRule::cpu(bool bf16_gemm) {
    WorkspaceRule r;
    r.threads = default_thread_pool().size();
    r.bf16_gemm = bf16_gemm;
    return r;
}

WorkspaceRule WorkspaceRule::cuda_device(bool bf16_gemm) {
    WorkspaceRule r;
    r.cuda = true;
    r.bf16_gemm = bf16_gemm;
    return r;
}

std::unique_ptr<Backend> make_shape_backend(const WorkspaceRule& rule) { return std::make_unique<ShapeBackend>(rule); }

}  // namespace meft
