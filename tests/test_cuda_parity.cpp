// CPU-vs-CUDA parity (label cuda), in the spirit of ggml's test-backend-ops: every Backend op in
// float32 and float64 on odd and BERT-base shapes, whole models with every method, and MEFT's
// reversibility, each on the candidate backend against the CPU reference. The harness (guard
// bytes, NMSE, exact and mask comparisons) is in parity_harness.h.
//
// Candidate: make_backend("cuda"); every test skips ("no CUDA backend here: <why>") where
// cuda_backend_available() says no. MEFT_PARITY_CANDIDATE=cpu makes it a second CPU backend
// (ctest: test_parity_selfcheck), which proves the harness without a GPU: the same cases pass,
// injected faults are reported, and float32 CPU results against float64 ones stay inside the
// float32 tolerance. MEFT_PARITY_FULL=1 adds the large shapes to the self-check.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <memory>
#include <random>
#include <tuple>

#include "peft/method.h"
#include "core/backend_select.h"
#include "core/cpu_backend.h"
#include "model/sequence_classifier.h"
#include "parity_harness.h"
#include "test_support.h"
#include "train/memory_plan.h"
#if defined(MEFT_CUDA_HOST_EMULATION)
#include "cuda_backend.h"  // kernels/: the emulated CUDA backend
#endif

using namespace meft;
using namespace meft::parity;

namespace {

// ---- the two backends -----------------------------------------------------------------------------

struct Backends {
    std::unique_ptr<Backend> ref, cand;
    bool self_check = false;
    bool emulated = false;    // the CUDA backend's sources on the host emulation (tests/cuda_emulation)
    std::string no_cuda;      // why there is no candidate (tests skip)
    std::string setup_error;  // a candidate should exist but could not be made (tests fail)
};

Backends& backends() {
    static Backends b = [] {
        Backends x;
        x.ref = make_cpu_backend();
        const char* env = std::getenv("MEFT_PARITY_CANDIDATE");
        const std::string which = env && *env ? env : "cuda";
        if (which == "cpu") {
            x.self_check = true;
            x.cand = make_cpu_backend();
            return x;
        }
        if (which == "emulated") {
#if defined(MEFT_CUDA_HOST_EMULATION)
            x.emulated = true;
            x.cand = cuda::make_cuda_backend({});
#else
            x.setup_error = "MEFT_PARITY_CANDIDATE=emulated: this executable is not linked with the emulated CUDA backend "
                            "(run test_cuda_emulated)";
#endif
            return x;
        }
        if (which != "cuda") {
            x.setup_error = "MEFT_PARITY_CANDIDATE=" + which +
                            ": expected \"cpu\" (self-check), \"emulated\" (test_cuda_emulated) or \"cuda\"";
            return x;
        }
        std::string why;
        if (!cuda_backend_available(&why)) {
            x.no_cuda = why.empty() ? "cuda_backend_available() is false" : why;
            return x;
        }
        try {
            x.cand = make_backend("cuda");
        } catch (const std::exception& e) {
            x.setup_error = std::string("cuda_backend_available() is true but make_backend(\"cuda\") threw: ") + e.what();
        }
        return x;
    }();
    return b;
}

// The large shapes (BERT-base ops, deep reversibility at 1M stream elements): always with a real
// candidate; in self-check mode only with MEFT_PARITY_FULL=1 (two CPU runs of them are slow).
bool big() {
    static const bool b = [] {
        const char* e = std::getenv("MEFT_PARITY_FULL");
        return !(backends().self_check || backends().emulated) || (e && std::string(e) == "1");
    }();
    return b;
}

// Derived inputs (LayerNorm statistics, softmax probabilities, coupled streams) are computed on
// the host by a CPU backend over host tensors, then uploaded to both backends like any input.
Backend& host_cpu() {
    static std::unique_ptr<Backend> b = make_cpu_backend();
    return *b;
}

using Cases = std::vector<OpCase>;
using Ts = std::vector<Tensor>;

const char* dn(DType dt) { return dt == DType::F32 ? "f32" : "f64"; }

std::string dims(std::initializer_list<std::pair<const char*, std::int64_t>> d) {
    std::string s;
    for (const auto& [k, v] : d) {
        if (!s.empty()) s += ' ';
        s.append(k).append("=").append(std::to_string(v));
    }
    return s;
}

OpCase mk(std::string name, DType dt, std::vector<Slot> slots, std::function<void(Backend&, const Ts&)> f) {
    OpCase c;
    c.name = std::move(name);
    c.dtype = dt;
    c.slots = std::move(slots);
    c.run = [f = std::move(f)](Backend& be, const Ts& t) {
        f(be, t);
        return std::vector<double>{};
    };
    return c;
}

HostTensor rn(DType dt, Shape s, std::uint64_t seed, double mean = 0, double sd = 1) {
    return random_normal(dt, s, seed, mean, sd);
}

// ---- op cases -------------------------------------------------------------------------------------

Cases data_movement_cases(DType dt) {
    Cases cs;
    std::vector<Shape> shapes = {{1}, {7}, {259}, {2, 7, 37}, {4099}};
    if (big()) shapes.push_back({2, 128, 768});
    std::uint64_t seed = 100;
    for (const Shape& s : shapes) {
        const std::string sl = s.str();
        cs.push_back(mk("fill " + std::string(dn(dt)) + " " + sl, dt, {out("t", HostTensor(dt, s))},
                        [](Backend& be, const Ts& t) { be.fill(t[0], 0.37); }));
        cs.push_back(mk("fill " + std::string(dn(dt)) + " " + sl + " zero", dt, {inout("t", rn(dt, s, ++seed))},
                        [](Backend& be, const Ts& t) { be.fill(t[0], 0.0); }));
        cs.push_back(mk("copy " + std::string(dn(dt)) + " " + sl, dt, {out("dst", HostTensor(dt, s)), in("src", rn(dt, s, ++seed))},
                        [](Backend& be, const Ts& t) { be.copy(t[0], t[1]); }));
        cs.push_back(mk("accumulate " + std::string(dn(dt)) + " " + sl, dt,
                        {inout("dst", rn(dt, s, ++seed)), in("src", rn(dt, s, ++seed))},
                        [](Backend& be, const Ts& t) { be.accumulate(t[0], t[1]); }));
        cs.push_back(mk("axpy " + std::string(dn(dt)) + " " + sl, dt, {inout("dst", rn(dt, s, ++seed)), in("src", rn(dt, s, ++seed))},
                        [](Backend& be, const Ts& t) { be.axpy(t[0], t[1], -0.7); }));
        cs.push_back(mk("add " + std::string(dn(dt)) + " " + sl, dt,
                        {out("out", HostTensor(dt, s)), in("a", rn(dt, s, ++seed)), in("b", rn(dt, s, ++seed))},
                        [](Backend& be, const Ts& t) { be.add(t[0], t[1], t[2]); }));
        cs.push_back(mk("add " + std::string(dn(dt)) + " " + sl + " out=a", dt, {inout("a", rn(dt, s, ++seed)), in("b", rn(dt, s, ++seed))},
                        [](Backend& be, const Ts& t) { be.add(t[0], t[0], t[1]); }));
        cs.push_back(mk("add " + std::string(dn(dt)) + " " + sl + " out=b", dt, {in("a", rn(dt, s, ++seed)), inout("b", rn(dt, s, ++seed))},
                        [](Backend& be, const Ts& t) { be.add(t[1], t[0], t[1]); }));
        cs.push_back(mk("scale " + std::string(dn(dt)) + " " + sl, dt, {inout("t", rn(dt, s, ++seed))},
                        [](Backend& be, const Ts& t) { be.scale(t[0], -1.5); }));
        OpCase ss;
        ss.name = "sum_squares " + std::string(dn(dt)) + " " + sl;
        ss.dtype = dt;
        ss.slots = {in("t", rn(dt, s, ++seed, 0.3, 2))};
        ss.run = [](Backend& be, const Ts& t) { return std::vector<double>{be.sum_squares(t[0])}; };
        cs.push_back(ss);
    }
    OpCase ss;
    ss.name = "sum_squares " + std::string(dn(dt)) + " [3072, 768]";
    ss.dtype = dt;
    ss.slots = {in("t", rn(dt, {3072, 768}, ++seed, 0, 0.02))};
    ss.run = [](Backend& be, const Ts& t) { return std::vector<double>{be.sum_squares(t[0])}; };
    cs.push_back(ss);
    // copy moves any dtype: MEFT copies its I64 streams, U8 remainders travel with them
    if (dt == DType::F32) {
        for (DType it : {DType::I64, DType::U8, DType::I32}) {
            cs.push_back(mk("copy " + std::string(dtype_name(it)) + " [259]", dt,
                            {out("dst", HostTensor(it, {259})), in("src", random_bytes(it, {259}, ++seed))},
                            [](Backend& be, const Ts& t) { be.copy(t[0], t[1]); }));
        }
    }
    return cs;
}

Cases upload_download_cases(DType dt) {
    Cases cs;
    std::uint64_t seed = 200;
    const std::vector<DType> types = dt == DType::F32 ? std::vector<DType>{DType::F32, DType::I32, DType::I64, DType::U8}
                                                      : std::vector<DType>{DType::F64};
    for (DType t : types) {
        for (std::int64_t n : {std::int64_t(1), std::int64_t(3), std::int64_t(259), std::int64_t((1 << 20) + 3)}) {
            HostTensor h = is_floating(t) ? rn(t, {n}, ++seed) : random_bytes(t, {n}, ++seed);
            OpCase c = mk("upload/download " + std::string(dtype_name(t)) + " [" + std::to_string(n) + "]", dt, {inout("t", h)},
                          [](Backend&, const Ts&) {});
            c.candidate_check = [h](const std::vector<HostTensor>& after, std::vector<std::string>& f) {
                if (after[0].bytes != h.bytes) f.push_back("download after upload differs from the uploaded bytes");
            };
            cs.push_back(c);
        }
    }
    // upload into rows of a tensor, download a row range
    const HostTensor rows = rn(dt, {2, 37}, ++seed);
    OpCase c = mk("upload/download rows " + std::string(dn(dt)) + " [5, 37] rows 2..3", dt, {inout("t", rn(dt, {5, 37}, ++seed))},
                  [rows](Backend& be, const Ts& t) {
                      be.upload(t[0].rows(2, 2), rows.data());
                      std::vector<unsigned char> back(rows.bytes.size());
                      be.download(back.data(), t[0].rows(2, 2));
                      if (back != rows.bytes) throw Error("rows downloaded differ from rows uploaded");
                  });
    cs.push_back(c);
    return cs;
}

struct Lin {
    Shape inp;  // [N, C] or [B, T, C]
    std::int64_t OC;
};

Cases linear_cases(DType dt) {
    Cases cs;
    std::vector<Lin> shapes = {{{14, 37}, 19}, {{2, 7, 37}, 19}, {{1, 5}, 3}, {{99, 96}, 130}};
    if (big()) shapes.insert(shapes.end(), {{{2, 128, 768}, 3072}, {{2, 128, 3072}, 768}, {{2, 128, 768}, 2304}});
    std::uint64_t seed = 300;
    for (const Lin& l : shapes) {
        const std::int64_t C = l.inp[-1], N = l.inp.numel() / C, OC = l.OC;
        const Shape os = l.inp.with_last(OC);
        const std::string sl = " " + dims({{"N", N}, {"C", C}, {"OC", OC}}) + (l.inp.ndim == 3 ? " 3-d" : "");
        const HostTensor inp = rn(dt, l.inp, ++seed), w = rn(dt, {OC, C}, ++seed, 0, 0.05), b = rn(dt, {OC}, ++seed, 0, 0.1);
        const HostTensor dout = rn(dt, os, ++seed), dw = rn(dt, {OC, C}, ++seed), db = rn(dt, {OC}, ++seed),
                         dinp = rn(dt, l.inp, ++seed);
        auto fwd = [](Backend& be, const Ts& t) { be.linear_forward(t[0], t[1], t[2], t[3]); };
        cs.push_back(mk("linear_forward " + std::string(dn(dt)) + sl + " bias", dt,
                        {out("out", HostTensor(dt, os)), in("inp", inp), in("w", w), in("b", b)}, fwd));
        cs.push_back(mk("linear_forward " + std::string(dn(dt)) + sl + " no bias", dt,
                        {out("out", HostTensor(dt, os)), in("inp", inp), in("w", w), none("b", dt, {OC})}, fwd));
        for (int variant = 0; variant < 5; ++variant) {
            // 0: all, assign; 1: all, accumulate dinp; 2: no dinp; 3: no db; 4: dinp only (frozen weight)
            const bool acc = variant == 1;
            std::vector<Slot> s;
            s.push_back(variant == 2 ? none("dinp", dt, l.inp) : acc ? inout("dinp", dinp) : out("dinp", HostTensor(dt, l.inp)));
            s.push_back(variant == 4 ? none("dw", dt, {OC, C}) : inout("dw", dw));
            s.push_back(variant >= 3 ? none("db", dt, {OC}) : inout("db", db));
            s.push_back(in("dout", dout));
            s.push_back(in("inp", inp));
            s.push_back(in("w", w));
            static const char* names[] = {"", " accumulate_dinp", " no dinp", " no db", " dinp only"};
            cs.push_back(mk("linear_backward " + std::string(dn(dt)) + sl + names[variant], dt, s, [acc](Backend& be, const Ts& t) {
                be.linear_backward(t[0], t[1], t[2], t[3], t[4], t[5], acc);
            }));
        }
    }
    return cs;
}

Cases layernorm_cases(DType dt) {
    Cases cs;
    std::vector<std::pair<std::int64_t, std::int64_t>> shapes = {{14, 37}, {1, 5}, {99, 96}};
    if (big()) shapes.push_back({256, 768});
    std::uint64_t seed = 400;
    for (const auto& [N, C] : shapes) {
        for (double eps : {1e-12, 1e-5}) {
            const std::string sl = " " + dims({{"N", N}, {"C", C}}) + (eps < 1e-6 ? " eps=1e-12" : " eps=1e-5");
            HostTensor inp = rn(dt, {N, C}, ++seed, 3, 2), w = rn(dt, {C}, ++seed, 1, 0.1), b = rn(dt, {C}, ++seed, 0, 0.1);
            cs.push_back(mk("layernorm_forward " + std::string(dn(dt)) + sl, dt,
                            {out("out", HostTensor(dt, {N, C})), out("mean", HostTensor(dt, {N})), out("rstd", HostTensor(dt, {N})),
                             in("inp", inp), in("w", w), in("b", b)},
                            [eps](Backend& be, const Ts& t) { be.layernorm_forward(t[0], t[1], t[2], t[3], t[4], t[5], eps); }));
            HostTensor o(dt, {N, C}), mean(dt, {N}), rstd(dt, {N});
            host_cpu().layernorm_forward(o.view(), mean.view(), rstd.view(), inp.view(), w.view(), b.view(), eps);
            const HostTensor dout = rn(dt, {N, C}, ++seed), dinp = rn(dt, {N, C}, ++seed), dw = rn(dt, {C}, ++seed),
                             db = rn(dt, {C}, ++seed);
            for (int variant = 0; variant < 4; ++variant) {
                // 0: assign; 1: accumulate; 2: no dw/db (frozen LayerNorm); 3: no dinp
                const bool acc = variant == 1;
                std::vector<Slot> s;
                s.push_back(variant == 3 ? none("dinp", dt, {N, C}) : acc ? inout("dinp", dinp) : out("dinp", HostTensor(dt, {N, C})));
                s.push_back(variant == 2 ? none("dw", dt, {C}) : inout("dw", dw));
                s.push_back(variant == 2 ? none("db", dt, {C}) : inout("db", db));
                for (Slot x : {in("dout", dout), in("inp", inp), in("w", w), in("mean", mean), in("rstd", rstd)}) s.push_back(x);
                static const char* names[] = {"", " accumulate_dinp", " no dw/db", " no dinp"};
                cs.push_back(mk("layernorm_backward " + std::string(dn(dt)) + sl + names[variant], dt, s, [acc](Backend& be, const Ts& t) {
                    be.layernorm_backward(t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7], acc);
                }));
            }
        }
    }
    return cs;
}

