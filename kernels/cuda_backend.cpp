// cuda_backend.cpp — the CUDA Backend: dispatches float/double (Backend's entry points have
// checked shapes and dtypes, engine/core/backend.cpp) and calls the kernels (ops.h) and cuBLAS
// (blas.h) on the default stream. Every op is ordered after the previous one; uploads and
// downloads synchronise.
#include "cuda_backend.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <numeric>
#include <string>
#include <vector>

#include "blas.h"
#include "cuda_check.h"
#include "ops.h"
#include "scratch.h"

namespace meft::cuda {
namespace {

std::string mib(std::size_t bytes) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.1f MiB", double(bytes) / (1024.0 * 1024.0));
    return buf;
}

int as_int(std::int64_t x) {
    MEFT_CHECK(x <= std::numeric_limits<int>::max(), "dimension too large for cuBLAS");
    return static_cast<int>(x);
}

class CudaBackend final : public Backend {
public:
    explicit CudaBackend(const CudaBackendOptions& o) : device_(o.device) {
        MEFT_CUDA(cudaSetDevice(device_));
        cudaDeviceProp prop{};
        MEFT_CUDA(cudaGetDeviceProperties(&prop, device_));
        device_name_ = prop.name;
        blas_ = std::make_unique<Blas>(o.precision);
        MEFT_CUDA(cudaMalloc(&flag_, sizeof(int) * kFlags));
        MEFT_CUDA(cudaMemset(flag_, 0, sizeof(int) * kFlags));
    }
    ~CudaBackend() override {
        if (flag_) cudaFree(flag_);
    }

    std::string name() const override { return "cuda (" + device_name_ + ")"; }
    bool is_host() const override { return false; }

    MemorySource memory() override {
        MemorySource s;
        const int device = device_;
        const std::string device_name = device_name_;
        s.allocate = [device, device_name](std::size_t bytes) -> void* {
            void* p = nullptr;
            const cudaError_t e = cudaMalloc(&p, bytes);
            if (e == cudaSuccess) return p;
            cudaGetLastError();
            std::size_t free_b = 0, total_b = 0;
            cudaMemGetInfo(&free_b, &total_b);
            throw Error("CUDA out of memory on device " + std::to_string(device) + " (" + device_name +
                        "): allocating " + mib(bytes) + " with " + mib(free_b) + " free of " + mib(total_b) + " (" +
                        cudaGetErrorString(e) + "); use a smaller batch or sequence length, or a method that keeps " +
                        "fewer activations (see meft plan)");
        };
        s.release = [](void* p) { cudaFree(p); };
        s.zero = [](void* p, std::size_t n) { MEFT_CUDA(cudaMemset(p, 0, n)); };
        return s;
    }

    std::size_t op_workspace_bytes() const override {
        return partials_.bytes() + pointers_.bytes() + drop_.bytes() + dprobs_.bytes() + index_.bytes() +
               blas_->scratch_bytes();
    }

    bool device_memory(std::size_t* free_bytes, std::size_t* total_bytes) override {
        MEFT_CUDA(cudaMemGetInfo(free_bytes, total_bytes));
        return true;
    }
    void synchronize() override {
        MEFT_CUDA(cudaDeviceSynchronize());
        check_flag();
    }

