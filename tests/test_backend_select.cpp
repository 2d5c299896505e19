// Backend selection and the CUDA plugin loader (engine/core/backend_select.cpp), against fake
// plugins (tests/fake_cuda_plugin.cpp): every way loading can fail gives a reason naming what is
// missing; a working plugin is used by "cuda" and chosen by "auto"; the options reach it; a run
// whose plan exceeds the device's free memory is recorded as failed with the planned bytes.
//
// The process loads the plugin once and keeps the outcome, so each plugin scenario runs in its
// own process: tests/backend_select.cmake adds one ctest entry per scenario, setting
// MEFT_BACKEND_TEST_SCENARIO (and MEFT_CUDA_PLUGIN, MEFT_FAKE_CUDA_MODE). A scenario's tests skip
// in any other process; the CpuBackend and GemmPrecision tests never load a plugin and run anywhere.
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <thread>

#include "core/backend_select.h"
#include "core/cpu_bf16_gemm.h"
#include "core/cuda_plugin.h"
#include "store/database.h"
#include "store/experiment.h"
#include "run/runner.h"
#include "test_support.h"

using namespace meft;
using meft::test::error_of;
using nlohmann::json;

namespace {

std::string env(const char* name) {
    const char* v = std::getenv(name);
    return v ? v : "";
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// A fixture per scenario: its tests run only in the ctest entry made for it.
template <const char* Scenario> class ScenarioTest : public ::testing::Test {
protected:
    void SetUp() override {
        const std::string s = env("MEFT_BACKEND_TEST_SCENARIO").empty() ? "none" : env("MEFT_BACKEND_TEST_SCENARIO");
        if (s != Scenario) GTEST_SKIP() << "runs in the ctest entry of scenario '" << Scenario << "' (this is '" << s << "')";
        plugin_ = env("MEFT_CUDA_PLUGIN");
    }
    std::string plugin_;
};

constexpr char kNone[] = "none", kMissing[] = "missing", kNotALibrary[] = "notalib", kNoSymbol[] = "nosymbol",
               kAbi[] = "abi", kNoDevice[] = "nodevice", kFake[] = "fake", kCreateFails[] = "createfail",
               kRealPlugin[] = "realplugin";

// Every failure to use CUDA: cuda_backend_available() says why, "cuda" throws that reason,
// "auto" takes the CPU.
void expect_unavailable(const std::string& must_mention) {
    std::string why;
    EXPECT_FALSE(cuda_backend_available(&why));
    EXPECT_TRUE(contains(why, must_mention)) << why;
    EXPECT_EQ(why, cuda_plugin_status().why);
    const std::string err = error_of([] { make_backend("cuda"); });
    EXPECT_TRUE(contains(err, "backend \"cuda\" cannot be used: ")) << err;
    EXPECT_TRUE(contains(err, why)) << err;
    EXPECT_EQ(make_backend("auto")->name(), "cpu");
    EXPECT_EQ(resolve_backend("auto"), "cpu");
}

Experiment tiny_experiment(const std::string& backend) {
    return parse_experiment(json{{"name", "oom"},
                                 {"backbone", {{"preset", "tiny"}}},
                                 {"task", {{"name", "toy"}, {"train_examples", 40}, {"dev_examples", 8}}},
                                 {"training", {{"max_steps", 2}, {"batch_size", 4}, {"max_seq_length", 32},
                                               {"backend", backend}}}},
                            "t");
}

}  // namespace

// ---- no plugin involved ---------------------------------------------------------------------

// bf16 GEMMs on the CPU (or their refusal without AVX512_BF16): test_cpu_bf16.cpp.
TEST(CpuBackend, CpuIgnoresTf32) {
    EXPECT_EQ(make_backend("cpu")->name(), "cpu");
    BackendOptions tf32;
    tf32.tf32 = true;
    EXPECT_EQ(make_backend("cpu", tf32)->name(), "cpu");  // a permission, not a demand
    EXPECT_EQ(error_of([] { make_backend("gpu"); }), "unknown backend \"gpu\" (expected \"cpu\", \"cuda\" or \"auto\")");
}

// The plugin ABI is a 32-bit hash of the interface headers (engine/plugin_abi.cmake), shown in hex.
TEST(PluginAbi, IsAnUnsigned32BitHashShownInHex) {
    static_assert(sizeof(MEFT_CUDA_PLUGIN_ABI) == 4);
    EXPECT_EQ(plugin_abi_text(0x0000beefu), "0x0000beef");
    EXPECT_EQ(plugin_abi_text(0xffffffffu), "0xffffffff");
    EXPECT_EQ(plugin_abi_text(MEFT_CUDA_PLUGIN_ABI).size(), 10u);
}

TEST(GemmPrecision, ParsedValidatedAndRecorded) {
    const json base = {{"backbone", {{"preset", "tiny"}}}};
    json j = base;
    EXPECT_EQ(parse_experiment(j, "t").gemm_precision, "float32");
    EXPECT_FALSE(backend_options(parse_experiment(j, "t")).tf32);
    j["training"]["gemm_precision"] = "tf32";
    Experiment e = parse_experiment(j, "t");
    EXPECT_TRUE(backend_options(e).tf32);
    EXPECT_FALSE(backend_options(e).bf16_gemm);
    EXPECT_EQ(resolved_config(e)["training"]["gemm_precision"], "tf32");
    j["training"]["gemm_precision"] = "bf16";
    e = parse_experiment(j, "t");
    EXPECT_TRUE(backend_options(e).bf16_gemm);
    EXPECT_FALSE(backend_options(e).tf32);
    // The recorded config parses back to the same options (meft resume reads it).
    EXPECT_TRUE(backend_options(parse_experiment(resolved_config(e), "r")).bf16_gemm);

    j["training"]["gemm_precision"] = "fp16";
    EXPECT_EQ(error_of([&] { parse_experiment(j, "f.json"); }),
              "f.json: 'training.gemm_precision' must be \"float32\", \"tf32\" or \"bf16\", found \"fp16\"");
    j["training"]["gemm_precision"] = true;
    EXPECT_EQ(error_of([&] { parse_experiment(j, "f.json"); }),
              "f.json: 'training.gemm_precision' must be a string, found true");
    j["training"]["gemm_precision"] = "tf32";
    j["training"]["dtype"] = "float64";
    EXPECT_TRUE(contains(error_of([&] { parse_experiment(j, "f.json"); }),
                         "f.json: 'training.gemm_precision' \"tf32\" needs 'training.dtype' \"float32\", found \"float64\""));
    j["training"]["dtype"] = "float32";
    j["training"]["gemm_precision"] = "bf16";
    j["training"]["backend"] = "cpu";  // the CPU backend has bf16 GEMMs too (where the CPU has AVX512_BF16)
    EXPECT_TRUE(backend_options(parse_experiment(j, "f.json")).bf16_gemm);
}

// ---- scenario "none": MEFT_CUDA_PLUGIN unset ------------------------------------------------

using NoPlugin = ScenarioTest<kNone>;

TEST_F(NoPlugin, AutoTakesCpuAndCudaSaysWhy) {
    ASSERT_EQ(env("MEFT_CUDA_PLUGIN"), "") << "the ctest entry unsets MEFT_CUDA_PLUGIN";
    const CudaPluginStatus& s = cuda_plugin_status();
    if (s.available) {  // a machine with a GPU and a built plugin: auto must take it
        EXPECT_NE(make_backend("auto")->name(), "cpu");
        GTEST_SKIP() << "this machine has a usable CUDA plugin (" << s.path << ")";
    }
    if (!s.found) {
        // A CPU-only build: the message lists where the plugin was looked for.
        EXPECT_TRUE(contains(s.why, "libmeft_cuda.so was not found (searched: ")) << s.why;
        EXPECT_TRUE(contains(s.why, "/libmeft_cuda.so, ")) << s.why;          // beside the executable
        EXPECT_TRUE(contains(s.why, "/lib/meft/libmeft_cuda.so")) << s.why;   // the installed layout
        EXPECT_TRUE(contains(s.why, "MEFT_CUDA_PLUGIN")) << s.why;
    }
    expect_unavailable(s.found ? s.path : std::string("libmeft_cuda.so"));
    BackendOptions bf16;
    bf16.bf16_gemm = true;
    if (cpu_bf16_gemm_available()) {  // auto without CUDA takes the CPU's bf16 GEMMs
        EXPECT_EQ(make_backend("auto", bf16)->name(), "cpu");
        return;
    }
    const std::string err = error_of([&] { make_backend("auto", bf16); });
    EXPECT_TRUE(contains(err, "backend \"auto\" found no CUDA backend (" + s.why + ")")) << err;
}

// ---- scenario "missing": MEFT_CUDA_PLUGIN names no file -------------------------------------

using MissingFile = ScenarioTest<kMissing>;

TEST_F(MissingFile, NamesThePathAndDoesNotFallBack) {
    ASSERT_FALSE(plugin_.empty());
    expect_unavailable("MEFT_CUDA_PLUGIN is set to " + plugin_ + ", which is not a file");
    EXPECT_FALSE(cuda_plugin_status().found);
}

// ---- scenario "notalib": a file that is not a shared library --------------------------------

using NotALibrary = ScenarioTest<kNotALibrary>;

TEST_F(NotALibrary, GivesTheDlopenError) {
    expect_unavailable("the CUDA plugin " + plugin_ + " could not be loaded: ");
    const std::string why = cuda_plugin_status().why;
    // dlerror() names the file and the problem ("invalid ELF header" or "file too short").
    EXPECT_TRUE(contains(why, "ELF") || contains(why, "too short")) << why;
    EXPECT_TRUE(cuda_plugin_status().found);
}

// ---- scenario "nosymbol": a library without meft_cuda_create_backend ------------------------

using MissingSymbol = ScenarioTest<kNoSymbol>;

TEST_F(MissingSymbol, NamesTheMissingEntryPoint) {
    expect_unavailable("the CUDA plugin " + plugin_ + " has no entry point meft_cuda_create_backend");
}

// ---- scenario "abi": the plugin was built for another ABI -----------------------------------

using AbiMismatch = ScenarioTest<kAbi>;

TEST_F(AbiMismatch, GivesBothVersions) {
    expect_unavailable("was built for plugin ABI " + plugin_abi_text(MEFT_CUDA_PLUGIN_ABI + 1u) + " but this meft needs ABI " +
                       plugin_abi_text(MEFT_CUDA_PLUGIN_ABI));
    // A refused plugin is never asked for a backend.
    void* h = dlopen(plugin_.c_str(), RTLD_NOW | RTLD_NOLOAD);
    ASSERT_NE(h, nullptr);
    const auto last = reinterpret_cast<int (*)(MeftCudaOptions*)>(dlsym(h, "fake_cuda_last_options"));
    ASSERT_NE(last, nullptr);
    EXPECT_EQ(last(nullptr), 0);
}

// ---- scenario "nodevice": the plugin loads but finds no GPU ---------------------------------

using NoDevice = ScenarioTest<kNoDevice>;

TEST_F(NoDevice, GivesTheProbesReason) {
    expect_unavailable("no CUDA device: cudaGetDeviceCount failed: CUDA driver version is insufficient");
    EXPECT_TRUE(cuda_plugin_status().found);
    EXPECT_EQ(cuda_plugin_status().devices, 0);
}

// ---- scenario "createfail": the plugin cannot make a backend --------------------------------

using CreateFails = ScenarioTest<kCreateFails>;

TEST_F(CreateFails, GivesThePluginsReasonAndAutoDoesNotHideIt) {
    EXPECT_TRUE(cuda_backend_available());
    for (const char* name : {"cuda", "auto"}) {
        const std::string err = error_of([&] { make_backend(name); });
        EXPECT_TRUE(contains(err, "the CUDA backend could not be created on device 0: cudaSetDevice: out of memory (fake)"))
            << name << ": " << err;
    }
}

// ---- scenario "fake": a working plugin with two devices -------------------------------------

using FakeCuda = ScenarioTest<kFake>;

TEST_F(FakeCuda, CudaAndAutoUseThePlugin) {
    std::string why = "unchanged";
    EXPECT_TRUE(cuda_backend_available(&why));
    EXPECT_EQ(why, "");
    const CudaPluginStatus& s = cuda_plugin_status();
    EXPECT_TRUE(s.found);
    EXPECT_EQ(s.path, plugin_);
    EXPECT_EQ(s.devices, 2);
    EXPECT_EQ(make_backend("cuda")->name(), "fake-cuda");
    EXPECT_EQ(make_backend("auto")->name(), "fake-cuda");
    EXPECT_EQ(resolve_backend("auto"), "cuda");
    EXPECT_EQ(make_backend("cpu")->name(), "cpu");  // still the reference when asked for
}

TEST_F(FakeCuda, OptionsReachThePlugin) {
    void* h = dlopen(plugin_.c_str(), RTLD_NOW | RTLD_NOLOAD);  // the loader's handle, not a second copy
    ASSERT_NE(h, nullptr) << plugin_;
    const auto last = reinterpret_cast<int (*)(MeftCudaOptions*)>(dlsym(h, "fake_cuda_last_options"));
    ASSERT_NE(last, nullptr);
    BackendOptions o;
    o.tf32 = true;
    o.device = 1;
    const int before = last(nullptr);
    auto b = make_backend("cuda", o);
    MeftCudaOptions got{};
    EXPECT_EQ(last(&got), before + 1);
    EXPECT_EQ(got.device, 1);
    EXPECT_EQ(got.tf32, 1);
    EXPECT_EQ(got.bf16_gemm, 0);
    BackendOptions bf16;
    bf16.bf16_gemm = true;
    EXPECT_EQ(make_backend("auto", bf16)->name(), "fake-cuda");  // bf16 is fine on "CUDA"
    last(&got);
    EXPECT_EQ(got.device, 0);
    EXPECT_EQ(got.tf32, 0);
    EXPECT_EQ(got.bf16_gemm, 1);
    BackendOptions far;
    far.device = 2;
    EXPECT_EQ(error_of([&] { make_backend("cuda", far); }),
              "CUDA device 2 does not exist: the plugin found 2 devices (ordinals 0 to 1)");
}

TEST_F(FakeCuda, LoadsOnceAcrossThreads) {
    std::vector<std::thread> threads;
    std::vector<int> ok(8, 0);
    for (std::size_t i = 0; i < ok.size(); ++i)
        threads.emplace_back([&ok, i] { ok[i] = cuda_backend_available() && make_backend("auto")->name() == "fake-cuda"; });
    for (std::thread& t : threads) t.join();
    for (int v : ok) EXPECT_EQ(v, 1);
}

TEST_F(FakeCuda, DeviceMemoryIsReported) {
    setenv("MEFT_FAKE_CUDA_TOTAL_BYTES", "8000", 1);
    setenv("MEFT_FAKE_CUDA_FREE_BYTES", "3000", 1);
    std::size_t free_bytes = 0, total_bytes = 0;
    EXPECT_TRUE(make_backend("cuda")->device_memory(&free_bytes, &total_bytes));
    EXPECT_EQ(free_bytes, 3000u);
    EXPECT_EQ(total_bytes, 8000u);
    EXPECT_FALSE(make_backend("cpu")->device_memory(&free_bytes, &total_bytes));
    unsetenv("MEFT_FAKE_CUDA_TOTAL_BYTES");
    unsetenv("MEFT_FAKE_CUDA_FREE_BYTES");
}

// A backend without a tiled attention kernel (the fake plugin has none) says so when asked:
// Backend's default, which the CPU and CUDA backends override.
TEST_F(FakeCuda, ABackendWithoutTiledAttentionSaysSo) {
    auto be = make_backend("cuda");
    const int B = 1, T = 4, NH = 2, C = 4;
    std::vector<float> q(B * T * C, 0.5f), ctx(q.size()), lse(B * NH * T);
    std::vector<std::int32_t> mask(B * T, 1);
    const Tensor tq{DType::F32, {B, T, C}, q.data()};
    const std::string err = error_of([&] {
        be->attention_tiled_forward(Tensor{DType::F32, {B, T, C}, ctx.data()}, Tensor{DType::F32, {B, NH, T}, lse.data()}, tq,
                                    tq, tq, Tensor{DType::I32, {B, T}, mask.data()}, NH, 0.0, PhiloxKey{}, 0, false);
    });
    EXPECT_TRUE(contains(err, "the fake-cuda backend has no tiled attention")) << err;
}

class FakeCudaRun : public FakeCuda {
protected:
    void SetUp() override {
        FakeCuda::SetUp();
        if (IsSkipped()) return;
        static int counter = 0;
        dir_ = std::filesystem::temp_directory_path() /
               ("meft_backend_select_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
        std::filesystem::create_directories(dir_);
    }
    void TearDown() override {
        unsetenv("MEFT_FAKE_CUDA_FREE_BYTES");
        if (!dir_.empty()) std::filesystem::remove_all(dir_);
    }
    std::filesystem::path dir_;
};

TEST_F(FakeCudaRun, TrainsAndRecordsTheBackend) {
    ExperimentDb db(dir_ / "runs.sqlite");
    RunOptions o;
    o.notice = [](const std::string&) {};
    NewExperiment experiment{"oom"};
    o.experiment = &experiment;
    const RunOutcome out = execute_run(tiny_experiment("cuda"), db, o);
    EXPECT_EQ(out.status, "finished");
    EXPECT_EQ(out.backend->name(), "fake-cuda");
    const auto info = db.run(out.run_id);
    ASSERT_TRUE(info);
    EXPECT_EQ(info->environment["backend"], "fake-cuda");
    EXPECT_EQ(info->status, "finished");
}

TEST_F(FakeCudaRun, OutOfMemoryIsRefusedBeforeTheRunIsRecorded) {
    setenv("MEFT_FAKE_CUDA_FREE_BYTES", "1048576", 1);  // 1 MiB: the tiny model's weights alone are more
    ExperimentDb db(dir_ / "runs.sqlite");
    RunOptions o;
    o.notice = [](const std::string&) {};
    NewExperiment experiment{"oom"};
    o.experiment = &experiment;
    const std::string err = error_of([&] { execute_run(tiny_experiment("auto"), db, o); });
    EXPECT_TRUE(contains(err, "the run needs ")) << err;
    EXPECT_TRUE(contains(err, "(weights ")) << err;
    EXPECT_TRUE(contains(err, "activations ")) << err;
    EXPECT_TRUE(contains(err, "a training micro-batch of 4 x 32 tokens")) << err;  // toy examples are at most 32 tokens
    EXPECT_TRUE(contains(err, "but the fake-cuda device (1.0 MiB free of 80.0 GiB) cannot hold it")) << err;
    EXPECT_TRUE(db.runs().empty());
}

// ---- scenario "realplugin": the CUDA plugin this build compiled (kernels/) -----------------

using RealPlugin = ScenarioTest<kRealPlugin>;

// The nvcc-built plugin loads here: its CUDA libraries resolve and its ABI is this engine's. On a
// machine without a GPU the only thing missing is the device; with one, it makes the backend.
TEST_F(RealPlugin, LoadsAndEitherFindsAGpuOrSaysThereIsNone) {
    const CudaPluginStatus& st = cuda_plugin_status();
    EXPECT_TRUE(st.found) << st.why;
    EXPECT_EQ(st.path, plugin_);
    if (st.available) {
        EXPECT_EQ(make_backend("cuda")->name().rfind("cuda (", 0), 0u);
        EXPECT_EQ(resolve_backend("auto"), "cuda");
    } else {
        expect_unavailable("no CUDA device: ");
    }
}