Cases activation_cases(DType dt) {
    Cases cs;
    std::vector<Shape> shapes = {{259}, {2, 7, 37}, {4099}};
    if (big()) shapes.push_back({2, 128, 3072});
    std::uint64_t seed = 500;
    for (const Shape& s : shapes) {
        const std::string sl = " " + s.str();
        const HostTensor x = rn(dt, s, ++seed, 0, 3), g = rn(dt, s, ++seed);
        HostTensor y(dt, s);
        for (std::int64_t i = 0; i < y.numel(); ++i) y.set(i, dt == DType::F32 ? double(std::tanh(float(x.get(i)))) : std::tanh(x.get(i)));
        cs.push_back(mk("gelu_forward " + std::string(dn(dt)) + sl, dt, {out("out", HostTensor(dt, s)), in("inp", x)},
                        [](Backend& be, const Ts& t) { be.gelu_forward(t[0], t[1]); }));
        cs.push_back(mk("gelu_backward " + std::string(dn(dt)) + sl, dt, {out("dinp", HostTensor(dt, s)), in("dout", g), in("inp", x)},
                        [](Backend& be, const Ts& t) { be.gelu_backward(t[0], t[1], t[2]); }));
        cs.push_back(mk("tanh_forward " + std::string(dn(dt)) + sl, dt, {out("out", HostTensor(dt, s)), in("inp", x)},
                        [](Backend& be, const Ts& t) { be.tanh_forward(t[0], t[1]); }));
        cs.push_back(mk("tanh_backward " + std::string(dn(dt)) + sl, dt, {out("dinp", HostTensor(dt, s)), in("dout", g), in("out", y)},
                        [](Backend& be, const Ts& t) { be.tanh_backward(t[0], t[1], t[2]); }));
        cs.push_back(mk("relu_forward " + std::string(dn(dt)) + sl, dt, {out("out", HostTensor(dt, s)), in("inp", x)},
                        [](Backend& be, const Ts& t) { be.relu_forward(t[0], t[1]); }));
        cs.push_back(mk("relu_backward " + std::string(dn(dt)) + sl, dt, {out("dinp", HostTensor(dt, s)), in("dout", g), in("inp", x)},
                        [](Backend& be, const Ts& t) { be.relu_backward(t[0], t[1], t[2]); }));
    }
    return cs;
}

Cases channel_scale_cases(DType dt) {
    Cases cs;
    std::vector<Shape> shapes = {{14, 37}, {2, 7, 37}, {99, 96}};
    if (big()) shapes.push_back({2, 128, 3072});
    std::uint64_t seed = 600;
    for (const Shape& s : shapes) {
        const std::int64_t C = s[-1];
        const std::string sl = " " + s.str();
        const HostTensor x = rn(dt, s, ++seed), sc = rn(dt, {C}, ++seed, 1, 0.2), g = rn(dt, s, ++seed), ds = rn(dt, {C}, ++seed);
        cs.push_back(mk("channel_scale_forward " + std::string(dn(dt)) + sl, dt, {out("out", HostTensor(dt, s)), in("inp", x), in("scale", sc)},
                        [](Backend& be, const Ts& t) { be.channel_scale_forward(t[0], t[1], t[2]); }));
        for (int variant = 0; variant < 3; ++variant) {  // 0: both; 1: no dscale; 2: no dinp
            static const char* names[] = {"", " no dscale", " no dinp"};
            cs.push_back(mk("channel_scale_backward " + std::string(dn(dt)) + sl + names[variant], dt,
                            {variant == 2 ? none("dinp", dt, s) : out("dinp", HostTensor(dt, s)),
                             variant == 1 ? none("dscale", dt, {C}) : inout("dscale", ds), in("dout", g), in("inp", x), in("scale", sc)},
                            [](Backend& be, const Ts& t) { be.channel_scale_backward(t[0], t[1], t[2], t[3], t[4]); }));
        }
    }
    return cs;
}

// VeRA's column slices and DoRA's row normalisation (with and without the norm's gradient).
Cases method_op_cases(DType dt) {
    Cases cs;
    std::uint64_t seed = 650;
    for (const auto& [R, C, c, first] : {std::tuple<std::int64_t, std::int64_t, std::int64_t, std::int64_t>{3, 16, 8, 0},
                                         {7, 37, 5, 30}, {256, 3072, 768, 0}}) {
        const HostTensor src = rn(dt, {R, C}, ++seed);
        cs.push_back(mk("copy_columns " + std::string(dn(dt)) + " " + Shape{R, C}.str() + " [" + std::to_string(first) + ", +" +
                            std::to_string(c) + ")",
                        dt, {out("dst", HostTensor(dt, {R, c})), in("src", src)},
                        [first](Backend& be, const Ts& t) { be.copy_columns(t[0], t[1], first); }));
    }
    for (const auto& [R, C] : {std::pair<std::int64_t, std::int64_t>{1, 1}, {5, 37}, {33, 64}, {768, 3072}}) {
        const std::string sl = " " + Shape{R, C}.str();
        const HostTensor w = rn(dt, {R, C}, ++seed), m = rn(dt, {R}, ++seed, 1, 0.3), dg = rn(dt, {R}, ++seed),
                         dm = rn(dt, {R}, ++seed);
        cs.push_back(mk("weight_norm_forward " + std::string(dn(dt)) + sl, dt,
                        {out("g", HostTensor(dt, {R})), out("norm", HostTensor(dt, {R})), in("m", m), in("w", w)},
                        [](Backend& be, const Ts& t) { be.weight_norm_forward(t[0], t[1], t[2], t[3]); }));
        // the norm as forward computes it, on the reference backend, as a fixed input
        HostTensor norm(dt, {R});
        for (std::int64_t r = 0; r < R; ++r) {
            double ss = 0;
            for (std::int64_t j = 0; j < C; ++j) ss += w.get(r * C + j) * w.get(r * C + j);
            norm.set(r, std::sqrt(ss));
        }
        for (bool exact : {true, false})
            cs.push_back(mk("weight_norm_backward " + std::string(dn(dt)) + sl + (exact ? "" : " detached"), dt,
                            {inout("dm", dm), exact ? out("dw", HostTensor(dt, {R, C})) : none("dw", dt, {R, C}), in("dg", dg),
                             in("m", m), in("w", w), in("norm", norm)},
                            [](Backend& be, const Ts& t) { be.weight_norm_backward(t[0], t[1], t[2], t[3], t[4], t[5]); }));
    }
    return cs;
}

const PhiloxKey kKey = philox_key(0x0123456789abcdefull, 7, dropout_site(2, 3));

Cases dropout_cases(DType dt) {
    Cases cs;
    std::vector<Shape> shapes = {{2, 7, 37}, {3, 33, 96}, {2, 3, 7, 11}, {1, 1}};
    if (big()) shapes.push_back({2, 128, 768});
    std::uint64_t seed = 700;
    for (const Shape& s : shapes) {
        for (double p : {0.0, 0.1}) {
            for (int off : {0, 5}) {
                if (p == 0 && off != 0) continue;
                const std::string sl = " " + s.str() + " p=" + (p == 0 ? "0" : "0.1") + " example_offset=" + std::to_string(off);
                const HostTensor x = rn(dt, s, ++seed);
                for (bool bwd : {false, true}) {
                    const std::string op = bwd ? "dropout_backward " : "dropout_forward ";
                    Slot o = out(bwd ? "dinp" : "out", HostTensor(dt, s));
                    o.mask = true;
                    auto f = [p, off, bwd](Backend& be, const Ts& t) {
                        bwd ? be.dropout_backward(t[0], t[1], p, kKey, off) : be.dropout_forward(t[0], t[1], p, kKey, off);
                    };
                    cs.push_back(mk(op + dn(dt) + sl, dt, {o, in(bwd ? "dout" : "inp", x)}, f));
                    Slot io = inout("x", x);  // in place: out aliases inp, as the model calls it
                    io.mask = true;
                    cs.push_back(mk(op + dn(dt) + sl + " in place", dt, {io}, [p, off, bwd](Backend& be, const Ts& t) {
                        bwd ? be.dropout_backward(t[0], t[0], p, kKey, off) : be.dropout_forward(t[0], t[0], p, kKey, off);
                    }));
                }
            }
        }
    }
    return cs;
}

Cases embedding_cases(DType dt) {
    struct E {
        int B, T, C, V, P, id_range;
    };
    std::vector<E> shapes = {{2, 7, 37, 11, 16, 11}, {3, 5, 8, 40, 64, 4}};
    if (big()) shapes.push_back({2, 128, 768, 1000, 512, 50});
    Cases cs;
    std::uint64_t seed = 800;
    for (const E& e : shapes) {
        const std::string sl = " " + dims({{"B", e.B}, {"T", e.T}, {"C", e.C}, {"V", e.V}});
        std::vector<std::int64_t> ids, pos, types;
        std::mt19937_64 rng(++seed);
        for (int b = 0; b < e.B; ++b)
            for (int t = 0; t < e.T; ++t) {
                ids.push_back(static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(e.id_range)));  // repeats
                pos.push_back(t);
                types.push_back(t >= e.T / 2 ? 1 : 0);
            }
        const Shape bt{e.B, e.T}, btc{e.B, e.T, e.C};
        const HostTensor I = from_ints(DType::I32, bt, ids), P = from_ints(DType::I32, bt, pos), Y = from_ints(DType::I32, bt, types);
        const HostTensor wte = rn(dt, {e.V, e.C}, ++seed, 0, 0.02), wpe = rn(dt, {e.P, e.C}, ++seed, 0, 0.02),
                         wtt = rn(dt, {2, e.C}, ++seed, 0, 0.02);
        cs.push_back(mk("embeddings_forward " + std::string(dn(dt)) + sl, dt,
                        {out("out", HostTensor(dt, btc)), in("ids", I), in("pos", P), in("types", Y), in("wte", wte), in("wpe", wpe),
                         in("wtt", wtt)},
                        [](Backend& be, const Ts& t) { be.embeddings_forward(t[0], t[1], t[2], t[3], t[4], t[5], t[6]); }));
        const HostTensor dout = rn(dt, btc, ++seed);
        // word ids repeat within and across examples; positions repeat across examples; the two
        // token types collect half the rows each
        for (const auto& [label, ids_t, rows] : {std::tuple{"word ids", I, e.V}, std::tuple{"positions", P, e.P}, std::tuple{"token types", Y, 2}})
            cs.push_back(mk("embedding_backward " + std::string(dn(dt)) + sl + " " + label, dt,
                            {inout("dtable", rn(dt, {rows, e.C}, ++seed)), in("dout", dout), in("ids", ids_t)},
                            [](Backend& be, const Ts& t) { be.embedding_backward(t[0], t[1], t[2]); }));
    }
    return cs;
}