    // ---- data movement ----------------------------------------------------------------------
    void upload(Tensor dst, const void* src) override {
        MEFT_CUDA(cudaMemcpy(dst.data, src, dst.bytes(), cudaMemcpyHostToDevice));
    }
    void download(void* dst, Tensor src) override {
        MEFT_CUDA(cudaMemcpy(dst, src.data, src.bytes(), cudaMemcpyDeviceToHost));
        check_flag();
    }

private:  // the ops: Backend checks their arguments, then calls these
    void fill_impl(Tensor t, double value) override {
        dispatch(t, [&](auto* T_) { cuda::fill(t.ptr<std::remove_pointer_t<decltype(T_)>>(), t.numel(), value); });
    }
    void copy_impl(Tensor dst, Tensor src) override {
        if (dst.data != src.data) MEFT_CUDA(cudaMemcpy(dst.data, src.data, src.bytes(), cudaMemcpyDeviceToDevice));
    }
    void accumulate_impl(Tensor dst, Tensor src) override {
        dispatch(dst, [&](auto* p) {
            using T = std::remove_pointer_t<decltype(p)>;
            cuda::axpy(dst.ptr<T>(), src.ptr<T>(), dst.numel(), 1.0);
        });
    }
    void axpy_impl(Tensor dst, Tensor src, double alpha) override {
        dispatch(dst, [&](auto* p) {
            using T = std::remove_pointer_t<decltype(p)>;
            cuda::axpy(dst.ptr<T>(), src.ptr<T>(), dst.numel(), alpha);
        });
    }
    void add_impl(Tensor out, Tensor a, Tensor b) override {
        dispatch(out, [&](auto* p) {
            using T = std::remove_pointer_t<decltype(p)>;
            cuda::add(out.ptr<T>(), a.ptr<T>(), b.ptr<T>(), out.numel());
        });
    }
    void scale_impl(Tensor t, double s) override {
        dispatch(t, [&](auto* p) { cuda::scale(t.ptr<std::remove_pointer_t<decltype(p)>>(), t.numel(), s); });
    }
    double sum_squares_impl(Tensor t) override {
        double result = 0;
        dispatch(t, [&](auto* p) {
            using T = std::remove_pointer_t<decltype(p)>;
            result = cuda::sum_squares(t.ptr<T>(), t.numel(), partials_.get<double>(kSumSquaresBlocks));
        });
        check_flag();
        return result;
    }

    // ---- linear -------------------------------------------------------------------------------
    void linear_forward_impl(Tensor out, Tensor inp, Tensor w, Tensor b) override {
        dispatch(out, [&](auto* p) {
            using T = std::remove_pointer_t<decltype(p)>;
            const std::int64_t OC = w.dim(0), C = w.dim(1), N = inp.numel() / C;
            if (b) cuda::broadcast_rows(out.ptr<T>(), b.ptr<T>(), N, OC);
            blas_->gemm<T>(false, true, as_int(N), as_int(OC), as_int(C), 1.0, inp.ptr<T>(), as_int(C), w.ptr<T>(),
                           as_int(C), b ? 1.0 : 0.0, out.ptr<T>(), as_int(OC));
        });
    }
    void linear_backward_impl(Tensor dinp, Tensor dw, Tensor db, Tensor dout, Tensor inp, Tensor w, bool acc) override {
        dispatch(dout, [&](auto* p) {
            using T = std::remove_pointer_t<decltype(p)>;
            const std::int64_t OC = w.dim(0), C = w.dim(1), N = dout.numel() / OC;
            const T* g = dout.ptr<T>();
            if (dinp)
                blas_->gemm<T>(false, false, as_int(N), as_int(C), as_int(OC), 1.0, g, as_int(OC), w.ptr<T>(), as_int(C),
                               acc ? 1.0 : 0.0, dinp.ptr<T>(), as_int(C));
            if (dw)
                blas_->gemm<T>(true, false, as_int(OC), as_int(C), as_int(N), 1.0, g, as_int(OC), inp.ptr<T>(),
                               as_int(C), 1.0, dw.ptr<T>(), as_int(C));
            if (db) cuda::column_sum_add(db.ptr<T>(), g, N, OC, partial<T>(N, OC));
        });
    }

    // ---- layernorm -----------------------------------------------------------------------------
    void layernorm_forward_impl(Tensor out, Tensor mean, Tensor rstd, Tensor inp, Tensor w, Tensor b, double eps) override {
        dispatch(out, [&](auto* p) {
            using T = std::remove_pointer_t<decltype(p)>;
            const std::int64_t C = inp.dim(-1), N = inp.numel() / C;
            cuda::layernorm_forward(out.ptr<T>(), mean.ptr<T>(), rstd.ptr<T>(), inp.ptr<T>(), w.ptr<T>(), b.ptr<T>(), N,
                                    C, eps);
        });
    }
    void layernorm_backward_impl(Tensor dinp, Tensor dw, Tensor db, Tensor dout, Tensor inp, Tensor w, Tensor mean,
                                 Tensor rstd, bool acc) override {
        dispatch(dout, [&](auto* p) {
            using T = std::remove_pointer_t<decltype(p)>;
            const std::int64_t C = inp.dim(-1), N = inp.numel() / C;
            const T *g = dout.ptr<T>(), *x = inp.ptr<T>(), *mu = mean.ptr<T>(), *rs = rstd.ptr<T>();
            if (dinp) cuda::layernorm_backward_dinp(dinp.ptr<T>(), g, x, w.ptr<T>(), mu, rs, N, C, acc);
            if (dw) cuda::layernorm_weight_grad(dw.ptr<T>(), g, x, mu, rs, N, C, partial<T>(N, C));
            if (db) cuda::column_sum_add(db.ptr<T>(), g, N, C, partial<T>(N, C));
        });
    }

