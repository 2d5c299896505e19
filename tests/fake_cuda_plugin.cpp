// fake_cuda_plugin.cpp — a stand-in for libmeft_cuda.so, so the plugin loader, backend selection
// and the out-of-memory check are tested on machines without a GPU. It implements the entry
// points of engine/core/cuda_plugin.h by wrapping the CPU backend under the name "fake-cuda".
//
// Environment switches (read when the entry points are called):
//   MEFT_FAKE_CUDA_MODE          "" (works), "abi" (reports ABI + 1), "nodevice" (probe finds 0
//                                devices, with a reason), "createfail" (create returns null)
//   MEFT_FAKE_CUDA_DEVICES       the device count the probe reports (default 1)
//   MEFT_FAKE_CUDA_FREE_BYTES    what device_memory() reports free (default: the total)
//   MEFT_FAKE_CUDA_TOTAL_BYTES   what device_memory() reports in all (default 80 GiB)
// Built twice: fake_cuda_plugin, and fake_cuda_plugin_no_create (MEFT_FAKE_CUDA_NO_CREATE), which
// lacks meft_cuda_create_backend. fake_cuda_last_options() lets a test see what create received.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "core/cpu_backend.h"
#include "core/cuda_plugin.h"

namespace {

std::string env(const char* name) {
    const char* v = std::getenv(name);
    return v ? v : "";
}

std::size_t env_bytes(const char* name, std::size_t def) {
    const std::string v = env(name);
    return v.empty() ? def : static_cast<std::size_t>(std::strtoull(v.c_str(), nullptr, 10));
}

void write_reason(char* out, std::size_t len, const char* text) {
    if (out && len > 0) std::snprintf(out, len, "%s", text);
}

MeftCudaOptions g_last_options{-1, -1, -1};
int g_creates = 0;

class FakeCudaBackend : public meft::Backend {
public:
    FakeCudaBackend() : cpu_(meft::make_cpu_backend()) {}
    std::string name() const override { return "fake-cuda"; }
    meft::MemorySource memory() override { return cpu_->memory(); }
    bool is_host() const override { return cpu_->is_host(); }
    bool device_memory(std::size_t* free_bytes, std::size_t* total_bytes) override {
        const std::size_t total = env_bytes("MEFT_FAKE_CUDA_TOTAL_BYTES", std::size_t{80} << 30);
        if (total_bytes) *total_bytes = total;
        if (free_bytes) *free_bytes = env_bytes("MEFT_FAKE_CUDA_FREE_BYTES", total);
        return true;
    }