struct Att {
    int B, Tq, P, C, NH;  // Tk = P + Tq: P prefix keys, always attended
    double p;
    int off;
    bool all_padding;     // the last example attends to nothing (probabilities and context 0)
    bool reveal;          // v (forward) and dctx (backward) one-hot, so ctx and dv show the mask
    bool causal = false;  // decoder attention: query i sees keys j <= i + P
};

Cases attention_cases(DType dt) {
    std::vector<Att> shapes = {
        {3, 7, 0, 39, 3, 0.0, 0, true, false},  {3, 7, 0, 39, 3, 0.1, 4, true, false},
        {2, 9, 5, 40, 4, 0.1, 3, false, false}, {2, 33, 12, 96, 6, 0.1, 0, false, false},
        {1, 1, 0, 8, 2, 0.1, 9, false, false},  {2, 7, 6, 32, 2, 0.25, 6, false, true},
        {2, 5, 0, 32, 2, 0.0, 0, true, true},
        {3, 7, 0, 39, 3, 0.0, 0, true, false, true},  {2, 9, 5, 40, 4, 0.1, 3, false, false, true},
        {2, 33, 12, 96, 6, 0.1, 0, false, false, true},
    };
    if (big()) shapes.insert(shapes.end(), {{2, 128, 0, 768, 12, 0.1, 0, false, false}, {2, 128, 20, 768, 12, 0.1, 2, false, false}});
    Cases cs;
    std::uint64_t seed = 900;
    for (const Att& a : shapes) {
        const int Tk = a.P + a.Tq, HS = a.C / a.NH;
        const std::string sl = " " + dims({{"B", a.B}, {"Tq", a.Tq}, {"Tk", Tk}, {"C", a.C}, {"NH", a.NH}}) + " p=" + std::to_string(a.p).substr(0, 4) +
                               " example_offset=" + std::to_string(a.off) + (a.all_padding ? " all-padding example" : "") +
                               (a.reveal ? " mask revealed" : "") + (a.causal ? " causal" : "");
        std::vector<std::int64_t> mask;
        for (int b = 0; b < a.B; ++b) {
            const int len = b == 0 ? a.Tq : std::max(1, a.Tq - 2 * b - (a.Tq > 64 ? 25 : 0));
            for (int j = 0; j < Tk; ++j) {
                const bool all_pad = a.all_padding && b == a.B - 1;
                mask.push_back(!all_pad && (j < a.P || j - a.P < len));
            }
        }
        const HostTensor M = from_ints(DType::I32, {a.B, Tk}, mask);
        const HostTensor q = rn(dt, {a.B, a.Tq, a.C}, ++seed), k = rn(dt, {a.B, Tk, a.C}, ++seed);
        HostTensor v = rn(dt, {a.B, Tk, a.C}, ++seed), dctx = rn(dt, {a.B, a.Tq, a.C}, ++seed);
        if (a.reveal) {  // v[b, j, h*HS + c] = (j == c): ctx[b, i, h*HS + j] = dropped P[i, j]
            MEFT_CHECK(Tk <= HS && a.Tq <= HS, "reveal needs Tk, Tq <= HS");
            for (int b = 0; b < a.B; ++b)
                for (int j = 0; j < Tk; ++j)
                    for (int c = 0; c < a.C; ++c) v.set((std::int64_t(b) * Tk + j) * a.C + c, (c % HS) == j ? 1.0 : 0.0);
            for (int b = 0; b < a.B; ++b)  // dctx[b, i, h*HS + c] = (i == c): dv[b, j, h*HS + i] = dropped P[i, j]
                for (int i = 0; i < a.Tq; ++i)
                    for (int c = 0; c < a.C; ++c) dctx.set((std::int64_t(b) * a.Tq + i) * a.C + c, (c % HS) == i ? 1.0 : 0.0);
        }
        const Shape ps{a.B, a.NH, a.Tq, Tk};
        Slot ctx = out("ctx", HostTensor(dt, {a.B, a.Tq, a.C}));
        ctx.mask = a.reveal;
        const double p = a.p;
        const int NH = a.NH, off = a.off;
        const bool causal = a.causal;
        cs.push_back(mk("attention_forward " + std::string(dn(dt)) + sl, dt,
                        {ctx, out("probs", HostTensor(dt, ps)), in("q", q), in("k", k), in("v", v), in("key_mask", M)},
                        [NH, p, off, causal](Backend& be, const Ts& t) {
                            be.attention_forward(t[0], t[1], t[2], t[3], t[4], t[5], NH, p, kKey, off, causal);
                        }));
        HostTensor ctx_h(dt, {a.B, a.Tq, a.C}), probs(dt, ps), qh = q, kh = k, vh = v, Mh = M;
        host_cpu().attention_forward(ctx_h.view(), probs.view(), qh.view(), kh.view(), vh.view(), Mh.view(), NH, p, kKey, off,
                                     causal);
        Slot dv = out("dv", HostTensor(dt, {a.B, Tk, a.C}));
        dv.mask = a.reveal;
        cs.push_back(mk("attention_backward " + std::string(dn(dt)) + sl, dt,
                        {out("dq", HostTensor(dt, {a.B, a.Tq, a.C})), out("dk", HostTensor(dt, {a.B, Tk, a.C})), dv, in("dctx", dctx),
                         in("q", q), in("k", k), in("v", v), in("probs", probs)},
                        [NH, p, off](Backend& be, const Ts& t) {
                            be.attention_backward(t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7], NH, p, kKey, off);
                        }));
    }
    return cs;
}

// Tiled attention (Backend::attention_tiled_*): its own shapes, chosen to cross the CUDA kernel's
// tiles (32 x 32 float32, 16 x 16 float64 forward; 32 x 16 and 16 x 8 backward) at odd lengths,
// head sizes 8, 24, 64 and 128, prefix keys with and without causal masking, cross-attention with
// more and with fewer keys than queries, dropout, and an example whose keys are all padding (its
// context 0, its log-sum-exp +inf).
struct TiledAtt {
    int B, Tq, Tk, C, NH;
    bool causal;          // query i sees keys j <= i + (Tk - Tq)
    double p;
    int off;
    bool all_padding;     // the last example attends to nothing
    bool reveal = false;  // v (forward) and dctx (backward) one-hot, so ctx and dv show the dropout mask
};

std::vector<TiledAtt> tiled_attention_shapes() {
    return {
        {3, 37, 37, 128, 2, false, 0.0, 0, true},         // HS 64, padding, a fully padded example
        {2, 37, 50, 128, 2, true, 0.1, 3, false, true},   // 13 prefix keys + causal (offset 13), mask revealed
        {2, 37, 50, 128, 2, false, 0.1, 1, true},         // prefix keys, not causal
        {2, 70, 131, 72, 3, false, 0.1, 5, false},        // cross-attention Tk > Tq, HS 24
        {2, 45, 20, 16, 2, false, 0.25, 2, true},         // cross-attention Tk < Tq, HS 8
        {2, 70, 70, 192, 3, true, 0.1, 0, false},         // decoder self-attention, HS 64
        {1, 33, 33, 256, 2, true, 0.1, 7, false},         // HS 128
        {1, 1, 3, 8, 2, false, 0.1, 9, false},           // one query (a softmax over one key has zero gradients)
        {2, 7, 13, 32, 2, false, 0.25, 6, false, true},   // the standard cases' revealed mask shape
    };
}

std::string tiled_label(const TiledAtt& a) {
    return " " + dims({{"B", a.B}, {"Tq", a.Tq}, {"Tk", a.Tk}, {"C", a.C}, {"NH", a.NH}}) + " p=" + std::to_string(a.p).substr(0, 4) +
           " example_offset=" + std::to_string(a.off) + (a.causal ? " causal" : "") +
           (a.all_padding ? " all-padding example" : "") + (a.reveal ? " mask revealed" : "");
}

// The inputs of one shape: q, k, v, dctx and the key mask [B, Tk] (example b > 0 loses 3b keys at
// the end, 25 more when Tk > 64; the keys before Tk - Tq are prefix keys, always attended).
struct TiledInputs {
    HostTensor q, k, v, dctx, mask;
};
TiledInputs tiled_inputs(const TiledAtt& a, DType dt, std::uint64_t seed) {
    const int HS = a.C / a.NH, P = std::max(0, a.Tk - a.Tq);
    std::vector<std::int64_t> mask;
    for (int b = 0; b < a.B; ++b) {
        const int len = b == 0 ? a.Tk : std::max(1, a.Tk - 3 * b - (a.Tk > 64 ? 25 : 0));
        for (int j = 0; j < a.Tk; ++j) mask.push_back(!(a.all_padding && b == a.B - 1) && (j < P || j < len));
    }
    TiledInputs in{rn(dt, {a.B, a.Tq, a.C}, seed + 1), rn(dt, {a.B, a.Tk, a.C}, seed + 2), rn(dt, {a.B, a.Tk, a.C}, seed + 3),
                   rn(dt, {a.B, a.Tq, a.C}, seed + 4), from_ints(DType::I32, {a.B, a.Tk}, mask)};
    if (a.reveal) {  // v[b, j, h*HS + c] = (j == c): ctx[b, i, h*HS + j] = dropped P[i, j]; dctx likewise for dv
        MEFT_CHECK(a.Tk <= HS && a.Tq <= HS, "reveal needs Tk, Tq <= HS");
        for (int b = 0; b < a.B; ++b)
            for (int j = 0; j < a.Tk; ++j)
                for (int c = 0; c < a.C; ++c) in.v.set((std::int64_t(b) * a.Tk + j) * a.C + c, (c % HS) == j ? 1.0 : 0.0);
        for (int b = 0; b < a.B; ++b)
            for (int i = 0; i < a.Tq; ++i)
                for (int c = 0; c < a.C; ++c) in.dctx.set((std::int64_t(b) * a.Tq + i) * a.C + c, (c % HS) == i ? 1.0 : 0.0);
    }
    return in;
}

DType lse_dtype(DType dt) { return dt == DType::F64 ? DType::F64 : DType::F32; }

// Forward and backward against the CPU's tiled op; backward from the CPU's ctx and lse.
Cases tiled_attention_cases(DType dt) {
    Cases cs;
    std::uint64_t seed = 1700;
    for (const TiledAtt& a : tiled_attention_shapes()) {
        const TiledInputs x = tiled_inputs(a, dt, seed += 10);
        const std::string sl = tiled_label(a);
        const int NH = a.NH, off = a.off;
        const double p = a.p;
        const bool causal = a.causal;
        const Shape qs{a.B, a.Tq, a.C}, ks{a.B, a.Tk, a.C}, ls{a.B, a.NH, a.Tq};
        Slot ctx = out("ctx", HostTensor(dt, qs));
        ctx.mask = a.reveal;
        cs.push_back(mk("attention_tiled_forward " + std::string(dn(dt)) + sl, dt,
                        {ctx, out("lse", HostTensor(lse_dtype(dt), ls)), in("q", x.q), in("k", x.k), in("v", x.v),
                         in("key_mask", x.mask)},
                        [NH, p, off, causal](Backend& be, const Ts& t) {
                            be.attention_tiled_forward(t[0], t[1], t[2], t[3], t[4], t[5], NH, p, kKey, off, causal);
                        }));
        HostTensor ctx_h(dt, qs), lse_h(lse_dtype(dt), ls), qh = x.q, kh = x.k, vh = x.v, mh = x.mask;
        host_cpu().attention_tiled_forward(ctx_h.view(), lse_h.view(), qh.view(), kh.view(), vh.view(), mh.view(), NH, p, kKey,
                                           off, causal);
        Slot dv = out("dv", HostTensor(dt, ks));
        dv.mask = a.reveal;
        cs.push_back(mk("attention_tiled_backward " + std::string(dn(dt)) + sl, dt,
                        {out("dq", HostTensor(dt, qs)), out("dk", HostTensor(dt, ks)), dv, in("dctx", x.dctx), in("q", x.q),
                         in("k", x.k), in("v", x.v), in("key_mask", x.mask), in("ctx", ctx_h), in("lse", lse_h)},
                        [NH, p, off, causal](Backend& be, const Ts& t) {
                            be.attention_tiled_backward(t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7], t[8], t[9], NH, p, kKey,
                                                        off, causal);
                        }));
    }
    return cs;
}