    // ---- point-wise ----------------------------------------------------------------------------
    void gelu_forward_impl(Tensor out, Tensor inp) override {
        dispatch(out, [&](auto* p) {
            using T = std::remove_pointer_t<decltype(p)>;
            cuda::gelu_forward(out.ptr<T>(), inp.ptr<T>(), out.numel());
        });
    }
    void gelu_backward_impl(Tensor dinp, Tensor dout, Tensor inp) override {
        dispatch(dout, [&](auto* p) {
            using T = std::remove_pointer_t<decltype(p)>;
            cuda::gelu_backward(dinp.ptr<T>(), dout.ptr<T>(), inp.ptr<T>(), dinp.numel());
        });
    }
    void tanh_forward_impl(Tensor out, Tensor inp) override {
        dispatch(out, [&](auto* p) {
            using T = std::remove_pointer_t<decltype(p)>;
            cuda::tanh_forward(out.ptr<T>(), inp.ptr<T>(), out.numel());
        });
    }
    void tanh_backward_impl(Tensor dinp, Tensor dout, Tensor out) override {
        dispatch(dout, [&](auto* p) {
            using T = std::remove_pointer_t<decltype(p)>;
            cuda::tanh_backward(dinp.ptr<T>(), dout.ptr<T>(), out.ptr<T>(), dinp.numel());
        });
    }
    void relu_forward_impl(Tensor out, Tensor inp) override {
        dispatch(out, [&](auto* p) {
            using T = std::remove_pointer_t<decltype(p)>;
            cuda::relu_forward(out.ptr<T>(), inp.ptr<T>(), out.numel());
        });
    }
    void relu_backward_impl(Tensor dinp, Tensor dout, Tensor inp) override {
        dispatch(dout, [&](auto* p) {
            using T = std::remove_pointer_t<decltype(p)>;
            cuda::relu_backward(dinp.ptr<T>(), dout.ptr<T>(), inp.ptr<T>(), dinp.numel());
        });
    }
    void channel_scale_forward_impl(Tensor out, Tensor inp, Tensor scale) override {
        dispatch(out, [&](auto* p) {
            using T = std::remove_pointer_t<decltype(p)>;
            const std::int64_t C = scale.numel(), N = inp.numel() / C;
            cuda::channel_scale_forward(out.ptr<T>(), inp.ptr<T>(), scale.ptr<T>(), N, C);
        });
    }
    void channel_scale_backward_impl(Tensor dinp, Tensor dscale, Tensor dout, Tensor inp, Tensor scale) override {
        dispatch(dout, [&](auto* p) {
            using T = std::remove_pointer_t<decltype(p)>;
            const std::int64_t C = scale.numel(), N = dout.numel() / C;
            if (dscale) cuda::column_dot_add(dscale.ptr<T>(), dout.ptr<T>(), inp.ptr<T>(), N, C, partial<T>(N, C));
            if (dinp) cuda::channel_scale_dinp(dinp.ptr<T>(), dout.ptr<T>(), scale.ptr<T>(), N, C);
        });
    }

    // ---- dropout -------------------------------------------------------------------------------
    void dropout_forward_impl(Tensor out, Tensor inp, double p, PhiloxKey key, int off) override {
        dropout(out, inp, p, key, off);
    }
    void dropout_backward_impl(Tensor dinp, Tensor dout, double p, PhiloxKey key, int off) override {
        dropout(dinp, dout, p, key, off);
    }

