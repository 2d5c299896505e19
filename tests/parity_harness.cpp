// parity_harness.cpp — see parity_harness.h.
#include "parity_harness.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>

#include "model/sequence_classifier.h"
#include "train/optimizer.h"

namespace meft::parity {

namespace {

std::string fmt(const char* f, double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, f, v);
    return buf;
}
std::string sci(double v) { return fmt("%.2e", v); }

std::string value_str(const HostTensor& t, std::int64_t i) {
    if (is_floating(t.dtype)) return fmt("%.9g", t.get(i));
    return std::to_string(t.get_i64(i));
}

// Uniform in (0, 1] from 53 random bits.
double unit(std::mt19937_64& rng) { return (static_cast<double>(rng() >> 11) + 1.0) * 0x1p-53; }

std::string dtype_str(DType dt) { return std::string(dtype_name(dt)); }

}  // namespace

double nmse_tolerance(DType dt) {
    switch (dt) {
        case DType::F32: return kNmseF32;
        case DType::F64: return kNmseF64;
        default: return 0;
    }
}

bool is_floating(DType dt) { return dt == DType::F32 || dt == DType::F64 || dt == DType::F16 || dt == DType::BF16; }

// ---- host tensors -----------------------------------------------------------------------------

HostTensor::HostTensor(DType dt, Shape s)
    : dtype(dt), shape(s), bytes(static_cast<std::size_t>(s.numel()) * dtype_size(dt), 0) {}

double HostTensor::get(std::int64_t i) const {
    const unsigned char* p = bytes.data() + static_cast<std::size_t>(i) * dtype_size(dtype);
    switch (dtype) {
        case DType::F32: { float v; std::memcpy(&v, p, 4); return v; }
        case DType::F64: { double v; std::memcpy(&v, p, 8); return v; }
        case DType::F16: { std::uint16_t v; std::memcpy(&v, p, 2); return half_to_float(v); }
        case DType::BF16: { std::uint16_t v; std::memcpy(&v, p, 2); return bf16_to_float(v); }
        default: return static_cast<double>(get_i64(i));
    }
}

void HostTensor::set(std::int64_t i, double v) {
    unsigned char* p = bytes.data() + static_cast<std::size_t>(i) * dtype_size(dtype);
    switch (dtype) {
        case DType::F32: { const float f = static_cast<float>(v); std::memcpy(p, &f, 4); return; }
        case DType::F64: std::memcpy(p, &v, 8); return;
        case DType::F16: { const std::uint16_t h = float_to_half(static_cast<float>(v)); std::memcpy(p, &h, 2); return; }
        case DType::BF16: { const std::uint16_t h = float_to_bf16(static_cast<float>(v)); std::memcpy(p, &h, 2); return; }
        default: set_i64(i, static_cast<std::int64_t>(v));
    }
}

std::int64_t HostTensor::get_i64(std::int64_t i) const {
    const unsigned char* p = bytes.data() + static_cast<std::size_t>(i) * dtype_size(dtype);
    switch (dtype) {
        case DType::I32: { std::int32_t v; std::memcpy(&v, p, 4); return v; }
        case DType::I64: { std::int64_t v; std::memcpy(&v, p, 8); return v; }
        case DType::U8: return *p;
        default: return static_cast<std::int64_t>(get(i));
    }
}

void HostTensor::set_i64(std::int64_t i, std::int64_t v) {
    unsigned char* p = bytes.data() + static_cast<std::size_t>(i) * dtype_size(dtype);
    switch (dtype) {
        case DType::I32: { const auto x = static_cast<std::int32_t>(v); std::memcpy(p, &x, 4); return; }
        case DType::I64: std::memcpy(p, &v, 8); return;
        case DType::U8: *p = static_cast<unsigned char>(v); return;
        default: set(i, static_cast<double>(v));
    }
}

std::vector<double> HostTensor::to_doubles() const {
    std::vector<double> v(static_cast<std::size_t>(numel()));
    if (dtype == DType::F64) {
        std::memcpy(v.data(), bytes.data(), v.size() * 8);
    } else if (dtype == DType::F32) {
        const float* f = reinterpret_cast<const float*>(bytes.data());
        for (std::size_t i = 0; i < v.size(); ++i) v[i] = f[i];
    } else {
        for (std::size_t i = 0; i < v.size(); ++i) v[i] = get(static_cast<std::int64_t>(i));
    }
    return v;
}

HostTensor random_normal(DType dt, Shape s, std::uint64_t seed, double mean, double stddev) {
    HostTensor t(dt, s);
    std::mt19937_64 rng(seed * 0x9E3779B97F4A7C15ull + 12345);
    for (std::int64_t i = 0; i < t.numel(); ++i) {
        const double u1 = unit(rng), u2 = unit(rng);
        double v = mean + stddev * std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
        t.set(i, v);
        if (t.get(i) == 0.0) t.set(i, stddev != 0 ? 0.5 * stddev : 0.5);
    }
    return t;
}

HostTensor random_bytes(DType dt, Shape s, std::uint64_t seed) {
    HostTensor t(dt, s);
    std::mt19937_64 rng(seed * 0xD1B54A32D192ED03ull + 777);
    for (unsigned char& b : t.bytes) b = static_cast<unsigned char>(rng() >> 56);
    return t;
}

HostTensor filled(DType dt, Shape s, double value) {
    HostTensor t(dt, s);
    for (std::int64_t i = 0; i < t.numel(); ++i) t.set(i, value);
    return t;
}

HostTensor from_values(DType dt, Shape s, const std::vector<double>& v) {
    HostTensor t(dt, s);
    MEFT_CHECK(static_cast<std::int64_t>(v.size()) == t.numel(), "from_values: size");
    for (std::int64_t i = 0; i < t.numel(); ++i) t.set(i, v[static_cast<std::size_t>(i)]);
    return t;
}

