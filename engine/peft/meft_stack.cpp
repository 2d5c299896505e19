#include "peft/meft_stack.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace meft {

namespace {
constexpr int kRevAdapterPosition = 12;  // dropout position of the reversible adapter (after transformer_layer's)

class MeftStack final : public StackEdit {
public:
    MeftStack(const MethodConfig& method, const ModelConfig& cfg) : method_(method), cfg_(cfg) {}
    // The frozen prefix's layers are the plain backbone.
    std::unique_ptr<BranchEdit> branch(const SiteSpec& site, ParameterStore& ps) const override {
        if (site.layer < method_.meft.frozen_prefix) return nullptr;
        if (site.site == Site::FfnParallel) return adapter_branch(site, ps, method_.adapter, method_.adapter.scaling);
        if (site.site == Site::AfterAttention && method_.meft_variant() == 3)  // part of MEFT3's F (spec §2.1)
            return adapter_branch(site, ps, method_.adapter, 1.0);
        return nullptr;
    }
    std::unique_ptr<StackRunner> runner(const std::vector<TransformerLayer>& layers, ParameterStore& ps) override {
        return std::make_unique<MeftEncoder>(cfg_, method_, ps, layers);
    }

private:
    MethodConfig method_;
    ModelConfig cfg_;
};
}  // namespace

std::unique_ptr<StackEdit> meft_stack(const MethodConfig& method, const ModelConfig& cfg) {
    return std::make_unique<MeftStack>(method, cfg);
}

MeftEncoder::MeftEncoder(const ModelConfig& cfg, const MethodConfig& method, ParameterStore& ps,
                         const std::vector<TransformerLayer>& layers)
    : cfg_(cfg), method_(method), layers_(layers) {
    const MeftSettings& s = method.meft;
    const int N = static_cast<int>(layers.size());
    prefix_ = s.frozen_prefix;
    if (prefix_ > 0 && is_encoder_decoder(cfg.arch))
        throw Error("method.meft.frozen_prefix must be 0 for " + arch_name(cfg.arch) +
                    ": the decoder's layers read the encoder's output, whose adapters train, and a no-gradient prefix "
                    "would cut that gradient");
    if (prefix_ >= N)
        throw Error("method.meft.frozen_prefix (" + std::to_string(prefix_) + ") must leave at least one of the " +
                    std::to_string(N) + " layers");
    reversible_ = s.reversible_layers < 0 ? N - prefix_ : s.reversible_layers;
    if (reversible_ > N - prefix_)
        throw Error("method.meft.reversible_layers (" + std::to_string(reversible_) + ") exceeds the " +
                    std::to_string(N - prefix_) + " layers above the frozen prefix");
    if (s.vanilla_gradient) reversible_ = 0;
    vanilla_ = N - prefix_ - reversible_;
    if (method.gradient_checkpointing) throw Error("method: gradient_checkpointing does not combine with MEFT");
    switch (method.meft_variant()) {
        case 1: f_fn_ = Fn::Layer, g_fn_ = Fn::Adapter, swap_ = true; break;
        case 2: f_fn_ = Fn::Adapter, g_fn_ = Fn::Layer, swap_ = true; break;
        default: f_fn_ = Fn::Attention, g_fn_ = Fn::Ffn, swap_ = false; break;
    }
    rev_adapters_.resize(static_cast<std::size_t>(N));
    if (f_fn_ == Fn::Adapter || g_fn_ == Fn::Adapter)
        for (int l = prefix_; l < N; ++l)
            rev_adapters_[static_cast<std::size_t>(l)] =
                declare_adapter(ps, layers[static_cast<std::size_t>(l)].names() + "rev_adapter", cfg.hidden_size,
                                method.adapter, layers[static_cast<std::size_t>(l)].relu());
    // Top merge. Encoders average the streams (spec §1, [ENC]). OPT weighs the stream that
    // tracks the backbone 1 and the other 0.1 ([DEC] --sum_scale 0.1): MEFT1's second half (y1),
    // MEFT2's first half (y2).
    if (is_decoder_only(cfg.arch)) {
        merge_first_ = method.meft_variant() == 1 ? 0.1 : 1.0;
        merge_second_ = method.meft_variant() == 1 ? 1.0 : 0.1;
    }
}

