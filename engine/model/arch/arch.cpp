// arch.cpp — the families there are (one line each) and the rules they share unless they say
// otherwise.
#include "model/arch/arch.h"

#include "core/error.h"

namespace meft {

// Each defined in its family's file (arch/<name>.cpp).
const ArchSpec& bert_spec();
const ArchSpec& roberta_spec();
const ArchSpec& bart_spec();
const ArchSpec& opt_spec();

const std::vector<const ArchSpec*>& all_archs() {
    static const std::vector<const ArchSpec*> specs{&bert_spec(), &roberta_spec(), &bart_spec(), &opt_spec()};
    return specs;
}

const ArchSpec& arch_spec(Arch a) {
    for (const ArchSpec* s : all_archs())
        if (s->arch() == a) return *s;
    MEFT_CHECK(false, "an architecture without a spec");
    return *all_archs().front();
}

const ArchSpec* find_arch(const std::string& model_type) {
    for (const ArchSpec* s : all_archs())
        if (s->name() == model_type) return s;
    return nullptr;
}

double ArchSpec::head_dropout(const ModelConfig& c) const {
    return c.classifier_dropout >= 0 ? c.classifier_dropout : c.hidden_dropout;
}

void ArchSpec::set_dropout(ModelConfig& c, double p) const {
    c.hidden_dropout = c.attention_dropout = p;
    c.classifier_dropout = -1;  // the head follows hidden_dropout
    if (c.activation_dropout > 0) c.activation_dropout = p;
}

bool is_decoder_only(Arch a) { return arch_spec(a).shape() == StackShape::Decoder; }
bool is_encoder_decoder(Arch a) { return arch_spec(a).shape() == StackShape::EncoderDecoder; }

}  // namespace meft
