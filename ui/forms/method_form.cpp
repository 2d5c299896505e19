#include "ui/forms/method_form.h"

#include <QCheckBox>
#include <QComboBox>
#include <QDoubleSpinBox>
#include <QFormLayout>
#include <QLabel>
#include <QListWidget>
#include <QSpinBox>

#include "store/experiment.h"

namespace meft::ui {

MethodForm::MethodForm(QWidget* parent) : QWidget(parent) {
    form_ = new QFormLayout(this);
    form_->setContentsMargins(0, 0, 0, 0);
    set_method("full");
}

QWidget* MethodForm::editor(const std::string& key) const {
    for (const Editor& e : knobs_)
        if (e.knob.key == key) return e.widget;
    return nullptr;
}

void MethodForm::set_method(const std::string& name) {
    method_ = name;
    while (form_->rowCount() > 0) form_->removeRow(0);
    knobs_.clear();
    for (const MethodKnob& k : method_knobs(method_kind(name))) add_editor(k);
    if (knobs_.empty()) form_->addRow(new QLabel(tr("This method has no knobs.")));
    emit changed();
}

void MethodForm::add_editor(const MethodKnob& k) {
    Editor e;
    e.knob = k;
    const QString tip = QString::fromStdString(k.help + "\n(method." + k.key + ")");
    switch (k.type) {
        case MethodKnob::Type::Integer: {
            auto* w = new QSpinBox;
            w->setRange(static_cast<int>(k.min), static_cast<int>(std::min(k.max, 2e9)));
            w->setValue(k.default_value.get<int>());
            connect(w, &QSpinBox::valueChanged, this, &MethodForm::changed);
            e.widget = w;
            e.get = [w] { return nlohmann::json(w->value()); };
            e.set = [w](const nlohmann::json& v) { if (v.is_number_integer()) w->setValue(v.get<int>()); };
            break;
        }
        case MethodKnob::Type::Real: {
            auto* w = new QDoubleSpinBox;
            w->setDecimals(4);
            w->setRange(k.min, k.max);
            w->setSingleStep(k.max <= 1 ? 0.01 : 1.0);
            w->setValue(k.default_value.get<double>());
            connect(w, &QDoubleSpinBox::valueChanged, this, &MethodForm::changed);
            e.widget = w;
            e.get = [w] { return nlohmann::json(w->value()); };
            e.set = [w](const nlohmann::json& v) { if (v.is_number()) w->setValue(v.get<double>()); };
            break;
        }
        case MethodKnob::Type::Boolean: {
            auto* w = new QCheckBox;
            w->setChecked(k.default_value.get<bool>());
            connect(w, &QCheckBox::toggled, this, &MethodForm::changed);
            e.widget = w;
            e.get = [w] { return nlohmann::json(w->isChecked()); };
            e.set = [w](const nlohmann::json& v) { if (v.is_boolean()) w->setChecked(v.get<bool>()); };
            break;
        }
        case MethodKnob::Type::Choice: {
            auto* w = new QComboBox;
            for (const std::string& c : k.choices) w->addItem(QString::fromStdString(c));
            w->setCurrentText(QString::fromStdString(k.default_value.get<std::string>()));
            connect(w, &QComboBox::currentTextChanged, this, &MethodForm::changed);
            e.widget = w;
            e.get = [w] { return nlohmann::json(w->currentText().toStdString()); };
            e.set = [w](const nlohmann::json& v) { if (v.is_string()) w->setCurrentText(QString::fromStdString(v.get<std::string>())); };
            break;
        }
        case MethodKnob::Type::Names: {
            auto* w = new QListWidget;
            for (const std::string& c : k.choices) {
                auto* item = new QListWidgetItem(QString::fromStdString(c), w);
                const bool on = std::find(k.default_value.begin(), k.default_value.end(), c) != k.default_value.end();
                item->setCheckState(on ? Qt::Checked : Qt::Unchecked);
            }
            w->setMaximumHeight(w->sizeHintForRow(0) * static_cast<int>(k.choices.size()) + 6);
            connect(w, &QListWidget::itemChanged, this, &MethodForm::changed);
            e.widget = w;
            e.get = [w] {
                nlohmann::json names = nlohmann::json::array();
                for (int i = 0; i < w->count(); ++i)
                    if (w->item(i)->checkState() == Qt::Checked) names.push_back(w->item(i)->text().toStdString());
                return names;
            };
            e.set = [w](const nlohmann::json& v) {
                if (!v.is_array()) return;
                for (int i = 0; i < w->count(); ++i) {
                    const bool on = std::find(v.begin(), v.end(), w->item(i)->text().toStdString()) != v.end();
                    w->item(i)->setCheckState(on ? Qt::Checked : Qt::Unchecked);
                }
            };
            break;
        }
    }
    e.widget->setToolTip(tip);
    auto* label = new QLabel(QString::fromStdString(k.label));
    label->setToolTip(tip);
    form_->addRow(label, e.widget);
    knobs_.push_back(std::move(e));
}

nlohmann::json MethodForm::values() const {
    nlohmann::json m{{"name", method_}};
    for (const Editor& e : knobs_) {
        const nlohmann::json v = e.get();
        if (v != e.knob.default_value) m[key_pointer(e.knob.key)] = v;
    }
    return m;
}

void MethodForm::set_values(const nlohmann::json& method) {
    if (method.is_object() && method.contains("name") && method["name"].is_string()) {
        const std::string name = method["name"].get<std::string>();
        try {
            method_kind(name);
            if (name != method_) set_method(name);
        } catch (const std::exception&) {
            return;  // the parser reports an unknown method when the experiment is checked
        }
    }
    if (!method.is_object()) return;
    const QSignalBlocker block(this);
    for (Editor& e : knobs_) {
        const auto p = key_pointer(e.knob.key);
        e.set(method.contains(p) ? method.at(p) : e.knob.default_value);
    }
    emit changed();
}

}  // namespace meft::ui
