// method_form.h — a method's knobs as a form, generated from engine/peft/method_knobs.h: a spin
// box per number (its range and default), a check box per switch, a combo per choice, a check
// list per name set; the help text as tooltip. Switching the method rebuilds the form.
#pragma once
#include <functional>
#include <map>
#include <string>

#include <QWidget>
#include <nlohmann/json.hpp>

#include "peft/method_knobs.h"

class QFormLayout;

namespace meft::ui {

class MethodForm : public QWidget {
    Q_OBJECT
public:
    explicit MethodForm(QWidget* parent = nullptr);

    void set_method(const std::string& name);  // rebuilds the form with the method's defaults
    const std::string& method() const { return method_; }
    // The "method" object of an experiment: name plus every knob that differs from its default.
    nlohmann::json values() const;
    // Applies a "method" object's knobs (unknown ones are ignored here; the parser reports them).
    void set_values(const nlohmann::json& method);
    int knob_count() const { return static_cast<int>(knobs_.size()); }
    QWidget* editor(const std::string& key) const;  // for tests

signals:
    void changed();

private:
    struct Editor {
        MethodKnob knob;
        QWidget* widget = nullptr;
        std::function<nlohmann::json()> get;
        std::function<void(const nlohmann::json&)> set;
    };
    void add_editor(const MethodKnob& k);

    std::string method_;
    QFormLayout* form_ = nullptr;
    std::vector<Editor> knobs_;
};

}  // namespace meft::ui
