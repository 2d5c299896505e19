// meft plan EXPERIMENT.json — the activation memory of one training step, layer by layer,
// computed on the shape-only backend (nothing is allocated or computed), so any model size
// plans in milliseconds; the numbers equal what `meft run` measures on the CPU backend.
// --backend picks the memory the plan is checked against: the GPU's free memory (cuda), or
// this computer's available memory (cpu); auto takes the GPU when there is one.
#include <chrono>
#include <cstdio>

#include "cli/commands.h"
#include "run/run_setup.h"
#include "core/backend_select.h"
#include "core/error.h"
#include "core/host_memory.h"
#include "store/experiment.h"
#include "train/memory_plan.h"

namespace meft::cli {

namespace {
struct PlanArgs {
    std::string experiment, dtype = "fp32";
    int batch = 0, seq = 0;
    bool all_methods = false;
    std::string backend = "auto";
    std::string attention;          // "" = the experiment's training.attention
    std::vector<std::string> sets;  // KEY.PATH=VALUE overrides, as meft run
};

double mib(std::size_t b) { return double(b) / (1024.0 * 1024.0); }

// The memory a run would have: where it computes, free and total bytes, and the backend's
// workspace rule (what its ops hold beside the arenas).
struct TargetMemory {
    std::string where;
    std::size_t free = 0, total = 0;
    WorkspaceRule rule;
};

TargetMemory target_memory(const std::string& backend, bool bf16_gemm) {
    TargetMemory t;
    const auto b = make_backend(backend);  // an Error naming the reason when cuda cannot be used here
    if (b->device_memory(&t.free, &t.total)) {
        t.where = "the " + b->name() + " device";
        t.rule = WorkspaceRule::cuda_device(bf16_gemm);
        return t;
    }
    const HostMemory h = host_memory();  // MemAvailable (reclaimable caches count as free), or less under a limit
    t.where = "this computer" + (h.limited_by.empty() ? std::string() : " (" + h.limited_by + ")");
    t.free = h.available;
    t.total = h.total;
    t.rule = WorkspaceRule::cpu(bf16_gemm);
    return t;
}

void print_fit(const MemoryReport& m, const TargetMemory& t) {
    std::printf("takes from the backend: %s = arena chunks %s (weights, gradients, optimizer state and activations in "
                "whole chunks) + op workspaces %s (attention, reductions)\n",
                size_text(m.footprint()).c_str(), size_text(m.reserved).c_str(), size_text(m.workspace).c_str());
    if (m.footprint() <= t.free)
        std::printf("fits: %s of the %s free on %s (%s in all)\n", size_text(m.footprint()).c_str(), size_text(t.free).c_str(),
                    t.where.c_str(), size_text(t.total).c_str());
    else
        std::printf("does not fit: needs %s (weights + gradients + optimizer %s, activations %s, chunk rounding and op "
                    "workspaces %s) but %s has %s free of %s\n",
                    size_text(m.footprint()).c_str(), size_text(m.resident()).c_str(), size_text(m.activation_peak).c_str(),
                    size_text(m.footprint() - std::min(m.footprint(), m.peak())).c_str(), t.where.c_str(),
                    size_text(t.free).c_str(), size_text(t.total).c_str());
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
    const std::vector<Experiment> exps = load_experiments(a.experiment, a.sets);
    const Experiment& e = exps.front();
    if (exps.size() > 1)
        std::printf("%s expands into %zu runs; planning the first (%s)\n\n", a.experiment.c_str(), exps.size(),
                    e.sweep_label.c_str());
    ModelConfig cfg = experiment_model_config(e);
    if (!a.attention.empty()) cfg.attention = parse_attention_kind(a.attention);
    // --batch and training.batch_size count examples, or questions for a multiple-choice head,
    // whose every (context, choice) pair is a row: the plan takes the task's most choices.
    const int per = rows_per_unit(e);
    const int B = (a.batch > 0 ? a.batch : e.train.batch_size) * per;
    const int T = a.seq > 0 ? a.seq : e.train.max_seq_length;
    const DType dt = a.dtype == "fp64" ? DType::F64 : a.dtype == "bf16" ? DType::BF16 : a.dtype == "fp16" ? DType::F16 : DType::F32;
    const TargetMemory target = target_memory(a.backend, e.gemm_precision == "bf16");
    // Evaluation batches (training.eval_batch_size rows) grow the arenas too: planned with the step.
    const int eval_rows = e.train.eval_batch_size;
    // Either attention on the target's own workspace rule (CUDA: its kernels' scratch buffers).
    const auto plan_with = [&](const MethodConfig& m, AttentionKind k) {
        ModelConfig c = cfg;
        c.attention = k;
        return plan_run_memory(c, m, dt, B, eval_rows, T, target.rule);
    };
    const auto plan = [&](const MethodConfig& m) { return plan_with(m, cfg.attention); };
    const auto t0 = std::chrono::steady_clock::now();
    const std::string rows = per > 1 ? " (" + std::to_string(B / per) + " questions x " + std::to_string(per) + " choices)" : "";
    std::printf("meft plan: %s (%s), batch %d%s x seq %d, %s, %s attention — shape-only backend, nothing computed\n\n",
                arch_name(cfg.arch).c_str(), cfg.shape_summary().c_str(), B, rows.c_str(), T, a.dtype.c_str(),
                attention_kind_name(cfg.attention).c_str());
    if (!a.all_methods) {
        std::printf("method: %s\n\n", e.method.name().c_str());
        const MemoryPlanResult r = plan(e.method);
        print_layers(r);
        print_fit(r.report, target);
    } else {
        // Both attentions, each method against full fine-tuning with the same attention; needs and
        // fits for the one the run would use.
        const AttentionKind kinds[2] = {AttentionKind::Standard, AttentionKind::Tiled};
        MemoryPlanResult full[2];
        for (int i = 0; i < 2; ++i) full[i] = plan_with(named_method("full"), kinds[i]);
        std::printf("| %-10s | %12s | %9s | %13s | %10s | %13s | %10s | %12s | %4s |\n", "method", "trainable", "share",
                    "standard MiB", "vs full FT", "tiled MiB", "vs full FT", "needs MiB", "fits");
        std::printf("|%s|%s|%s|%s|%s|%s|%s|%s|%s|\n", std::string(12, '-').c_str(), std::string(14, '-').c_str(),
                    std::string(11, '-').c_str(), std::string(15, '-').c_str(), std::string(12, '-').c_str(),
                    std::string(15, '-').c_str(), std::string(12, '-').c_str(), std::string(14, '-').c_str(),
                    std::string(6, '-').c_str());
        for (const std::string& name : method_names()) {
            MemoryPlanResult r[2];
            for (int i = 0; i < 2; ++i) r[i] = name == "full" ? full[i] : plan_with(named_method(name), kinds[i]);
            const MemoryPlanResult& used = r[cfg.attention == AttentionKind::Tiled ? 1 : 0];
            auto share = [&](int i) { return 100.0 * double(r[i].report.activation_peak) / double(full[i].report.activation_peak); };
            std::printf("| %-10s | %12lld | %8.3f%% | %13.1f | %9.1f%% | %13.1f | %9.1f%% | %12.1f | %4s |\n", name.c_str(),
                        static_cast<long long>(used.trainable_parameters),
                        100.0 * double(used.trainable_parameters) / double(used.parameters), mib(r[0].report.activation_peak),
                        share(0), mib(r[1].report.activation_peak), share(1), mib(used.report.footprint()),
                        used.report.footprint() <= target.free ? "yes" : "no");
        }
        std::printf("\nstandard / tiled: activation memory with attention that keeps its probabilities / that recomputes "
                    "them (training.attention); needs: what the run takes from its backend with %s attention (weights, "
                    "gradients, optimizer state and activations in whole arena chunks, and the ops' workspaces); fits: "
                    "within the %s free on %s (%s in all)\n",
                    attention_kind_name(cfg.attention).c_str(), size_text(target.free).c_str(), target.where.c_str(),
                    size_text(target.total).c_str());
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
    app.add_option("--set", a->sets,
                   "override a key of the file before planning: KEY.PATH=VALUE (as meft run), e.g. --set method.name=meft1; "
                   "repeatable")
        ->allow_extra_args(false);
    app.add_flag("--all-methods", a->all_methods,
                 "compare every method's activation memory with full fine-tuning's, with standard and with tiled attention");
    app.add_option("--attention", a->attention, "plan with this attention (default: the experiment's training.attention)")
        ->check(CLI::IsMember({"standard", "tiled"}));
    app.add_option("--backend", a->backend,
                   "whose free memory the plan is checked against: cuda (the GPU), cpu (this computer) or auto "
                   "(the GPU when there is one); the plan itself never computes")
        ->check(CLI::IsMember({"cpu", "cuda", "auto"}))
        ->capture_default_str();
    return [a] { return run(*a); };
}

}  // namespace meft::cli