    // ---- embeddings ----------------------------------------------------------------------------
    void embeddings_forward_impl(Tensor out, Tensor ids, Tensor pos, Tensor types, Tensor wte, Tensor wpe,
                                 Tensor wtt) override {
        dispatch(out, [&](auto* p) {
            using T = std::remove_pointer_t<decltype(p)>;
            cuda::embeddings_forward(out.ptr<T>(), ids.ptr<std::int32_t>(), wpe ? pos.ptr<std::int32_t>() : nullptr,
                                     wtt ? types.ptr<std::int32_t>() : nullptr, wte.ptr<T>(),
                                     wpe ? wpe.ptr<T>() : nullptr, wtt ? wtt.ptr<T>() : nullptr, ids.numel(),
                                     wte.dim(1));
        });
    }
    // The ids are read back to the host and grouped by table row (rows in increasing order), so
    // each table row is summed by one thread per channel in the CPU's order: no atomics.
    void embedding_backward_impl(Tensor dtable, Tensor dout, Tensor ids) override {
        const std::int64_t N = ids.numel(), C = dtable.dim(1);
        std::vector<std::int32_t> id(static_cast<std::size_t>(N));
        download(id.data(), ids);
        std::vector<std::int32_t> order(id.size());
        std::iota(order.begin(), order.end(), 0);
        std::stable_sort(order.begin(), order.end(), [&](std::int32_t a, std::int32_t b) { return id[a] < id[b]; });
        std::vector<std::int32_t> index;  // [table rows (U) | starts (U+1) | token rows (N)]
        std::vector<std::int32_t> table_rows, starts;
        for (std::size_t k = 0; k < order.size(); ++k) {
            if (k == 0 || id[order[k]] != id[order[k - 1]]) {
                MEFT_CHECK(id[order[k]] >= 0 && id[order[k]] < dtable.dim(0), "embedding id out of range");
                table_rows.push_back(id[order[k]]);
                starts.push_back(static_cast<std::int32_t>(k));
            }
        }
        starts.push_back(static_cast<std::int32_t>(order.size()));
        const std::int64_t U = static_cast<std::int64_t>(table_rows.size());
        index.reserve(table_rows.size() + starts.size() + order.size());
        index.insert(index.end(), table_rows.begin(), table_rows.end());
        index.insert(index.end(), starts.begin(), starts.end());
        index.insert(index.end(), order.begin(), order.end());
        auto* dev = index_.get<std::int32_t>(index.size());
        MEFT_CUDA(cudaMemcpy(dev, index.data(), index.size() * sizeof(std::int32_t), cudaMemcpyHostToDevice));
        dispatch(dout, [&](auto* p) {
            using T = std::remove_pointer_t<decltype(p)>;
            cuda::embedding_backward(dtable.ptr<T>(), dout.ptr<T>(), dev, dev + U, dev + 2 * U + 1, U, C);
        });
    }