// Forward then backward (from its own ctx and lse) in one case: held against the standard attention.
OpCase tiled_chain_case(const TiledAtt& a, DType dt, const TiledInputs& x) {
    const int NH = a.NH, off = a.off;
    const double p = a.p;
    const bool causal = a.causal;
    return mk("tiled forward + backward " + std::string(dn(dt)) + tiled_label(a), dt,
              {out("ctx", HostTensor(dt, {a.B, a.Tq, a.C})), out("lse", HostTensor(lse_dtype(dt), {a.B, a.NH, a.Tq})),
               out("dq", HostTensor(dt, {a.B, a.Tq, a.C})), out("dk", HostTensor(dt, {a.B, a.Tk, a.C})),
               out("dv", HostTensor(dt, {a.B, a.Tk, a.C})), in("dctx", x.dctx), in("q", x.q), in("k", x.k), in("v", x.v),
               in("key_mask", x.mask)},
              [NH, p, off, causal](Backend& be, const Ts& t) {
                  be.attention_tiled_forward(t[0], t[1], t[6], t[7], t[8], t[9], NH, p, kKey, off, causal);
                  be.attention_tiled_backward(t[2], t[3], t[4], t[5], t[6], t[7], t[8], t[9], t[0], t[1], NH, p, kKey, off,
                                              causal);
              });
}

Cases prefix_and_first_token_cases(DType dt) {
    struct S {
        int B, P, T, C;
    };
    std::vector<S> shapes = {{2, 5, 7, 37}, {1, 1, 1, 3}, {3, 3, 33, 96}};
    if (big()) shapes.push_back({2, 20, 128, 768});
    Cases cs;
    std::uint64_t seed = 1000;
    for (const S& s : shapes) {
        const std::string sl = " " + dims({{"B", s.B}, {"P", s.P}, {"T", s.T}, {"C", s.C}});
        const Shape xs{s.B, s.T, s.C}, os{s.B, s.P + s.T, s.C}, pre{s.P, s.C};
        cs.push_back(mk("prefix_concat_forward " + std::string(dn(dt)) + sl, dt,
                        {out("out", HostTensor(dt, os)), in("prefix", rn(dt, pre, ++seed)), in("x", rn(dt, xs, ++seed))},
                        [](Backend& be, const Ts& t) { be.prefix_concat_forward(t[0], t[1], t[2]); }));
        const HostTensor dout = rn(dt, os, ++seed), dpre = rn(dt, pre, ++seed), dx = rn(dt, xs, ++seed);
        for (int variant = 0; variant < 3; ++variant) {  // 0: assign dx; 1: accumulate dx; 2: no dprefix
            static const char* names[] = {"", " accumulate", " no dprefix"};
            const bool acc = variant == 1;
            cs.push_back(mk("prefix_concat_backward " + std::string(dn(dt)) + sl + names[variant], dt,
                            {variant == 2 ? none("dprefix", dt, pre) : inout("dprefix", dpre), acc ? inout("dx", dx) : out("dx", HostTensor(dt, xs)),
                             in("dout", dout)},
                            [acc](Backend& be, const Ts& t) { be.prefix_concat_backward(t[0], t[1], t[2], acc); }));
        }
        cs.push_back(mk("first_token_forward " + std::string(dn(dt)) + sl, dt,
                        {out("out", HostTensor(dt, {s.B, s.C})), in("inp", rn(dt, xs, ++seed))},
                        [](Backend& be, const Ts& t) { be.first_token_forward(t[0], t[1]); }));
        const HostTensor g = rn(dt, {s.B, s.C}, ++seed);
        for (bool acc : {false, true})
            cs.push_back(mk("first_token_backward " + std::string(dn(dt)) + sl + (acc ? " accumulate" : ""), dt,
                            {acc ? inout("dinp", rn(dt, xs, ++seed)) : out("dinp", HostTensor(dt, xs)), in("dout", g)},
                            [acc](Backend& be, const Ts& t) { be.first_token_backward(t[0], t[1], acc); }));
    }
    return cs;
}

Cases loss_cases(DType dt) {
    Cases cs;
    std::uint64_t seed = 1100;
    for (const auto& [B, K] : std::vector<std::pair<int, int>>{{3, 2}, {5, 3}, {7, 37}, {1, 1}, {4, 1000}}) {
        const std::string sl = " " + dims({{"B", B}, {"K", K}});
        std::vector<std::int64_t> labels;
        for (int b = 0; b < B; ++b) labels.push_back(b % 5 == 3 ? -100 : (b * 7 + 1) % K);  // -100: an ignored row
        const HostTensor L = from_ints(DType::I32, {B}, labels);
        HostTensor logits = rn(dt, {B, K}, ++seed, 0, 3);
        cs.push_back(mk("cross_entropy_forward " + std::string(dn(dt)) + sl, dt,
                        {out("losses", HostTensor(dt, {B})), out("probs", HostTensor(dt, {B, K})), in("logits", logits), in("labels", L)},
                        [](Backend& be, const Ts& t) { be.cross_entropy_forward(t[0], t[1], t[2], t[3]); }));
        HostTensor losses(dt, {B}), probs(dt, {B, K}), Lh = L;
        host_cpu().cross_entropy_forward(losses.view(), probs.view(), logits.view(), Lh.view());
        const double scale = 1.0 / B;
        cs.push_back(mk("cross_entropy_backward " + std::string(dn(dt)) + sl, dt,
                        {out("dlogits", HostTensor(dt, {B, K})), in("probs", probs), in("labels", L)},
                        [scale](Backend& be, const Ts& t) { be.cross_entropy_backward(t[0], t[1], t[2], scale); }));
    }
    for (int B : {1, 5, 67}) {
        const std::string sl = " " + dims({{"B", B}});
        const HostTensor preds = rn(dt, {B, 1}, ++seed), targets = rn(dt, {B}, ++seed);
        cs.push_back(mk("mse_forward " + std::string(dn(dt)) + sl, dt, {out("losses", HostTensor(dt, {B})), in("preds", preds), in("targets", targets)},
                        [](Backend& be, const Ts& t) { be.mse_forward(t[0], t[1], t[2]); }));
        const double scale = 1.0 / B;
        cs.push_back(mk("mse_backward " + std::string(dn(dt)) + sl, dt,
                        {out("dpreds", HostTensor(dt, {B, 1})), in("preds", preds), in("targets", targets)},
                        [scale](Backend& be, const Ts& t) { be.mse_backward(t[0], t[1], t[2], scale); }));
    }
    return cs;
}

// Fixed-point stream values: N(0, 3^2) * 2^40, with zero, ±1, a multiple of m, and values near
// ±2^62 (|value| < 2^23 allows |X| < 2^63) among them; floor division must handle negatives.
HostTensor stream_values(Shape s, std::uint64_t seed, int m) {
    const HostTensor r = rn(DType::F64, s, seed, 0, 3);
    HostTensor x(DType::I64, s);
    for (std::int64_t i = 0; i < x.numel(); ++i) x.set_i64(i, std::llround(std::ldexp(r.get(i), kStreamFractionBits)));
    const std::int64_t special[] = {0, 1, -1, -std::int64_t(m), std::int64_t(m) - 1, (std::int64_t(1) << 62) + 12345,
                                    -(std::int64_t(1) << 62) - 777};
    for (std::int64_t i = 0; i < std::min<std::int64_t>(x.numel(), 7); ++i) x.set_i64(x.numel() - 1 - i, special[i]);
    return x;
}

// Compute-dtype values whose fixed-point conversion is an exact tie (k + 0.5) * 2^-40: llround
// rounds them away from zero; a kernel that rounds half to even differs.
HostTensor with_ties(HostTensor f) {
    const double ties[] = {2.5, -2.5, 0.5, -0.5, 1.5, -3.5};
    for (std::int64_t i = 0; i < std::min<std::int64_t>(f.numel(), 6); ++i) f.set(i, std::ldexp(ties[i], -kStreamFractionBits));
    return f;
}

Cases coupling_cases(DType dt) {
    Cases cs;
    std::vector<Shape> shapes = {{3, 5}, {2, 7, 37}};
    if (big()) shapes.push_back({2, 128, 768});
    std::uint64_t seed = 1200;
    for (const Shape& s : shapes) {
        const std::int64_t n = s.numel();
        for (int m : {1, 2, 3, 5, 10, 17}) {
            const std::string sl = std::string(" ") + s.str() + " I64 m=" + std::to_string(m);
            const HostTensor x = stream_values(s, ++seed, m);
            const HostTensor f = with_ties(rn(dt, s, ++seed, 0, 0.5));
            auto rem_slot = [&](const char* name, bool output, const HostTensor& init) {
                if (m == 1) return none(name, DType::U8, {0});
                Slot r = output ? out(name, HostTensor(DType::U8, {remainder_bytes(n, m)})) : in(name, init);
                r.rem_n = n;
                r.rem_m = m;
                return r;
            };
            // forward
            cs.push_back(mk("coupling_forward " + std::string(dn(dt)) + sl, dt, {inout("stream", x), rem_slot("rem", true, {}), in("f", f)},
                            [m](Backend& be, const Ts& t) { be.coupling_forward(t[0], t[1], t[2], m); }));
            // inverse of the reference's forward: must give back x exactly
            HostTensor y = x, rem = m == 1 ? HostTensor(DType::U8, {0}) : random_bytes(DType::U8, {remainder_bytes(n, m)}, ++seed), fh = f;
            host_cpu().coupling_forward(y.view(), m == 1 ? Tensor{} : rem.view(), fh.view(), m);
            OpCase inv = mk("coupling_inverse " + std::string(dn(dt)) + sl, dt, {inout("stream", y), rem_slot("rem", false, rem), in("f", f)},
                            [m](Backend& be, const Ts& t) { be.coupling_inverse(t[0], t[1], t[2], m); });
            inv.candidate_check = [x](const std::vector<HostTensor>& after, std::vector<std::string>& fl) {
                if (auto e = compare_exact(after[0], x, "stream rebuilt by coupling_inverse vs the forward's input")) fl.push_back(*e);
            };
            cs.push_back(inv);
            // forward then inverse on the same backend
            OpCase rt = mk("coupling_forward+inverse " + std::string(dn(dt)) + sl, dt,
                           {inout("stream", x), rem_slot("rem", true, {}), in("f", f)}, [m](Backend& be, const Ts& t) {
                               be.coupling_forward(t[0], t[1], t[2], m);
                               be.coupling_inverse(t[0], t[1], t[2], m);
                           });
            rt.candidate_check = inv.candidate_check;
            cs.push_back(rt);
        }
        // a vanilla MEFT layer discards its remainders: m > 1 with no rem tensor
        cs.push_back(mk("coupling_forward " + std::string(dn(dt)) + " " + s.str() + " I64 m=10 no rem", dt,
                        {inout("stream", stream_values(s, ++seed, 10)), none("rem", DType::U8, {0}), in("f", rn(dt, s, ++seed, 0, 0.5))},
                        [](Backend& be, const Ts& t) { be.coupling_forward(t[0], t[1], t[2], 10); }));
        for (int m : {1, 10}) {
            const std::string sl = " " + s.str() + " F64 m=" + std::to_string(m);
            Slot st = inout("stream", rn(DType::F64, s, ++seed, 0, 3));
            st.keep_dtype = true;
            const HostTensor f = rn(dt, s, ++seed, 0, 0.5);
            for (bool inverse : {false, true})
                cs.push_back(mk(std::string(inverse ? "coupling_inverse " : "coupling_forward ") + dn(dt) + sl, dt,
                                {st, none("rem", DType::U8, {0}), in("f", f)}, [m, inverse](Backend& be, const Ts& t) {
                                    inverse ? be.coupling_inverse(t[0], t[1], t[2], m) : be.coupling_forward(t[0], t[1], t[2], m);
                                }));
        }
        // stream conversions
        for (DType sdt : {DType::I64, DType::F64}) {
            const std::string sl = " " + s.str() + " " + std::string(dtype_name(sdt)) + " stream";
            // I64 values near 2^62 exercise the rounding of int64 -> double
            Slot st = sdt == DType::I64 ? in("stream", stream_values(s, ++seed, 1)) : in("stream", rn(DType::F64, s, ++seed, 0, 3));
            st.keep_dtype = true;
            cs.push_back(mk("stream_read " + std::string(dn(dt)) + sl, dt, {out("out", HostTensor(dt, s)), st},
                            [](Backend& be, const Ts& t) { be.stream_read(t[0], t[1]); }));
            Slot o = out("stream", HostTensor(sdt, s));
            o.keep_dtype = true;
            cs.push_back(mk("stream_write " + std::string(dn(dt)) + sl, dt, {o, in("in", with_ties(rn(dt, s, ++seed, 0, 3)))},
                            [](Backend& be, const Ts& t) { be.stream_write(t[0], t[1]); }));
        }
    }
    return cs;
}

