// method_edit.h — each method's unit, by kind: the ModelEdit a MethodConfig builds (which stack
// edits, which backbone tensors train, gradient checkpointing), and the way back from a model to
// the method it was built with.
#pragma once
#include <memory>

#include "model/edits.h"
#include "model/model.h"
#include "peft/method.h"

namespace meft {

class MethodEdit final : public ModelEdit {
public:
    explicit MethodEdit(MethodConfig m) : m_(std::move(m)) {}
    std::unique_ptr<StackEdit> edit_stack(const StackSpec& spec, const ModelConfig& cfg,
                                          ParameterStore& ps) const override;
    bool backbone_trainable(const std::string& name, bool head) const override { return m_.backbone_trainable(name, head); }
    bool checkpoint_layers() const override { return m_.gradient_checkpointing; }
    int recompute_tokens() const override { return m_.recompute_tokens; }
    const MethodConfig& config() const { return m_; }

private:
    MethodConfig m_;
};

std::shared_ptr<const ModelEdit> model_edit(const MethodConfig& m);
// The method a model was built with (full fine-tuning for a model built without an edit).
const MethodConfig& method_of(const Model& model);

}  // namespace meft