HostTensor from_ints(DType dt, Shape s, const std::vector<std::int64_t>& v) {
    HostTensor t(dt, s);
    MEFT_CHECK(static_cast<std::int64_t>(v.size()) == t.numel(), "from_ints: size");
    for (std::int64_t i = 0; i < t.numel(); ++i) t.set_i64(i, v[static_cast<std::size_t>(i)]);
    return t;
}

HostTensor converted(const HostTensor& t, DType dt) {
    if (t.dtype == dt) return t;
    HostTensor o(dt, t.shape);
    if (t.bytes.empty()) {
        o.bytes.clear();
        return o;
    }
    for (std::int64_t i = 0; i < t.numel(); ++i) o.set(i, t.get(i));
    return o;
}

// ---- guarded placement --------------------------------------------------------------------------

std::uint8_t guard_byte(bool after, std::size_t i) {
    const auto v = static_cast<std::uint8_t>((after ? 0xC3u : 0x5Au) ^ ((i * 29u) % 251u));
    return v == 0 ? 0x77 : v;
}

GuardedTensor place_guarded(Backend& be, Arena& arena, const HostTensor& contents) {
    const std::size_t n = contents.bytes.size();
    GuardedTensor g;
    g.region = arena.alloc(DType::U8, {static_cast<std::int64_t>(n + 2 * kGuardBytes)});
    std::vector<unsigned char> image(n + 2 * kGuardBytes);
    for (std::size_t i = 0; i < kGuardBytes; ++i) {
        image[i] = guard_byte(false, i);
        image[kGuardBytes + n + i] = guard_byte(true, i);
    }
    if (n) std::memcpy(image.data() + kGuardBytes, contents.bytes.data(), n);
    be.upload(g.region, image.data());
    g.tensor = Tensor{contents.dtype, contents.shape, static_cast<char*>(g.region.data) + kGuardBytes};
    return g;
}

std::optional<std::string> check_guards(Backend& be, const GuardedTensor& g, const std::string& name,
                                        HostTensor* contents) {
    const std::size_t n = g.tensor.bytes();
    std::vector<unsigned char> image(n + 2 * kGuardBytes);
    be.download(image.data(), g.region);
    if (contents) {
        *contents = HostTensor(g.tensor.dtype, g.tensor.shape);
        if (n) std::memcpy(contents->bytes.data(), image.data() + kGuardBytes, n);
    }
    std::string msg;
    for (int side = 0; side < 2; ++side) {
        const bool after = side == 1;
        std::size_t changed = 0, first = 0;
        for (std::size_t i = 0; i < kGuardBytes; ++i) {
            const unsigned char b = image[after ? kGuardBytes + n + i : i];
            if (b != guard_byte(after, i)) {
                if (!changed) first = i;
                ++changed;
            }
        }
        if (!changed) continue;
        const unsigned char got = image[after ? kGuardBytes + n + first : first];
        char buf[256];
        if (after)
            std::snprintf(buf, sizeof buf, "%zu guard byte(s) after the end of '%s' were overwritten (first: byte %zu past the end, 0x%02x, expected 0x%02x)",
                          changed, name.c_str(), first, got, guard_byte(true, first));
        else
            std::snprintf(buf, sizeof buf, "%zu guard byte(s) before the start of '%s' were overwritten (first: byte %zu before the start, 0x%02x, expected 0x%02x)",
                          changed, name.c_str(), kGuardBytes - first, got, guard_byte(false, first));
        msg += (msg.empty() ? "" : "; ") + std::string(buf);
    }
    if (msg.empty()) return std::nullopt;
    return msg + " (out-of-bounds write)";
}

HostTensor download(Backend& be, Tensor t) {
    HostTensor h(t.dtype, t.shape);
    if (!h.bytes.empty()) be.download(h.bytes.data(), t);
    return h;
}

void upload(Backend& be, Tensor t, const HostTensor& h) {
    MEFT_CHECK(h.dtype == t.dtype && h.numel() == t.numel(), "upload: host tensor does not match");
    if (!h.bytes.empty()) be.upload(t, h.bytes.data());
}

// ---- comparisons --------------------------------------------------------------------------------

double nmse(const std::vector<double>& cand, const std::vector<double>& ref, double min_denominator) {
    double num = 0, den = 0;
    for (std::size_t i = 0; i < ref.size(); ++i) {
        const double d = cand[i] - ref[i];
        num += d * d;
        den += ref[i] * ref[i];
    }
    den = std::max(den, min_denominator);
    if (den == 0) return num == 0 ? 0 : std::numeric_limits<double>::infinity();
    return num / den;
}

namespace {
std::optional<std::string> same_layout(const HostTensor& cand, const HostTensor& ref, const std::string& what) {
    if (cand.dtype != ref.dtype || !(cand.shape == ref.shape) || cand.bytes.size() != ref.bytes.size())
        return what + ": the candidate's tensor is " + dtype_str(cand.dtype) + " " + cand.shape.str() + ", the reference's " +
               dtype_str(ref.dtype) + " " + ref.shape.str();
    return std::nullopt;
}
}  // namespace

