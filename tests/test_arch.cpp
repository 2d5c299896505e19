// The backbone families (engine/model/arch/): every registered family's presets build valid
// configurations whose config.json reads back to the same file, its positions stay inside its
// position table for the longest sequence it accepts, its names are its own, and a model of each
// preset declares exactly the tensors its spec names for embeddings, layers and head.
#include <gtest/gtest.h>

#include <set>

#include "core/shape_backend.h"
#include "model/arch/arch.h"
#include "model/checkpoint.h"
#include "test_support.h"

using namespace meft;

TEST(Arch, EveryFamilyIsRegisteredUnderItsName) {
    std::set<std::string> names;
    for (const ArchSpec* s : all_archs()) {
        EXPECT_EQ(&arch_spec(s->arch()), s);
        EXPECT_EQ(find_arch(s->name()), s);
        EXPECT_EQ(parse_arch(s->name()), s->arch());
        names.insert(s->name());
    }
    EXPECT_EQ(names, (std::set<std::string>{"bert", "roberta", "bart", "opt"}));
    EXPECT_EQ(find_arch("gpt2"), nullptr);
    EXPECT_NE(test::error_of([] { parse_arch("gpt2"); }).find("expected bert, roberta, bart or opt"), std::string::npos);
}

TEST(Arch, PresetsRoundTripThroughConfigJson) {
    for (const ArchSpec* s : all_archs())
        for (const std::string& p : s->presets()) {
            SCOPED_TRACE(s->name() + " " + p);
            const ModelConfig c = s->preset(p);
            EXPECT_EQ(c.arch, s->arch());
            c.validate("preset");
            const nlohmann::json j = c.to_json();
            EXPECT_EQ(j["model_type"], s->name());
            EXPECT_EQ(ModelConfig::from_json(j, "config.json").to_json(), j);
        }
    EXPECT_THROW(arch_spec(Arch::Opt).preset("large"), Error);
    EXPECT_THROW(arch_spec(Arch::Bert).preset("1.3b"), Error);
    const ModelConfig mini = arch_spec(Arch::Bert).preset("mini");  // BERT-Mini: 4 layers, 256 wide, 4 heads
    EXPECT_EQ(mini.num_layers, 4);
    EXPECT_EQ(mini.hidden_size, 256);
    EXPECT_EQ(mini.num_heads, 4);
    EXPECT_EQ(mini.intermediate_size, 1024);
    EXPECT_EQ(mini.vocab_size, 30522);
    EXPECT_THROW(arch_spec(Arch::Opt).preset("mini"), Error);
}

TEST(Arch, PositionsStayInTheTable) {
    for (const ArchSpec* s : all_archs()) {
        SCOPED_TRACE(s->name());
        const ModelConfig c = s->preset("tiny");
        HostBatch b;
        b.B = 2;
        b.T = c.max_tokens();
        b.input_ids.assign(static_cast<std::size_t>(b.B * b.T), s->plain_token(c));
        b.attention_mask.assign(b.input_ids.size(), 1);
        for (int t = b.T / 2; t < b.T; ++t) {  // the second row half padding
            b.input_ids[static_cast<std::size_t>(b.T + t)] = c.pad_token_id;
            b.attention_mask[static_cast<std::size_t>(b.T + t)] = 0;
        }
        const std::vector<std::int32_t> pos = s->positions(b, c);
        ASSERT_EQ(pos.size(), b.input_ids.size());
        EXPECT_EQ(pos[0], s->first_position(c));  // the first real token
        for (std::int32_t p : pos) {
            EXPECT_GE(p, 0);
            EXPECT_LT(p, s->position_rows(c));
        }
        EXPECT_EQ(pos[static_cast<std::size_t>(b.T - 1)], s->position_rows(c) - 1);  // the longest sequence fills the table
    }
}

TEST(Arch, ModelsDeclareTheNamesTheirSpecGives) {
    const std::unique_ptr<Backend> backend = make_shape_backend();
    for (const ArchSpec* s : all_archs()) {
        SCOPED_TRACE(s->name());
        const ModelConfig c = s->preset("tiny");
        const std::unique_ptr<Model> m = make_model(c, *backend, DType::F32);
        std::set<std::string> names;
        for (const Parameter& p : m->params().all()) names.insert(p.name);
        const EmbeddingNames e = s->embeddings(c);
        EXPECT_TRUE(names.count(e.tokens));
        EXPECT_TRUE(names.count(e.positions));
        EXPECT_EQ(names.count(e.types), e.types.empty() ? 0u : 1u);
        const LayerNames& n = s->layer_names();
        for (const char* lin : n.linear) EXPECT_TRUE(names.count(s->layers() + "0." + lin + ".weight")) << lin;
        const HeadNames h = s->head(c);
        EXPECT_TRUE(h.out.empty() || names.count(h.out + ".weight"));
        EXPECT_TRUE(s->final_layer_norm().empty() || names.count(s->final_layer_norm() + ".weight"));
        for (const std::string& name : names) {
            EXPECT_FALSE(s->is_tied_copy(name)) << name << " is declared, not a tied copy";
            EXPECT_TRUE(name.rfind(s->prefix(), 0) == 0 || m->is_head_parameter(name)) << name;
        }
    }
}
