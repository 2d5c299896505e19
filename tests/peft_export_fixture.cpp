// peft_export_fixture — writes what test_peft_export_cli.sh checks with the numpy reference: for
// each backbone × method case (tiny float64 models, method tensors drawn non-trivial),
//
//   OUT/<case>/base/          the backbone without the method's tensors (save_base_model, F64), its
//                             head redrawn: the adapter must bring the trained one
//   OUT/<case>/adapter/       the PEFT adapter (save_peft_adapter, F64), naming base/ by absolute path
//   OUT/<case>/merged/        the LoRA family, VeRA and (IA)3: the merged checkpoint (save_merged_model, F64)
//   OUT/<case>/inputs.jsonl   the examples (input_ids, token_type_ids, attention_mask), padded
//   OUT/<case>/expected.jsonl the engine's float64 outputs with the method: {"logits": [...]} or, for
//                             OPT, {"token_log_probs": [...]} (each labelled token's log-probability)
//
// and OUT/cases.txt, one line per case: "<case> <output key> <merged: 0|1>".
//
//     peft_export_fixture OUT_DIR
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <random>

#include "peft/method_edit.h"
#include "core/cpu_backend.h"
#include "peft/peft_export.h"
#include "peft_export_cases.h"

using namespace meft;
namespace fs = std::filesystem;

namespace {

struct Case {
    Arch arch;
    std::string method;
    bool multiple_choice = false;
};

std::string case_name(const Case& c) {
    return arch_name(c.arch) + (c.multiple_choice ? "_mc_" : "_") + c.method;
}

void write_case(const Case& c, const fs::path& out, Backend& be, std::ofstream& list) {
    const std::string name = case_name(c);
    const fs::path d = fs::absolute(out / name);
    auto m = meft::test::make_case_model(c.arch, c.method, DType::F64, be, 11, c.multiple_choice);
    const HostBatch b = meft::test::case_batch(m->config());
    const std::vector<double> y = meft::test::case_outputs(*m, b);
    save_peft_adapter(*m, d / "adapter", (d / "base").string(), DType::F64);
    const bool merged = can_merge(meft::method_of(*m));
    if (merged) save_merged_model(*m, d / "merged", DType::F64);
    // The base gets another head (as a pretrained checkpoint has none, or an untrained one): the
    // adapter's modules_to_save must bring the trained one.
    std::mt19937_64 rng(3);
    std::normal_distribution<double> noise(0.0, 1.0);
    for (Parameter& p : m->params().all()) {
        if (!m->is_head_parameter(p.name)) continue;
        std::vector<double> v = m->to_host(p.value);
        for (double& x : v) x += noise(rng);
        m->from_host(p.value, v);
    }
    save_base_model(*m, d / "base", DType::F64);
    const bool lm = !b.token_labels.empty();
    std::ofstream in(d / "inputs.jsonl"), expected(d / "expected.jsonl");
    std::size_t at = 0;
    for (int i = 0; i < b.B; ++i) {
        nlohmann::json row;
        std::vector<int> ids, types, mask;
        std::size_t n = lm ? 0 : static_cast<std::size_t>(m->outputs_per_example());
        for (int t = 0; t < b.T; ++t) {
            const std::size_t j = static_cast<std::size_t>(i * b.T + t);
            ids.push_back(b.input_ids[j]);
            types.push_back(b.token_type_ids[j]);
            mask.push_back(b.attention_mask[j]);
            if (lm && t > 0 && b.token_labels[j] >= 0) ++n;  // the tokens case_outputs scored, in order
        }
        in << nlohmann::json{{"input_ids", ids}, {"token_type_ids", types}, {"attention_mask", mask}}.dump() << "\n";
        const std::vector<double> part(y.begin() + static_cast<std::ptrdiff_t>(at),
                                       y.begin() + static_cast<std::ptrdiff_t>(at + n));
        expected << nlohmann::json{{lm ? "token_log_probs" : "logits", part}}.dump() << "\n";
        at += n;
    }
    if (at != y.size()) throw Error(name + ": outputs do not split into examples");
    list << name << " " << (lm ? "token_log_probs" : "logits") << " " << (merged ? 1 : 0) << "\n";
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: peft_export_fixture OUT_DIR\n");
        return 2;
    }
    try {
        const fs::path out = argv[1];
        fs::create_directories(out);
        auto be = make_cpu_backend();
        std::ofstream list(out / "cases.txt");
        std::vector<Case> cases;
        for (Arch a : {Arch::Bert, Arch::Roberta, Arch::Bart, Arch::Opt})
            for (const char* n : {"lora", "lora_all", "ia3"}) cases.push_back({a, n});
        for (Arch a : {Arch::Bert, Arch::Roberta, Arch::Opt})
            for (const char* n : {"prefix", "prefix_mlp"}) cases.push_back({a, n});
        for (const char* n : {"dora", "dora_all", "vera", "vera_all"}) {
            cases.push_back({Arch::Bert, n});
            cases.push_back({Arch::Bart, n});
        }
        cases.push_back({Arch::Opt, "dora"});
        cases.push_back({Arch::Opt, "vera_all"});
        cases.push_back({Arch::Bert, "lora", true});
        cases.push_back({Arch::Roberta, "ia3", true});
        cases.push_back({Arch::Bart, "lora_all", true});
        for (const Case& c : cases) write_case(c, out, *be, list);
        std::printf("wrote %zu cases to %s\n", cases.size(), out.string().c_str());
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "peft_export_fixture: %s\n", e.what());
        return 1;
    }
}
