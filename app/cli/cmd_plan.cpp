// meft plan EXPERIMENT.json — the activation memory of one training step, layer by layer,
// computed on the shape-only backend (nothing is allocated or computed), so any model size
// plans in milliseconds; the numbers equal what `meft run` measures on the CPU backend.
// --backend picks the memory the plan is checked against: the GPU's free memory (cuda), or
// this computer's available memory (cpu); auto takes the GPU when there is one.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>

#include "cli/commands.h"
#include "store/run_setup.h"
#include "core/backend_select.h"
#include "core/error.h"
#include "store/experiment.h"
#include "train/memory_plan.h"

namespace meft::cli {

namespace {
struct PlanArgs {
    std::string experiment, dtype = "fp32";
    int batch = 0, seq = 0;
    bool all_methods = false;
    std::string backend = "auto";
};

double mib(std::size_t b) { return double(b) / (1024.0 * 1024.0); }

std::string size_text(std::size_t b) {
    char buf[32];
    if (mib(b) >= 1024.0) std::snprintf(buf, sizeof buf, "%.1f GiB", mib(b) / 1024.0);
    else std::snprintf(buf, sizeof buf, "%.1f MiB", mib(b));
    return buf;
}

// The memory a run would have: where it computes, free and total bytes.
struct TargetMemory {
    std::string where;
    std::size_t free = 0, total = 0;
};

TargetMemory target_memory(const std::string& backend) {
    TargetMemory t;
    const auto b = make_backend(backend);  // an Error naming the reason when cuda cannot be used here
    if (b->device_memory(&t.free, &t.total)) {
        t.where = "the " + b->name() + " device";
        return t;
    }
    t.where = "this computer";
    const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
    t.total = pages > 0 && page > 0 ? std::size_t(pages) * std::size_t(page) : 0;
    std::ifstream meminfo("/proc/meminfo");  // MemAvailable counts reclaimable caches as free
    for (std::string key; meminfo >> key;) {
        std::size_t kib = 0;
        meminfo >> kib;
        if (key == "MemAvailable:") t.free = kib * 1024;
        meminfo.ignore(64, '\n');
    }
    if (t.free == 0) t.free = std::size_t(sysconf(_SC_AVPHYS_PAGES)) * std::size_t(page);
    return t;
}

void print_fit(const MemoryReport& m, const TargetMemory& t) {
    if (m.peak() <= t.free)
        std::printf("fits: %s of the %s free on %s (%s in all)\n", size_text(m.peak()).c_str(), size_text(t.free).c_str(),
                    t.where.c_str(), size_text(t.total).c_str());
    else
        std::printf("does not fit: needs %s (weights + gradients + optimizer %s, activations %s) but %s has %s free of %s\n",
                    size_text(m.peak()).c_str(), size_text(m.resident()).c_str(), size_text(m.activation_peak).c_str(),
                    t.where.c_str(), size_text(t.free).c_str(), size_text(t.total).c_str());
}

MethodConfig named_method(const std::string& name) { return parse_method({{"name", name}}, "plan"); }

void print_layers(const MemoryPlanResult& r) {
    const MemoryReport& m = r.report;
    std::printf("| %-16s | %14s | %22s |\n", "part", "held MiB", "backward transient MiB");
    std::printf("|%s|%s|%s|\n", std::string(18, '-').c_str(), std::string(16, '-').c_str(), std::string(24, '-').c_str());
    for (const LayerMemory& l : m.layers)
        std::printf("| %-16s | %14.2f | %22.2f |\n", l.label.c_str(), mib(l.held), mib(l.transient));
    if (m.stored_streams) std::printf("| %-16s | %14.2f | %22s |\n", "stored streams", mib(m.stored_streams), "");
    std::printf("| %-16s | %14.2f | %22s |\n", "total held", mib(m.held_total), "");
    if (m.remainders) std::printf("(of which packed MEFT remainders: %.2f MiB)\n", mib(m.remainders));
    std::printf("\nactivation memory (peak over the step): %.2f MiB\n", mib(m.activation_peak));
    std::printf("resident: frozen weights %.2f MiB, trainable weights %.2f MiB, gradients %.2f MiB, optimizer state %.2f MiB\n",
                mib(m.frozen_weights), mib(m.trainable_weights), mib(m.gradients), mib(m.optimizer_state));
    std::printf("peak = resident + activations = %.2f MiB; trainable parameters %lld of %lld (%.3f%%)\n", mib(m.peak()),
                static_cast<long long>(r.trainable_parameters), static_cast<long long>(r.parameters),
                100.0 * double(r.trainable_parameters) / double(r.parameters));
}

int run(const PlanArgs& a) {
    const Experiment e = load_experiment(a.experiment);
    const ModelConfig cfg = experiment_model_config(e);
    // --batch and training.batch_size count examples, or questions for a multiple-choice head,
    // whose every (context, choice) pair is a row: the plan takes the task's most choices.
    const int per = rows_per_unit(e);
    const int B = (a.batch > 0 ? a.batch : e.train.batch_size) * per;
    const int T = a.seq > 0 ? a.seq : e.train.max_seq_length;
    const DType dt = a.dtype == "fp64" ? DType::F64 : a.dtype == "bf16" ? DType::BF16 : a.dtype == "fp16" ? DType::F16 : DType::F32;
    const TargetMemory target = target_memory(a.backend);
    const auto t0 = std::chrono::steady_clock::now();
    const std::string rows = per > 1 ? " (" + std::to_string(B / per) + " questions x " + std::to_string(per) + " choices)" : "";
    std::printf("meft plan: %s (%s), batch %d%s x seq %d, %s — shape-only backend, nothing computed\n\n",
                arch_name(cfg.arch).c_str(), cfg.shape_summary().c_str(), B, rows.c_str(), T, a.dtype.c_str());
    if (!a.all_methods) {
        std::printf("method: %s\n\n", e.method.name().c_str());
        const MemoryPlanResult r = plan_memory(cfg, e.method, dt, B, T);
        print_layers(r);
        print_fit(r.report, target);
    } else {
        const MemoryPlanResult full = plan_memory(cfg, named_method("full"), dt, B, T);
        std::printf("| %-10s | %12s | %9s | %16s | %14s | %12s | %4s |\n", "method", "trainable", "share", "activation MiB",
                    "vs full FT", "peak MiB", "fits");
        std::printf("|%s|%s|%s|%s|%s|%s|%s|\n", std::string(12, '-').c_str(), std::string(14, '-').c_str(),
                    std::string(11, '-').c_str(), std::string(18, '-').c_str(), std::string(16, '-').c_str(),
                    std::string(14, '-').c_str(), std::string(6, '-').c_str());
        for (const std::string& name : method_names()) {
            const MemoryPlanResult r = name == "full" ? full : plan_memory(cfg, named_method(name), dt, B, T);
            std::printf("| %-10s | %12lld | %8.3f%% | %16.1f | %13.1f%% | %12.1f | %4s |\n", name.c_str(),
                        static_cast<long long>(r.trainable_parameters),
                        100.0 * double(r.trainable_parameters) / double(r.parameters), mib(r.report.activation_peak),
                        100.0 * double(r.report.activation_peak) / double(full.report.activation_peak),
                        mib(r.report.peak()), r.report.peak() <= target.free ? "yes" : "no");
        }
        std::printf("\nfits: peak (weights + gradients + optimizer + activations) within the %s free on %s (%s in all)\n",
                    size_text(target.free).c_str(), target.where.c_str(), size_text(target.total).c_str());
    }
    std::printf("\nplanned in %.0f ms\n",
                std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    return 0;
}
}  // namespace

Runner add_plan(CLI::App& app) {
    auto a = std::make_shared<PlanArgs>();
    app.add_option("experiment", a->experiment, "experiment file (its backbone and method are planned)")
        ->required()
        ->check(CLI::ExistingFile);
    app.add_option("--batch", a->batch, "batch size (default: the experiment's); questions for a multiple-choice head")->check(CLI::Range(1, 1 << 20));
    app.add_option("--seq", a->seq, "sequence length (default: the experiment's max_seq_length)")->check(CLI::Range(2, 1 << 16));
    app.add_option("--dtype", a->dtype, "activation and weight precision")
        ->check(CLI::IsMember({"fp32", "fp16", "bf16", "fp64"}))
        ->capture_default_str();
    app.add_flag("--all-methods", a->all_methods, "compare every method's activation memory with full fine-tuning");
    app.add_option("--backend", a->backend,
                   "whose free memory the plan is checked against: cuda (the GPU), cpu (this computer) or auto "
                   "(the GPU when there is one); the plan itself never computes")
        ->check(CLI::IsMember({"cpu", "cuda", "auto"}))
        ->capture_default_str();
    return [a] { return run(*a); };
}

}  // namespace meft::cli
