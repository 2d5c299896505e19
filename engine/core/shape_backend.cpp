#include "core/shape_backend.h"

#include <cstdint>

namespace meft {

namespace {

class ShapeBackend final : public Backend {
public:
    std::string name() const override { return "shape-only"; }
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

    void upload(Tensor, const void*) override {}
    void download(void*, Tensor) override {}
    void fill(Tensor, double) override {}
    void copy(Tensor, Tensor) override {}
    void accumulate(Tensor, Tensor) override {}
    void axpy(Tensor, Tensor, double) override {}
    void add(Tensor, Tensor, Tensor) override {}
    void scale(Tensor, double) override {}
    double sum_squares(Tensor) override { return 0.0; }
    void linear_forward(Tensor, Tensor, Tensor, Tensor) override {}
    void linear_backward(Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, bool) override {}
    void layernorm_forward(Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, double) override {}
    void layernorm_backward(Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, bool) override {}
    void gelu_forward(Tensor, Tensor) override {}
    void gelu_backward(Tensor, Tensor, Tensor) override {}
    void tanh_forward(Tensor, Tensor) override {}
    void tanh_backward(Tensor, Tensor, Tensor) override {}
    void relu_forward(Tensor, Tensor) override {}
    void relu_backward(Tensor, Tensor, Tensor) override {}
    void channel_scale_forward(Tensor, Tensor, Tensor) override {}
    void channel_scale_backward(Tensor, Tensor, Tensor, Tensor, Tensor) override {}
    void dropout_forward(Tensor, Tensor, double, PhiloxKey, int) override {}
    void dropout_backward(Tensor, Tensor, double, PhiloxKey, int) override {}
    void embeddings_forward(Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor) override {}
    void embedding_backward(Tensor, Tensor, Tensor) override {}
    void attention_forward(Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, int, double, PhiloxKey, int, bool) override {}
    void attention_backward(Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, int, double, PhiloxKey,
                            int) override {}
    void prefix_concat_forward(Tensor, Tensor, Tensor) override {}
    void prefix_concat_backward(Tensor, Tensor, Tensor, bool) override {}
    void first_token_forward(Tensor, Tensor) override {}
    void first_token_backward(Tensor, Tensor, bool) override {}
    void cross_entropy_forward(Tensor, Tensor, Tensor, Tensor) override {}
    void cross_entropy_backward(Tensor, Tensor, Tensor, double) override {}
    void mse_forward(Tensor, Tensor, Tensor) override {}
    void mse_backward(Tensor, Tensor, Tensor, double) override {}
    void coupling_forward(Tensor, Tensor, Tensor, int) override {}
    void coupling_inverse(Tensor, Tensor, Tensor, int) override {}
    void stream_read(Tensor, Tensor) override {}
    void stream_write(Tensor, Tensor) override {}
    void adamw_update(Tensor, Tensor, Tensor, Tensor, double, double, double, double, double, int) override {}

private:
    std::uintptr_t next_ = 0;
};

}  // namespace

std::unique_ptr<Backend> make_shape_backend() { return std::make_unique<ShapeBackend>(); }

}  // namespace meft