std::optional<std::string> compare_close(const HostTensor& cand, const HostTensor& ref, double tol,
                                         const std::string& what, CloseStats* stats, double min_denominator) {
    if (auto e = same_layout(cand, ref, what)) return e;
    std::vector<double> a = cand.to_doubles(), b = ref.to_doubles();
    // An infinity the reference has too, with the same sign, is a match (tiled attention's
    // log-sum-exp of a row without a visible key is +inf); it takes no part in the NMSE.
    for (std::size_t i = 0; i < a.size(); ++i)
        if (std::isinf(b[i]) && a[i] == b[i]) a[i] = b[i] = 0;
    std::int64_t bad = 0, first_bad = -1, ref_bad = -1, worst = -1;
    double den = 0, worst_d = -1;
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (!std::isfinite(a[i]) && bad++ == 0) first_bad = static_cast<std::int64_t>(i);
        if (!std::isfinite(b[i]) && ref_bad < 0) ref_bad = static_cast<std::int64_t>(i);
        den += b[i] * b[i];
        const double d = std::abs(a[i] - b[i]);
        if (!(d <= worst_d)) worst_d = d, worst = static_cast<std::int64_t>(i);
    }
    const double v = nmse(a, b, min_denominator);
    if (stats) stats->nmse = v, stats->nonfinite = bad;
    if (ref_bad >= 0)
        return what + ": the reference itself has a non-finite value at element " + std::to_string(ref_bad) + " (" +
               value_str(ref, ref_bad) + "): the case's inputs are wrong";
    if (bad)
        return what + ": " + std::to_string(bad) + " non-finite value(s) in the candidate (first at element " +
               std::to_string(first_bad) + ": " + value_str(cand, first_bad) + ", reference " + value_str(ref, first_bad) + ")";
    if (den == 0 && min_denominator == 0) {
        for (std::size_t i = 0; i < a.size(); ++i)
            if (a[i] != 0)
                return what + ": the reference is all zeros but the candidate has " + value_str(cand, std::int64_t(i)) +
                       " at element " + std::to_string(i);
        return std::nullopt;
    }
    if (!(v <= tol))
        return what + ": NMSE " + sci(v) + " > " + sci(tol) + " (largest difference at element " + std::to_string(worst) +
               ": candidate " + value_str(cand, worst) + ", reference " + value_str(ref, worst) + ")";
    return std::nullopt;
}

std::optional<std::string> compare_exact(const HostTensor& cand, const HostTensor& ref, const std::string& what) {
    if (auto e = same_layout(cand, ref, what)) return e;
    if (cand.bytes == ref.bytes) return std::nullopt;
    const std::size_t es = dtype_size(ref.dtype);
    std::int64_t count = 0, first = -1;
    for (std::int64_t i = 0; i < ref.numel(); ++i)
        if (std::memcmp(cand.bytes.data() + i * es, ref.bytes.data() + i * es, es) != 0 && count++ == 0) first = i;
    return what + ": " + std::to_string(count) + " of " + std::to_string(ref.numel()) +
           " element(s) differ, bit-exact match required (first at element " + std::to_string(first) + ": candidate " +
           value_str(cand, first) + ", reference " + value_str(ref, first) + ")";
}

std::optional<std::string> compare_zero_positions(const HostTensor& cand, const HostTensor& ref, const std::string& what) {
    if (auto e = same_layout(cand, ref, what)) return e;
    std::int64_t count = 0, first = -1;
    for (std::int64_t i = 0; i < ref.numel(); ++i)
        if ((cand.get(i) == 0) != (ref.get(i) == 0) && count++ == 0) first = i;
    if (!count) return std::nullopt;
    return what + ": dropout mask differs at " + std::to_string(count) + " position(s) (first at element " +
           std::to_string(first) + ": candidate " + value_str(cand, first) + ", reference " + value_str(ref, first) + ")";
}

std::optional<std::string> compare_packed_remainders(const HostTensor& cand, const HostTensor& ref, std::int64_t n, int m,
                                                     const std::string& what) {
    if (auto e = same_layout(cand, ref, what)) return e;
    if (ref.dtype != DType::U8 || ref.numel() != remainder_bytes(n, m))
        return what + ": expected " + std::to_string(remainder_bytes(n, m)) + " U8 bytes of packed remainders";
    const int bits = remainder_bits(m), per_byte = 8 / bits;
    const unsigned mask = (1u << bits) - 1u;
    std::int64_t count = 0, first = -1;
    unsigned fc = 0, fr = 0;
    for (std::int64_t i = 0; i < n; ++i) {
        const std::size_t byte = static_cast<std::size_t>(i / per_byte);
        const int shift = static_cast<int>(i % per_byte) * bits;
        const unsigned a = (cand.bytes[byte] >> shift) & mask, b = (ref.bytes[byte] >> shift) & mask;
        if (a != b && count++ == 0) first = i, fc = a, fr = b;
    }
    if (!count) return std::nullopt;
    return what + ": " + std::to_string(count) + " of " + std::to_string(n) + " packed remainder(s) differ (first: remainder " +
           std::to_string(first) + ", candidate " + std::to_string(fc) + ", reference " + std::to_string(fr) + ")";
}

std::optional<std::string> compare_scalar(double cand, double ref, double tol, const std::string& what) {
    if (!std::isfinite(cand)) return what + ": candidate returned " + fmt("%g", cand);
    if (!std::isfinite(ref)) return what + ": the reference returned " + fmt("%g", ref);
    const double v = nmse({cand}, {ref});
    if (!(v <= tol))
        return what + ": candidate " + fmt("%.17g", cand) + ", reference " + fmt("%.17g", ref) + " (NMSE " + sci(v) + " > " +
               sci(tol) + ")";
    return std::nullopt;
}

// ---- op cases -----------------------------------------------------------------------------------

Slot in(std::string name, HostTensor t) {
    Slot s;
    s.name = std::move(name);
    s.role = Role::In;
    s.init = std::move(t);
    return s;
}

Slot out(std::string name, HostTensor t) {
    Slot s;
    s.name = std::move(name);
    s.role = Role::Out;
    if (is_floating(t.dtype)) {
        for (std::int64_t i = 0; i < t.numel(); ++i) t.set(i, std::numeric_limits<double>::quiet_NaN());
    } else {
        std::uint64_t h = 1469598103934665603ull;
        for (char c : s.name) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
        t = random_bytes(t.dtype, t.shape, h);
    }
    s.init = std::move(t);
    return s;
}

Slot inout(std::string name, HostTensor t) {
    Slot s = in(std::move(name), std::move(t));
    s.role = Role::InOut;
    return s;
}