    // ---- attention -----------------------------------------------------------------------------
    // Head h of example b is the [T, HS] slice at column h*HS of a [B, T, C] tensor: every GEMM is
    // one batched cuBLAS call over the B*NH (example, head) pairs through arrays of pointers.
    void attention_forward_impl(Tensor ctx, Tensor probs, Tensor q, Tensor k, Tensor v, Tensor key_mask, int NH, double p,
                                PhiloxKey key, int off, bool causal) override {
        dispatch(ctx, [&](auto* tp) {
            using T = std::remove_pointer_t<decltype(tp)>;
            const std::int64_t B = q.dim(0), Tq = q.dim(1), Tk = k.dim(1), C = q.dim(2), HS = C / NH, TT = Tq * Tk;
            const int count = as_int(B * NH);
            const T** ptr = pointers<T>(count, 6);
            T* P = probs.ptr<T>();
            cuda::head_pointers(ptr + 0 * count, q.ptr<T>(), B, NH, Tq * C, HS);
            cuda::head_pointers(ptr + 1 * count, k.ptr<T>(), B, NH, Tk * C, HS);
            cuda::head_pointers(ptr + 2 * count, static_cast<const T*>(P), B, NH, NH * TT, TT);
            blas_->gemm_batched<T>(false, true, as_int(Tq), as_int(Tk), as_int(HS), 1.0 / std::sqrt(double(HS)),
                                   ptr, as_int(C), ptr + count, as_int(C), 0.0, mut(ptr + 2 * count), as_int(Tk), count);
            cuda::masked_softmax(P, key_mask.ptr<std::int32_t>(), B, NH, Tq, Tk, causal);
            const T* Pd = P;
            if (p > 0) {
                T* D = drop_.get<T>(static_cast<std::size_t>(B * NH * TT));
                cuda::attention_dropout(D, static_cast<const T*>(P), B, NH, Tq, Tk, drop_threshold(p),
                                        T(1) / (T(1) - T(p)), key, off);
                Pd = D;
            }
            cuda::head_pointers(ptr + 3 * count, Pd, B, NH, NH * TT, TT);
            cuda::head_pointers(ptr + 4 * count, v.ptr<T>(), B, NH, Tk * C, HS);
            cuda::head_pointers(ptr + 5 * count, static_cast<const T*>(ctx.ptr<T>()), B, NH, Tq * C, HS);
            blas_->gemm_batched<T>(false, false, as_int(Tq), as_int(HS), as_int(Tk), 1.0, ptr + 3 * count, as_int(Tk),
                                   ptr + 4 * count, as_int(C), 0.0, mut(ptr + 5 * count), as_int(C), count);
        });
    }
    void attention_backward_impl(Tensor dq, Tensor dk, Tensor dv, Tensor dctx, Tensor q, Tensor k, Tensor v, Tensor probs,
                                 int NH, double p, PhiloxKey key, int off) override {
        dispatch(dctx, [&](auto* tp) {
            using T = std::remove_pointer_t<decltype(tp)>;
            const std::int64_t B = q.dim(0), Tq = q.dim(1), Tk = k.dim(1), C = q.dim(2), HS = C / NH, TT = Tq * Tk;
            const int count = as_int(B * NH), iq = as_int(Tq), ik = as_int(Tk), iC = as_int(C), iHS = as_int(HS);
            const double scale = 1.0 / std::sqrt(double(HS));
            const T* P = probs.ptr<T>();
            T* dP = dprobs_.get<T>(static_cast<std::size_t>(B * NH * TT));
            const T* Pd = P;
            const std::uint64_t th = p > 0 ? drop_threshold(p) : 0;
            const T s = p > 0 ? T(1) / (T(1) - T(p)) : T(1);
            if (p > 0) {
                T* D = drop_.get<T>(static_cast<std::size_t>(B * NH * TT));
                cuda::attention_dropout(D, P, B, NH, Tq, Tk, th, s, key, off);
                Pd = D;
            }
            const T** ptr = pointers<T>(count, 9);
            auto heads = [&](int slot, const T* base, std::int64_t sb, std::int64_t sh) {
                cuda::head_pointers(ptr + slot * count, base, B, NH, sb, sh);
                return ptr + slot * count;
            };
            const T* const* pPd = heads(0, Pd, NH * TT, TT);
            const T* const* pG = heads(1, dctx.ptr<T>(), Tq * C, HS);
            const T* const* pDV = heads(2, dv.ptr<T>(), Tk * C, HS);
            const T* const* pV = heads(3, v.ptr<T>(), Tk * C, HS);
            const T* const* pdP = heads(4, dP, NH * TT, TT);
            const T* const* pK = heads(5, k.ptr<T>(), Tk * C, HS);
            const T* const* pQ = heads(6, q.ptr<T>(), Tq * C, HS);
            const T* const* pDQ = heads(7, dq.ptr<T>(), Tq * C, HS);
            const T* const* pDK = heads(8, dk.ptr<T>(), Tk * C, HS);
            blas_->gemm_batched<T>(true, false, ik, iHS, iq, 1.0, pPd, ik, pG, iC, 0.0, mut(pDV), iC, count);  // dV = Pd^T dctx
            blas_->gemm_batched<T>(false, true, iq, ik, iHS, 1.0, pG, iC, pV, iC, 0.0, mut(pdP), ik, count);   // dPd = dctx V^T
            if (p > 0) cuda::attention_dropout(dP, static_cast<const T*>(dP), B, NH, Tq, Tk, th, s, key, off);
            cuda::softmax_backward(dP, P, B * NH * Tq, Tk);                                                  // dS
            blas_->gemm_batched<T>(false, false, iq, iHS, ik, scale, pdP, ik, pK, iC, 0.0, mut(pDQ), iC, count);  // dQ
            blas_->gemm_batched<T>(true, false, ik, iHS, iq, scale, pdP, ik, pQ, iC, 0.0, mut(pDK), iC, count);   // dK
        });
    }

