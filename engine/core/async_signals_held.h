// async_signals_held.h — hold a thread's asynchronous signals (Ctrl-C's SIGINT, SIGTERM, SIGCHLD,
// SIGUSR1…) for the length of a call that must not have a signal handler run on its stack.
//
// Why: oneDNN 2.6's sgemm keeps live data below its stack pointer, past the 128-byte red zone
// that the x86-64 ABI keeps free of signal frames. A handler that runs on that thread mid-call
// overwrites it, and the call later corrupts the heap (glibc: "corrupted size vs. prev_size"):
// `meft run` stopped with Ctrl-C aborted in a few percent of tries; a loop of dnnl_sgemm calls
// under a flood of SIGUSR1 aborts within a second, and runs clean when the handler runs on an
// alternate stack or the signal is held (tests/test_cpu_gemm_signals.cpp). A held signal stays
// pending and is handled the moment the call returns, so nothing is lost; a signal that a fault
// raises (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGABRT) is never held.
#pragma once
#include <pthread.h>
#include <signal.h>

namespace meft {

class AsyncSignalsHeld {
public:
    AsyncSignalsHeld() {
        sigset_t held;
        sigfillset(&held);
        for (int s : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGABRT}) sigdelset(&held, s);
        pthread_sigmask(SIG_BLOCK, &held, &before_);
    }
    ~AsyncSignalsHeld() { pthread_sigmask(SIG_SETMASK, &before_, nullptr); }
    AsyncSignalsHeld(const AsyncSignalsHeld&) = delete;
    AsyncSignalsHeld& operator=(const AsyncSignalsHeld&) = delete;

private:
    sigset_t before_;
};

}  // namespace meft