Slot none(std::string name, DType dt, Shape shape) {
    Slot s;
    s.name = std::move(name);
    s.role = Role::Out;
    s.empty = true;
    s.init.dtype = dt;
    s.init.shape = shape;
    return s;
}

Outcome run_case(Backend& be, const OpCase& c) {
    Outcome o;
    const std::size_t n = c.slots.size();
    Arena arena("parity", be.memory(), 8u << 20);
    std::vector<GuardedTensor> g(n);
    std::vector<Tensor> t(n);
    try {
        for (std::size_t i = 0; i < n; ++i) {
            const Slot& s = c.slots[i];
            if (s.empty) {
                t[i] = Tensor{s.init.dtype, s.init.shape, nullptr};
            } else {
                g[i] = place_guarded(be, arena, s.init);
                t[i] = g[i].tensor;
            }
        }
        o.scalars = c.run(be, t);
        be.synchronize();
    } catch (const std::exception& e) {
        o.failures.push_back(c.name + ": the op threw: " + e.what());
    }
    o.after.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
        const Slot& s = c.slots[i];
        if (s.empty || !g[i].region.data) continue;
        try {
            if (auto f = check_guards(be, g[i], s.name, &o.after[i])) o.failures.push_back(c.name + ": " + *f);
        } catch (const std::exception& e) {
            o.failures.push_back(c.name + ": downloading '" + s.name + "' threw: " + e.what());
            continue;
        }
        if (s.role == Role::In && o.after[i].bytes != s.init.bytes) {
            const std::size_t es = dtype_size(s.init.dtype);
            std::int64_t first = 0;
            while (std::memcmp(o.after[i].bytes.data() + first * es, s.init.bytes.data() + first * es, es) == 0) ++first;
            o.failures.push_back(c.name + ": input '" + s.name + "' was modified (first at element " + std::to_string(first) +
                                 ": " + value_str(o.after[i], first) + ", was " + value_str(s.init, first) + ")");
        }
    }
    return o;
}

namespace {
CaseReport compare_with(const OpCase& c, const Outcome& ref, const Outcome& cand, double float_tol, bool run_checks) {
    CaseReport r;
    r.line = c.name + ":";
    for (const std::string& f : ref.failures) r.failures.push_back("reference (CPU): " + f);
    for (const std::string& f : cand.failures) r.failures.push_back("candidate: " + f);
    auto note = [&](std::optional<std::string> f) {
        if (f) r.failures.push_back(*f);
    };
    for (std::size_t i = 0; i < c.slots.size(); ++i) {
        const Slot& s = c.slots[i];
        if (s.empty || s.role == Role::In) continue;
        if (i >= ref.after.size() || i >= cand.after.size() || ref.after[i].bytes.size() != s.init.bytes.size() ||
            cand.after[i].bytes.size() != ref.after[i].bytes.size())
            continue;  // not downloaded: already a failure
        const HostTensor &a = cand.after[i], &b = ref.after[i];
        const std::string what = c.name + " · " + s.name;
        if (s.rem_m > 0) {
            note(compare_packed_remainders(a, b, s.rem_n, s.rem_m, what));
            r.line += " " + s.name + "=exact";
        } else if (is_floating(b.dtype)) {
            const double tol = float_tol > 0 ? float_tol : nmse_tolerance(b.dtype);
            CloseStats st;
            note(compare_close(a, b, tol, what, &st));
            if (s.mask) note(compare_zero_positions(a, b, what));
            r.worst_nmse = std::max(r.worst_nmse, st.nmse / tol);
            r.line += " " + s.name + "=" + sci(st.nmse);
        } else {
            note(compare_exact(a, b, what));
            r.line += " " + s.name + "=exact";
        }
    }
    if (ref.scalars.size() != cand.scalars.size()) {
        r.failures.push_back(c.name + ": the candidate returned " + std::to_string(cand.scalars.size()) + " scalar(s), the reference " +
                             std::to_string(ref.scalars.size()));
    } else {
        for (std::size_t i = 0; i < ref.scalars.size(); ++i) {
            const double tol = float_tol > 0 ? float_tol : nmse_tolerance(c.dtype);
            note(compare_scalar(cand.scalars[i], ref.scalars[i], tol, c.name + " · returned value"));
            const double v = nmse({cand.scalars[i]}, {ref.scalars[i]});
            r.worst_nmse = std::max(r.worst_nmse, v / tol);
            r.line += " result=" + sci(v);
        }
    }
    if (run_checks && c.candidate_check) {
        for (const auto& [o, who] : {std::pair<const Outcome*, const char*>{&ref, "reference (CPU): "}, {&cand, "candidate: "}}) {
            bool complete = o->after.size() == c.slots.size();
            for (std::size_t i = 0; complete && i < c.slots.size(); ++i)
                complete = c.slots[i].empty || o->after[i].bytes.size() == c.slots[i].init.bytes.size();
            if (!complete) continue;
            std::vector<std::string> f;
            c.candidate_check(o->after, f);
            for (const std::string& s : f) r.failures.push_back(who + c.name + ": " + s);
        }
    }
    r.line += r.failures.empty() ? "  OK" : "  FAIL";
    return r;
}
}  // namespace

CaseReport compare_outcomes(const OpCase& c, const Outcome& ref, const Outcome& cand) {
    return compare_with(c, ref, cand, 0, true);
}

CaseReport check_parity(Backend& ref, Backend& cand, const OpCase& c) {
    const Outcome a = run_case(ref, c);
    const Outcome b = run_case(cand, c);
    return compare_outcomes(c, a, b);
}