    // Tiled attention (attention_tiled.cu): no [Tq, Tk] buffer; backward's only scratch is the
    // rows' <dctx, ctx>, B x NH x Tq elements, in dprobs_ (which the standard attention's
    // backward uses for its dP: a model uses one or the other).
    void attention_tiled_forward_impl(Tensor ctx, Tensor lse, Tensor q, Tensor k, Tensor v, Tensor key_mask, int NH,
                                      double p, PhiloxKey key, int off, bool causal) override {
        dispatch(ctx, [&](auto* tp) {
            using T = std::remove_pointer_t<decltype(tp)>;
            cuda::attention_tiled_forward(ctx.ptr<T>(), lse.ptr<T>(), static_cast<const T*>(q.ptr<T>()),
                                          static_cast<const T*>(k.ptr<T>()), static_cast<const T*>(v.ptr<T>()),
                                          key_mask.ptr<std::int32_t>(), q.dim(0), NH, q.dim(1), k.dim(1), q.dim(2),
                                          causal, p, key, off);
        });
    }
    void attention_tiled_backward_impl(Tensor dq, Tensor dk, Tensor dv, Tensor dctx, Tensor q, Tensor k, Tensor v,
                                       Tensor key_mask, Tensor ctx, Tensor lse, int NH, double p, PhiloxKey key, int off,
                                       bool causal) override {
        dispatch(dctx, [&](auto* tp) {
            using T = std::remove_pointer_t<decltype(tp)>;
            T* row_dots = dprobs_.get<T>(static_cast<std::size_t>(q.dim(0) * NH * q.dim(1)));
            cuda::attention_tiled_backward(dq.ptr<T>(), dk.ptr<T>(), dv.ptr<T>(), row_dots,
                                           static_cast<const T*>(dctx.ptr<T>()), static_cast<const T*>(q.ptr<T>()),
                                           static_cast<const T*>(k.ptr<T>()), static_cast<const T*>(v.ptr<T>()),
                                           static_cast<const T*>(ctx.ptr<T>()), static_cast<const T*>(lse.ptr<T>()),
                                           key_mask.ptr<std::int32_t>(), q.dim(0), NH, q.dim(1), k.dim(1), q.dim(2),
                                           causal, p, key, off);
        });
    }

    // ---- prefix, first token ---------------------------------------------------------------------
    void prefix_concat_forward_impl(Tensor out, Tensor prefix, Tensor x) override {
        dispatch(out, [&](auto* p) {
            using T = std::remove_pointer_t<decltype(p)>;
            cuda::prefix_concat_forward(out.ptr<T>(), prefix.ptr<T>(), x.ptr<T>(), x.dim(0), prefix.dim(0), x.dim(1),
                                        x.dim(2));
        });
    }
    void prefix_concat_backward_impl(Tensor dprefix, Tensor dx, Tensor dout, bool acc) override {
        dispatch(dout, [&](auto* p) {
            using T = std::remove_pointer_t<decltype(p)>;
            const std::int64_t B = dx.dim(0), T_ = dx.dim(1), C = dx.dim(2), P_ = dout.dim(1) - T_;
            cuda::prefix_concat_backward(dprefix ? dprefix.ptr<T>() : nullptr, dx.ptr<T>(), dout.ptr<T>(), B, P_, T_, C,
                                         acc);
        });
    }
    void copy_columns_impl(Tensor dst, Tensor src, std::int64_t first) override {
        dispatch(src, [&](auto* p) {
            using T = std::remove_pointer_t<decltype(p)>;
            cuda::copy_columns(dst.ptr<T>(), src.ptr<T>(), dst.dim(0), dst.dim(1), src.dim(1), first);
        });
    }
    void weight_norm_forward_impl(Tensor g, Tensor norm, Tensor m, Tensor w) override {
        dispatch(w, [&](auto* p) {
            using T = std::remove_pointer_t<decltype(p)>;
            cuda::weight_norm_forward(g.ptr<T>(), norm.ptr<T>(), m.ptr<T>(), w.ptr<T>(), w.dim(0), w.dim(1));
        });
    }
    void weight_norm_backward_impl(Tensor dm, Tensor dw, Tensor dg, Tensor m, Tensor w, Tensor norm) override {
        dispatch(w, [&](auto* p) {
            using T = std::remove_pointer_t<decltype(p)>;
            cuda::weight_norm_backward(dm.ptr<T>(), dw ? dw.ptr<T>() : nullptr, dg.ptr<T>(), m.ptr<T>(), w.ptr<T>(),
                                       norm.ptr<T>(), w.dim(0), w.dim(1));
        });
    }
    void first_token_forward_impl(Tensor out, Tensor inp) override {
        dispatch(inp, [&](auto* p) {
            using T = std::remove_pointer_t<decltype(p)>;
            const std::int64_t B = inp.dim(0);
            cuda::first_token_forward(out.ptr<T>(), inp.ptr<T>(), B, inp.numel() / B, inp.dim(-1));
        });
    }
    void first_token_backward_impl(Tensor dinp, Tensor dout, bool acc) override {
        if (!acc) fill(dinp, 0.0);
        dispatch(dout, [&](auto* p) {
            using T = std::remove_pointer_t<decltype(p)>;
            const std::int64_t B = dinp.dim(0);
            cuda::first_token_backward(dinp.ptr<T>(), dout.ptr<T>(), B, dinp.numel() / B, dinp.dim(-1));
        });
    }