LayerContext MeftEncoder::context(const StackEnv& env, Arena& tape) const {
    return LayerContext{env.be,   env.ps,   tape,  env.tmp,    env.key_mask,    env.train, env.seed,
                        env.step, env.example_offset, false, env.memory, env.memory_mask, env.dmemory};
}

Tensor MeftEncoder::run_forward(Fn fn, int l, TransformerLayer::Acts& acts, AdapterActs& aa, Tensor in,
                                const StackEnv& env, Arena& tape) const {
    env.tmp.reset();
    const TransformerLayer& layer = layers_[static_cast<std::size_t>(l)];
    const LayerContext c = context(env, tape);
    switch (fn) {
        case Fn::Layer: layer.forward(acts, in, c); return acts.out;
        case Fn::Attention: layer.attention_forward(acts, in, c); return acts.h1;
        case Fn::Ffn: layer.ffn_forward(acts, in, c); return acts.out;
        case Fn::Adapter: break;
    }
    aa.inp = in;
    Tensor out = tape.alloc(in.dtype, in.shape, tag(l), "meft.adapter_out");
    const PeftCall call{env.be, env.ps, env.tmp, env.train ? cfg_.hidden_dropout : 0.0,
                           philox_key(env.seed, env.step, dropout_site(tag(l), kRevAdapterPosition)), env.example_offset};
    adapter_forward(call, rev_adapters_[static_cast<std::size_t>(l)], aa, tape, tag(l), "meft.rev_adapter", out, 1.0,
                    false);
    return out;
}

void MeftEncoder::run_backward(Fn fn, int l, const TransformerLayer::Acts& acts, const AdapterActs& aa, Tensor g,
                               Tensor din, const StackEnv& env, Arena& tape) const {
    env.tmp.reset();
    const TransformerLayer& layer = layers_[static_cast<std::size_t>(l)];
    const LayerContext c = context(env, tape);
    if (fn == Fn::Adapter) {
        env.be.fill(din, 0.0);
        const PeftCall call{env.be, env.ps, env.tmp, env.train ? cfg_.hidden_dropout : 0.0,
                               philox_key(env.seed, env.step, dropout_site(tag(l), kRevAdapterPosition)), env.example_offset};
        adapter_backward(call, rev_adapters_[static_cast<std::size_t>(l)], aa, din, g, 1.0);
        return;
    }
    env.be.copy(din, g);
    if (fn == Fn::Layer) layer.backward(acts, din, c);
    else if (fn == Fn::Attention) layer.attention_backward(acts, din, c);
    else layer.ffn_backward(acts, din, c);
}

std::int64_t MeftEncoder::chunk_examples(std::int64_t B, std::int64_t T, std::int64_t C) const {
    std::int64_t n = examples_per_chunk(method_.recompute_tokens, B, T);
    // Every chunk starts on a whole byte of the packed remainders (remainder_bits divides 8).
    const auto aligned = [&](std::int64_t k) {
        for (const int m : {method_.meft.lambda_inverse, method_.meft.beta_inverse})
            if (method_.meft.exact && m > 1 && (k * T * C * remainder_bits(m)) % 8 != 0) return false;
        return true;
    };
    while (n < B && !aligned(n)) ++n;
    return std::min(n, B);
}

StackEnv MeftEncoder::chunk_env(const StackEnv& env, std::int64_t b0, std::int64_t n) {
    StackEnv c = env;
    const auto part = [&](Tensor t) { return t ? t.rows(b0, n) : t; };
    c.key_mask = part(env.key_mask);
    c.memory = part(env.memory);
    c.memory_mask = part(env.memory_mask);
    c.dmemory = part(env.dmemory);
    c.example_offset = env.example_offset + static_cast<int>(b0);
    return c;
}