CaseReport calibrate_float32(Backend& ref, const OpCase& case_f64) {
    OpCase c64 = case_f64, c32 = case_f64;
    c64.candidate_check = nullptr;
    c32.candidate_check = nullptr;
    std::vector<bool> narrowed(case_f64.slots.size(), false);
    for (std::size_t i = 0; i < case_f64.slots.size(); ++i) {
        const Slot& s = case_f64.slots[i];
        if (s.init.dtype != DType::F64 || s.keep_dtype) continue;
        narrowed[i] = true;
        c32.slots[i].init = converted(s.init, DType::F32);
        c64.slots[i].init = converted(c32.slots[i].init, DType::F64);  // the same values, exactly
    }
    if (c32.dtype == DType::F64) c32.dtype = DType::F32;
    c32.name += " [float32 vs float64]";
    c64.name = c32.name;
    const Outcome o64 = run_case(ref, c64);
    Outcome o32 = run_case(ref, c32);
    for (std::size_t i = 0; i < narrowed.size() && i < o32.after.size(); ++i)
        if (narrowed[i] && !c32.slots[i].empty) o32.after[i] = converted(o32.after[i], DType::F64);
    return compare_with(c64, o64, o32, kNmseF32, false);
}

// ---- decorators ---------------------------------------------------------------------------------

void ForwardingBackend::fill_impl(Tensor t, double value) { inner_.fill(t, value); after("fill", t); }
void ForwardingBackend::copy_impl(Tensor dst, Tensor src) { inner_.copy(dst, src); after("copy", dst); }
void ForwardingBackend::accumulate_impl(Tensor dst, Tensor src) { inner_.accumulate(dst, src); after("accumulate", dst); }
void ForwardingBackend::axpy_impl(Tensor dst, Tensor src, double alpha) { inner_.axpy(dst, src, alpha); after("axpy", dst); }
void ForwardingBackend::add_impl(Tensor o, Tensor a, Tensor b) { inner_.add(o, a, b); after("add", o); }
void ForwardingBackend::scale_impl(Tensor t, double s) { inner_.scale(t, s); after("scale", t); }
void ForwardingBackend::linear_forward_impl(Tensor o, Tensor inp, Tensor w, Tensor b) {
    inner_.linear_forward(o, inp, w, b);
    after("linear_forward", o);
}
void ForwardingBackend::linear_backward_impl(Tensor dinp, Tensor dw, Tensor db, Tensor dout, Tensor inp, Tensor w, bool acc) {
    inner_.linear_backward(dinp, dw, db, dout, inp, w, acc);
    after("linear_backward", dinp ? dinp : dw ? dw : db);
}
void ForwardingBackend::layernorm_forward_impl(Tensor o, Tensor mean, Tensor rstd, Tensor inp, Tensor w, Tensor b, double eps) {
    inner_.layernorm_forward(o, mean, rstd, inp, w, b, eps);
    after("layernorm_forward", o);
}
void ForwardingBackend::layernorm_backward_impl(Tensor dinp, Tensor dw, Tensor db, Tensor dout, Tensor inp, Tensor w, Tensor mean,
                                                Tensor rstd, bool acc) {
    inner_.layernorm_backward(dinp, dw, db, dout, inp, w, mean, rstd, acc);
    after("layernorm_backward", dinp ? dinp : dw ? dw : db);
}
void ForwardingBackend::gelu_forward_impl(Tensor o, Tensor inp) { inner_.gelu_forward(o, inp); after("gelu_forward", o); }
void ForwardingBackend::gelu_backward_impl(Tensor dinp, Tensor dout, Tensor inp) {
    inner_.gelu_backward(dinp, dout, inp);
    after("gelu_backward", dinp);
}
void ForwardingBackend::tanh_forward_impl(Tensor o, Tensor inp) { inner_.tanh_forward(o, inp); after("tanh_forward", o); }
void ForwardingBackend::tanh_backward_impl(Tensor dinp, Tensor dout, Tensor o) {
    inner_.tanh_backward(dinp, dout, o);
    after("tanh_backward", dinp);
}
void ForwardingBackend::relu_forward_impl(Tensor o, Tensor inp) { inner_.relu_forward(o, inp); after("relu_forward", o); }
void ForwardingBackend::relu_backward_impl(Tensor dinp, Tensor dout, Tensor inp) {
    inner_.relu_backward(dinp, dout, inp);
    after("relu_backward", dinp);
}
void ForwardingBackend::channel_scale_forward_impl(Tensor o, Tensor inp, Tensor s) {
    inner_.channel_scale_forward(o, inp, s);
    after("channel_scale_forward", o);
}
void ForwardingBackend::channel_scale_backward_impl(Tensor dinp, Tensor dscale, Tensor dout, Tensor inp, Tensor s) {
    inner_.channel_scale_backward(dinp, dscale, dout, inp, s);
    after("channel_scale_backward", dinp ? dinp : dscale);
}
void ForwardingBackend::dropout_forward_impl(Tensor o, Tensor inp, double p, PhiloxKey key, int off) {
    inner_.dropout_forward(o, inp, p, key, off);
    after("dropout_forward", o);
}
void ForwardingBackend::dropout_backward_impl(Tensor dinp, Tensor dout, double p, PhiloxKey key, int off) {
    inner_.dropout_backward(dinp, dout, p, key, off);
    after("dropout_backward", dinp);
}
void ForwardingBackend::embeddings_forward_impl(Tensor o, Tensor ids, Tensor pos, Tensor types, Tensor wte, Tensor wpe, Tensor wtt) {
    inner_.embeddings_forward(o, ids, pos, types, wte, wpe, wtt);
    after("embeddings_forward", o);
}
void ForwardingBackend::embedding_backward_impl(Tensor dtable, Tensor dout, Tensor ids) {
    inner_.embedding_backward(dtable, dout, ids);
    after("embedding_backward", dtable);
}
void ForwardingBackend::attention_forward_impl(Tensor ctx, Tensor probs, Tensor q, Tensor k, Tensor v, Tensor key_mask,
                                               int n_head, double p, PhiloxKey key, int off, bool causal) {
    inner_.attention_forward(ctx, probs, q, k, v, key_mask, n_head, p, key, off, causal);
    after("attention_forward", ctx);
}
void ForwardingBackend::attention_backward_impl(Tensor dq, Tensor dk, Tensor dv, Tensor dctx, Tensor q, Tensor k, Tensor v,
                                                Tensor probs, int n_head, double p, PhiloxKey key, int off) {
    inner_.attention_backward(dq, dk, dv, dctx, q, k, v, probs, n_head, p, key, off);
    after("attention_backward", dq);
}
void ForwardingBackend::attention_tiled_forward_impl(Tensor ctx, Tensor lse, Tensor q, Tensor k, Tensor v, Tensor key_mask,
                                                     int n_head, double p, PhiloxKey key, int off, bool causal) {
    inner_.attention_tiled_forward(ctx, lse, q, k, v, key_mask, n_head, p, key, off, causal);
    after("attention_tiled_forward", ctx);
}
void ForwardingBackend::attention_tiled_backward_impl(Tensor dq, Tensor dk, Tensor dv, Tensor dctx, Tensor q, Tensor k,
                                                      Tensor v, Tensor key_mask, Tensor ctx, Tensor lse, int n_head, double p,
                                                      PhiloxKey key, int off, bool causal) {
    inner_.attention_tiled_backward(dq, dk, dv, dctx, q, k, v, key_mask, ctx, lse, n_head, p, key, off, causal);
    after("attention_tiled_backward", dq);
}
void ForwardingBackend::prefix_concat_forward_impl(Tensor o, Tensor prefix, Tensor x) {
    inner_.prefix_concat_forward(o, prefix, x);
    after("prefix_concat_forward", o);
}
void ForwardingBackend::prefix_concat_backward_impl(Tensor dprefix, Tensor dx, Tensor dout, bool acc) {
    inner_.prefix_concat_backward(dprefix, dx, dout, acc);
    after("prefix_concat_backward", dx);
}
void ForwardingBackend::copy_columns_impl(Tensor dst, Tensor src, std::int64_t first) {
    inner_.copy_columns(dst, src, first);
    after("copy_columns", dst);
}
void ForwardingBackend::weight_norm_forward_impl(Tensor g, Tensor norm, Tensor m, Tensor w) {
    inner_.weight_norm_forward(g, norm, m, w);
    after("weight_norm_forward", g);
}
void ForwardingBackend::weight_norm_backward_impl(Tensor dm, Tensor dw, Tensor dg, Tensor m, Tensor w, Tensor norm) {
    inner_.weight_norm_backward(dm, dw, dg, m, w, norm);
    after("weight_norm_backward", dw ? dw : dm);
}
void ForwardingBackend::first_token_forward_impl(Tensor o, Tensor inp) {
    inner_.first_token_forward(o, inp);
    after("first_token_forward", o);
}
void ForwardingBackend::first_token_backward_impl(Tensor dinp, Tensor dout, bool acc) {
    inner_.first_token_backward(dinp, dout, acc);
    after("first_token_backward", dinp);
}
void ForwardingBackend::cross_entropy_forward_impl(Tensor losses, Tensor probs, Tensor logits, Tensor labels) {
    inner_.cross_entropy_forward(losses, probs, logits, labels);
    after("cross_entropy_forward", losses);
}
void ForwardingBackend::cross_entropy_backward_impl(Tensor dlogits, Tensor probs, Tensor labels, double s) {
    inner_.cross_entropy_backward(dlogits, probs, labels, s);
    after("cross_entropy_backward", dlogits);
}
void ForwardingBackend::mse_forward_impl(Tensor losses, Tensor preds, Tensor targets) {
    inner_.mse_forward(losses, preds, targets);
    after("mse_forward", losses);
}
void ForwardingBackend::mse_backward_impl(Tensor dpreds, Tensor preds, Tensor targets, double s) {
    inner_.mse_backward(dpreds, preds, targets, s);
    after("mse_backward", dpreds);
}
void ForwardingBackend::coupling_forward_impl(Tensor stream, Tensor rem, Tensor f, int m) {
    inner_.coupling_forward(stream, rem, f, m);
    after("coupling_forward", stream);
}
void ForwardingBackend::coupling_inverse_impl(Tensor stream, Tensor rem, Tensor f, int m) {
    inner_.coupling_inverse(stream, rem, f, m);
    after("coupling_inverse", stream);
}
void ForwardingBackend::stream_read_impl(Tensor o, Tensor stream) { inner_.stream_read(o, stream); after("stream_read", o); }
void ForwardingBackend::stream_write_impl(Tensor stream, Tensor x) { inner_.stream_write(stream, x); after("stream_write", stream); }
void ForwardingBackend::adamw_update_impl(Tensor param, Tensor grad, Tensor m, Tensor v, double lr, double b1, double b2,
                                          double eps, double wd, int step) {
    inner_.adamw_update(param, grad, m, v, lr, b1, b2, eps, wd, step);
    after("adamw_update", param);
}