    // ---- losses ----------------------------------------------------------------------------------
    void cross_entropy_forward_impl(Tensor losses, Tensor probs, Tensor logits, Tensor labels) override {
        dispatch(logits, [&](auto* p) {
            using T = std::remove_pointer_t<decltype(p)>;
            cuda::cross_entropy_forward(losses.ptr<T>(), probs.ptr<T>(), logits.ptr<T>(), labels.ptr<std::int32_t>(),
                                        logits.dim(0), logits.dim(1), flag_ + kBadLabel);
        });
        flags_pending_ = true;
    }
    void cross_entropy_backward_impl(Tensor dlogits, Tensor probs, Tensor labels, double scale) override {
        dispatch(probs, [&](auto* p) {
            using T = std::remove_pointer_t<decltype(p)>;
            cuda::cross_entropy_backward(dlogits.ptr<T>(), probs.ptr<T>(), labels.ptr<std::int32_t>(), probs.dim(0),
                                         probs.dim(1), scale);
        });
    }
    void mse_forward_impl(Tensor losses, Tensor preds, Tensor targets) override {
        dispatch(preds, [&](auto* p) {
            using T = std::remove_pointer_t<decltype(p)>;
            cuda::mse_forward(losses.ptr<T>(), preds.ptr<T>(), targets.ptr<T>(), preds.dim(0));
        });
    }
    void mse_backward_impl(Tensor dpreds, Tensor preds, Tensor targets, double scale) override {
        dispatch(preds, [&](auto* p) {
            using T = std::remove_pointer_t<decltype(p)>;
            cuda::mse_backward(dpreds.ptr<T>(), preds.ptr<T>(), targets.ptr<T>(), preds.dim(0), scale);
        });
    }

    // ---- reversible coupling -------------------------------------------------------------------
    void coupling_forward_impl(Tensor stream, Tensor rem, Tensor f, int m) override { coupling(stream, rem, f, m, false); }
    void coupling_inverse_impl(Tensor stream, Tensor rem, Tensor f, int m) override { coupling(stream, rem, f, m, true); }
    void stream_read_impl(Tensor out, Tensor stream) override {
        dispatch(out, [&](auto* p) {
            using T = std::remove_pointer_t<decltype(p)>;
            const bool f64 = stream.dtype == DType::F64;
            cuda::stream_read(out.ptr<T>(), f64 ? stream.ptr<double>() : nullptr,
                              f64 ? nullptr : stream.ptr<std::int64_t>(), out.numel());
        });
    }
    void stream_write_impl(Tensor stream, Tensor in) override {
        dispatch(in, [&](auto* p) {
            using T = std::remove_pointer_t<decltype(p)>;
            const bool f64 = stream.dtype == DType::F64;
            cuda::stream_write(f64 ? stream.ptr<double>() : nullptr, f64 ? nullptr : stream.ptr<std::int64_t>(),
                               in.ptr<T>(), in.numel(), flag_ + kStreamRange);
        });
        if (stream.dtype == DType::I64) flags_pending_ = true;
    }

