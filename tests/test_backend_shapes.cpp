// Backend's shape and dtype contract (core/backend.h) is checked once, in its public entry points,
// so the CPU backend and the shape-only backend of `meft plan` (which computes nothing) refuse the
// same malformed calls with the same meft::Error, naming the op and the shapes; well-formed calls,
// with the optional tensors left empty where backend.h allows it, pass on both.
#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/arena.h"
#include "core/cpu_backend.h"
#include "core/shape_backend.h"
#include "train/memory_plan.h"

using namespace meft;

namespace {

enum class Kind { Cpu, ShapeOnly };

class BackendShapes : public ::testing::TestWithParam<Kind> {
protected:
    BackendShapes()
        : be_(GetParam() == Kind::Cpu ? make_cpu_backend() : make_shape_backend()),
          arena_(std::make_unique<Arena>("test", be_->memory(), 1u << 20)) {}

    // Zero-filled on the CPU (valid ids, labels and stream values); the shape-only backend's
    // tensors have a shape, a dtype and an address that is never touched.
    Tensor t(Shape s, DType dt = DType::F32) { return arena_->zeros(dt, s); }
    Tensor ids(Shape s) { return t(s, DType::I32); }

    // f() throws a meft::Error whose message contains every one of `parts`.
    static void expect_error(const std::function<void()>& f, const std::vector<std::string>& parts) {
        try {
            f();
        } catch (const Error& e) {
            const std::string m = e.what();
            for (const std::string& p : parts) EXPECT_NE(m.find(p), std::string::npos) << "'" << p << "' not in: " << m;
            EXPECT_EQ(m.find("internal check failed"), std::string::npos) << m;
            return;
        }
        ADD_FAILURE() << "no meft::Error; expected one naming " << parts.front();
    }

