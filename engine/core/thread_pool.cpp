#include "core/thread_pool.h"

#include <algorithm>

namespace meft {

ThreadPool::ThreadPool(int threads) {
    if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
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
void part_range(std::int64_t n, int parts, int i, std::int64_t& b, std::int64_t& e) {
    b = n * i / parts;
    e = n * (i + 1) / parts;
}
}  // namespace

void ThreadPool::parallel_for(std::int64_t n, const std::function<void(std::int64_t, std::int64_t)>& fn,
                              std::int64_t grain) {
    if (n <= 0) return;
    const int parts = static_cast<int>(std::min<std::int64_t>(size(), std::max<std::int64_t>(1, n / std::max<std::int64_t>(1, grain))));
    if (parts <= 1) {
        fn(0, n);
        return;
    }
    {
        std::lock_guard<std::mutex> lock(mu_);
        job_ = &fn;
        job_n_ = n;
        job_parts_ = parts;
        pending_ = parts - 1;
        ++generation_;
    }
    start_cv_.notify_all();
    std::int64_t b, e;
    part_range(n, parts, 0, b, e);
    fn(b, e);
    std::unique_lock<std::mutex> lock(mu_);
    done_cv_.wait(lock, [this] { return pending_ == 0; });
    job_ = nullptr;
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
            (*job)(b, e);
            std::lock_guard<std::mutex> lock(mu_);
            if (--pending_ == 0) done_cv_.notify_one();
        }
    }
}

ThreadPool& default_thread_pool() {
    static ThreadPool pool(0);
    return pool;
}

}  // namespace meft