void FaultyBackend::after(const char* op, Tensor o) {
    if (op_ != op || !o.data || o.numel() == 0) return;
    ++injected_;
    const std::size_t es = dtype_size(o.dtype);
    switch (fault_) {
        case Fault::WritePastEnd:
        case Fault::WriteBeforeStart: {
            // Write the output's first element once more, one element outside the tensor.
            std::vector<unsigned char> elem(es);
            inner_.download(elem.data(), Tensor{DType::U8, {static_cast<std::int64_t>(es)}, o.data});
            char* at = static_cast<char*>(o.data) + (fault_ == Fault::WritePastEnd ? static_cast<std::ptrdiff_t>(o.bytes())
                                                                                    : -static_cast<std::ptrdiff_t>(es));
            inner_.upload(Tensor{DType::U8, {static_cast<std::int64_t>(es)}, at}, elem.data());
            break;
        }
        case Fault::Perturb: {
            HostTensor h = parity::download(inner_, o);
            std::int64_t k = 0;
            for (std::int64_t i = 1; i < h.numel(); ++i)
                if (std::abs(h.get(i)) > std::abs(h.get(k))) k = i;
            h.set(k, h.get(k) * (1 + 1e-3));
            parity::upload(inner_, o, h);
            break;
        }
        case Fault::NaN: {
            HostTensor h = parity::download(inner_, o);
            h.set(h.numel() - 1, std::numeric_limits<double>::quiet_NaN());
            parity::upload(inner_, o, h);
            break;
        }
    }
}