Tensor MeftEncoder::remainder_part(Tensor rem, int m, std::int64_t per_example, std::int64_t b0, std::int64_t n) {
    if (!rem) return rem;
    const std::int64_t start = b0 * per_example * remainder_bits(m) / 8;  // whole bytes (chunk_examples)
    return rem.rows(start, remainder_bytes(n * per_example, m));
}

template <typename Body>
void MeftEncoder::for_chunks(std::int64_t B, Body&& body) const {
    for (std::int64_t b0 = 0; b0 < B; b0 += chunk_) body(b0, std::min(chunk_, B - b0));
}

Tensor MeftEncoder::output_only(Fn fn, int l, Tensor in, Tensor h1, const StackEnv& env) const {
    env.tape.reset();
    TransformerLayer::Acts a;
    AdapterActs aa;
    if (fn != Fn::Layer) return run_forward(fn, l, a, aa, in, env, env.tape);
    const TransformerLayer& layer = layers_[static_cast<std::size_t>(l)];
    const LayerContext c = context(env, env.tape);
    env.tmp.reset();
    layer.attention_forward(a, in, c);  // one block's tape at a time
    env.be.copy(h1, a.h1);
    env.tape.reset();
    env.tmp.reset();
    layer.ffn_forward(a, h1, c);
    return a.out;
}

void MeftEncoder::recompute_backward(Fn fn, int l, Tensor in, Tensor g, Tensor din, Tensor h1, const StackEnv& env,
                                     const std::function<void(Tensor)>& rebuild) const {
    const TransformerLayer& layer = layers_[static_cast<std::size_t>(l)];
    const LayerContext c = context(env, env.tape);
    env.tape.reset();
    env.tmp.reset();
    if (fn == Fn::Layer) {
        TransformerLayer::Acts a;
        layer.attention_forward(a, in, c);  // phase 1: h1 only
        env.be.copy(h1, a.h1);
        env.tape.reset();
        env.tmp.reset();
        TransformerLayer::Acts b;
        layer.ffn_forward(b, h1, c);        // phase 2: the FFN block's tape
        rebuild(b.out);
        env.be.copy(din, g);
        layer.ffn_backward(b, din, c);      // din = d(h1)
        env.tape.reset();
        env.tmp.reset();
        TransformerLayer::Acts a2;
        layer.attention_forward(a2, in, c);  // phase 3: the attention block's tape
        layer.attention_backward(a2, din, c);
    } else {
        TransformerLayer::Acts a;
        AdapterActs aa;
        Tensor out = run_forward(fn, l, a, aa, in, env, env.tape);
        rebuild(out);
        run_backward(fn, l, a, aa, g, din, env, env.tape);
    }
    env.tape.reset();
    env.tmp.reset();
}

