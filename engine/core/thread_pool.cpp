#include "core/thread_pool.h"

#include <algorithm>
#include <cstdlib>
#include <string>

#include <sched.h>

#include "core/error.h"

namespace meft {

int default_thread_count() {
    if (const char* env = std::getenv("MEFT_THREADS"); env && *env) {
        char* end = nullptr;
        const long n = std::strtol(env, &end, 10);
        if (*end != '\0' || n < 1 || n > 4096)
            throw Error(std::string("MEFT_THREADS=") + env + ": expected a whole number of threads from 1 to 4096");
        return static_cast<int>(n);
    }
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0) return CPU_COUNT(&set);
    return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

ThreadPool::ThreadPool(int threads) {
    if (threads <= 0) threads = default_thread_count();
    for (int i = 1; i < threads; ++i) workers_.emplace_back([this, i] { worker(i); });
}

ThreadPool::~ThreadPool() {
    {
        std::lock_guard<std::mutex> lock(mu_);
        stop_ = true;
    }
    start_cv_.notify_all();
    for (std::thread& t : workers_) t.join();
}

namespace {
// Set while this thread runs a range: a parallel_for nested inside one runs inline.
thread_local bool t_in_range = false;

struct InRange {
    bool was = t_in_range;
    InRange() { t_in_range = true; }
    ~InRange() { t_in_range = was; }
};

void part_range(std::int64_t n, int parts, int i, std::int64_t& b, std::int64_t& e) {
    b = n * i / parts;
    e = n * (i + 1) / parts;
}
}  // namespace

void ThreadPool::parallel_for(std::int64_t n, const std::function<void(std::int64_t, std::int64_t)>& fn,
                              std::int64_t grain) {
    if (n <= 0) return;
    const int parts = static_cast<int>(std::min<std::int64_t>(size(), std::max<std::int64_t>(1, n / std::max<std::int64_t>(1, grain))));
    if (parts <= 1 || t_in_range) {
        fn(0, n);
        return;
    }
    // One job at a time: a parallel_for called from another thread while one runs waits here
    // instead of overwriting the job the workers are reading.
    std::unique_lock<std::mutex> job_lock(job_mu_);
    {
        std::lock_guard<std::mutex> lock(mu_);
        job_ = &fn;
        job_n_ = n;
        job_parts_ = parts;
        pending_ = parts - 1;
        error_ = nullptr;
        ++generation_;
    }
    start_cv_.notify_all();
    std::int64_t b, e;
    part_range(n, parts, 0, b, e);
    std::exception_ptr mine;
    try {
        const InRange in_range;
        fn(b, e);
    } catch (...) {
        mine = std::current_exception();  // rethrown below, once no worker still reads `fn`
    }
    std::unique_lock<std::mutex> lock(mu_);
    done_cv_.wait(lock, [this] { return pending_ == 0; });
    job_ = nullptr;
    std::exception_ptr theirs = error_;
    error_ = nullptr;
    lock.unlock();
    if (mine) std::rethrow_exception(mine);
    if (theirs) std::rethrow_exception(theirs);
}

void ThreadPool::worker(int index) {
    std::uint64_t seen = 0;
    for (;;) {
        const std::function<void(std::int64_t, std::int64_t)>* job;
        std::int64_t n;
        int parts;
        {
            std::unique_lock<std::mutex> lock(mu_);
            start_cv_.wait(lock, [&] { return stop_ || generation_ != seen; });
            if (stop_) return;
            seen = generation_;
            job = job_;
            n = job_n_;
            parts = job_parts_;
        }
        if (index < parts) {
            std::int64_t b, e;
            part_range(n, parts, index, b, e);
            std::exception_ptr failed;
            try {
                const InRange in_range;
                (*job)(b, e);
            } catch (...) {
                // An exception must not leave a worker thread (std::terminate): hand it to the
                // thread that called parallel_for, which rethrows it.
                failed = std::current_exception();
            }
            std::lock_guard<std::mutex> lock(mu_);
            if (failed && !error_) error_ = failed;
            if (--pending_ == 0) done_cv_.notify_one();
        }
    }
}

ThreadPool& default_thread_pool() {
    static ThreadPool pool(0);
    return pool;
}

}  // namespace meft
