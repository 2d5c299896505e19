// meft schema — the JSON Schema of an experiment file's "method" object, generated from the
// engine's knob table (peft/method_knobs.cpp). --update FILE writes it into an experiment schema
// (docs/experiment.schema.json) in place, keeping the rest of the file and its key order.
#include <fstream>
#include <iostream>

#include "cli/commands.h"
#include "core/error.h"
#include "core/file_io.h"
#include "peft/method_knobs.h"

namespace meft::cli {

namespace {
struct SchemaArgs {
    std::string update;
};

int run(const SchemaArgs& a) {
    const nlohmann::ordered_json method = method_schema();
    if (a.update.empty()) {
        std::cout << method.dump(1) << "\n";
        return 0;
    }
    std::ifstream in(a.update);
    if (!in) throw Error(a.update + ": cannot open");
    nlohmann::ordered_json schema;
    try {
        schema = nlohmann::ordered_json::parse(in);
    } catch (const nlohmann::json::exception& e) {
        throw Error(a.update + ": invalid JSON: " + e.what());
    }
    if (!schema.is_object() || !schema.contains("properties") || !schema["properties"].is_object() ||
        !schema["properties"].contains("method"))
        throw Error(a.update + ": not an experiment schema (no properties.method)");
    schema["properties"]["method"] = method;
    write_file_atomically(a.update, schema.dump(1) + "\n");
    std::cout << "updated properties.method of " << a.update << "\n";
    return 0;
}
}  // namespace

Runner add_schema(CLI::App& app) {
    auto a = std::make_shared<SchemaArgs>();
    app.add_option("--update", a->update, "an experiment schema file whose \"method\" section to rewrite in place")
        ->check(CLI::ExistingFile);
    return [a] { return run(*a); };
}

}  // namespace meft::cli