    std::unique_ptr<Backend> be_;
    std::unique_ptr<Arena> arena_;
};

TEST_P(BackendShapes, Linear) {
    Backend& be = *be_;
    Tensor out = t({2, 3, 5}), inp = t({2, 3, 4}), w = t({5, 4}), b = t({5});
    EXPECT_NO_THROW(be.linear_forward(out, inp, w, b));
    EXPECT_NO_THROW(be.linear_forward(t({6, 5}), inp, w, Tensor{}));  // [N, OC] out of a [B, T, C] input; no bias
    expect_error([&] { be.linear_forward(out, inp, t({5, 3}), b); },
                 {"linear_forward: ", "inp [2, 3, 4]", "w [5, 3]", "disagree on C"});
    expect_error([&] { be.linear_forward(t({2, 3, 6}), inp, w, b); }, {"linear_forward: ", "out [2, 3, 6]", "disagree on OC"});
    expect_error([&] { be.linear_forward(t({2, 4, 5}), inp, w, b); }, {"linear_forward: ", "out [2, 4, 5]", "inp [2, 3, 4]"});
    expect_error([&] { be.linear_forward(out, inp, w, t({4})); }, {"linear_forward: ", "b [4]"});
    expect_error([&] { be.linear_forward(out, inp, t({5, 4}, DType::F64), b); }, {"linear_forward: ", "w [5, 4] is F64", "F32"});
    expect_error([&] { be.linear_forward(out, inp, Tensor{}, b); }, {"linear_forward: ", "w is empty"});

    // Backward: dinp, dw and db may each be empty (not needed).
    Tensor dout = t({2, 3, 5});
    EXPECT_NO_THROW(be.linear_backward(t({2, 3, 4}), t({5, 4}), t({5}), dout, inp, w, false));
    EXPECT_NO_THROW(be.linear_backward(t({2, 3, 4}), Tensor{}, Tensor{}, dout, inp, w, true));
    EXPECT_NO_THROW(be.linear_backward(Tensor{}, t({5, 4}), Tensor{}, dout, inp, w, false));
    expect_error([&] { be.linear_backward(t({2, 3, 3}), Tensor{}, Tensor{}, dout, inp, w, false); },
                 {"linear_backward: ", "dinp [2, 3, 3]", "disagree on C"});
    expect_error([&] { be.linear_backward(Tensor{}, t({4, 5}), Tensor{}, dout, inp, w, false); },
                 {"linear_backward: ", "dw [4, 5]", "w [5, 4]"});
    expect_error([&] { be.linear_backward(Tensor{}, t({5, 4}), Tensor{}, dout, Tensor{}, w, false); },
                 {"linear_backward: ", "inp is empty"});
    expect_error([&] { be.linear_backward(Tensor{}, Tensor{}, t({5}), t({2, 3, 4}), inp, w, false); },
                 {"linear_backward: ", "dout [2, 3, 4]", "disagree on OC"});
}

TEST_P(BackendShapes, LayerNormAndPointwise) {
    Backend& be = *be_;
    Tensor x = t({2, 3, 4}), out = t({2, 3, 4}), mean = t({6}), rstd = t({6}), w = t({4}), b = t({4});
    EXPECT_NO_THROW(be.layernorm_forward(out, mean, rstd, x, w, b, 1e-5));
    expect_error([&] { be.layernorm_forward(out, t({5}), rstd, x, w, b, 1e-5); }, {"layernorm_forward: ", "mean [5]", "N = 6"});
    expect_error([&] { be.layernorm_forward(out, mean, rstd, x, t({3}), b, 1e-5); }, {"layernorm_forward: ", "w [3]", "C = 4"});
    EXPECT_NO_THROW(be.layernorm_backward(t({2, 3, 4}), Tensor{}, Tensor{}, out, x, w, mean, rstd, false));
    expect_error([&] { be.layernorm_backward(t({2, 3, 4}), t({4}), t({5}), out, x, w, mean, rstd, false); },
                 {"layernorm_backward: ", "db [5]"});

    EXPECT_NO_THROW(be.gelu_forward(t({6, 4}), x));  // element-wise: only the element count matters
    expect_error([&] { be.gelu_forward(t({2, 3, 5}), x); }, {"gelu_forward: ", "out [2, 3, 5]", "inp [2, 3, 4]"});
    expect_error([&] { be.relu_backward(out, t({2, 3, 4}), t({2, 3})); }, {"relu_backward: ", "inp [2, 3]"});
    expect_error([&] { be.tanh_forward(t({2, 3, 4}, DType::F64), x); }, {"tanh_forward: ", "F64", "F32"});
    expect_error([&] { be.dropout_forward(t({2, 3, 5}), x, 0.1, PhiloxKey{}, 0); }, {"dropout_forward: ", "out [2, 3, 5]"});
    expect_error([&] { be.add(out, x, t({4})); }, {"add: ", "b [4]"});
    expect_error([&] { be.copy(t({2, 3, 4}, DType::I32), x); }, {"copy: ", "I32"});
    expect_error([&] { be.adamw_update(w, t({4}), t({4}), t({5}), 1e-3, 0.9, 0.999, 1e-8, 0.0, 1); },
                 {"adamw_update: ", "v [5]"});
    expect_error([&] { be.channel_scale_forward(out, x, t({3})); }, {"channel_scale_forward: ", "scale [3]", "disagree on C"});
    EXPECT_NO_THROW(be.channel_scale_backward(Tensor{}, t({4}), out, x, w));  // dinp empty
    EXPECT_NO_THROW(be.channel_scale_backward(t({2, 3, 4}), Tensor{}, out, Tensor{}, w));  // dscale empty: no inp needed
}

TEST_P(BackendShapes, EmbeddingsAndHeads) {
    Backend& be = *be_;
    Tensor wte = t({10, 4}), wpe = t({8, 4}), wtt = t({2, 4}), tok = ids({2, 3}), pos = ids({2, 3}), typ = ids({2, 3});
    Tensor out = t({2, 3, 4});
    EXPECT_NO_THROW(be.embeddings_forward(out, tok, pos, typ, wte, wpe, wtt));
    EXPECT_NO_THROW(be.embeddings_forward(out, tok, Tensor{}, Tensor{}, wte, Tensor{}, Tensor{}));  // wpe, wtt absent
    expect_error([&] { be.embeddings_forward(out, tok, Tensor{}, typ, wte, wpe, wtt); }, {"embeddings_forward: ", "pos is empty"});
    expect_error([&] { be.embeddings_forward(out, tok, pos, typ, wte, t({8, 5}), wtt); },
                 {"embeddings_forward: ", "wpe [8, 5]", "wte [10, 4]", "disagree on C"});
    expect_error([&] { be.embeddings_forward(out, t({2, 3}), pos, typ, wte, wpe, wtt); }, {"embeddings_forward: ", "ids [2, 3] is F32"});
    expect_error([&] { be.embedding_backward(t({10, 4}), t({2, 4, 4}), tok); }, {"embedding_backward: ", "dout [2, 4, 4]", "ids [2, 3]"});

    EXPECT_NO_THROW(be.first_token_forward(t({2, 4}), out));
    expect_error([&] { be.first_token_forward(t({2, 5}), out); }, {"first_token_forward: ", "out [2, 5]", "disagree on C"});
    expect_error([&] { be.first_token_backward(t({3, 3, 4}), t({2, 4}), false); }, {"first_token_backward: ", "disagree on B"});

    Tensor logits = t({2, 3}), probs = t({2, 3}), losses = t({2}), labels = ids({2});
    EXPECT_NO_THROW(be.cross_entropy_forward(losses, probs, logits, labels));
    EXPECT_NO_THROW(be.cross_entropy_backward(t({2, 3}), probs, labels, 0.5));
    expect_error([&] { be.cross_entropy_forward(losses, probs, logits, t({2})); }, {"cross_entropy_forward: ", "labels [2] is F32"});
    expect_error([&] { be.cross_entropy_forward(losses, probs, logits, ids({3})); }, {"cross_entropy_forward: ", "labels [3]", "B = 2"});
    expect_error([&] { be.cross_entropy_backward(t({2, 4}), probs, labels, 0.5); }, {"cross_entropy_backward: ", "dlogits [2, 4]"});
    EXPECT_NO_THROW(be.mse_forward(losses, t({2, 1}), t({2})));
    expect_error([&] { be.mse_forward(losses, t({2, 2}), t({2})); }, {"mse_forward: ", "preds [2, 2]"});
    expect_error([&] { be.mse_backward(t({3}), t({2, 1}), t({2}), 1.0); }, {"mse_backward: ", "dpreds [3]"});
}

TEST_P(BackendShapes, Attention) {
    Backend& be = *be_;
    const int NH = 2;
    Tensor q = t({2, 3, 8}), k = t({2, 5, 8}), v = t({2, 5, 8}), ctx = t({2, 3, 8}), probs = t({2, NH, 3, 5});
    Tensor mask = ids({2, 5});
    EXPECT_NO_THROW(be.attention_forward(ctx, probs, q, k, v, mask, NH, 0.0, PhiloxKey{}, 0, true));
    EXPECT_NO_THROW(be.attention_backward(t({2, 3, 8}), t({2, 5, 8}), t({2, 5, 8}), ctx, q, k, v, probs, NH, 0.0, PhiloxKey{}, 0));
    expect_error([&] { be.attention_forward(ctx, probs, q, k, v, mask, 3, 0.0, PhiloxKey{}, 0, false); },
                 {"attention_forward: ", "q [2, 3, 8]", "C = 8 is not divisible by n_head = 3"});
    expect_error([&] { be.attention_forward(ctx, t({2, NH, 3, 3}), q, k, v, mask, NH, 0.0, PhiloxKey{}, 0, false); },
                 {"attention_forward: ", "probs [2, 2, 3, 3]", "[2, 2, 3, 5]"});
    expect_error([&] { be.attention_forward(ctx, probs, q, k, t({2, 5, 4}), mask, NH, 0.0, PhiloxKey{}, 0, false); },
                 {"attention_forward: ", "v [2, 5, 4]", "k [2, 5, 8]"});
    expect_error([&] { be.attention_forward(ctx, probs, q, k, v, t({2, 5}), NH, 0.0, PhiloxKey{}, 0, false); },
                 {"attention_forward: ", "key_mask [2, 5] is F32"});
    expect_error([&] { be.attention_forward(ctx, probs, q, k, v, ids({2, 3}), NH, 0.0, PhiloxKey{}, 0, false); },
                 {"attention_forward: ", "key_mask [2, 3]", "B*Tk = 10"});
    expect_error([&] { be.attention_backward(t({2, 5, 8}), t({2, 5, 8}), t({2, 5, 8}), ctx, q, k, v, probs, NH, 0.0, PhiloxKey{}, 0); },
                 {"attention_backward: ", "dq [2, 5, 8]", "q [2, 3, 8]"});

    // Prefix-tuning's concatenation: out [B, P+T, C] of prefix [P, C] and x [B, T, C].
    Tensor pre = t({2, 8});
    EXPECT_NO_THROW(be.prefix_concat_forward(k, pre, q));
    expect_error([&] { be.prefix_concat_forward(t({2, 6, 8}), pre, q); }, {"prefix_concat_forward: ", "out [2, 6, 8]", "P+T"});
    EXPECT_NO_THROW(be.prefix_concat_backward(Tensor{}, t({2, 3, 8}), k, false));  // dprefix may be empty
    expect_error([&] { be.prefix_concat_backward(t({3, 8}), t({2, 3, 8}), k, false); }, {"prefix_concat_backward: ", "dprefix [3, 8]"});
}

TEST_P(BackendShapes, CouplingAndStreams) {
    Backend& be = *be_;
    Tensor s = t({2, 3, 4}, DType::I64), f = t({2, 3, 4}), rem = t({remainder_bytes(24, 3)}, DType::U8);
    EXPECT_NO_THROW(be.coupling_forward(s, rem, f, 3));
    EXPECT_NO_THROW(be.coupling_inverse(s, rem, f, 3));
    EXPECT_NO_THROW(be.coupling_forward(s, Tensor{}, f, 1));  // m = 1: no remainders
    expect_error([&] { be.coupling_forward(s, t({2}, DType::U8), f, 3); }, {"coupling_forward: ", "rem [2]", "= 6"});
    expect_error([&] { be.coupling_inverse(s, rem, f, 0); }, {"coupling_inverse: ", "m = 0"});
    expect_error([&] { be.coupling_forward(t({2, 3, 4}), rem, f, 3); }, {"coupling_forward: ", "stream [2, 3, 4] is F32"});
    expect_error([&] { be.coupling_forward(s, rem, t({2, 3, 5}), 3); }, {"coupling_forward: ", "f [2, 3, 5]"});
    EXPECT_NO_THROW(be.stream_read(f, s));
    EXPECT_NO_THROW(be.stream_write(t({2, 3, 4}, DType::F64), f));
    expect_error([&] { be.stream_read(t({2, 3, 5}), s); }, {"stream_read: ", "out [2, 3, 5]", "stream [2, 3, 4]"});
    expect_error([&] { be.stream_write(s, t({2, 3, 4}, DType::I32)); }, {"stream_write: ", "in [2, 3, 4] is I32"});
}

INSTANTIATE_TEST_SUITE_P(CpuAndShapeOnly, BackendShapes, ::testing::Values(Kind::Cpu, Kind::ShapeOnly),
                         [](const ::testing::TestParamInfo<Kind>& i) { return i.param == Kind::Cpu ? "cpu" : "shape_only"; });

// `meft plan` (the shape-only backend driving a whole model) refuses what a real backend refuses:
// attention dropout draws from at most 4096 positions per sequence.
TEST(ShapeOnlyModel, PlanRefusesWhatTheCpuWould) {
    ModelConfig c = preset_config(Arch::Bert, "tiny");
    c.vocab_size = 100;
    c.num_layers = 1;
    c.hidden_size = 16;
    c.num_heads = 2;
    c.intermediate_size = 32;
    c.max_position_embeddings = 8192;
    c.set_num_labels(2);
    const MethodConfig lora = parse_method({{"name", "lora"}}, "test");
    EXPECT_NO_THROW(plan_memory(c, lora, DType::F32, 1, 4096));
    try {
        plan_memory(c, lora, DType::F32, 1, 4097);
        ADD_FAILURE() << "a 4097-token step with attention dropout was planned";
    } catch (const Error& e) {
        const std::string m = e.what();
        EXPECT_NE(m.find("attention_forward: attention dropout supports sequences up to 4096 tokens"), std::string::npos) << m;
    }
}

}  // namespace