    using Tensor = meft::Tensor;
    using PhiloxKey = meft::PhiloxKey;
    void synchronize() override { cpu_->synchronize(); }
    void upload(Tensor dst, const void* src) override { cpu_->upload(dst, src); }
    void download(void* dst, Tensor src) override { cpu_->download(dst, src); }

protected:
    void fill_impl(Tensor t, double value) override { cpu_->fill(t, value); }
    void copy_impl(Tensor dst, Tensor src) override { cpu_->copy(dst, src); }
    void accumulate_impl(Tensor dst, Tensor src) override { cpu_->accumulate(dst, src); }
    void axpy_impl(Tensor dst, Tensor src, double alpha) override { cpu_->axpy(dst, src, alpha); }
    void add_impl(Tensor out, Tensor a, Tensor b) override { cpu_->add(out, a, b); }
    void scale_impl(Tensor t, double s) override { cpu_->scale(t, s); }
    double sum_squares_impl(Tensor t) override { return cpu_->sum_squares(t); }
    void linear_forward_impl(Tensor out, Tensor inp, Tensor w, Tensor b) override { cpu_->linear_forward(out, inp, w, b); }
    void linear_backward_impl(Tensor dinp, Tensor dw, Tensor db, Tensor dout, Tensor inp, Tensor w, bool acc) override {
        cpu_->linear_backward(dinp, dw, db, dout, inp, w, acc);
    }
    void layernorm_forward_impl(Tensor out, Tensor mean, Tensor rstd, Tensor inp, Tensor w, Tensor b, double eps) override {
        cpu_->layernorm_forward(out, mean, rstd, inp, w, b, eps);
    }
    void layernorm_backward_impl(Tensor dinp, Tensor dw, Tensor db, Tensor dout, Tensor inp, Tensor w, Tensor mean,
                                 Tensor rstd, bool acc) override {
        cpu_->layernorm_backward(dinp, dw, db, dout, inp, w, mean, rstd, acc);
    }
    void gelu_forward_impl(Tensor out, Tensor inp) override { cpu_->gelu_forward(out, inp); }
    void gelu_backward_impl(Tensor dinp, Tensor dout, Tensor inp) override { cpu_->gelu_backward(dinp, dout, inp); }
    void tanh_forward_impl(Tensor out, Tensor inp) override { cpu_->tanh_forward(out, inp); }
    void tanh_backward_impl(Tensor dinp, Tensor dout, Tensor out) override { cpu_->tanh_backward(dinp, dout, out); }
    void relu_forward_impl(Tensor out, Tensor inp) override { cpu_->relu_forward(out, inp); }
    void relu_backward_impl(Tensor dinp, Tensor dout, Tensor inp) override { cpu_->relu_backward(dinp, dout, inp); }
    void channel_scale_forward_impl(Tensor out, Tensor inp, Tensor s) override { cpu_->channel_scale_forward(out, inp, s); }
    void channel_scale_backward_impl(Tensor dinp, Tensor ds, Tensor dout, Tensor inp, Tensor s) override {
        cpu_->channel_scale_backward(dinp, ds, dout, inp, s);
    }
    void dropout_forward_impl(Tensor out, Tensor inp, double p, PhiloxKey key, int off) override {
        cpu_->dropout_forward(out, inp, p, key, off);
    }
    void dropout_backward_impl(Tensor dinp, Tensor dout, double p, PhiloxKey key, int off) override {
        cpu_->dropout_backward(dinp, dout, p, key, off);
    }
    void embeddings_forward_impl(Tensor out, Tensor ids, Tensor pos, Tensor types, Tensor wte, Tensor wpe, Tensor wtt) override {
        cpu_->embeddings_forward(out, ids, pos, types, wte, wpe, wtt);
    }
    void embedding_backward_impl(Tensor dtable, Tensor dout, Tensor ids) override { cpu_->embedding_backward(dtable, dout, ids); }
    void attention_forward_impl(Tensor ctx, Tensor probs, Tensor q, Tensor k, Tensor v, Tensor mask, int nh, double p,
                                PhiloxKey key, int off, bool causal) override {
        cpu_->attention_forward(ctx, probs, q, k, v, mask, nh, p, key, off, causal);
    }
    void attention_backward_impl(Tensor dq, Tensor dk, Tensor dv, Tensor dctx, Tensor q, Tensor k, Tensor v, Tensor probs,
                                 int nh, double p, PhiloxKey key, int off) override {
        cpu_->attention_backward(dq, dk, dv, dctx, q, k, v, probs, nh, p, key, off);
    }
    void prefix_concat_forward_impl(Tensor out, Tensor prefix, Tensor x) override { cpu_->prefix_concat_forward(out, prefix, x); }
    void prefix_concat_backward_impl(Tensor dprefix, Tensor dx, Tensor dout, bool acc) override {
        cpu_->prefix_concat_backward(dprefix, dx, dout, acc);
    }
    void copy_columns_impl(Tensor dst, Tensor src, std::int64_t first) override { cpu_->copy_columns(dst, src, first); }
    void weight_norm_forward_impl(Tensor g, Tensor norm, Tensor m, Tensor w) override { cpu_->weight_norm_forward(g, norm, m, w); }
    void weight_norm_backward_impl(Tensor dm, Tensor dw, Tensor dg, Tensor m, Tensor w, Tensor norm) override {
        cpu_->weight_norm_backward(dm, dw, dg, m, w, norm);
    }
    void first_token_forward_impl(Tensor out, Tensor inp) override { cpu_->first_token_forward(out, inp); }
    void first_token_backward_impl(Tensor dinp, Tensor dout, bool acc) override { cpu_->first_token_backward(dinp, dout, acc); }
    void cross_entropy_forward_impl(Tensor losses, Tensor probs, Tensor logits, Tensor labels) override {
        cpu_->cross_entropy_forward(losses, probs, logits, labels);
    }
    void cross_entropy_backward_impl(Tensor dlogits, Tensor probs, Tensor labels, double s) override {
        cpu_->cross_entropy_backward(dlogits, probs, labels, s);
    }
    void mse_forward_impl(Tensor losses, Tensor preds, Tensor targets) override { cpu_->mse_forward(losses, preds, targets); }
    void mse_backward_impl(Tensor dpreds, Tensor preds, Tensor targets, double s) override {
        cpu_->mse_backward(dpreds, preds, targets, s);
    }
    void coupling_forward_impl(Tensor stream, Tensor rem, Tensor f, int m) override { cpu_->coupling_forward(stream, rem, f, m); }
    void coupling_inverse_impl(Tensor stream, Tensor rem, Tensor f, int m) override { cpu_->coupling_inverse(stream, rem, f, m); }
    void stream_read_impl(Tensor out, Tensor stream) override { cpu_->stream_read(out, stream); }
    void stream_write_impl(Tensor stream, Tensor in) override { cpu_->stream_write(stream, in); }
    void adamw_update_impl(Tensor param, Tensor grad, Tensor m, Tensor v, double lr, double b1, double b2, double eps,
                           double wd, int step) override {
        cpu_->adamw_update(param, grad, m, v, lr, b1, b2, eps, wd, step);
    }

private:
    std::unique_ptr<meft::Backend> cpu_;
};

}  // namespace

extern "C" {

unsigned meft_cuda_abi_version(void) {
    return env("MEFT_FAKE_CUDA_MODE") == "abi" ? MEFT_CUDA_PLUGIN_ABI + 1u : MEFT_CUDA_PLUGIN_ABI;
}

int meft_cuda_probe(char* why, std::size_t why_len) {
    if (env("MEFT_FAKE_CUDA_MODE") == "nodevice") {
        write_reason(why, why_len, "cudaGetDeviceCount failed: CUDA driver version is insufficient for CUDA runtime version (fake)");
        return 0;
    }
    const std::string n = env("MEFT_FAKE_CUDA_DEVICES");
    return n.empty() ? 1 : std::atoi(n.c_str());
}

#ifndef MEFT_FAKE_CUDA_NO_CREATE
meft::Backend* meft_cuda_create_backend(const MeftCudaOptions* options, char* error, std::size_t error_len) {
    if (options) g_last_options = *options;
    ++g_creates;
    if (env("MEFT_FAKE_CUDA_MODE") == "createfail") {
        write_reason(error, error_len, "cudaSetDevice: out of memory (fake)");
        return nullptr;
    }
    try {
        return new FakeCudaBackend;
    } catch (const std::exception& e) {  // never throw across the C boundary
        write_reason(error, error_len, e.what());
        return nullptr;
    }
}
#endif

// For tests: the options of the last create call; returns how many calls there were.
int fake_cuda_last_options(MeftCudaOptions* out) {
    if (out) *out = g_last_options;
    return g_creates;
}

}  // extern "C"