Cases adamw_cases(DType dt) {
    Cases cs;
    std::vector<Shape> shapes = {{259}, {37, 19}};
    if (big()) shapes.push_back({3072, 768});
    std::uint64_t seed = 1300;
    for (const Shape& s : shapes)
        for (int step : {1, 10})
            for (double wd : {0.0, 0.01}) {
                const std::string sl = std::string(" ") + s.str() + " step=" + std::to_string(step) + (wd > 0 ? " wd=0.01" : " wd=0");
                HostTensor v = rn(dt, s, ++seed, 0, 0.01);
                for (std::int64_t i = 0; i < v.numel(); ++i) v.set(i, v.get(i) * v.get(i));
                cs.push_back(mk("adamw_update " + std::string(dn(dt)) + sl, dt,
                                {inout("param", rn(dt, s, ++seed, 0, 0.05)), in("grad", rn(dt, s, ++seed, 0, 0.01)),
                                 inout("m", rn(dt, s, ++seed, 0, 0.001)), inout("v", v)},
                                [step, wd](Backend& be, const Ts& t) { be.adamw_update(t[0], t[1], t[2], t[3], 1e-3, 0.9, 0.999, 1e-8, wd, step); }));
            }
    return cs;
}

using Builder = Cases (*)(DType);
const std::vector<std::pair<const char*, Builder>>& all_builders() {
    static const std::vector<std::pair<const char*, Builder>> b = {
        {"data movement", data_movement_cases}, {"upload/download", upload_download_cases},
        {"linear", linear_cases},                {"layernorm", layernorm_cases},
        {"activations", activation_cases},       {"channel_scale", channel_scale_cases},
        {"dropout", dropout_cases},              {"embeddings", embedding_cases},
        {"attention", attention_cases},          {"tiled attention", tiled_attention_cases},
        {"prefix/first_token", prefix_and_first_token_cases}, {"DoRA/VeRA ops", method_op_cases},
        {"losses", loss_cases},                  {"coupling/streams", coupling_cases},
        {"adamw", adamw_cases},
    };
    return b;
}

// ---- fixture ----------------------------------------------------------------------------------------

class Parity : public ::testing::Test {
protected:
    void SetUp() override {
        Backends& b = backends();
        if (!b.no_cuda.empty()) GTEST_SKIP() << "no CUDA backend here: " << b.no_cuda;
        ASSERT_TRUE(b.setup_error.empty()) << b.setup_error;
        ref_ = b.ref.get();
        cand_ = b.cand.get();
    }

    // Runs every case of one op family in float32 and float64 on both backends.
    void expect_family(Builder builder) {
        for (DType dt : {DType::F32, DType::F64}) {
            int n = 0;
            for (const OpCase& c : builder(dt)) {
                const CaseReport r = check_parity(*ref_, *cand_, c);
                std::printf("  %s\n", r.line.c_str());
                for (const std::string& f : r.failures) ADD_FAILURE() << f;
                ++n;
            }
            EXPECT_GT(n, 0);
        }
    }

    Backend* ref_ = nullptr;
    Backend* cand_ = nullptr;
};

TEST_F(Parity, BackendBasics) {
    EXPECT_FALSE(cand_->name().empty());
    std::printf("  reference: %s, candidate: %s%s\n", ref_->name().c_str(), cand_->name().c_str(),
                backends().self_check ? " (self-check: a second CPU backend)" : "");
    if (!backends().self_check) {
        EXPECT_FALSE(cand_->is_host()) << "the CUDA backend computes in device memory";
        std::size_t free_b = 0, total_b = 0;
        EXPECT_TRUE(cand_->device_memory(&free_b, &total_b)) << "the CUDA backend reports its device's memory";
        EXPECT_LE(free_b, total_b);
        EXPECT_GT(total_b, 0u);
    }
}

TEST_F(Parity, UploadDownloadRoundTrip) { expect_family(upload_download_cases); }
TEST_F(Parity, DataMovement) { expect_family(data_movement_cases); }
TEST_F(Parity, Linear) { expect_family(linear_cases); }
TEST_F(Parity, LayerNorm) { expect_family(layernorm_cases); }
TEST_F(Parity, GeluTanh) { expect_family(activation_cases); }
TEST_F(Parity, ChannelScale) { expect_family(channel_scale_cases); }
TEST_F(Parity, Dropout) { expect_family(dropout_cases); }
TEST_F(Parity, Embeddings) { expect_family(embedding_cases); }
TEST_F(Parity, Attention) { expect_family(attention_cases); }
TEST_F(Parity, TiledAttention) { expect_family(tiled_attention_cases); }

// The candidate's tiled attention, forward then backward, equals the standard attention computed
// by the CPU: the same function to rounding, and (revealed cases) the same dropped entries.
TEST_F(Parity, TiledAttentionEqualsTheStandardAttention) {
    for (DType dt : {DType::F32, DType::F64}) {
        std::uint64_t seed = 1700;
        for (const TiledAtt& a : tiled_attention_shapes()) {
            const TiledInputs x = tiled_inputs(a, dt, seed += 10);
            const OpCase c = tiled_chain_case(a, dt, x);
            const Outcome got = run_case(*cand_, c);
            for (const std::string& f : got.failures) ADD_FAILURE() << f;
            if (!got.failures.empty()) continue;
            HostTensor ctx(dt, {a.B, a.Tq, a.C}), probs(dt, {a.B, a.NH, a.Tq, a.Tk}), dq(dt, {a.B, a.Tq, a.C}),
                dk(dt, {a.B, a.Tk, a.C}), dv(dt, {a.B, a.Tk, a.C});
            HostTensor q = x.q, k = x.k, v = x.v, g = x.dctx, m = x.mask;
            host_cpu().attention_forward(ctx.view(), probs.view(), q.view(), k.view(), v.view(), m.view(), a.NH, a.p, kKey,
                                         a.off, a.causal);
            host_cpu().attention_backward(dq.view(), dk.view(), dv.view(), g.view(), q.view(), k.view(), v.view(),
                                          probs.view(), a.NH, a.p, kKey, a.off);
            std::string line = c.name + ":";
            const double tol = nmse_tolerance(dt);
            for (const auto& [slot, want] : {std::pair{0, &ctx}, std::pair{2, &dq}, std::pair{3, &dk}, std::pair{4, &dv}}) {
                const std::string what = c.name + " · " + c.slots[std::size_t(slot)].name + " against the standard attention";
                CloseStats st;
                if (auto f = compare_close(got.after[std::size_t(slot)], *want, tol, what, &st)) ADD_FAILURE() << *f;
                if (a.reveal && (slot == 0 || slot == 4))
                    if (auto f = compare_zero_positions(got.after[std::size_t(slot)], *want, what)) ADD_FAILURE() << *f;
                char v[32];
                std::snprintf(v, sizeof v, "%.1e", st.nmse);
                line += " " + c.slots[std::size_t(slot)].name + "=" + v;
            }
            // A fully padded example: context exactly 0, log-sum-exp +inf.
            if (a.all_padding) {
                const HostTensor &o = got.after[0], &l = got.after[1];
                const std::int64_t b = a.B - 1, row = std::int64_t(a.Tq) * a.C, heads = std::int64_t(a.NH) * a.Tq;
                for (std::int64_t i = b * row; i < (b + 1) * row; ++i) ASSERT_EQ(o.get(i), 0.0) << c.name << " ctx " << i;
                for (std::int64_t i = b * heads; i < (b + 1) * heads; ++i)
                    ASSERT_TRUE(std::isinf(l.get(i)) && l.get(i) > 0) << c.name << " lse " << i;
            }
            std::printf("  %s\n", line.c_str());
        }
    }
}

// The kernels are deterministic (no atomics): the same inputs give the same bits, run after run.
TEST_F(Parity, TiledAttentionIsReproducible) {
    const TiledAtt a = tiled_attention_shapes()[3];
    for (DType dt : {DType::F32, DType::F64}) {
        const TiledInputs x = tiled_inputs(a, dt, 4242);
        const OpCase c = tiled_chain_case(a, dt, x);
        const Outcome first = run_case(*cand_, c), second = run_case(*cand_, c);
        ASSERT_TRUE(first.failures.empty() && second.failures.empty()) << c.name;
        for (std::size_t i = 0; i < 5; ++i) EXPECT_EQ(first.after[i].bytes, second.after[i].bytes) << c.name << " · " << c.slots[i].name;
    }
}
TEST_F(Parity, PrefixConcatFirstToken) { expect_family(prefix_and_first_token_cases); }
TEST_F(Parity, DoraAndVeraOps) { expect_family(method_op_cases); }
TEST_F(Parity, Losses) { expect_family(loss_cases); }
TEST_F(Parity, CouplingAndStreams) { expect_family(coupling_cases); }
TEST_F(Parity, AdamW) { expect_family(adamw_cases); }

// Both backends refuse a value outside the fixed-point range with a meft::Error (the CUDA
// kernels raise a flag that the backend turns into one), and stay usable afterwards.
TEST_F(Parity, OutOfRangeStreamValuesAreErrors) {
    for (Backend* be : {ref_, cand_}) {
        SCOPED_TRACE(be == ref_ ? "reference" : "candidate");
        Arena arena("errors", be->memory());
        HostTensor big = filled(DType::F32, {2, 7, 37}, 1.0);
        big.set(100, 1e10);  // 1e10 * 2^40 > 2^63
        const GuardedTensor f = place_guarded(*be, arena, big);
        const GuardedTensor s = place_guarded(*be, arena, HostTensor(DType::I64, {2, 7, 37}));
        const GuardedTensor rem = place_guarded(*be, arena, HostTensor(DType::U8, {remainder_bytes(2 * 7 * 37, 10)}));
        const std::string w = meft::test::error_of([&] {
            be->stream_write(s.tensor, f.tensor);
            be->synchronize();
        });
        EXPECT_NE(w.find("fixed-point"), std::string::npos) << w;
        const std::string c = meft::test::error_of([&] {
            be->coupling_forward(s.tensor, rem.tensor, f.tensor, 10);
            be->synchronize();
        });
        EXPECT_FALSE(c.empty());
        for (const GuardedTensor* g : {&f, &s, &rem}) EXPECT_FALSE(check_guards(*be, *g, "t").has_value());
        // a class label at or above K is an Error too (negative labels mark ignored rows)
        const GuardedTensor logits = place_guarded(*be, arena, rn(DType::F32, {2, 3}, 4));
        const GuardedTensor labels = place_guarded(*be, arena, from_ints(DType::I32, {2}, {1, 3}));
        const GuardedTensor losses = place_guarded(*be, arena, HostTensor(DType::F32, {2}));
        const GuardedTensor probs = place_guarded(*be, arena, HostTensor(DType::F32, {2, 3}));
        const std::string l = meft::test::error_of([&] {
            be->cross_entropy_forward(losses.tensor, probs.tensor, logits.tensor, labels.tensor);
            be->synchronize();
        });
        EXPECT_NE(l.find("label out of range"), std::string::npos) << l;
        // still usable
        const HostTensor ok = rn(DType::F32, {2, 7, 37}, 5);
        upload(*be, f.tensor, ok);
        be->stream_write(s.tensor, f.tensor);
        be->synchronize();
    }
}

// ---- whole models -----------------------------------------------------------------------------------

ModelConfig toy_config(Arch arch = Arch::Bert) {
    ModelConfig c = preset_config(arch, "toy");  // 4 layers, hidden 128, 4 heads, FFN 512, real vocabulary
    c.set_num_labels(3);
    return c;
}

ModelConfig bert_base_shaped() {
    ModelConfig c = preset_config(Arch::Bert, "base");  // hidden 768, 12 heads, FFN 3072
    c.num_layers = 2;
    c.vocab_size = 1000;
    c.set_num_labels(2);
    return c;
}

MethodConfig method(const nlohmann::json& j) { return parse_method(j, "parity"); }

