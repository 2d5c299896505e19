// experiment_form.h — the experiment as a form: backbone, method (with its generated knob form),
// task and hyper-parameters, name, tags and notes. It edits a JSON experiment (the same files
// `meft run` reads): keys the form does not show, and swept keys (lists), are kept as loaded, so
// opening and saving a file never loses anything.
#pragma once
#include <filesystem>
#include <functional>
#include <vector>

#include <QWidget>
#include <nlohmann/json.hpp>

#include "store/model_discovery.h"

class QComboBox;
class QLineEdit;
class QPlainTextEdit;
class QLabel;
class QTimer;

namespace meft::ui {

class MethodForm;

class ExperimentForm : public QWidget {
    Q_OBJECT
public:
    explicit ExperimentForm(QWidget* parent = nullptr);

    // The built-in default: the toy BERT quickstart, ready to run on any machine.
    static nlohmann::json default_experiment();

    nlohmann::json to_json() const;
    // `file` is where the experiment lives ("" = not saved yet): relative paths resolve against it.
    void set_json(const nlohmann::json& experiment, const std::filesystem::path& file = {});
    const std::filesystem::path& file() const { return file_; }
    // The file the experiment's relative paths resolve from: file(), or for an unsaved form a
    // placeholder in the current folder (unsaved_path()) that no message should name.
    std::filesystem::path resolving_file() const { return file_.empty() ? unsaved_path() : file_; }
    static std::filesystem::path unsaved_path();
    // A message about the experiment with the placeholder replaced by what it stands for: "the
    // unsaved form (relative paths from FOLDER)".
    static QString readable(const QString& message);
    void set_file(const std::filesystem::path& f) { file_ = f; }

    // Model folders offered besides the presets (search paths + Hugging Face cache).
    void set_models(const std::vector<FoundModel>& models);
    MethodForm* method_form() const { return method_form_; }
    QComboBox* method_combo() const { return method_; }
    QComboBox* backbone_combo() const { return backbone_; }
    QComboBox* task_combo() const { return task_; }
    QComboBox* backend_combo() const { return backend_; }
    QComboBox* gemm_precision_combo() const { return gemm_precision_; }

signals:
    void changed();  // any edit (the plan panel re-plans, debounced)

private:
    struct Field {
        nlohmann::json::json_pointer at;
        QWidget* widget;
        std::function<nlohmann::json()> get;
        std::function<void(const nlohmann::json&)> set;
    };
    QWidget* add_line(const char* key);
    QWidget* add_int(const char* key, int lo, int hi);
    QWidget* add_real(const char* key, double lo, double hi, int decimals);
    QWidget* add_choice(const char* key, const QStringList& items);
    void browse_model();
    void browse_dir(QLineEdit* edit, const QString& title);
    void update_task_widgets();
    void select_backbone(const nlohmann::json& backbone);
    void offer_available_backends();

    std::filesystem::path file_;
    nlohmann::json base_;  // as loaded; to_json() writes the fields over it
    std::vector<Field> fields_;
    QComboBox* backbone_ = nullptr;
    QComboBox* arch_ = nullptr;
    QComboBox* method_ = nullptr;
    QLabel* method_summary_ = nullptr;
    MethodForm* method_form_ = nullptr;
    QComboBox* task_ = nullptr;
    QComboBox* backend_ = nullptr;
    QComboBox* gemm_precision_ = nullptr;
    QLineEdit* data_dir_ = nullptr;
    QLineEdit* tokenizer_ = nullptr;
    QWidget* toy_box_ = nullptr;
    QWidget* glue_box_ = nullptr;
    QWidget* mlm_box_ = nullptr;
    QLabel* mlm_text_ = nullptr;
    QLineEdit* tags_ = nullptr;
    QPlainTextEdit* notes_ = nullptr;
    bool loading_ = false;
};

}  // namespace meft::ui
