// thread_pool.h — a fixed pool of worker threads for the CPU backend's element-wise and row-wise
// loops (GEMMs use OpenBLAS's own threads). parallel_for splits [0, n) into one contiguous range
// per thread and blocks until all ranges are done. An exception thrown by any range reaches the
// caller of parallel_for (the first one, after every range has ended), never std::terminate.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace meft {

class ThreadPool {
public:
    explicit ThreadPool(int threads);  // threads <= 0: default_thread_count()
    ~ThreadPool();
    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;

    int size() const { return static_cast<int>(workers_.size()) + 1; }
    // fn(begin, end) over disjoint ranges covering [0, n). Ranges below `grain` items run inline.
    void parallel_for(std::int64_t n, const std::function<void(std::int64_t, std::int64_t)>& fn,
                      std::int64_t grain = 1);

private:
    void worker(int index);
    std::vector<std::thread> workers_;
    std::mutex job_mu_;  // held by the running parallel_for
    std::mutex mu_;
    std::condition_variable start_cv_, done_cv_;
    const std::function<void(std::int64_t, std::int64_t)>* job_ = nullptr;
    std::int64_t job_n_ = 0;
    int job_parts_ = 0;
    std::uint64_t generation_ = 0;
    int pending_ = 0;
    std::exception_ptr error_;  // the first exception a worker's range threw
    bool stop_ = false;
};

// The process-wide pool used by the CPU backend.
// The threads a pool uses by default: $MEFT_THREADS when set (a sweep's task sets it to the CPUs
// it was given; Error when it is not a whole number from 1 to 4096), else the CPUs this process
// may run on (its affinity mask, which Slurm and taskset narrow), else the hardware's count.
int default_thread_count();

ThreadPool& default_thread_pool();

}  // namespace meft
