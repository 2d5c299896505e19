#include "peft/method_edit.h"

#include "peft/adapter.h"
#include "peft/dora.h"
#include "peft/ia3.h"
#include "peft/lora.h"
#include "peft/meft_stack.h"
#include "peft/prefix.h"
#include "peft/vera.h"

namespace meft {

std::unique_ptr<StackEdit> MethodEdit::edit_stack(const StackSpec& spec, const ModelConfig& cfg,
                                                  ParameterStore& ps) const {
    switch (m_.kind) {
        case MethodKind::Full:
        case MethodKind::BitFit: return nullptr;  // trainability only
        case MethodKind::LoRA:
        case MethodKind::RsLoRA:
        case MethodKind::LoraFA: return lora_stack(m_);
        case MethodKind::DoRA: return dora_stack(m_);
        case MethodKind::VeRA: return vera_stack(m_, cfg, ps);
        case MethodKind::Houlsby: return adapter_stack(m_.adapter, {Site::AfterAttention, Site::AfterFfn});
        case MethodKind::Pfeiffer: return adapter_stack(m_.adapter, {Site::AfterFfn});
        case MethodKind::Parallel: return adapter_stack(m_.adapter, {Site::FfnParallel});
        case MethodKind::Prefix: return prefix_stack(m_.prefix, spec, cfg, ps);
        case MethodKind::IA3: return ia3_stack();
        case MethodKind::MEFT1:
        case MethodKind::MEFT2:
        case MethodKind::MEFT3: return meft_stack(m_, cfg);
    }
    return nullptr;
}

std::shared_ptr<const ModelEdit> model_edit(const MethodConfig& m) { return std::make_shared<MethodEdit>(m); }

MethodConfig::operator std::shared_ptr<const ModelEdit>() const { return model_edit(*this); }

const MethodConfig& method_of(const Model& model) {
    static const MethodConfig full;
    const auto* e = dynamic_cast<const MethodEdit*>(model.edit());
    return e ? e->config() : full;
}

}  // namespace meft
