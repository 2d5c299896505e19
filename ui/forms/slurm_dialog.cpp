#include "ui/forms/slurm_dialog.h"

#include <QDialogButtonBox>
#include <QFileDialog>
#include <QFileInfo>
#include <QFontDatabase>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QSpinBox>
#include <QVBoxLayout>

#include "core/error.h"
#include "run/sweep_submit.h"
#include "store/experiment.h"

namespace meft::ui {

namespace {
QString q(const std::string& s) { return QString::fromStdString(s); }
}  // namespace

SlurmDialog::SlurmDialog(nlohmann::json experiment, std::filesystem::path source, std::filesystem::path meft, ExperimentDb* db,
                         QWidget* parent)
    : QDialog(parent), experiment_(std::move(experiment)), source_(std::move(source)), meft_(std::move(meft)), db_(db) {
    setWindowTitle(tr("Submit to Slurm"));
    partition_ = new QLineEdit;
    partition_->setPlaceholderText(tr("the cluster's default"));
    partition_->setToolTip(tr("sbatch --partition: the queue the tasks wait in (several: gpu,cpu)"));
    time_ = new QLineEdit;
    time_->setPlaceholderText(tr("the partition's default, e.g. 04:00:00"));
    time_->setToolTip(tr("sbatch --time per task: minutes, HH:MM:SS or D-HH:MM:SS. Two minutes before it ends a "
                         "task stops at a checkpoint and requeues itself; the next attempt resumes."));
    gpus_ = new QSpinBox;
    gpus_->setRange(0, 64);
    gpus_->setToolTip(tr("sbatch --gpus-per-task"));
    cpus_ = new QSpinBox;
    cpus_->setRange(1, 1024);
    cpus_->setToolTip(tr("sbatch --cpus-per-task; meft trains with that many threads"));
    parallel_ = new QSpinBox;
    parallel_->setRange(0, 100000);
    parallel_->setSpecialValueText(tr("no limit"));
    parallel_->setToolTip(tr("at most this many tasks at a time (--array=1-N%K)"));
    args_ = new QLineEdit;
    args_->setPlaceholderText(tr("e.g. --account=abc --qos=low"));
    args_->setToolTip(tr("more sbatch options, separated by spaces; each becomes an #SBATCH line"));
    dir_ = new QLineEdit;
    dir_->setToolTip(tr("the sweep's folder on storage every node sees: sweep.json, the script, experiment.json, "
                        "shards/ (one SQLite file per task) and logs/"));
    auto* browse = new QPushButton(tr("Browse…"));
    connect(browse, &QPushButton::clicked, this, [this] {
        const QString d = QFileDialog::getExistingDirectory(this, tr("Sweep folder"), dir_->text());
        if (!d.isEmpty()) dir_->setText(d + "/" + QFileInfo(dir_->text()).fileName());
    });
    auto* dir_row = new QHBoxLayout;
    dir_row->addWidget(dir_, 1);
    dir_row->addWidget(browse);
    expansions_ = new QLabel;
    problem_ = new QLabel;
    problem_->setWordWrap(true);
    problem_->setStyleSheet("color: #b00020;");
    problem_->setTextInteractionFlags(Qt::TextSelectableByMouse);
    script_ = new QPlainTextEdit;
    script_->setReadOnly(true);
    script_->setLineWrapMode(QPlainTextEdit::NoWrap);
    script_->setFont(QFontDatabase::systemFont(QFontDatabase::FixedFont));
    script_->setMinimumHeight(240);

    auto* form = new QFormLayout;
    form->addRow(tr("Partition"), partition_);
    form->addRow(tr("Time per task"), time_);
    form->addRow(tr("GPUs per task"), gpus_);
    form->addRow(tr("CPUs per task"), cpus_);
    form->addRow(tr("At most in parallel"), parallel_);
    form->addRow(tr("More sbatch options"), args_);
    form->addRow(tr("Sweep folder"), dir_row);
    form->addRow(QString(), expansions_);
    auto* buttons = new QDialogButtonBox(QDialogButtonBox::Cancel);
    submit_ = buttons->addButton(tr("Submit"), QDialogButtonBox::AcceptRole);
    connect(buttons, &QDialogButtonBox::rejected, this, &QDialog::reject);
    connect(submit_, &QPushButton::clicked, this, [this] {
        if (submit()) accept();
    });
    auto* layout = new QVBoxLayout(this);
    layout->addLayout(form);
    layout->addWidget(new QLabel(tr("The script sbatch will be given (the sweep's folder keeps it: edit and submit it by "
                                    "hand if you like):")));
    layout->addWidget(script_, 1);
    layout->addWidget(problem_);
    layout->addWidget(buttons);

    try {
        const std::vector<Experiment> exps = experiments_from_json(experiment_, source_);
        dir_->setText(q(default_sweep_dir(exps.front().name).string()));
    } catch (const std::exception&) {
        dir_->setText(q((std::filesystem::current_path() / "sweeps" / "sweep").string()));  // the problem shows below
    }
    for (QLineEdit* e : {partition_, time_, args_, dir_}) connect(e, &QLineEdit::textChanged, this, &SlurmDialog::rebuild);
    for (QSpinBox* s : {gpus_, cpus_, parallel_}) connect(s, &QSpinBox::valueChanged, this, &SlurmDialog::rebuild);
    rebuild();
    resize(760, 720);
}

QString SlurmDialog::script() const { return script_->toPlainText(); }
QString SlurmDialog::problem() const { return problem_text_; }
int SlurmDialog::expansions() const { return count_; }

std::optional<Sweep> SlurmDialog::plan() {
    try {
        if (meft_.empty()) throw Error("the meft program was not found next to the workbench or on PATH; the tasks run it");
        Sweep s = plan_sweep(experiment_, source_, {}, dir_->text().trimmed().toStdString(), "slurm", meft_);
        s.slurm.partition = partition_->text().trimmed().toStdString();
        s.slurm.time = time_->text().trimmed().toStdString();
        s.slurm.gpus_per_run = gpus_->value();
        s.slurm.cpus_per_run = cpus_->value();
        s.slurm.max_parallel = parallel_->value();
        for (const QString& a : args_->text().split(' ', Qt::SkipEmptyParts)) s.slurm.sbatch_args.push_back(a.toStdString());
        if (db_) s.db = std::filesystem::absolute(db_->path());
        check_slurm_request(s.slurm);
        problem_text_.clear();
        return s;
    } catch (const std::exception& ex) {
        problem_text_ = QString::fromUtf8(ex.what());
        return std::nullopt;
    }
}

void SlurmDialog::rebuild() {
    const std::optional<Sweep> s = plan();
    count_ = s ? s->expansions() : 0;
    script_->setPlainText(s ? q(sbatch_script(*s)) : QString());
    expansions_->setText(!s ? QString() : count_ == 1 ? tr("1 expansion: one array task") : tr("%1 expansions: one array task each").arg(count_));
    problem_->setText(problem_text_);
    problem_->setVisible(!problem_text_.isEmpty());
    submit_->setEnabled(s.has_value() && db_ && !db_->read_only());
    if (db_ && db_->read_only()) problem_->setText(tr("the experiment database is read-only: a sweep cannot be recorded in it"));
}

bool SlurmDialog::submit() {
    std::optional<Sweep> s = plan();
    if (!s) {
        problem_->setText(problem_text_);
        problem_->setVisible(true);
        return false;
    }
    try {
        submit_to_slurm(*s);
        db_->record_sweep(sweep_row(*s));
    } catch (const std::exception& ex) {
        problem_text_ = QString::fromUtf8(ex.what());
        problem_->setText(problem_text_);
        problem_->setVisible(true);
        return false;
    }
    submitted_ = std::move(s);
    return true;
}

}  // namespace meft::ui
