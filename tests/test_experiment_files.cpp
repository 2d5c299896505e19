// Loading experiment files: paths are checked before anything runs, a GLUE root folder serves a
// sweep over tasks, command-line overrides apply before sweeps expand, the backend key is
// validated, and the paper's recipes expand into the spec's grid (meft-spec.md §7.1).
#include <gtest/gtest.h>

#include <fstream>
#include <set>

#include "core/backend_select.h"
#include "core/error.h"
#include "store/experiment.h"
#include "test_support.h"

using namespace meft;
namespace fs = std::filesystem;

namespace {

class ExperimentFiles : public test::TempDirTest {
protected:
    fs::path write(const fs::path& rel, const std::string& text) {
        const fs::path p = dir_ / rel;
        fs::create_directories(p.parent_path());
        std::ofstream(p, std::ios::binary) << text;
        return p;
    }
    // A GLUE download's root with a train.tsv in the named task folders.
    fs::path glue_root(const std::vector<std::string>& folders) {
        for (const std::string& f : folders) write("glue/" + f + "/train.tsv", "x\n");
        return dir_ / "glue";
    }
};

}  // namespace

TEST_F(ExperimentFiles, MissingPathsAreNamedBeforeAnythingRuns) {
    const fs::path f = write("e.json", R"({"backbone": {"path": "nowhere"}})");
    std::string msg = test::error_of([&] { load_experiments(f); });
    EXPECT_NE(msg.find("'backbone.path'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("is not a directory"), std::string::npos) << msg;

    fs::create_directories(dir_ / "empty_model");
    const fs::path g = write("g.json", R"({"backbone": {"path": "empty_model"}})");
    msg = test::error_of([&] { load_experiments(g); });
    EXPECT_NE(msg.find("has no config.json"), std::string::npos) << msg;

    const fs::path h = write("h.json", R"({"backbone": {"preset": "tiny", "tokenizer": "tok"},
                                           "task": {"name": "rte", "data_dir": "glue"}})");
    msg = test::error_of([&] { load_experiments(h); });
    EXPECT_NE(msg.find("'backbone.tokenizer'"), std::string::npos) << msg;

    fs::create_directories(dir_ / "tok");
    msg = test::error_of([&] { load_experiments(h); });
    EXPECT_NE(msg.find("'task.data_dir'"), std::string::npos) << msg;

    glue_root({"SST-2"});
    msg = test::error_of([&] { load_experiments(h); });
    EXPECT_NE(msg.find("has neither train.tsv nor a RTE/ folder"), std::string::npos) << msg;
}

TEST_F(ExperimentFiles, GlueRootServesASweepOverTasks) {
    const fs::path root = glue_root({"SST-2", "RTE", "CoLA"});
    const fs::path f = write("e.json", R"({"backbone": {"preset": "tiny", "tokenizer": "."},
                                           "task": {"name": ["sst2", "rte", "cola"], "data_dir": "glue"}})");
    const std::vector<Experiment> e = load_experiments(f);
    ASSERT_EQ(e.size(), 3u);
    EXPECT_EQ(e[0].task.data_dir, root / "SST-2");
    EXPECT_EQ(e[1].task.data_dir, root / "RTE");
    EXPECT_EQ(e[2].task.data_dir, root / "CoLA");
    // A task folder itself is used as it is.
    const fs::path g = write("g.json", R"({"backbone": {"preset": "tiny", "tokenizer": "."},
                                           "task": {"name": "rte", "data_dir": "glue/RTE"}})");
    EXPECT_EQ(load_experiment(g).task.data_dir, root / "RTE");
}

TEST_F(ExperimentFiles, OverridesApplyBeforeSweeps) {
    const fs::path f = write("e.json", R"({"backbone": {"preset": "tiny"}, "training": {"learning_rate": 0.001}})");
    std::vector<Experiment> e = load_experiments(f, {"training.learning_rate=3e-4", "name=from the command line",
                                                     "method.name=lora", "method.lora.r=4"});
    ASSERT_EQ(e.size(), 1u);
    EXPECT_DOUBLE_EQ(e[0].train.learning_rate, 3e-4);
    EXPECT_EQ(e[0].name, "from the command line");  // not JSON: taken as a string
    EXPECT_EQ(e[0].method.name(), "lora");
    EXPECT_EQ(e[0].method.lora.r, 4);

    e = load_experiments(f, {"training.seed=[1,2,3]"});
    EXPECT_EQ(e.size(), 3u);
    EXPECT_EQ(e[2].train.seed, 3u);

    // Overridden values are validated like written ones, and a malformed override is named.
    std::string msg = test::error_of([&] { load_experiments(f, {"training.batch_size=0"}); });
    EXPECT_NE(msg.find("'training.batch_size'"), std::string::npos) << msg;
    msg = test::error_of([&] { load_experiments(f, {"training.learning_rate"}); });
    EXPECT_NE(msg.find("must read KEY.PATH=VALUE"), std::string::npos) << msg;
    msg = test::error_of([&] { load_experiments(f, {"training.learning_rate.x=1"}); });
    EXPECT_NE(msg.find("'training.learning_rate' is not an object"), std::string::npos) << msg;
}

