// The method knob descriptions (what the workbench builds its forms from) agree with the parser:
// every default parses to the parser's default, every range end is accepted and every value just
// outside is rejected, every choice is accepted and a made-up one rejected.
#include <gtest/gtest.h>

#include "core/error.h"
#include "peft/method_knobs.h"

using namespace meft;

namespace {
nlohmann::json with(const std::string& method, const std::string& key, const nlohmann::json& v) {
    nlohmann::json j{{"name", method}};
    const auto dot = key.find('.');
    if (dot == std::string::npos) j[key] = v;
    else j[key.substr(0, dot)][key.substr(dot + 1)] = v;
    return j;
}
bool accepted(const std::string& method, const std::string& key, const nlohmann::json& v) {
    try {
        parse_method(with(method, key, v), "test");
        return true;
    } catch (const Error&) {
        return false;
    }
}
}  // namespace

TEST(MethodKnobs, DescriptionsAgreeWithTheParser) {
    int checked = 0;
    for (const std::string& name : method_names()) {
        const MethodKind kind = method_kind(name);
        EXPECT_FALSE(method_summary(kind).empty()) << name;
        for (const MethodKnob& k : method_knobs(kind)) {
            SCOPED_TRACE(name + " " + k.key);
            EXPECT_FALSE(k.label.empty());
            EXPECT_FALSE(k.help.empty());
            // Writing the default explicitly changes nothing.
            const MethodConfig implicit = parse_method(nlohmann::json{{"name", name}}, "test");
            const MethodConfig explicit_ = parse_method(with(name, k.key, k.default_value), "test");
            EXPECT_EQ(nlohmann::json(explicit_.lora.targets), nlohmann::json(implicit.lora.targets));
            EXPECT_EQ(explicit_.lora.r, implicit.lora.r);
            EXPECT_EQ(explicit_.adapter.bottleneck, implicit.adapter.bottleneck);
            EXPECT_EQ(explicit_.meft.lambda_inverse, implicit.meft.lambda_inverse);
            EXPECT_EQ(explicit_.meft.beta_inverse, implicit.meft.beta_inverse);
            EXPECT_EQ(explicit_.meft.exact, implicit.meft.exact);
            EXPECT_EQ(explicit_.prefix.length, implicit.prefix.length);
            switch (k.type) {
                case MethodKnob::Type::Integer:
                    EXPECT_TRUE(accepted(name, k.key, static_cast<long long>(k.min)));
                    EXPECT_TRUE(accepted(name, k.key, static_cast<long long>(k.max)));
                    EXPECT_FALSE(accepted(name, k.key, static_cast<long long>(k.min) - 1));
                    EXPECT_FALSE(accepted(name, k.key, static_cast<long long>(k.max) + 1));
                    EXPECT_FALSE(accepted(name, k.key, k.min + 0.5));
                    break;
                case MethodKnob::Type::Real:
                    EXPECT_TRUE(accepted(name, k.key, k.min));
                    EXPECT_TRUE(accepted(name, k.key, k.max));
                    EXPECT_FALSE(accepted(name, k.key, k.min - 1e-3 * (1 + std::abs(k.min))));
                    EXPECT_FALSE(accepted(name, k.key, k.max + 1e-3 * (1 + std::abs(k.max))));
                    EXPECT_FALSE(accepted(name, k.key, "1"));
                    break;
                case MethodKnob::Type::Boolean:
                    EXPECT_TRUE(accepted(name, k.key, true));
                    EXPECT_TRUE(accepted(name, k.key, false));
                    EXPECT_FALSE(accepted(name, k.key, 1));
                    break;
                case MethodKnob::Type::Choice:
                    for (const std::string& c : k.choices) EXPECT_TRUE(accepted(name, k.key, c));
                    EXPECT_FALSE(accepted(name, k.key, "no-such-choice"));
                    break;
                case MethodKnob::Type::Names:
                    for (const std::string& c : k.choices) EXPECT_TRUE(accepted(name, k.key, nlohmann::json::array({c})));
                    EXPECT_TRUE(accepted(name, k.key, k.choices));
                    EXPECT_FALSE(accepted(name, k.key, nlohmann::json::array()));
                    EXPECT_FALSE(accepted(name, k.key, nlohmann::json::array({"no-such-site"})));
                    break;
            }
            ++checked;
        }
    }
    EXPECT_GE(checked, 40);  // 11 methods; a knob list that went missing would show here
}

TEST(MethodKnobs, MeftDefaultsAreThePapers) {
    for (const auto& [name, lambda, beta] : {std::tuple{"meft1", 0.1, 1.0}, {"meft2", 1.0, 0.1}, {"meft3", 0.1, 0.1}}) {
        std::map<std::string, nlohmann::json> d;
        for (const MethodKnob& k : method_knobs(method_kind(name))) d[k.key] = k.default_value;
        EXPECT_DOUBLE_EQ(d.at("meft.lambda").get<double>(), lambda) << name;
        EXPECT_DOUBLE_EQ(d.at("meft.beta").get<double>(), beta) << name;
        EXPECT_EQ(d.at("adapter.bottleneck"), 8) << name;
        EXPECT_EQ(d.count("gradient_checkpointing"), 0u) << name;  // MEFT recomputes by construction
    }
    EXPECT_THROW(method_kind("lorra"), Error);
}