// Every method by name (method_names(), so a new method is covered), and the variants that take
// other code paths: gradient checkpointing, LoRA on all six linears, the prefix MLP, MEFT's
// float64 streams and vanilla gradient.
std::vector<std::pair<std::string, MethodConfig>> toy_methods() {
    std::vector<std::pair<std::string, MethodConfig>> m;
    for (const std::string& n : method_names()) m.emplace_back(n, method({{"name", n}}));
    m.emplace_back("full+gradient_checkpointing", method({{"name", "full"}, {"gradient_checkpointing", true}}));
    m.emplace_back("lora+gradient_checkpointing", method({{"name", "lora"}, {"gradient_checkpointing", true}}));
    m.emplace_back("houlsby+gradient_checkpointing", method({{"name", "houlsby"}, {"gradient_checkpointing", true}}));
    m.emplace_back("lora all six sites", method({{"name", "lora"},
                                                 {"lora", {{"targets", {"query", "key", "value", "attention_output", "ffn_in", "ffn_out"}}}}}));
    m.emplace_back("prefix mlp", method({{"name", "prefix"}, {"prefix", {{"reparameterize", true}, {"hidden", 64}}}}));
    m.emplace_back("parallel scaling 4", method({{"name", "parallel"}, {"adapter", {{"scaling", 4.0}}}}));
    m.emplace_back("meft1 float64 streams", method({{"name", "meft1"}, {"meft", {{"streams", "float64"}}}}));
    m.emplace_back("meft2 vanilla gradient", method({{"name", "meft2"}, {"meft", {{"vanilla_gradient", true}}}}));
    m.emplace_back("meft3 frozen prefix + partial", method({{"name", "meft3"}, {"meft", {{"frozen_prefix", 1}, {"reversible_layers", 2}}}}));
    return m;
}

ModelSpec spec(const std::string& label, const ModelConfig& c, const MethodConfig& m, int B, int T) {
    ModelSpec s;
    s.label = label;
    s.config = c;
    s.method = m;
    s.batch = random_batch(c, B, T, 42);
    return s;
}

// The reduced-precision GEMM modes (training.gemm_precision): TF32 and bf16 operands stay close
// to exact float32, and bf16 really rounds (its result is not the exact one). A backend per mode.
std::unique_ptr<Backend> candidate_with(bool tf32, bool bf16) {
#if defined(MEFT_CUDA_HOST_EMULATION)
    if (backends().emulated)
        return cuda::make_cuda_backend({0, bf16 ? cuda::GemmPrecision::BF16
                                           : tf32 ? cuda::GemmPrecision::TF32 : cuda::GemmPrecision::Float32});
#endif
    BackendOptions o;
    o.tf32 = tf32;
    o.bf16_gemm = bf16;
    return make_backend("cuda", o);
}

TEST_F(Parity, ReducedPrecisionGemmModes) {
    if (backends().self_check) GTEST_SKIP() << "GEMM precision modes belong to the CUDA backend";
    const std::int64_t N = 64, C = 96, OC = 80;
    std::mt19937_64 rng(7);
    std::normal_distribution<float> nd;
    std::vector<float> x(N * C), w(OC * C), b(OC);
    for (auto* v : {&x, &w, &b})
        for (float& e : *v) e = nd(rng);
    auto linear = [&](Backend& be) {
        Arena a("gemm modes", be.memory());
        Tensor tx = a.alloc(DType::F32, {N, C}), tw = a.alloc(DType::F32, {OC, C}), tb = a.alloc(DType::F32, {OC});
        Tensor out = a.alloc(DType::F32, {N, OC}), dx = a.alloc(DType::F32, {N, C}), dw = a.zeros(DType::F32, {OC, C});
        be.upload(tx, x.data());
        be.upload(tw, w.data());
        be.upload(tb, b.data());
        be.linear_forward(out, tx, tw, tb);
        be.linear_backward(dx, dw, Tensor{}, out, tx, tw, false);
        std::vector<float> o(N * OC), g(N * C), gw(OC * C);
        be.download(o.data(), out);
        be.download(g.data(), dx);
        be.download(gw.data(), dw);
        o.insert(o.end(), g.begin(), g.end());
        o.insert(o.end(), gw.begin(), gw.end());
        return o;
    };
    const std::vector<float> exact = linear(*ref_);
    auto nmse = [&](const std::vector<float>& v) {
        double num = 0, den = 0;
        for (std::size_t i = 0; i < v.size(); ++i) {
            num += (double(v[i]) - exact[i]) * (double(v[i]) - exact[i]);
            den += double(exact[i]) * exact[i];
        }
        return num / den;
    };
    const double tf32 = nmse(linear(*candidate_with(true, false)));
    const double bf16 = nmse(linear(*candidate_with(false, true)));
    std::printf("  linear forward+backward vs exact float32: TF32 NMSE %.2e, bf16 operands NMSE %.2e\n", tf32, bf16);
    EXPECT_TRUE(tf32 <= 1e-5) << tf32;  // TF32 keeps 10 mantissa bits
    EXPECT_TRUE(bf16 <= 1e-4) << bf16;  // bf16 keeps 7: relative error ~4e-3 per operand
    EXPECT_GT(bf16, 1e-9) << "bf16 mode computed exact float32: the operands were not rounded";
}

class ModelParity : public Parity {
protected:
    void expect_model(const ModelSpec& s) {
        const ModelRun a = run_model(*ref_, s);
        const ModelRun b = run_model(*cand_, s);
        const CaseReport r = compare_model_runs(b, a, nmse_tolerance(s.dtype), s.lr);
        std::printf("  %-34s %s\n", s.label.c_str(), r.line.c_str());
        for (const std::string& f : r.failures) ADD_FAILURE() << s.label << ": " << f;
    }
};

TEST_F(ModelParity, ToyBertEveryMethod) {
    std::vector<std::string> covered;
    for (const auto& [name, m] : toy_methods()) {
        expect_model(spec("toy bert " + name, toy_config(), m, 4, 24));
        covered.push_back(name);
    }
    for (const std::string& n : method_names())
        EXPECT_NE(std::find(covered.begin(), covered.end(), n), covered.end()) << n;
}

TEST_F(ModelParity, ToyRobertaAndRegression) {
    for (const char* n : {"full", "lora", "meft1"})
        expect_model(spec(std::string("toy roberta ") + n, toy_config(Arch::Roberta), method({{"name", n}}), 3, 20));
    ModelConfig reg = toy_config();
    reg.set_num_labels(1);  // K = 1: regression with MSE
    for (const char* n : {"full", "meft3"}) expect_model(spec(std::string("toy bert regression ") + n, reg, method({{"name", n}}), 3, 20));
}

TEST_F(ModelParity, BertBaseShaped) {
    for (const char* n : {"full", "lora", "meft3"})
        expect_model(spec(std::string("bert-base-shaped 2 layers ") + n, bert_base_shaped(), method({{"name", n}}), 2, 32));
}

// Whole models with tiled attention (training.attention "tiled") on both backends: BERT (padded
// examples) and BART (cross-attention, a causal decoder; with "prefix", prefix keys before causal
// ones). run_model trains sequence classifiers, so OPT's causal LM is covered by the op cases.
TEST_F(ModelParity, TiledAttentionInModels) {
    const std::vector<std::pair<Arch, std::vector<const char*>>> runs = {{Arch::Bert, {"full", "lora", "prefix", "meft1"}},
                                                                         {Arch::Bart, {"full", "prefix", "meft1"}}};
    for (const auto& [arch, names] : runs)
        for (const char* n : names) {
            ModelConfig c = toy_config(arch);
            c.attention = AttentionKind::Tiled;
            ModelSpec s = spec("toy " + arch_name(arch) + " tiled " + n, c, method({{"name", n}}), 3, 20);
            if (arch == Arch::Bart)  // BART's classification head reads the last eos token of each example
                for (int b = 0; b < s.batch.B; ++b) {
                    int last = 0;
                    for (int t = 0; t < s.batch.T; ++t)
                        if (s.batch.attention_mask[std::size_t(b * s.batch.T + t)]) last = t;
                    s.batch.input_ids[std::size_t(b * s.batch.T + last)] = c.eos_token_id;
                }
            expect_model(s);
        }
}

// ---- MEFT's reversibility on the candidate (the checks of test_meft.cpp) ---------------------------

ModelConfig cfg_small(int layers, int hidden, int heads, int inter) {
    ModelConfig c;
    c.vocab_size = 40;
    c.hidden_size = hidden;
    c.num_heads = heads;
    c.num_layers = layers;
    c.intermediate_size = inter;
    c.max_position_embeddings = 512;
    c.hidden_dropout = c.attention_dropout = 0.1;
    c.set_num_labels(3);
    return c;
}

MethodConfig meft(int variant, const nlohmann::json& knobs, double init_std) {
    nlohmann::json j = {{"name", "meft" + std::to_string(variant)}, {"adapter", {{"init_std", init_std}, {"bottleneck", 3}}}};
    if (!knobs.empty()) j["meft"] = knobs;
    return parse_method(j, "parity");
}

std::vector<double> flat_grads(const ModelRun& r) {
    std::vector<double> g;
    for (const NamedTensor& t : r.grads) {
        const std::vector<double> v = t.t.to_doubles();
        g.insert(g.end(), v.begin(), v.end());
    }
    return g;
}

ModelSpec meft_spec(const ModelConfig& c, int variant, const nlohmann::json& knobs, double init_std, DType dt, const HostBatch& b) {
    ModelSpec s;
    s.label = "MEFT" + std::to_string(variant) + " " + knobs.dump();
    s.config = c;
    s.method = meft(variant, knobs, init_std);
    s.batch = b;
    s.dtype = dt;
    s.init_seed = 21;
    s.dropout_seed = 9;
    s.step = 4;
    s.perturb_added = false;
    s.lr = 0;
    return s;
}

// With exact (I64) streams the candidate rebuilds every layer's input bit for bit. float64 streams
// drift by about the divisor (10, or 100 for MEFT3) per layer rebuilt; the candidate's drift must
// stay within a factor 100 of the CPU's at 4 layers; at 24 layers (where it is large) it is printed
// beside the CPU's, as test_meft does. A GPU run takes test_meft's deep case: 24 layers and
// 1,048,576 stream elements.
TEST_F(ModelParity, MeftExactInverseRebuildsInputsOnCandidate) {
    for (int layers : {4, 24}) {
        const bool deep_big = layers == 24 && big();
        ModelConfig c = deep_big ? cfg_small(24, 256, 4, 512) : cfg_small(layers, 32, 4, 64);
        c.initializer_range = 0.02;
        c.vocab_size = 1000;
        const HostBatch b = deep_big ? random_batch(c, 16, 256, 4) : random_batch(c, 4, 16, 4);
        for (int variant : {1, 2, 3}) {
            for (const char* streams : {"exact", "float64"}) {
                const ModelSpec s = meft_spec(c, variant, {{"streams", streams}, {"keep_true_inputs", true}}, 0.02, DType::F32, b);
                const ModelRun r = run_model(*cand_, s);
                for (const std::string& f : r.failures) ADD_FAILURE() << f;
                ASSERT_EQ(r.reconstruction.size(), static_cast<std::size_t>(layers)) << s.label;
                const bool exact = std::string(streams) == "exact";
                double worst = 0;
                for (int l = 0; l < layers; ++l) {
                    const double e = r.reconstruction[static_cast<std::size_t>(l)];
                    worst = std::max(worst, e);
                    if (exact) {
                        EXPECT_EQ(e, 0.0) << "MEFT" << variant << " layer " << l << " of " << layers << ": exact streams rebuild bit for bit";
                    }
                }
                std::string cpu;
                if (!exact && !deep_big) {  // the CPU's drift on the same model, for scale
                    const ModelRun rr = run_model(*ref_, s);
                    double ref_worst = 0;
                    for (double e : rr.reconstruction) ref_worst = std::max(ref_worst, e);
                    if (layers == 4) {
                        EXPECT_LE(worst, 100 * ref_worst + 1e-15) << "MEFT" << variant << ": float64-stream drift at 4 layers, CPU " << ref_worst;
                    }
                    char buf[64];
                    std::snprintf(buf, sizeof buf, ", CPU %.2e", ref_worst);
                    cpu = buf;
                }
                std::printf("  MEFT%d %-7s streams, %2d layers, candidate: worst reconstruction error %.2e (bottom layer %.2e)%s\n",
                            variant, streams, layers, worst, r.reconstruction[0], cpu.c_str());
            }
        }
    }
}