Tensor MeftEncoder::forward(Tensor h0, const StackEnv& env) {
    const std::int64_t B = h0.dim(0), T = h0.dim(1), C = h0.dim(2), n = h0.numel();
    const DType dt = h0.dtype, sdt = method_.meft.exact ? DType::I64 : DType::F64;
    const int N = static_cast<int>(layers_.size()), ml = method_.meft.lambda_inverse, mb = method_.meft.beta_inverse;
    const Shape hs{B, T, C};
    Backend& be = env.be;
    chunk_ = chunk_examples(B, T, C);
    const Shape cs{chunk_, T, C};  // one chunk

    // Frozen prefix: plain layers, nothing kept (ping-pong through two scratch buffers), a chunk
    // of examples at a time.
    Tensor x = h0;
    Tensor ping[2];
    if (prefix_ > 0) ping[0] = env.scratch.alloc(dt, hs), ping[1] = env.scratch.alloc(dt, hs);
    for (int l = 0; l < prefix_; ++l) {
        for_chunks(B, [&](std::int64_t b0, std::int64_t m) {
            env.tape.reset();
            env.tmp.reset();
            TransformerLayer::Acts a;
            const StackEnv ce = chunk_env(env, b0, m);
            layers_[static_cast<std::size_t>(l)].forward(a, x.rows(b0, m), context(ce, env.tape));
            be.copy(ping[l % 2].rows(b0, m), a.out);
        });
        x = ping[l % 2];
    }

    // Reversible layers run F and G a chunk at a time: their input (and a PLM layer's h1) is a chunk.
    in_buf_ = env.scratch.alloc(dt, cs);
    h1_buf_ = f_fn_ == Fn::Layer || g_fn_ == Fn::Layer ? env.scratch.alloc(dt, cs) : Tensor{};
    s1_ = env.saved.alloc(sdt, hs, tag(prefix_), "meft.stream1");
    s2_ = env.saved.alloc(sdt, hs, tag(prefix_), "meft.stream2");
    // A value the exact streams cannot hold fails the step here, naming the layer and the
    // coupling (a CUDA backend reports it when synchronised: once per coupling in exact mode).
    const auto guarded = [&](int l, const char* what, const std::function<void()>& op) {
        try {
            op();
            if (sdt == DType::I64 && !be.is_host()) be.synchronize();
        } catch (const StreamRangeError& e) {
            throw StreamRangeError(cfg_.layer_label(tag(l)) + ", " + what + ": " + e.what(), e.value());
        }
    };
    guarded(prefix_, "the streams' input h (x1 = x2 = h)", [&] {
        be.stream_write(s1_, x);  // duplicate: x1 = x2 = h
        be.stream_write(s2_, x);
    });
    state_.assign(static_cast<std::size_t>(N), LayerState{});
    Tensor buf[2] = {s1_, s2_};
    int b1 = 0;  // which buffer holds x1
    for (int l = prefix_; l < N; ++l) {
        LayerState& st = state_[static_cast<std::size_t>(l)];
        const bool rev = l < prefix_ + reversible_;
        Tensor X1 = buf[b1], X2 = buf[1 - b1];
        st.b1 = b1;
        if ((method_.meft.keep_true_inputs || env.check_reconstruction) && rev) {
            st.true_x1 = env.saved.alloc(sdt, hs, tag(l), "meft.debug_inputs");
            st.true_x2 = env.saved.alloc(sdt, hs, tag(l), "meft.debug_inputs");
            be.copy(st.true_x1, X1);
            be.copy(st.true_x2, X2);
        }
        if (rev) {
            if (method_.meft.exact && ml > 1)
                st.rem1 = env.saved.alloc(DType::U8, {remainder_bytes(n, ml)}, tag(l), "meft.remainder");
            if (method_.meft.exact && mb > 1)
                st.rem2 = env.saved.alloc(DType::U8, {remainder_bytes(n, mb)}, tag(l), "meft.remainder");
            // Chunk by chunk, nothing kept: y1 = λ x1 + F(x2), then y2 = β x2 + G(y1) (a chunk's
            // y1 is all its G reads).
            for_chunks(B, [&](std::int64_t b0, std::int64_t m) {
                const StackEnv ce = chunk_env(env, b0, m);
                const Tensor in = in_buf_.rows(0, m), h1 = h1_buf_ ? h1_buf_.rows(0, m) : Tensor{};
                be.stream_read(in, X2.rows(b0, m));
                const Tensor f = output_only(f_fn_, l, in, h1, ce);
                guarded(l, "coupling y1 = λ·x1 + F(x2)",
                        [&] { be.coupling_forward(X1.rows(b0, m), remainder_part(st.rem1, ml, T * C, b0, m), f, ml); });
                be.stream_read(in, X1.rows(b0, m));
                const Tensor g = output_only(g_fn_, l, in, h1, ce);
                guarded(l, "coupling y2 = β·x2 + G(y1)",
                        [&] { be.coupling_forward(X2.rows(b0, m), remainder_part(st.rem2, mb, T * C, b0, m), g, mb); });
            });
            env.tape.reset();
        } else {  // vanilla layers: the whole batch, tapes kept for ordinary backprop
            st.f_in = env.saved.alloc(dt, hs, tag(l), "meft.f_input");
            be.stream_read(st.f_in, X2);
            Tensor f = run_forward(f_fn_, l, st.f_acts, st.f_adapter, st.f_in, env, env.saved);
            guarded(l, "coupling y1 = λ·x1 + F(x2)", [&] { be.coupling_forward(X1, st.rem1, f, ml); });
            st.g_in = env.saved.alloc(dt, hs, tag(l), "meft.g_input");
            be.stream_read(st.g_in, X1);
            Tensor g = run_forward(g_fn_, l, st.g_acts, st.g_adapter, st.g_in, env, env.saved);
            guarded(l, "coupling y2 = β·x2 + G(y1)", [&] { be.coupling_forward(X2, st.rem2, g, mb); });
        }
        if (swap_) b1 = 1 - b1;
        if (l == prefix_ + reversible_ - 1 && vanilla_ > 0) {  // keep the reversible segment's output
            boundary1_ = env.saved.alloc(sdt, hs, tag(l), "meft.segment_output");
            boundary2_ = env.saved.alloc(sdt, hs, tag(l), "meft.segment_output");
            be.copy(boundary1_, s1_);
            be.copy(boundary2_, s2_);
        }
    }
    // Top merge: w1·(first half) + w2·(second half), the first half being the buffer the next
    // layer would read as x1. Only the head reads it, in forward: scratch, not saved.
    top_b1_ = b1;
    Tensor merged = env.scratch.alloc(dt, hs);
    Tensor other = env.tmp.alloc(dt, cs);
    for_chunks(B, [&](std::int64_t b0, std::int64_t m) {
        const Tensor out = merged.rows(b0, m), o = other.rows(0, m);
        be.stream_read(out, buf[b1].rows(b0, m));
        be.stream_read(o, buf[1 - b1].rows(b0, m));
        be.scale(out, merge_first_);
        be.axpy(out, o, merge_second_);
    });
    return merged;
}