// Found by fuzz_experiment: an override that is not JSON is taken as a string, and one with bytes
// that are not UTF-8 escaped as nlohmann::json's type_error from the wrong-type message.
TEST_F(ExperimentFiles, OverridesThatAreNotUtf8AreErrors) {
    const fs::path f = write("e.json", R"({"backbone": {"preset": "tiny"}})");
    for (const std::string& bad : {std::string("training.learning_rate=[0.001,0.0\xd9\xcd"), std::string("notes=caf\xe9"),
                                   std::string("training.l\xff=1")}) {
        const std::string msg = test::error_of([&] { load_experiments(f, {bad}); });
        EXPECT_NE(msg.find("is not valid UTF-8"), std::string::npos) << msg;
    }
    EXPECT_EQ(load_experiments(f, {"notes=caf\xc3\xa9"})[0].notes, "caf\xc3\xa9");  // UTF-8 is fine
}

TEST_F(ExperimentFiles, BackendIsValidatedAndRecorded) {
    const fs::path f = write("e.json", R"({"backbone": {"preset": "tiny"}, "training": {"backend": "gpu"}})");
    const std::string msg = test::error_of([&] { load_experiments(f); });
    EXPECT_NE(msg.find("'training.backend' must be \"cpu\", \"cuda\" or \"auto\", found \"gpu\""), std::string::npos) << msg;
    const Experiment e = load_experiments(f, {"training.backend=cpu"}).front();
    EXPECT_EQ(e.backend, "cpu");
    EXPECT_EQ(resolved_config(e)["training"]["backend"], "cpu");
    EXPECT_EQ(load_experiments(f, {"training.backend=auto"}).front().backend, "auto");
    EXPECT_NE(make_backend("cpu"), nullptr);
    EXPECT_NE(make_backend("auto"), nullptr);
    if (!cuda_backend_available()) {
        const std::string why = test::error_of([] { make_backend("cuda"); });
        EXPECT_NE(why.find("backend \"cuda\" cannot be used"), std::string::npos) << why;
    }
}

// experiments/paper: one file per method, each the spec's grid over the eight GLUE tasks.
TEST_F(ExperimentFiles, PaperRecipesExpandIntoTheSpecsGrid) {
    write("bert/config.json", "{}");
    const fs::path root = glue_root({"CoLA", "SST-2", "MRPC", "STS-B", "QQP", "MNLI", "QNLI", "RTE"});
    const std::vector<std::string> methods = {"full",   "bitfit", "lora",  "houlsby", "pfeiffer",
                                              "prefix", "ia3",    "meft1", "meft2",   "meft3"};
    for (const std::string& m : methods) {
        const fs::path file = fs::path(MEFT_SOURCE_DIR) / "experiments/paper" / ("bert-base-glue-" + m + ".json");
        SCOPED_TRACE(file.string());
        const std::vector<Experiment> runs =
            load_experiments(file, {"backbone.path=" + (dir_ / "bert").string(), "task.data_dir=" + root.string()});
        ASSERT_EQ(runs.size(), 8u * 4 * 2 * 2);  // tasks x learning rates x batch sizes x epochs
        std::set<std::string> tasks;
        std::set<double> lrs;
        for (const Experiment& e : runs) {
            tasks.insert(e.task.name);
            lrs.insert(e.train.learning_rate);
            EXPECT_EQ(e.method.name(), m);
            EXPECT_EQ(e.train.seed, 3407u);
            EXPECT_EQ(e.train.max_seq_length, 512);
            EXPECT_DOUBLE_EQ(e.train.warmup_ratio, 0.06);
            EXPECT_DOUBLE_EQ(e.train.adamw.weight_decay, 0.1);
            EXPECT_DOUBLE_EQ(e.train.adamw.beta2, 0.98);
            EXPECT_DOUBLE_EQ(e.train.adamw.eps, 1e-6);
            EXPECT_EQ(e.dtype, DType::F32);
            EXPECT_TRUE(e.train.batch_size == 16 || e.train.batch_size == 32);
            EXPECT_TRUE(e.train.epochs == 20 || e.train.epochs == 40);
            if (e.method.is_meft()) {
                EXPECT_EQ(e.method.adapter.bottleneck, 8);
                EXPECT_EQ(e.method.meft.reversible_layers, 12);
            }
        }
        EXPECT_EQ(tasks, (std::set<std::string>{"cola", "sst2", "mrpc", "stsb", "qqp", "mnli", "qnli", "rte"}));
        EXPECT_EQ(lrs, (std::set<double>{5e-4, 6e-4, 7e-4, 8e-4}));
        if (m == "meft1") {
            EXPECT_EQ(runs[0].method.meft.lambda_inverse * runs[0].method.meft.beta_inverse, 10);
        }
        if (m == "meft2") {
            EXPECT_EQ(runs[0].method.meft.lambda_inverse, 1);
        }
        if (m == "meft3") {
            EXPECT_EQ(runs[0].method.meft.lambda_inverse * runs[0].method.meft.beta_inverse, 100);
        }
    }
}