    // ---- optimizer -----------------------------------------------------------------------------
    void adamw_update_impl(Tensor param, Tensor grad, Tensor m, Tensor v, double lr, double b1, double b2, double eps,
                           double wd, int step) override {
        dispatch(param, [&](auto* p) {
            using T = std::remove_pointer_t<decltype(p)>;
            // The scalars exactly as the CPU backend computes them.
            const T bc1 = T(1) - T(std::pow(b1, step)), bc2 = T(1) - T(std::pow(b2, step));
            const T step_size = T(lr) / bc1, decay = T(1) - T(lr * wd), sqrt_bc2 = std::sqrt(bc2);
            cuda::adamw(param.ptr<T>(), grad.ptr<T>(), m.ptr<T>(), v.ptr<T>(), param.numel(), T(b1), T(b2), T(eps),
                        step_size, decay, sqrt_bc2);
        });
    }

private:
    void dropout(Tensor out, Tensor inp, double p, const PhiloxKey& key, int off) {
        dispatch(out, [&](auto* tp) {
            using T = std::remove_pointer_t<decltype(tp)>;
            const std::int64_t B = inp.dim(0), M = B ? inp.numel() / B : 0;
            if (p <= 0) {
                if (out.data != inp.data)
                    MEFT_CUDA(cudaMemcpy(out.data, inp.data, inp.bytes(), cudaMemcpyDeviceToDevice));
                return;
            }
            cuda::dropout(out.ptr<T>(), static_cast<const T*>(inp.ptr<T>()), B, M, drop_threshold(p),
                          T(1) / (T(1) - T(p)), key, off);
        });
    }

    void coupling(Tensor stream, Tensor rem, Tensor f, int m, bool inverse) {
        dispatch(f, [&](auto* p) {
            using T = std::remove_pointer_t<decltype(p)>;
            if (stream.dtype == DType::F64) {
                cuda::coupling_f64(stream.ptr<double>(), f.ptr<T>(), f.numel(), m, inverse);
                return;
            }
            std::uint8_t* r = (m > 1 && rem.data) ? rem.ptr_u8() : nullptr;
            cuda::coupling_i64(stream.ptr<std::int64_t>(), r, f.ptr<T>(), f.numel(), m, inverse, flag_ + kStreamRange);
        });
        if (stream.dtype == DType::I64) flags_pending_ = true;
    }

    // Kernels that validate their input (labels, the fixed-point range) set a device flag instead
    // of stopping. Reading the flags synchronises, so they are read at the next call that
    // synchronises anyway (download, sum_squares, synchronize); the error says what was wrong.
    enum { kBadLabel, kStreamRange, kFlags };
    void check_flag() {
        if (!flags_pending_) return;
        flags_pending_ = false;
        int flag[kFlags] = {};
        MEFT_CUDA(cudaMemcpy(flag, flag_, sizeof flag, cudaMemcpyDeviceToHost));
        if (flag[kBadLabel] || flag[kStreamRange]) {
            MEFT_CUDA(cudaMemset(flag_, 0, sizeof flag));
            if (flag[kBadLabel]) throw Error("internal check failed: label out of range (cross_entropy_forward)");
            throw StreamRangeError("a MEFT stream value is outside the exact fixed-point range |value| < 2^23 = 8388608",
                                   std::nan(""));
        }
    }

    template <typename T> T* partial(std::int64_t N, std::int64_t C) {
        return partials_.get<T>(static_cast<std::size_t>(cuda::column_partials(N, C)));
    }
    template <typename T> const T** pointers(int count, int arrays) {
        return static_cast<const T**>(pointers_.get(sizeof(T*) * std::size_t(count) * std::size_t(arrays)));
    }
    template <typename T> static T* const* mut(const T* const* p) { return const_cast<T* const*>(p); }

    // Calls f with a null T* for the tensor's floating dtype (float or double).
    template <typename F> void dispatch(const Tensor& t, F&& f) {
        if (t.dtype == DType::F32) f(static_cast<float*>(nullptr));
        else if (t.dtype == DType::F64) f(static_cast<double*>(nullptr));
        else throw Error(std::string("cuda backend: unsupported dtype ") + std::string(dtype_name(t.dtype)));
    }

    int device_ = 0;
    std::string device_name_;
    std::unique_ptr<Blas> blas_;
    int* flag_ = nullptr;
    bool flags_pending_ = false;  // a checking kernel ran since the flags were last read
    Scratch partials_, pointers_, drop_, dprobs_, index_;
};

}  // namespace

std::unique_ptr<Backend> make_cuda_backend(const CudaBackendOptions& options) {
    return std::make_unique<CudaBackend>(options);
}

}  // namespace meft::cuda
