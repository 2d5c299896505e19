#include "ui/forms/experiment_form.h"

#include <cmath>

#include <QCheckBox>
#include <QComboBox>
#include <QDoubleSpinBox>
#include <QFileDialog>
#include <QFormLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QSpinBox>
#include <QStandardItemModel>
#include <QVBoxLayout>

#include "core/backend_select.h"
#include "core/cpu_bf16_gemm.h"
#include "data/glue.h"
#include "data/qa.h"
#include "ui/app_resources.h"
#include "ui/forms/method_form.h"
#include "peft/method_knobs.h"
#include "store/experiment.h"

namespace meft::ui {

using nlohmann::json;

namespace {
const char* kBrowse = "Browse for a model folder…";
}  // namespace

json ExperimentForm::default_experiment() { return ui::default_experiment(); }

ExperimentForm::ExperimentForm(QWidget* parent) : QWidget(parent) {
    auto* outer = new QVBoxLayout(this);

    // Backbone
    auto* bb = new QGroupBox(tr("Backbone"));
    auto* bbf = new QFormLayout(bb);
    backbone_ = new QComboBox;
    backbone_->setToolTip(tr("A built-in preset (random weights) or a Hugging Face model folder"));
    // Long model names elide instead of widening the form past a small screen.
    backbone_->setSizeAdjustPolicy(QComboBox::AdjustToMinimumContentsLengthWithIcon);
    backbone_->setMinimumContentsLength(16);
    arch_ = new QComboBox;
    for (const std::string& a : arch_names()) arch_->addItem(QString::fromStdString(a));
    fields_.push_back({key_pointer("backbone.arch"), arch_, [this] { return json(arch_->currentText().toStdString()); },
                       [this](const json& v) { if (v.is_string()) arch_->setCurrentText(QString::fromStdString(v)); }});
    tokenizer_ = new QLineEdit;
    tokenizer_->setPlaceholderText(tr("the model folder"));
    fields_.push_back({key_pointer("backbone.tokenizer"), tokenizer_,
                       [this] { return tokenizer_->text().isEmpty() ? json() : json(tokenizer_->text().toStdString()); },
                       [this](const json& v) { tokenizer_->setText(v.is_string() ? QString::fromStdString(v) : QString()); }});
    auto* tok_row = new QHBoxLayout;
    tok_row->addWidget(tokenizer_);
    auto* tok_browse = new QPushButton(tr("…"));
    tok_browse->setMaximumWidth(32);
    connect(tok_browse, &QPushButton::clicked, this, [this] { browse_dir(tokenizer_, tr("Tokenizer folder")); });
    connect(tokenizer_, &QLineEdit::textEdited, this, &ExperimentForm::changed);  // a typed path replans too
    tok_row->addWidget(tok_browse);
    bbf->addRow(tr("model"), backbone_);
    bbf->addRow(tr("architecture"), arch_);
    bbf->addRow(tr("tokenizer"), tok_row);
    outer->addWidget(bb);
    set_models({});
    connect(backbone_, &QComboBox::activated, this, [this](int i) {
        if (backbone_->itemData(i).toString() == kBrowse) browse_model();
        else if (!loading_) {
            const json b = json::parse(backbone_->itemData(i).toString().toStdString());
            if (b.contains("arch")) arch_->setCurrentText(QString::fromStdString(b["arch"]));
            arch_->setEnabled(!b.contains("path"));
            emit changed();
        }
    });

    // Method
    auto* mg = new QGroupBox(tr("Method"));
    auto* mv = new QVBoxLayout(mg);
    method_ = new QComboBox;
    for (const std::string& n : method_names()) method_->addItem(QString::fromStdString(n));
    method_summary_ = new QLabel;
    method_summary_->setWordWrap(true);
    method_summary_->setStyleSheet("color: palette(mid);");
    method_form_ = new MethodForm;
    mv->addWidget(method_);
    mv->addWidget(method_summary_);
    mv->addWidget(method_form_);
    outer->addWidget(mg);
    connect(method_, &QComboBox::currentTextChanged, this, [this](const QString& name) {
        method_form_->set_method(name.toStdString());
        method_summary_->setText(QString::fromStdString(method_summary(method_kind(name.toStdString()))));
    });
    connect(method_form_, &MethodForm::changed, this, &ExperimentForm::changed);
    method_summary_->setText(QString::fromStdString(method_summary(MethodKind::Full)));

    // Task
    auto* tg = new QGroupBox(tr("Task"));
    auto* tv = new QVBoxLayout(tg);
    task_ = new QComboBox;
    task_->addItem("toy");
    for (const GlueTaskInfo& g : glue_tasks()) task_->addItem(QString::fromStdString(g.name));
    // QA: causal LM on opt, a multiple-choice head on the others
    for (const QaTaskInfo& q : qa_tasks()) task_->addItem(QString::fromStdString(q.name));
    task_->addItem("mlm");  // masked-LM pre-training (bert, roberta)
    task_->setToolTip(tr("The generated toy task (runs anywhere), a GLUE task, a multiple-choice QA task from its folder "
                         "(causal LM on opt, a multiple-choice head on bert, roberta and bart), or mlm: masked-LM "
                         "pre-training on text (bert, roberta)"));
    fields_.push_back({key_pointer("task.name"), task_, [this] { return json(task_->currentText().toStdString()); },
                       [this](const json& v) { if (v.is_string()) task_->setCurrentText(QString::fromStdString(v)); }});
    tv->addWidget(task_);
    glue_box_ = new QWidget;
    auto* gf = new QFormLayout(glue_box_);
    gf->setContentsMargins(0, 0, 0, 0);
    data_dir_ = new QLineEdit;
    data_dir_->setPlaceholderText(tr("the task's folder, or the GLUE root"));
    fields_.push_back({key_pointer("task.data_dir"), data_dir_,
                       [this] { return data_dir_->text().isEmpty() ? json() : json(data_dir_->text().toStdString()); },
                       [this](const json& v) { data_dir_->setText(v.is_string() ? QString::fromStdString(v) : QString()); }});
    auto* dd_row = new QHBoxLayout;
    dd_row->addWidget(data_dir_);
    auto* dd_browse = new QPushButton(tr("…"));
    dd_browse->setMaximumWidth(32);
    connect(dd_browse, &QPushButton::clicked, this, [this] { browse_dir(data_dir_, tr("GLUE task folder")); });
    connect(data_dir_, &QLineEdit::textEdited, this, &ExperimentForm::changed);
    dd_row->addWidget(dd_browse);
    gf->addRow(tr("data folder"), dd_row);
    gf->addRow(tr("max train examples"), add_int("task.max_train_examples", 0, 1 << 30));
    tv->addWidget(glue_box_);
    toy_box_ = new QWidget;
    auto* toyf = new QFormLayout(toy_box_);
    toyf->setContentsMargins(0, 0, 0, 0);
    toyf->addRow(tr("labels"), add_int("task.num_labels", 2, 100));
    toyf->addRow(tr("train examples"), add_int("task.train_examples", 1, 10000000));
    toyf->addRow(tr("dev examples"), add_int("task.dev_examples", 1, 10000000));
    tv->addWidget(toy_box_);
    // mlm: its text sources are a list (files, folders, GLUE tasks' training splits) kept as the
    // file writes them; the form shows them and edits the evaluation share and the masking.
    mlm_box_ = new QWidget;
    auto* mf = new QFormLayout(mlm_box_);
    mf->setContentsMargins(0, 0, 0, 0);
    mlm_text_ = new QLabel;
    mlm_text_->setWordWrap(true);
    mlm_text_->setTextInteractionFlags(Qt::TextSelectableByMouse);
    mlm_text_->setToolTip(tr("task.text in the experiment file: paths of text files or folders, {\"path\", \"field\"} "
                             "for .jsonl, {\"glue\", \"data_dir\"} for a GLUE task's training sentences"));
    mf->addRow(tr("text"), mlm_text_);
    mf->addRow(tr("held out"), add_real("task.held_out", 0, 0.5, 3));
    mf->addRow(tr("mask share"), add_real("task.mask_probability", 0.01, 1, 3));
    tv->addWidget(mlm_box_);
    outer->addWidget(tg);
    connect(task_, &QComboBox::currentTextChanged, this, [this] { update_task_widgets(); });

    // Training
    // One column: it fits the narrowest form pane, and the form scrolls vertically.
    auto* hg = new QGroupBox(tr("Training"));
    auto* hf = new QFormLayout(hg);
    const auto put = [&](const QString& label, QWidget* w, const QString& tip = {}) {
        if (!tip.isEmpty()) w->setToolTip(tip);
        hf->addRow(label, w);
    };
    put(tr("learning rate"), add_real("training.learning_rate", 0, 10, 6));
    put(tr("batch size"), add_int("training.batch_size", 1, 1 << 20));
    put(tr("epochs"), add_int("training.epochs", 1, 100000));
    put(tr("max steps"), add_int("training.max_steps", 0, 1 << 30), tr("train exactly this many steps; 0: use epochs"));
    put(tr("max length"), add_int("training.max_seq_length", 2, 1 << 16));
    put(tr("warm-up"), add_real("training.warmup_ratio", 0, 1, 3));
    put(tr("weight decay"), add_real("training.weight_decay", 0, 10, 4));
    put(tr("seed"), add_int("training.seed", 0, 1 << 30));
    put(tr("eval every"), add_int("training.eval_every", 0, 1 << 30), tr("evaluate every N steps; 0: at the end of every epoch"));
    put(tr("checkpoint"), add_int("training.checkpoint_every", 0, 1 << 30),
        tr("write a resumable checkpoint every N steps; 0: only at the end"));
    put(tr("precision"), add_choice("training.dtype", {"float32", "float64"}));
    backend_ = static_cast<QComboBox*>(add_choice("training.backend", {"auto", "cpu", "cuda"}));
    put(tr("backend"), backend_);
    gemm_precision_ = static_cast<QComboBox*>(add_choice("training.gemm_precision", {"float32", "tf32", "bf16"}));
    put(tr("GEMM precision"), gemm_precision_);
    auto* attention = static_cast<QComboBox*>(add_choice("training.attention", {"standard", "tiled"}));
    attention->setItemData(0, tr("keeps each block's attention probabilities (heads × T × T) for backward"), Qt::ToolTipRole);
    attention->setItemData(1, tr("keeps one number per query row and recomputes the probabilities in backward: "
                                 "the same results with less memory"),
                           Qt::ToolTipRole);
    put(tr("attention"), attention);
    offer_available_backends();
    outer->addWidget(hg);

    // Run
    auto* rg = new QGroupBox(tr("Run"));
    auto* rf = new QFormLayout(rg);
    rf->addRow(tr("name"), add_line("name"));
    tags_ = new QLineEdit;
    tags_->setPlaceholderText(tr("comma-separated"));
    fields_.push_back({key_pointer("tags"), tags_,
                       [this] {
                           json t = json::array();
                           for (const QString& s : tags_->text().split(',', Qt::SkipEmptyParts))
                               if (!s.trimmed().isEmpty()) t.push_back(s.trimmed().toStdString());
                           return t;
                       },
                       [this](const json& v) {
                           QStringList l;
                           if (v.is_array())
                               for (const json& x : v)
                                   if (x.is_string()) l << QString::fromStdString(x);
                           tags_->setText(l.join(", "));
                       }});
    connect(tags_, &QLineEdit::textEdited, this, &ExperimentForm::changed);
    notes_ = new QPlainTextEdit;
    notes_->setMaximumHeight(54);
    fields_.push_back({key_pointer("notes"), notes_,
                       [this] { return notes_->toPlainText().isEmpty() ? json() : json(notes_->toPlainText().toStdString()); },
                       [this](const json& v) { notes_->setPlainText(v.is_string() ? QString::fromStdString(v) : QString()); }});
    rf->addRow(tr("tags"), tags_);
    rf->addRow(tr("notes"), notes_);
    outer->addWidget(rg);
    outer->addStretch(1);

    set_json(default_experiment());
}

// What cannot run here stays listed but disabled, its tooltip saying why (a file asking for it
// still shows it, and `meft run` names the same reason).
void ExperimentForm::offer_available_backends() {
    const auto set_item = [](QComboBox* combo, const QString& text, bool enabled, const QString& tip) {
        const int i = combo->findText(text);
        if (auto* model = qobject_cast<QStandardItemModel*>(combo->model()); model && i >= 0) model->item(i)->setEnabled(enabled);
        combo->setItemData(i, tip, Qt::ToolTipRole);
    };
    std::string why;
    const bool cuda = cuda_backend_available(&why);
    const QString reason = QString::fromStdString(why);
    set_item(backend_, "auto", true, cuda ? tr("the CUDA backend (a GPU was found)") : tr("the CPU: %1").arg(reason));
    set_item(backend_, "cpu", true, tr("the reference backend (OpenBLAS)"));
    set_item(backend_, "cuda", cuda, cuda ? tr("the GPU") : tr("unavailable: %1").arg(reason));
    set_item(gemm_precision_, "float32", true, tr("exact float32 GEMMs"));
    set_item(gemm_precision_, "tf32", true, tr("TF32 tensor cores on the GPU (10-bit mantissa operands); exact float32 on the CPU"));
    std::string cpu_why;
    const bool cpu_bf16 = cpu_bf16_gemm_available(&cpu_why);
    set_item(gemm_precision_, "bf16", cuda || cpu_bf16,
             cuda && cpu_bf16 ? tr("bf16 operands, float32 accumulation (the GPU's tensor cores, or the CPU's AVX512_BF16)")
             : cuda           ? tr("bf16 operands, float32 accumulation on the GPU (the CPU backend cannot: %1)")
                                    .arg(QString::fromStdString(cpu_why))
             : cpu_bf16       ? tr("bf16 operands, float32 accumulation on the CPU (AVX512_BF16 through oneDNN)")
                              : tr("unavailable: %1; and the CUDA backend: %2").arg(QString::fromStdString(cpu_why), reason));
}

QWidget* ExperimentForm::add_line(const char* key) {
    auto* w = new QLineEdit;
    fields_.push_back({key_pointer(key), w, [w] { return json(w->text().toStdString()); },
                       [w](const json& v) { w->setText(v.is_string() ? QString::fromStdString(v) : QString()); }});
    connect(w, &QLineEdit::textEdited, this, &ExperimentForm::changed);
    return w;
}

QWidget* ExperimentForm::add_int(const char* key, int lo, int hi) {
    auto* w = new QSpinBox;
    w->setRange(lo, hi);
    const int def = lo;
    fields_.push_back({key_pointer(key), w, [w] { return json(w->value()); },
                       [w, def](const json& v) { w->setValue(v.is_number_integer() ? v.get<int>() : def); }});
    connect(w, &QSpinBox::valueChanged, this, &ExperimentForm::changed);
    return w;
}

QWidget* ExperimentForm::add_real(const char* key, double lo, double hi, int decimals) {
    auto* w = new QDoubleSpinBox;
    w->setRange(lo, hi);
    w->setDecimals(decimals);
    w->setSingleStep(std::pow(10.0, -std::min(decimals, 4)));
    fields_.push_back({key_pointer(key), w, [w] { return json(w->value()); },
                       [w](const json& v) { if (v.is_number()) w->setValue(v.get<double>()); }});
    connect(w, &QDoubleSpinBox::valueChanged, this, &ExperimentForm::changed);
    return w;
}

QWidget* ExperimentForm::add_choice(const char* key, const QStringList& items) {
    auto* w = new QComboBox;
    w->addItems(items);
    fields_.push_back({key_pointer(key), w, [w] { return json(w->currentText().toStdString()); },
                       [w](const json& v) { if (v.is_string()) w->setCurrentText(QString::fromStdString(v)); }});
    connect(w, &QComboBox::currentTextChanged, this, &ExperimentForm::changed);
    return w;
}

void ExperimentForm::set_models(const std::vector<FoundModel>& models) {
    const QString current = backbone_->currentData().toString();
    const QSignalBlocker block(backbone_);
    backbone_->clear();
    for (const std::string& p : preset_names()) {
        const char* what = p == "toy" ? "4 layers × 128" : p == "tiny" ? "2 layers × 128"
                         : p == "mini"  ? "BERT-Mini shape, 4 × 256; bert, roberta"
                         : p == "base"  ? "BERT-base / BART-base / OPT-125m shape, 12 × 768"
                         : p == "large" ? "BERT-large / BART-large shape, 24 × 1024; not opt"
                                        : "OPT-1.3b shape, 24 × 2048; opt only";
        backbone_->addItem(tr("preset %1 (%2, random weights)").arg(QString::fromStdString(p), what),
                           QString::fromStdString(json{{"preset", p}}.dump()));
    }
    for (const FoundModel& m : models)
        backbone_->addItem(QString::fromStdString(m.name + " — " + m.arch + " " + std::to_string(m.num_layers) + " × " +
                                                  std::to_string(m.hidden_size) + " (" + m.source + ")"),
                           QString::fromStdString(json{{"path", m.path.string()}, {"arch", m.arch}}.dump()));
    backbone_->addItem(tr(kBrowse), QString(kBrowse));
    const int i = backbone_->findData(current);
    backbone_->setCurrentIndex(i >= 0 ? i : 0);
}

void ExperimentForm::select_backbone(const json& b) {
    json key;
    if (b.contains("preset") && b["preset"].is_string()) key = {{"preset", b["preset"]}};
    else if (b.contains("path") && b["path"].is_string()) key = {{"path", b["path"]}, {"arch", b.value("arch", "bert")}};
    else return;
    int i = backbone_->findData(QString::fromStdString(key.dump()));
    if (i < 0) {  // a folder not discovered: list it
        const QString path = QString::fromStdString(key["path"].get<std::string>());
        backbone_->insertItem(backbone_->count() - 1, path + " (" + tr("folder") + ")", QString::fromStdString(key.dump()));
        i = backbone_->count() - 2;
    }
    backbone_->setCurrentIndex(i);
    arch_->setEnabled(!key.contains("path"));
}

void ExperimentForm::browse_model() {
    const QString dir = QFileDialog::getExistingDirectory(this, tr("Hugging Face model folder (config.json + model.safetensors)"));
    if (dir.isEmpty()) {
        backbone_->setCurrentIndex(0);
        return;
    }
    std::string arch = "bert";
    for (const FoundModel& m : discover_models({dir.toStdString()}, {}))
        if (m.path == std::filesystem::path(dir.toStdString())) arch = m.arch;
    select_backbone(json{{"path", dir.toStdString()}, {"arch", arch}});
    arch_->setCurrentText(QString::fromStdString(arch));
    emit changed();
}

std::filesystem::path ExperimentForm::unsaved_path() { return std::filesystem::current_path() / "unsaved.json"; }

QString ExperimentForm::readable(const QString& message) {
    const QString placeholder = QString::fromStdString(unsaved_path().string());
    QString out = message;
    out.replace(placeholder, tr("the unsaved form (relative paths from %1)")
                                 .arg(QString::fromStdString(std::filesystem::current_path().string())));
    return out;
}

void ExperimentForm::browse_dir(QLineEdit* edit, const QString& title) {
    const QString dir = QFileDialog::getExistingDirectory(this, title, edit->text());
    if (dir.isEmpty()) return;
    edit->setText(dir);
    emit changed();
}

void ExperimentForm::update_task_widgets() {
    const bool toy = task_->currentText() == "toy", mlm = task_->currentText() == "mlm";
    toy_box_->setVisible(toy);
    glue_box_->setVisible(!toy && !mlm);
    mlm_box_->setVisible(mlm);
    const json::json_pointer text("/task/text");
    mlm_text_->setText(base_.contains(text) ? QString::fromStdString(base_.at(text).dump())
                                            : tr("none yet: set task.text in the experiment file"));
    if (!loading_) emit changed();
}

json ExperimentForm::to_json() const {
    json j = base_;
    for (const Field& f : fields_) {
        if (j.contains(f.at) && j.at(f.at).is_array() && f.at.to_string() != "/tags") continue;  // a sweep: kept as written
        const json v = f.get();
        if (v.is_null()) {
            if (j.contains(f.at)) j.at(f.at.parent_pointer()).erase(f.at.back());
            continue;
        }
        j[f.at] = v;
    }
    const bool toy = task_->currentText() == "toy", mlm = task_->currentText() == "mlm";
    static const std::vector<const char*> toy_keys = {"num_labels", "train_examples", "dev_examples", "min_length",
                                                      "max_length", "seed"};
    static const std::vector<const char*> file_keys = {"data_dir", "max_train_examples", "dev_split", "max_dev_examples",
                                                       "encoding"};
    static const std::vector<const char*> mlm_keys = {"text", "held_out", "mask_probability", "whole_word_masking"};
    std::vector<const char*> dropped = toy ? file_keys : toy_keys;
    if (!mlm) dropped.insert(dropped.end(), mlm_keys.begin(), mlm_keys.end());
    else dropped = {"num_labels", "train_examples", "dev_examples", "min_length", "max_length", "seed", "data_dir", "dev_split"};
    for (const char* k : dropped)
        if (j.contains("task")) j["task"].erase(k);
    // Backbone: a preset or a folder, never both.
    const json b = json::parse(backbone_->currentData().toString().toStdString());
    json& bb = j["backbone"];
    bb.erase("preset");
    bb.erase("path");
    if (b.contains("preset")) bb["preset"] = b["preset"];
    if (b.contains("path")) bb["path"] = b["path"];
    // Method: the form's values over what the file had for the same method.
    json m = method_form_->values();
    if (base_.contains("method") && base_["method"].is_object() && base_["method"].value("name", "") == m["name"]) {
        json merged = base_["method"];
        for (const MethodKnob& k : method_knobs(method_kind(m["name"]))) {  // knobs back at their default: drop
            const json::json_pointer p = key_pointer(k.key);
            if (merged.contains(p) && !m.contains(p)) merged.at(p.parent_pointer()).erase(p.back());
        }
        merged.merge_patch(m);
        m = merged;
    }
    j["method"] = m;
    return j;
}

void ExperimentForm::set_json(const json& experiment, const std::filesystem::path& file) {
    loading_ = true;
    base_ = experiment.is_object() ? experiment : json::object();
    file_ = file;
    // Keys the file leaves out show the parser's defaults (so saving changes no meaning).
    static const json def = [] {
        json d = resolved_config(parse_experiment(json{{"backbone", {{"preset", "toy"}}}}, "defaults"));
        const json mlm = resolved_config(parse_experiment(
            json{{"backbone", {{"preset", "toy"}}}, {"task", {{"name", "mlm"}, {"text", {"corpus.txt"}}}}}, "defaults"));
        for (const char* k : {"held_out", "mask_probability", "whole_word_masking"}) d["task"][k] = mlm["task"][k];
        return d;
    }();
    for (Field& f : fields_) {
        json v = base_.contains(f.at) ? base_.at(f.at) : json();
        const bool swept = v.is_array() && f.at.to_string() != "/tags";
        f.widget->setEnabled(!swept);
        f.widget->setToolTip(swept ? tr("Swept over %1 in the file: edit the file to change the sweep")
                                         .arg(QString::fromStdString(v.dump()))
                                   : QString());
        if (swept) v = v.empty() ? json() : v[0];
        if (v.is_null() && def.contains(f.at)) v = def.at(f.at);
        f.set(v);
    }
    if (base_.contains("backbone")) select_backbone(base_["backbone"]);
    const json m = base_.value("method", json{{"name", "full"}});
    method_->setCurrentText(QString::fromStdString(m.value("name", "full")));
    method_form_->set_values(m);
    loading_ = false;
    update_task_widgets();
    emit changed();
}

}  // namespace meft::ui