void MeftEncoder::backward(Tensor d, const StackEnv& env) {
    Backend& be = env.be;
    const Shape hs = d.shape;
    const DType dt = d.dtype;
    const int N = static_cast<int>(layers_.size()), ml = method_.meft.lambda_inverse, mb = method_.meft.beta_inverse;
    const std::int64_t B = hs[0], T = hs[1], C = hs[2];
    // d itself carries the first stream's gradient. du (G's input gradient) is consumed before
    // F's input gradient dv is written, so one buffer serves both: a chunk's, unless vanilla
    // layers (whole batch) need it too.
    Tensor dS[2] = {d, env.scratch.alloc(dt, hs, -1, "meft.d_stream2")};
    const Shape cs{chunk_, T, C};
    Tensor du = env.scratch.alloc(dt, vanilla_ > 0 ? hs : cs, -1, "meft.d_sub_input"), dv = du;
    // merge: d(first) = w1·d, d(second) = w2·d
    be.copy(dS[1], dS[0]);
    be.scale(dS[top_b1_], merge_first_);
    be.scale(dS[1 - top_b1_], merge_second_);
    Tensor buf[2] = {s1_, s2_};
    in_buf_ = env.scratch.alloc(dt, cs, -1, "meft.sub_input");
    h1_buf_ = f_fn_ == Fn::Layer || g_fn_ == Fn::Layer ? env.scratch.alloc(dt, cs, -1, "meft.h1") : Tensor{};
    recon_error_.clear();
    if (method_.meft.keep_true_inputs || env.check_reconstruction) recon_error_.assign(static_cast<std::size_t>(N), 0.0);
    for (int l = N - 1; l >= prefix_; --l) {
        LayerState& st = state_[static_cast<std::size_t>(l)];
        const bool rev = l < prefix_ + reversible_;
        if (l == prefix_ + reversible_ - 1 && vanilla_ > 0) {  // back into the reversible segment
            be.copy(s1_, boundary1_);
            be.copy(s2_, boundary2_);
        }
        const int b1 = st.b1;
        Tensor Y1 = buf[b1], Y2 = buf[1 - b1], dY1 = dS[b1], dY2 = dS[1 - b1];
        const std::size_t start = env.meter ? env.meter->current : 0;
        if (env.meter) env.meter->reset_peak();
        if (rev) {  // chunk by chunk, in the forward's chunks
            for_chunks(B, [&](std::int64_t b0, std::int64_t m) {
                const StackEnv ce = chunk_env(env, b0, m);
                const Tensor in = in_buf_.rows(0, m), h1 = h1_buf_ ? h1_buf_.rows(0, m) : Tensor{};
                const Tensor du_c = du.rows(0, m), dY1_c = dY1.rows(b0, m), dY2_c = dY2.rows(b0, m);
                const Tensor Y1_c = Y1.rows(b0, m), Y2_c = Y2.rows(b0, m);
                // G: u = J_G^T dY2, G's parameter gradients; rebuild x2 = (y2 - G(y1)) / β
                be.stream_read(in, Y1_c);
                recompute_backward(g_fn_, l, in, dY2_c, du_c, h1, ce, [&](Tensor g) {
                    be.coupling_inverse(Y2_c, remainder_part(st.rem2, mb, T * C, b0, m), g, mb);
                });
                be.accumulate(dY1_c, du_c);  // z = dY1 + u: y1 feeds the output and G
                // F: v = J_F^T z, F's parameter gradients; rebuild x1 = (y1 - F(x2)) / λ
                be.stream_read(in, Y2_c);  // x2, rebuilt
                recompute_backward(f_fn_, l, in, dY1_c, du_c, h1, ce, [&](Tensor f) {
                    be.coupling_inverse(Y1_c, remainder_part(st.rem1, ml, T * C, b0, m), f, ml);
                });
                be.scale(dY1_c, method_.meft.lambda());  // d(x1) = λ z
                be.scale(dY2_c, method_.meft.beta());    // d(x2) = β dY2 + v
                be.accumulate(dY2_c, du_c);
            });
        } else {
            run_backward(g_fn_, l, st.g_acts, st.g_adapter, dY2, du, env, env.saved);
            be.accumulate(dY1, du);
            run_backward(f_fn_, l, st.f_acts, st.f_adapter, dY1, dv, env, env.saved);
            be.scale(dY1, method_.meft.lambda());
            be.scale(dY2, method_.meft.beta());
            be.accumulate(dY2, dv);
        }
        if (env.meter && env.transient) (*env.transient)[static_cast<std::size_t>(tag(l) + 1)] = env.meter->peak - start;
        if (st.true_x1) {  // diagnostic: how far the rebuilt inputs are from the forward's
            auto host = [&](Tensor s) {
                std::vector<double> v(static_cast<std::size_t>(s.numel()));
                if (s.dtype == DType::F64) {
                    be.download(v.data(), s);
                } else {
                    std::vector<std::int64_t> raw(v.size());
                    be.download(raw.data(), s);
                    for (std::size_t i = 0; i < v.size(); ++i) v[i] = std::ldexp(double(raw[i]), -kStreamFractionBits);
                }
                return v;
            };
            double err = 0, norm = 0;
            for (auto [rebuilt, truth] : {std::pair{Y1, st.true_x1}, std::pair{Y2, st.true_x2}}) {
                const std::vector<double> a = host(rebuilt), b = host(truth);
                for (std::size_t i = 0; i < a.size(); ++i) err += (a[i] - b[i]) * (a[i] - b[i]), norm += b[i] * b[i];
            }
            recon_error_[static_cast<std::size_t>(l)] = norm > 0 ? std::sqrt(err / norm) : 0.0;
        }
    }
    // h was duplicated into both streams. Below a frozen prefix nothing trains: stop there.
    if (prefix_ == 0) {
        be.add(d, d, dS[1]);  // dS[0] is d
    } else {
        be.fill(d, 0.0);
    }
}

}  // namespace meft