// ---- whole models -------------------------------------------------------------------------------

HostBatch random_batch(const ModelConfig& c, int B, int T, std::uint64_t seed, int id_range) {
    std::mt19937_64 rng(seed);
    HostBatch b;
    b.B = B;
    b.T = T;
    const int hi = id_range > 0 ? std::min(id_range, c.vocab_size - 1) : c.vocab_size - 1;
    for (int i = 0; i < B; ++i) {
        const int len = std::max(1, T - std::min(i * (T / 4 + 1), T - 1));
        for (int t = 0; t < T; ++t) {
            int id = 1 + static_cast<int>(rng() % static_cast<std::uint64_t>(hi));
            if (id == c.pad_token_id) id = c.pad_token_id + 1;
            b.input_ids.push_back(t < len ? id : c.pad_token_id);
            b.attention_mask.push_back(t < len);
            b.token_type_ids.push_back(c.type_vocab_size > 1 && t >= len / 2 && t < len ? 1 : 0);
        }
        b.labels.push_back(static_cast<int>(rng() % static_cast<std::uint64_t>(std::max(1, c.num_labels()))));
        b.targets.push_back(static_cast<double>(rng() % 1000) / 250.0 - 2.0);
    }
    b.example_offset = 2;  // as a second micro-batch: dropout keys count from example 2
    return b;
}

ModelRun run_model(Backend& be, const ModelSpec& s) {
    ModelRun r;
    try {
        SequenceClassifier m(s.config, be, s.dtype, s.method);
        m.init_weights(s.init_seed);
        auto round_weights = [&] {  // float32-representable values, so float32 and float64 runs start equal
            if (s.round_weights_to_f32)
                for (const Parameter& p : m.params().all())
                    upload(be, p.value, converted(converted(download(be, p.value), DType::F32), p.value.dtype));
        };
        round_weights();
        if (s.round_weights_to_f32)  // tensors drawn from others (DoRA's magnitudes: row norms) again, from the rounded ones
            for (int i = 0; i < m.params().size(); ++i)
                if (m.params().at(i).init.kind == Init::RowNorms) m.params().initialize(i, s.init_seed);
        round_weights();
        if (s.perturb_added) {
            for (int i = 0; i < m.params().size(); ++i) {
                Parameter& p = m.params().at(i);
                if (!p.added) continue;
                HostTensor v = download(be, p.value);
                const HostTensor noise = random_normal(DType::F64, p.shape, 1000 + static_cast<std::uint64_t>(i), 0, 0.02);
                for (std::int64_t j = 0; j < v.numel(); ++j) v.set(j, v.get(j) + noise.get(j));
                upload(be, p.value, v);
            }
        }
        round_weights();
        const ForwardOptions o{true, s.dropout_seed, s.step};
        r.logits = converted(download(be, m.forward(s.batch, o)), DType::F64);
        m.params().zero_grads();
        r.loss = m.forward_backward(s.batch, o, 1.0 / s.batch.B);
        if (m.stack_runner()) r.reconstruction = m.stack_runner()->reconstruction_error();
        for (const Parameter& p : m.params().all())
            if (p.trainable) {
                r.grads.push_back({p.name, converted(download(be, p.grad), DType::F64)});
                r.decay.push_back(p.decay);
            }
        if (s.lr > 0) {
            for (const Parameter& p : m.params().all())
                if (p.trainable) r.before.push_back({p.name, converted(download(be, p.value), DType::F64)});
            AdamW opt(m.params(), AdamWConfig{});
            opt.step(s.lr);
            for (const Parameter& p : m.params().all())
                if (p.trainable) r.after.push_back({p.name, converted(download(be, p.value), DType::F64)});
        }
        be.synchronize();
    } catch (const std::exception& e) {
        r.failures.push_back(s.label + ": threw: " + e.what());
    }
    return r;
}

namespace {
// The key bias of each naming (BERT/RoBERTa; BART/OPT), and the sibling key weight and query bias.
struct KeyBiasNames {
    const char *suffix, *bias, *key_weight, *query_bias;
};
constexpr KeyBiasNames kKeyBiasNames[] = {{"attention.self.key.bias", "key.bias", "key.weight", "query.bias"},
                                          {"_attn.k_proj.bias", "k_proj.bias", "k_proj.weight", "q_proj.bias"}};
bool ends_with(const std::string& s, const std::string& suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}
}  // namespace

bool structurally_zero_gradient(const std::string& name) {
    for (const KeyBiasNames& k : kKeyBiasNames)
        if (ends_with(name, k.suffix)) return true;
    return false;
}

