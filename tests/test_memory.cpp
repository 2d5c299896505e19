// Memory accounting: `meft plan` (shape-only backend) equals what the CPU backend measures, byte
// for byte and layer by layer, for every method; the report adds up.
#include <gtest/gtest.h>

#include "peft/method.h"
#include "core/cpu_backend.h"
#include "train/memory_plan.h"

using namespace meft;

namespace {

ModelConfig small() {
    ModelConfig c = preset_config(Arch::Bert, "tiny");
    c.vocab_size = 500;
    c.num_layers = 3;
    c.hidden_size = 32;
    c.num_heads = 4;
    c.intermediate_size = 64;
    c.set_num_labels(2);
    return c;
}

// The CPU backend's attention workspaces belong to the process's threads and only grow, so a
// measured workspace equals a fresh plan only while each measurement needs at least as much as
// every earlier one in this process (see RunFootprintEqualsMeasurement).
void expect_same(const MemoryReport& a, const MemoryReport& b, const std::string& what, bool workspace = false) {
    ASSERT_EQ(a.layers.size(), b.layers.size()) << what;
    for (std::size_t i = 0; i < a.layers.size(); ++i) {
        EXPECT_EQ(a.layers[i].held, b.layers[i].held) << what << " " << a.layers[i].label;
        EXPECT_EQ(a.layers[i].transient, b.layers[i].transient) << what << " " << a.layers[i].label;
    }
    EXPECT_EQ(a.stored_streams, b.stored_streams) << what;
    EXPECT_EQ(a.remainders, b.remainders) << what;
    EXPECT_EQ(a.held_total, b.held_total) << what;
    EXPECT_EQ(a.activation_peak, b.activation_peak) << what;
    EXPECT_EQ(a.frozen_weights, b.frozen_weights) << what;
    EXPECT_EQ(a.trainable_weights, b.trainable_weights) << what;
    EXPECT_EQ(a.gradients, b.gradients) << what;
    EXPECT_EQ(a.optimizer_state, b.optimizer_state) << what;
    EXPECT_EQ(a.reserved, b.reserved) << what;
    if (workspace) EXPECT_EQ(a.workspace, b.workspace) << what;
    else EXPECT_GE(a.workspace, b.workspace) << what;
}

// What a run takes from its backend (arena chunks, op workspaces) after evaluation batches and
// training steps: planned = measured, and it holds everything in use.
TEST(MemoryPlan, RunFootprintEqualsMeasurement) {
    auto cpu = make_cpu_backend();
    const ModelConfig cfg = small();
    // Sequences longer than the other tests' (and prefix-tuning, with the most keys, last), so
    // each measured workspace is this run's own (expect_same). The CPU backend's per-thread
    // workspaces only grow, and tiled attention's tile buffers are larger than these sequences'
    // standard attention needs: this test comes before any tiled attention runs in the process.
    for (const char* n : {"full", "lora", "meft1", "prefix"}) {
        const MethodConfig m = parse_method({{"name", n}}, "test");
        const MemoryPlanResult measured = measure_run_memory(*cpu, cfg, m, DType::F32, 4, 16, 64);
        const MemoryPlanResult planned = plan_run_memory(cfg, m, DType::F32, 4, 16, 64);
        expect_same(measured.report, planned.report, n, true);
        const MemoryReport& r = planned.report;
        EXPECT_GE(r.reserved, r.resident() + r.activation_peak) << n;
        // each thread's attention backward workspace: 2 x 64 x 64 floats (prefix: more keys)
        EXPECT_GE(r.workspace, 2 * 64 * 64 * sizeof(float)) << n;
        EXPECT_EQ(r.footprint(), r.reserved + r.workspace) << n;
    }
}

TEST(MemoryPlan, EqualsMeasurementForEveryMethod) {
    auto cpu = make_cpu_backend();
    std::vector<nlohmann::json> methods;
    for (const std::string& n : method_names()) methods.push_back({{"name", n}});
    methods.push_back({{"name", "houlsby"}, {"gradient_checkpointing", true}});
    methods.push_back({{"name", "lora"}, {"lora", {{"targets", {"query", "attention_output", "ffn_out"}}}}});
    methods.push_back({{"name", "meft1"}, {"meft", {{"frozen_prefix", 1}, {"reversible_layers", 1}}}});
    methods.push_back({{"name", "meft2"}, {"meft", {{"streams", "float64"}}}});
    methods.push_back({{"name", "meft3"}, {"meft", {{"vanilla_gradient", true}}}});
    methods.push_back({{"name", "meft1"}, {"recompute_tokens", 24}});  // one example per chunk
    methods.push_back({{"name", "meft3"}, {"recompute_tokens", 72}});  // 3 + 1
    methods.push_back({{"name", "houlsby"}, {"gradient_checkpointing", true}, {"recompute_tokens", 48}});
    methods.push_back({{"name", "prefix"}, {"gradient_checkpointing", true}, {"recompute_tokens", 24}});
    for (const AttentionKind k : {AttentionKind::Standard, AttentionKind::Tiled}) {
        for (const nlohmann::json& j : methods) {
            ModelConfig cfg = small();
            cfg.attention = k;
            const MethodConfig m = parse_method(j, "test");
            const MemoryPlanResult measured = measure_memory(*cpu, cfg, m, DType::F32, 4, 24);
            const MemoryPlanResult planned = plan_memory(cfg, m, DType::F32, 4, 24);
            expect_same(measured.report, planned.report, j.dump() + " " + attention_kind_name(k));
            EXPECT_EQ(measured.trainable_parameters, planned.trainable_parameters);
            // the report adds up: layers + stored streams = everything saved
            std::size_t sum = planned.report.stored_streams;
            for (const LayerMemory& l : planned.report.layers) sum += l.held;
            EXPECT_EQ(sum, planned.report.held_total) << j.dump();
            EXPECT_GE(planned.report.activation_peak, planned.report.held_total) << j.dump();
        }
    }
}

// The CUDA backend's attention keeps B x heads x Tq x Tk for the dropped probabilities and again
// for their gradient (whole MiB each): the plan for a CUDA device counts them.
TEST(MemoryPlan, CudaRulePlansTheAttentionWorkspace) {
    const ModelConfig base = preset_config(Arch::Bert, "base");
    const MethodConfig full = parse_method({{"name", "full"}}, "t");
    const MemoryPlanResult r = plan_memory(base, full, DType::F32, 32, 512, WorkspaceRule::cuda_device());
    const std::size_t probs = std::size_t(32) * 12 * 512 * 512 * sizeof(float);  // 384 MiB
    EXPECT_GE(r.report.workspace, 2 * probs);
    EXPECT_LE(r.report.workspace, 2 * probs + (8u << 20));  // plus the small scratches
    const MemoryPlanResult cpu = plan_memory(base, full, DType::F32, 32, 512, WorkspaceRule{false, 2, false});
    EXPECT_EQ(cpu.report.workspace, 2 * 2 * std::size_t(512) * 512 * sizeof(float));  // 2 threads x [dP | dropped P]
}

TEST(MemoryPlan, MeftNeedsAtMostATenthOfFullFineTuningAtBertBase) {
    const ModelConfig base = preset_config(Arch::Bert, "base");
    const std::size_t full = plan_memory(base, parse_method({{"name", "full"}}, "t"), DType::F32, 32, 512).report.activation_peak;
    for (const char* n : {"meft1", "meft2", "meft3"}) {
        const std::size_t m = plan_memory(base, parse_method({{"name", n}}, "t"), DType::F32, 32, 512).report.activation_peak;
        EXPECT_LT(m * 10, full) << n << ": " << m << " vs full " << full;
    }
}

TEST(MemoryPlan, PlansLargeModelsQuickly) {
    ModelConfig large = preset_config(Arch::Bert, "base");  // BERT-large shapes
    large.num_layers = 24;
    large.hidden_size = 1024;
    large.num_heads = 16;
    large.intermediate_size = 4096;
    const MemoryPlanResult r = plan_memory(large, parse_method({{"name", "meft1"}}, "t"), DType::F32, 32, 512);
    EXPECT_GT(r.parameters, 330000000);
    EXPECT_GT(r.report.activation_peak, 0u);
}

}  // namespace