// The reversible backward equals ordinary backprop of the same architecture on the candidate
// (test_meft requires bit equality on the CPU; a GPU with non-deterministic reductions may
// differ in the last bits, so this requires test_meft's tolerances and prints whether it is exact).
TEST_F(ModelParity, MeftReversibleGradientsMatchVanillaOnCandidate) {
    {
        ModelConfig c = cfg_small(4, 16, 2, 32);
        c.initializer_range = 0.1;
        const HostBatch b = random_batch(c, 3, 7, 2);
        for (int variant : {1, 2, 3}) {
            auto grads = [&](const nlohmann::json& knobs) {
                const ModelSpec s = meft_spec(c, variant, knobs, 0.1, DType::F64, b);
                const ModelRun cand = run_model(*cand_, s), ref = run_model(*ref_, s);
                // float64 streams rebuild the layer inputs only up to rounding, amplified layer by
                // layer (MEFT3 drifts by ~1e-4 at 4 layers on the CPU too), so two backends that
                // round differently differ there by more than rounding; 1e-14 still catches any
                // real kernel error, which shows up at 1e-8 or more.
                const bool inexact = knobs.contains("streams") && knobs["streams"] == "float64";
                const CaseReport rep = compare_model_runs(cand, ref, inexact ? 1e-14 : kNmseF64, 0);
                for (const std::string& f : rep.failures) ADD_FAILURE() << s.label << " (candidate vs CPU): " << f;
                return flat_grads(cand);
            };
            const auto vanilla = grads({{"vanilla_gradient", true}});
            const auto exact = grads({{"streams", "exact"}});
            const auto f64 = grads({{"streams", "float64"}});
            const auto f64_vanilla = grads({{"streams", "float64"}, {"vanilla_gradient", true}});
            ASSERT_EQ(exact.size(), vanilla.size());
            const double e = nmse(exact, vanilla), f = nmse(f64, f64_vanilla);
            EXPECT_LE(e, kNmseF64) << "MEFT" << variant << ": exact reversible backward vs vanilla backprop (float64, 4 layers)";
            EXPECT_LT(f, 1e-20) << "MEFT" << variant << ": float64 streams vs vanilla (test_meft: relative < 1e-10)";
            std::printf("  MEFT%d float64, 4 layers, candidate: exact vs vanilla NMSE %.1e (%s), float64 streams vs vanilla %.1e\n",
                        variant, e, exact == vanilla ? "bit-identical" : "not bit-identical", f);
        }
    }
    {
        ModelConfig c = cfg_small(24, 32, 4, 64);
        c.initializer_range = 0.02;
        const HostBatch b = random_batch(c, 4, 16, 3);
        for (int variant : {1, 2, 3}) {
            const ModelRun vanilla = run_model(*cand_, meft_spec(c, variant, {{"vanilla_gradient", true}}, 0.02, DType::F32, b));
            const ModelRun exact = run_model(*cand_, meft_spec(c, variant, nlohmann::json::object(), 0.02, DType::F32, b));
            for (const std::string& f : vanilla.failures) ADD_FAILURE() << f;
            for (const std::string& f : exact.failures) ADD_FAILURE() << f;
            const auto gv = flat_grads(vanilla), ge = flat_grads(exact);
            ASSERT_EQ(gv.size(), ge.size());
            const double e = nmse(ge, gv);
            EXPECT_LT(std::sqrt(e), 1e-6) << "MEFT" << variant << ": float32, 24 layers (test_meft: relative < 1e-6)";
            std::printf("  MEFT%d float32, 24 layers, candidate: exact vs vanilla relative %.1e (%s)\n", variant, std::sqrt(e),
                        ge == gv ? "bit-identical" : "not bit-identical");
        }
    }
}

// ---- the harness itself: faults are reported; honest rounding is admitted -------------------------

OpCase gelu_case(DType dt) {
    return mk(std::string("gelu_forward ") + dn(dt) + " [2, 7, 37]", dt,
              {out("out", HostTensor(dt, {2, 7, 37})), in("inp", rn(dt, {2, 7, 37}, 1, 0, 3))},
              [](Backend& be, const Ts& t) { be.gelu_forward(t[0], t[1]); });
}

bool mentions(const CaseReport& r, const std::string& what) {
    for (const std::string& f : r.failures)
        if (f.find(what) != std::string::npos) return true;
    return false;
}

std::string all_failures(const CaseReport& r) {
    std::string s;
    for (const std::string& f : r.failures) s += "\n    " + f;
    return s.empty() ? " (none)" : s;
}

OpCase find_case(const Cases& cs, const std::string& name) {
    for (const OpCase& c : cs)
        if (c.name == name) return c;
    throw Error("no op case named " + name);
}

// One op case per kind of output, with the op the fault is injected after.
std::vector<std::pair<std::string, OpCase>> fault_targets() {
    std::vector<std::pair<std::string, OpCase>> t;
    t.emplace_back("gelu_forward", gelu_case(DType::F32));
    t.emplace_back("linear_forward", find_case(linear_cases(DType::F64), "linear_forward f64 N=14 C=37 OC=19 bias"));
    t.emplace_back("attention_forward",
                   find_case(attention_cases(DType::F32),
                             "attention_forward f32 B=3 Tq=7 Tk=7 C=39 NH=3 p=0.10 example_offset=4 all-padding example"));
    t.emplace_back("layernorm_backward", find_case(layernorm_cases(DType::F32), "layernorm_backward f32 N=14 C=37 eps=1e-12 accumulate_dinp"));
    t.emplace_back("scale", find_case(data_movement_cases(DType::F64), "scale f64 [259]"));  // in place
    t.emplace_back("coupling_forward", find_case(coupling_cases(DType::F32), "coupling_forward f32 [2, 7, 37] I64 m=10"));
    t.emplace_back("cross_entropy_forward", find_case(loss_cases(DType::F32), "cross_entropy_forward f32 B=5 K=3"));
    return t;
}

TEST_F(Parity, HarnessReportsOutOfBoundsWrites) {
    for (Fault fault : {Fault::WritePastEnd, Fault::WriteBeforeStart}) {
        for (const auto& [op, c] : fault_targets()) {
            FaultyBackend faulty(*cand_, fault, op);
            const CaseReport r = check_parity(*ref_, faulty, c);
            EXPECT_EQ(faulty.injected(), 1) << c.name;
            const std::string want = fault == Fault::WritePastEnd ? "after the end of" : "before the start of";
            EXPECT_TRUE(mentions(r, want) && mentions(r, "out-of-bounds write")) << c.name << ": reported" << all_failures(r);
        }
    }
    // the guard check alone, on a tensor written one element past its end by hand
    Arena arena("guards", cand_->memory());
    const GuardedTensor g = place_guarded(*cand_, arena, rn(DType::F64, {37}, 3));
    EXPECT_FALSE(check_guards(*cand_, g, "t").has_value());
    const double x = 1.0;
    cand_->upload(Tensor{DType::F64, {1}, static_cast<char*>(g.tensor.data) + g.tensor.bytes()}, &x);
    const auto f = check_guards(*cand_, g, "t");
    ASSERT_TRUE(f.has_value());
    EXPECT_NE(f->find("guard byte(s) after the end of 't'"), std::string::npos) << *f;
}

TEST_F(Parity, HarnessReportsAPerturbedElement) {
    for (const auto& [op, c] : fault_targets()) {
        if (op == "layernorm_backward" || op == "attention_forward" || op == "gelu_forward") continue;  // large float32 outputs: see below
        FaultyBackend faulty(*cand_, Fault::Perturb, op);
        const CaseReport r = check_parity(*ref_, faulty, c);
        EXPECT_EQ(faulty.injected(), 1) << c.name;
        EXPECT_TRUE(mentions(r, "NMSE") || mentions(r, "bit-exact")) << c.name << ": reported" << all_failures(r);
    }
    // float32 NMSE resolves a relative error e of one element x_i only when
    // e^2 * x_i^2 / sum(x^2) > 1e-7: in a 518-element output a 1e-3 error of the largest element
    // is below it, in float64 far above. Shown on the comparison function itself:
    HostTensor ref = rn(DType::F32, {2, 7, 37}, 11), cand = ref;
    cand.set(17, cand.get(17) * (1 + 1e-3));
    CloseStats st;
    EXPECT_FALSE(compare_close(cand, ref, kNmseF32, "f32").has_value());
    compare_close(cand, ref, kNmseF32, "f32", &st);
    EXPECT_GT(st.nmse, 0);
    const HostTensor ref64 = converted(ref, DType::F64);
    HostTensor cand64 = ref64;
    cand64.set(17, cand64.get(17) * (1 + 1e-3));
    EXPECT_TRUE(compare_close(cand64, ref64, kNmseF64, "f64").has_value());
}

TEST_F(Parity, HarnessReportsNaN) {
    for (const auto& [op, c] : fault_targets()) {
        if (op == "coupling_forward") continue;  // an integer stream holds no NaN
        FaultyBackend faulty(*cand_, Fault::NaN, op);
        const CaseReport r = check_parity(*ref_, faulty, c);
        EXPECT_EQ(faulty.injected(), 1) << c.name;
        EXPECT_TRUE(mentions(r, "non-finite value(s) in the candidate")) << c.name << ": reported" << all_failures(r);
    }
    // NaN fails even where the NMSE expression itself would not say so
    HostTensor ref = filled(DType::F32, {5}, 1.0), cand = ref;
    cand.set(2, std::numeric_limits<double>::quiet_NaN());
    EXPECT_TRUE(compare_close(cand, ref, 1e30, "nan").has_value());
    cand.set(2, std::numeric_limits<double>::infinity());
    EXPECT_TRUE(compare_close(cand, ref, 1e30, "inf").has_value());
    EXPECT_TRUE(compare_scalar(std::nan(""), 1.0, 1e30, "scalar").has_value());
    EXPECT_FALSE(nmse({std::nan("")}, {1.0}) <= kNmseF32);
}

TEST_F(Parity, HarnessComparisonRules) {
    // all-zero reference: exact zeros required
    const HostTensor z = HostTensor(DType::F32, {4});
    HostTensor tiny = z;
    tiny.set(3, 1e-30);
    EXPECT_FALSE(compare_close(z, z, kNmseF32, "zeros").has_value());
    EXPECT_TRUE(compare_close(tiny, z, kNmseF32, "zeros").has_value());
    // masks: same values, one more zero
    HostTensor a = rn(DType::F32, {50}, 4), b = a;
    b.set(7, 0.0);
    EXPECT_TRUE(compare_zero_positions(b, a, "mask").has_value());
    EXPECT_FALSE(compare_zero_positions(a, a, "mask").has_value());
    // packed remainders: a used bit differs -> reported; an unused trailing bit -> not
    for (int m : {2, 3, 5, 17}) {
        const std::int64_t n = 13;
        HostTensor r1 = random_bytes(DType::U8, {remainder_bytes(n, m)}, 9), r2 = r1;
        const int bits = remainder_bits(m), per_byte = 8 / bits;
        const std::int64_t used = n % per_byte;
        if (used) {
            r2.bytes.back() ^= static_cast<unsigned char>(0x80);  // the top bit of the last byte is unused
            EXPECT_FALSE(compare_packed_remainders(r2, r1, n, m, "rem").has_value()) << "m=" << m;
        }
        r2 = r1;
        r2.bytes[0] ^= 1;  // remainder 0's lowest bit
        EXPECT_TRUE(compare_packed_remainders(r2, r1, n, m, "rem").has_value()) << "m=" << m;
    }
    // infinities: the same one in both places matches (and is left out of the NMSE); any other fails
    const double inf = std::numeric_limits<double>::infinity();
    const HostTensor li = from_values(DType::F32, {3}, {1.5, inf, -2.0});
    EXPECT_FALSE(compare_close(li, li, kNmseF32, "lse").has_value());
    EXPECT_TRUE(compare_close(from_values(DType::F32, {3}, {1.5, -inf, -2.0}), li, kNmseF32, "lse").has_value());
    EXPECT_TRUE(compare_close(from_values(DType::F32, {3}, {1.5, 1e30, -2.0}), li, kNmseF32, "lse").has_value());
    EXPECT_TRUE(compare_close(li, from_values(DType::F32, {3}, {1.5, 3.0, -2.0}), kNmseF32, "lse").has_value());
    // integers: bit-exact
    HostTensor i1 = from_ints(DType::I64, {3}, {1, std::int64_t(1) << 60, -5}), i2 = i1;
    i2.set_i64(1, (std::int64_t(1) << 60) + 1);
    EXPECT_TRUE(compare_exact(i2, i1, "i64").has_value());
    // an op that modifies an input is reported
    OpCase c = mk("writes its input", DType::F32, {in("x", rn(DType::F32, {9}, 2))}, [](Backend& be, const Ts& t) { be.scale(t[0], 2.0); });
    const CaseReport r = check_parity(*ref_, *cand_, c);
    EXPECT_TRUE(mentions(r, "input 'x' was modified")) << all_failures(r);
    // an op that leaves part of an output unwritten: the NaN it started as is reported
    OpCase partial = mk("writes half", DType::F32, {out("y", HostTensor(DType::F32, {8})), in("x", rn(DType::F32, {4}, 3))},
                        [](Backend& be, const Ts& t) { be.copy(Tensor{DType::F32, {4}, t[0].data}, t[1]); });
    EXPECT_TRUE(mentions(check_parity(*ref_, *cand_, partial), "reference itself has a non-finite value"));
    // the structural-zero rule covers exactly the attention key bias
    EXPECT_TRUE(structurally_zero_gradient("bert.encoder.layer.3.attention.self.key.bias"));
    EXPECT_FALSE(structurally_zero_gradient("bert.encoder.layer.3.attention.self.key.weight"));
    EXPECT_FALSE(structurally_zero_gradient("bert.encoder.layer.3.attention.self.query.bias"));
    EXPECT_TRUE(structurally_zero_gradient("model.decoder.layers.1.encoder_attn.k_proj.bias"));
    EXPECT_TRUE(structurally_zero_gradient("model.encoder.layers.0.self_attn.k_proj.bias"));
    EXPECT_FALSE(structurally_zero_gradient("model.encoder.layers.0.self_attn.k_proj.weight"));
    EXPECT_FALSE(structurally_zero_gradient("model.encoder.layers.0.self_attn.v_proj.bias"));
}