CaseReport compare_model_runs(const ModelRun& cand, const ModelRun& ref, double tol, double lr) {
    CaseReport r;
    for (const std::string& f : ref.failures) r.failures.push_back("reference (CPU): " + f);
    for (const std::string& f : cand.failures) r.failures.push_back("candidate: " + f);
    if (!ref.failures.empty() || !cand.failures.empty()) return r;
    auto note = [&](std::optional<std::string> f) {
        if (f) r.failures.push_back(*f);
    };
    double worst_grad = 0, worst_step = 0;
    std::string worst_grad_name, worst_step_name;
    note(compare_scalar(cand.loss, ref.loss, tol, "loss"));
    const double loss_nmse = nmse({cand.loss}, {ref.loss});
    CloseStats logit_stats;
    note(compare_close(cand.logits, ref.logits, tol, "logits", &logit_stats));
    if (cand.grads.size() != ref.grads.size()) {
        r.failures.push_back("the candidate has " + std::to_string(cand.grads.size()) + " trainable parameters, the reference " +
                             std::to_string(ref.grads.size()));
        return r;
    }
    auto ref_grad = [&](const std::string& name) -> const HostTensor* {
        for (const NamedTensor& g : ref.grads)
            if (g.name == name) return &g.t;
        return nullptr;
    };
    for (std::size_t i = 0; i < ref.grads.size(); ++i) {
        const NamedTensor &a = cand.grads[i], &b = ref.grads[i];
        if (a.name != b.name) {
            r.failures.push_back("parameter " + std::to_string(i) + " is " + a.name + " on the candidate, " + b.name + " on the reference");
            return r;
        }
        double floor = 0;
        if (structurally_zero_gradient(b.name)) {
            // Its exact gradient is 0; both backends return rounding noise. Hold the noise against
            // the key weight's gradient, per element: NMSE ~ eps^2 * (rows summed) for honest noise.
            // (BitFit trains no key weight: then the query bias's gradient, a sum over the same rows.)
            const KeyBiasNames* kn = kKeyBiasNames;
            while (!ends_with(b.name, kn->suffix)) ++kn;
            const std::string stem = b.name.substr(0, b.name.size() - std::string(kn->bias).size());
            for (const std::string& other : {stem + kn->key_weight, stem + kn->query_bias}) {
                const HostTensor* gw = ref_grad(other);
                if (!gw) continue;
                double ss = 0;
                for (double v : gw->to_doubles()) ss += v * v;
                floor = ss / static_cast<double>(gw->numel()) * static_cast<double>(b.t.numel());
                break;
            }
        }
        CloseStats st;
        note(compare_close(a.t, b.t, tol, "gradient of " + b.name, &st, floor));
        if (!(st.nmse <= worst_grad)) worst_grad = st.nmse, worst_grad_name = b.name;
    }
    std::int64_t excluded = 0;
    if (lr > 0) {
        const std::size_t n = ref.grads.size();
        if (cand.after.size() != n || ref.after.size() != n || cand.before.size() != n || ref.before.size() != n ||
            cand.decay.size() != n || ref.decay.size() != n) {
            r.failures.push_back("AdamW step: parameters missing");
            return r;
        }
        const AdamWConfig a;
        for (std::size_t i = 0; i < n; ++i) {
            const std::string& name = ref.after[i].name;
            note(compare_exact(cand.before[i].t, ref.before[i].t, "initial value of " + name));
            // (1) Each backend's step against PyTorch's first AdamW step of its own gradient, in
            // double on the host: well conditioned, it checks the update kernel and its plumbing.
            for (const ModelRun* run : {&cand, &ref}) {
                const std::vector<double> p = run->before[i].t.to_doubles(), q = run->after[i].t.to_doubles(),
                                          g = run->grads[i].t.to_doubles();
                const double wd = run->decay[i] ? a.weight_decay : 0.0;
                HostTensor got(DType::F64, ref.after[i].t.shape), want(DType::F64, ref.after[i].t.shape);
                for (std::size_t j = 0; j < p.size(); ++j) {
                    const double m = (1 - a.beta1) * g[j], v = (1 - a.beta2) * g[j] * g[j];
                    const double next = p[j] * (1 - lr * wd) -
                                        lr / (1 - a.beta1) * m / (std::sqrt(v) / std::sqrt(1 - a.beta2) + a.eps);
                    got.set(static_cast<std::int64_t>(j), q[j] - p[j]);
                    want.set(static_cast<std::int64_t>(j), next - p[j]);
                }
                if (auto f = compare_close(got, want, tol, "AdamW update of " + name + " against AdamW of its own gradient"))
                    r.failures.push_back((run == &ref ? "reference (CPU): " : "candidate: ") + *f);
            }
            // (2) The updated values across backends. The first step is about -lr * sign(g): where
            // the two gradients differ by more than 1e-3 relative (elements near zero, the key
            // bias's noise) the step is not determined by gradient parity, so those elements are
            // left to (1) and counted.
            const std::vector<double> ga = cand.grads[i].t.to_doubles(), gb = ref.grads[i].t.to_doubles();
            const std::vector<double> qa = cand.after[i].t.to_doubles(), qb = ref.after[i].t.to_doubles();
            std::vector<double> ka, kb;
            for (std::size_t j = 0; j < gb.size(); ++j) {
                if (!(std::abs(ga[j] - gb[j]) <= 1e-3 * std::abs(gb[j]))) {
                    ++excluded;
                    continue;
                }
                ka.push_back(qa[j]);
                kb.push_back(qb[j]);
            }
            if (kb.empty()) continue;
            const Shape ks{static_cast<std::int64_t>(kb.size())};
            CloseStats st;
            note(compare_close(from_values(DType::F64, ks, ka), from_values(DType::F64, ks, kb), tol, "value after AdamW of " + name, &st));
            if (!(st.nmse <= worst_step)) worst_step = st.nmse, worst_step_name = name;
        }
    }
    r.worst_nmse = std::max({loss_nmse, logit_stats.nmse, worst_grad, worst_step}) / tol;
    auto in = [](const std::string& name) { return name.empty() ? std::string() : " in " + name; };
    r.line = "loss " + sci(loss_nmse) + ", logits " + sci(logit_stats.nmse) + ", " + std::to_string(ref.grads.size()) +
             " gradients (worst " + sci(worst_grad) + in(worst_grad_name) + ")";
    if (lr > 0)
        r.line += ", values after AdamW (worst " + sci(worst_step) + in(worst_step_name) + "; " + std::to_string(excluded) +
                  " ill-conditioned element(s) left out)";
    r.line += r.failures.empty() ? "  OK" : "  FAIL";
    return r;
}

}  // namespace meft::parity
