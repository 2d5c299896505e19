// Signals that arrive while the CPU backend's float32 GEMMs run: handled, and harmless. oneDNN's
// sgemm must not have a handler run on its stack (core/async_signals_held.h): without the guard
// this flood of SIGUSR1 corrupts the heap within a second (glibc aborts the child), or results
// change. Each case runs in a child process (a death-test fork) so that a corrupted heap fails
// the case instead of ending the test program.
#include <gtest/gtest.h>

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <thread>
#include <vector>

#include "core/cpu_backend.h"
#include "core/tensor.h"

using namespace meft;

namespace {

std::atomic<long> g_handled{0};
constexpr long kEnough = 100;  // handled signals for a case to count as tested
extern "C" void count_signal(int) { g_handled.fetch_add(1, std::memory_order_relaxed); }

struct Shape3 {
    int n, c, oc;
};

// Forward and backward of a few linear layers (every transpose case of the engine's GEMMs).
std::vector<float> linear_results(Backend& be, const std::vector<Shape3>& shapes, std::uint32_t seed) {
    std::vector<float> all;
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd;
    for (const Shape3& s : shapes) {
        std::vector<float> x(std::size_t(s.n) * s.c), w(std::size_t(s.oc) * s.c), b(s.oc), g(std::size_t(s.n) * s.oc);
        for (auto* v : {&x, &w, &b, &g})
            for (float& e : *v) e = nd(rng);
        std::vector<float> out(g.size()), dx(x.size()), dw(w.size(), 0.f), db(b.size(), 0.f);
        auto t = [](std::vector<float>& v, Shape sh) { return Tensor{DType::F32, sh, v.data()}; };
        be.linear_forward(t(out, {s.n, s.oc}), t(x, {s.n, s.c}), t(w, {s.oc, s.c}), t(b, {s.oc}));
        be.linear_backward(t(dx, {s.n, s.c}), t(dw, {s.oc, s.c}), t(db, {s.oc}), t(g, {s.n, s.oc}), t(x, {s.n, s.c}),
                           t(w, {s.oc, s.c}), false);
        for (const auto* v : {&out, &dx, &dw, &db}) all.insert(all.end(), v->begin(), v->end());
    }
    return all;
}

// The child: GEMMs for 1.5 s or more while another thread sends SIGUSR1 to the process as fast as it can
// (it holds SIGUSR1 itself, so the computing thread takes them). Exit 0 when every result has
// the bits it had without signals and the handler ran often; 2 on a changed result, 3 when too
// few signals (under kEnough) were handled to have tested anything.
[[noreturn]] void gemms_under_signals(CpuGemm library) {
    set_cpu_gemm(library);
    ThreadPool pool(1);  // this thread alone computes
    const auto be = make_cpu_backend(pool);
    const std::vector<Shape3> shapes = {{37, 200, 150}, {64, 96, 256}, {5, 300, 41}, {128, 64, 64}};
    const std::vector<float> expected = linear_results(*be, shapes, 1);

    struct sigaction sa {};
    sa.sa_handler = count_signal;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGUSR1, &sa, nullptr);
    std::atomic<bool> stop{false};
    std::thread sender([&] {
        sigset_t mine;
        sigemptyset(&mine);
        sigaddset(&mine, SIGUSR1);
        pthread_sigmask(SIG_BLOCK, &mine, nullptr);
        while (!stop.load()) kill(getpid(), SIGUSR1);
    });
    // At least 1.5 s and 100 handled signals (a loaded machine gives the sender little time), at
    // most 20 s.
    const auto start = std::chrono::steady_clock::now();
    auto going = [&] {
        const auto t = std::chrono::steady_clock::now() - start;
        return t < std::chrono::seconds(20) && (t < std::chrono::milliseconds(1500) || g_handled.load() < kEnough);
    };
    int rounds = 0;
    bool same = true;
    while (going() && same) {
        same = linear_results(*be, shapes, 1) == expected;
        ++rounds;
    }
    stop.store(true);
    sender.join();
    std::fprintf(stderr, "%d rounds, %ld signals handled, results %s\n", rounds, g_handled.load(),
                 same ? "unchanged" : "CHANGED");
    std::_Exit(!same ? 2 : g_handled.load() < kEnough ? 3 : 0);
}

}  // namespace

TEST(CpuGemmSignals, OneDnnSgemmUnharmedBySignals) {
    if (!cpu_gemm_available(CpuGemm::OneDnn)) GTEST_SKIP() << "this build has no oneDNN (libdnnl-dev)";
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    EXPECT_EXIT(gemms_under_signals(CpuGemm::OneDnn), testing::ExitedWithCode(0), "results unchanged");
}

TEST(CpuGemmSignals, OpenBlasUnharmedBySignals) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    EXPECT_EXIT(gemms_under_signals(CpuGemm::OpenBlas), testing::ExitedWithCode(0), "results unchanged");
}