// A backend that forgets example_offset in its dropout masks (a plausible kernel bug) is caught by
// the mask comparisons: directly for dropout, through the one-hot cases for attention.
class OffsetByOne final : public ForwardingBackend {
public:
    using ForwardingBackend::ForwardingBackend;

private:
    void dropout_forward_impl(Tensor o, Tensor x, double p, PhiloxKey key, int off) override {
        ForwardingBackend::dropout_forward_impl(o, x, p, key, off + 1);
    }
    void attention_forward_impl(Tensor ctx, Tensor probs, Tensor q, Tensor k, Tensor v, Tensor mask, int nh, double p,
                                PhiloxKey key, int off, bool causal) override {
        ForwardingBackend::attention_forward_impl(ctx, probs, q, k, v, mask, nh, p, key, off + 1, causal);
    }
    void attention_backward_impl(Tensor dq, Tensor dk, Tensor dv, Tensor dctx, Tensor q, Tensor k, Tensor v,
                                 Tensor probs, int nh, double p, PhiloxKey key, int off) override {
        ForwardingBackend::attention_backward_impl(dq, dk, dv, dctx, q, k, v, probs, nh, p, key, off + 1);
    }
    void attention_tiled_forward_impl(Tensor ctx, Tensor lse, Tensor q, Tensor k, Tensor v, Tensor mask, int nh, double p,
                                      PhiloxKey key, int off, bool causal) override {
        ForwardingBackend::attention_tiled_forward_impl(ctx, lse, q, k, v, mask, nh, p, key, off + 1, causal);
    }
    void attention_tiled_backward_impl(Tensor dq, Tensor dk, Tensor dv, Tensor dctx, Tensor q, Tensor k, Tensor v, Tensor mask,
                                       Tensor ctx, Tensor lse, int nh, double p, PhiloxKey key, int off, bool causal) override {
        ForwardingBackend::attention_tiled_backward_impl(dq, dk, dv, dctx, q, k, v, mask, ctx, lse, nh, p, key, off + 1, causal);
    }
};

TEST_F(Parity, HarnessReportsWrongDropoutMasks) {
    OffsetByOne bad(*cand_);
    const std::vector<OpCase> cases = {
        find_case(dropout_cases(DType::F32), "dropout_forward f32 [2, 7, 37] p=0.1 example_offset=5"),
        find_case(attention_cases(DType::F32), "attention_forward f32 B=2 Tq=7 Tk=13 C=32 NH=2 p=0.25 example_offset=6 mask revealed"),
        find_case(attention_cases(DType::F64), "attention_backward f64 B=2 Tq=7 Tk=13 C=32 NH=2 p=0.25 example_offset=6 mask revealed"),
        find_case(tiled_attention_cases(DType::F32),
                  "attention_tiled_forward f32 B=2 Tq=37 Tk=50 C=128 NH=2 p=0.10 example_offset=3 causal mask revealed"),
        find_case(tiled_attention_cases(DType::F64),
                  "attention_tiled_backward f64 B=2 Tq=7 Tk=13 C=32 NH=2 p=0.25 example_offset=6 mask revealed"),
    };
    for (const OpCase& c : cases) {
        EXPECT_TRUE(check_parity(*ref_, *cand_, c).ok()) << c.name;
        const CaseReport r = check_parity(*ref_, bad, c);
        EXPECT_TRUE(mentions(r, "dropout mask differs")) << c.name << ": reported" << all_failures(r);
    }
}

// The decorator forwards faithfully: a model run through it with no fault equals the plain run
// exactly; with NaN after every GELU the model comparison reports it.
// Device memory: the arenas' accounting is cross-checked against the device's own count
// (cudaMemGetInfo): a training step's arenas must hold at least what the memory report says the
// step used, so the per-layer numbers never under-report. An allocation the device cannot satisfy
// is an Error stating the request and the free and total bytes.
TEST_F(ModelParity, DeviceMemoryCoversTheReportAndOutOfMemoryIsAnError) {
    std::size_t free0 = 0, total = 0;
    if (!cand_->device_memory(&free0, &total)) GTEST_SKIP() << "the candidate computes in host memory (self-check)";
    const ModelConfig c = cfg_small(4, 64, 4, 128);
    const ModelSpec s = meft_spec(c, 3, {}, 0.02, DType::F32, random_batch(c, 4, 16, 3));
    {
        SequenceClassifier m(s.config, *cand_, s.dtype, s.method);
        m.init_weights(s.init_seed);
        m.params().zero_grads();
        m.forward_backward(s.batch, ForwardOptions{true, s.dropout_seed, s.step}, 0.25);
        cand_->synchronize();
        std::size_t free1 = 0;
        ASSERT_TRUE(cand_->device_memory(&free1, &total));
        const MemoryReport rep = m.memory_report();
        const std::size_t used = free0 - free1;
        std::printf("  device bytes taken by the model and its step: %zu; the report's peak: %zu (resident %zu, "
                    "activations %zu)\n", used, rep.peak(), rep.resident(), rep.activation_peak);
        EXPECT_GT(rep.activation_peak, 0u);
        EXPECT_GE(used, rep.peak()) << "the memory report claims more than the device gave the arenas";
    }
    Arena huge("huge", cand_->memory());
    const std::string why = test::error_of([&] { huge.alloc(DType::F32, {std::int64_t(1) << 40}); });
    EXPECT_NE(why.find("out of memory"), std::string::npos) << why;
    EXPECT_NE(why.find("free of"), std::string::npos) << why;
}

// A new candidate backend (the emulated one under emulation): a backend's scratch buffers only
// grow, across models too.
std::unique_ptr<Backend> fresh_candidate() {
#if defined(MEFT_CUDA_HOST_EMULATION)
    return backends().emulated ? cuda::make_cuda_backend({}) : make_backend("cuda");
#else
    return make_backend("cuda");
#endif
}

// The plan for a CUDA device (shape-only backend, WorkspaceRule::cuda_device) counts what the
// CUDA backend's own code takes: the arenas' whole chunks and its op scratch buffers (attention's
// B x heads x Tq x Tk, reduction partials, pointer arrays, embedding indices), byte for byte.
TEST_F(ModelParity, PlannedFootprintEqualsTheCandidatesOwn) {
    if (cand_->is_host()) GTEST_SKIP() << "the candidate computes in host memory (self-check)";
    const ModelConfig c = cfg_small(2, 64, 4, 128);
    for (const char* n : {"full", "lora", "meft1"}) {
        std::unique_ptr<Backend> fresh = fresh_candidate();
        const MethodConfig m = parse_method({{"name", n}}, "t");
        const MemoryPlanResult measured = measure_run_memory(*fresh, c, m, DType::F32, 4, 8, 16);
        const MemoryPlanResult planned = plan_run_memory(c, m, DType::F32, 4, 8, 16, WorkspaceRule::cuda_device());
        EXPECT_EQ(measured.report.reserved, planned.report.reserved) << n;
        EXPECT_EQ(measured.report.workspace, planned.report.workspace) << n;
        EXPECT_EQ(measured.report.activation_peak, planned.report.activation_peak) << n;
        EXPECT_GT(planned.report.workspace, 0u) << n;
    }
    // Tiled attention: no attention scratch beyond backward's row sums, so less than the standard's.
    ModelConfig tiled = c;
    tiled.attention = AttentionKind::Tiled;
    for (const char* n : {"full", "meft1"}) {
        std::unique_ptr<Backend> fresh = fresh_candidate();
        const MethodConfig m = parse_method({{"name", n}}, "t");
        const MemoryPlanResult measured = measure_run_memory(*fresh, tiled, m, DType::F32, 4, 8, 16);
        const MemoryPlanResult planned = plan_run_memory(tiled, m, DType::F32, 4, 8, 16, WorkspaceRule::cuda_device());
        const MemoryPlanResult standard = plan_run_memory(c, m, DType::F32, 4, 8, 16, WorkspaceRule::cuda_device());
        EXPECT_EQ(measured.report.reserved, planned.report.reserved) << n << " tiled";
        EXPECT_EQ(measured.report.workspace, planned.report.workspace) << n << " tiled";
        EXPECT_EQ(measured.report.activation_peak, planned.report.activation_peak) << n << " tiled";
        EXPECT_LT(planned.report.activation_peak, standard.report.activation_peak) << n << " tiled";
    }
}

TEST_F(ModelParity, HarnessOnWholeModels) {
    ModelSpec s = spec("toy bert lora", toy_config(), method({{"name", "lora"}}), 2, 12);
    s.config.num_layers = 2;
    const ModelRun plain = run_model(*cand_, s);
    FaultyBackend transparent(*cand_, Fault::NaN, "no such op");
    const ModelRun through = run_model(transparent, s);
    EXPECT_EQ(transparent.injected(), 0);
    const CaseReport same = compare_model_runs(through, plain, kNmseF32, s.lr);
    EXPECT_TRUE(same.ok()) << all_failures(same);
    EXPECT_EQ(through.loss, plain.loss);
    EXPECT_EQ(through.logits.bytes, plain.logits.bytes);
    ASSERT_EQ(through.grads.size(), plain.grads.size());
    for (std::size_t i = 0; i < plain.grads.size(); ++i) {
        EXPECT_EQ(through.grads[i].t.bytes, plain.grads[i].t.bytes) << plain.grads[i].name;
        EXPECT_EQ(through.after[i].t.bytes, plain.after[i].t.bytes) << plain.after[i].name;
    }
    FaultyBackend nan(*cand_, Fault::NaN, "gelu_forward");
    const ModelRun bad = run_model(nan, s);
    EXPECT_GT(nan.injected(), 0);
    const CaseReport r = compare_model_runs(bad, plain, kNmseF32, s.lr);
    EXPECT_TRUE(mentions(r, "non-finite")) << all_failures(r);
    EXPECT_TRUE(mentions(r, "logits")) << all_failures(r);
    // a 1e-3 perturbation of the largest loss gradient's source moves the gradients visibly
    FaultyBackend perturbed(*cand_, Fault::Perturb, "cross_entropy_backward");
    const CaseReport p = compare_model_runs(run_model(perturbed, s), plain, kNmseF32, s.lr);
    EXPECT_TRUE(mentions(p, "gradient of")) << all_failures(p);
}

// Honest float32 rounding passes: every float64 op case, run in float32 on the reference CPU
// (inputs rounded to float32 first), meets the float32 tolerance against the float64 result.
// A CUDA kernel as accurate as the CPU's float32 one differs from it by about as much.
TEST_F(Parity, Float32ToleranceAdmitsRoundingInOps) {
    if (!backends().self_check) GTEST_SKIP() << "runs on the reference only: part of the self-check";
    double worst = 0;
    std::string worst_case;
    for (const auto& [family, builder] : all_builders()) {
        for (const OpCase& c : builder(DType::F64)) {
            if (c.name.rfind("upload/download", 0) == 0) continue;  // moves bytes, computes nothing
            const CaseReport r = calibrate_float32(*ref_, c);
            for (const std::string& f : r.failures) ADD_FAILURE() << f;
            if (r.worst_nmse > worst) worst = r.worst_nmse, worst_case = r.line;
        }
    }
    std::printf("  worst float32-vs-float64 NMSE over all op cases: %.2e of the float32 tolerance\n    %s\n", worst, worst_case.c_str());
    EXPECT_LT(worst, 1e-2) << "the float32 tolerance leaves less than a factor 100 over honest rounding";
}

TEST_F(ModelParity, Float32ToleranceAdmitsRoundingInModels) {
    if (!backends().self_check) GTEST_SKIP() << "runs on the reference only: part of the self-check";
    double worst = 0;
    ModelConfig c = toy_config();
    c.vocab_size = 2000;  // the float64 runs are slower; the vocabulary only widens the embedding table
    for (const auto& [name, m] : toy_methods()) {
        ModelSpec s = spec("toy bert " + name, c, m, 4, 24);
        ModelSpec s64 = s;
        s64.dtype = DType::F64;
        s64.round_weights_to_f32 = true;
        s.round_weights_to_f32 = true;
        const ModelRun r32 = run_model(*ref_, s), r64 = run_model(*ref_, s64);
        const CaseReport r = compare_model_runs(r32, r64, kNmseF32, s.lr);
        std::printf("  float32 vs float64  %-30s %s\n", name.c_str(), r.line.c_str());
        for (const std::string& f : r.failures) ADD_FAILURE() << name << ": " << f;
        worst = std::max(worst, r.worst_nmse);
    }
    std::printf("  worst float32-vs-float64 NMSE over all methods: %.2e of the float32 tolerance\n", worst);
}

}  // namespace
