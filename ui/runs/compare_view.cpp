#include "ui/runs/compare_view.h"

#include <QCheckBox>
#include <QComboBox>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QMessageBox>
#include <QPushButton>
#include <QSplitter>
#include <QTableWidget>
#include <QVBoxLayout>

#include "core/error.h"
#include "core/file_io.h"
#include "ui/plots/compare_plots.h"
#include "ui/runs/table_export.h"
#include "ui/scrolling.h"

namespace meft::ui {

namespace {
const QColor kDiffBackground("#ffe0b2");  // MLflow-style orange for values that differ
const QColor kDiffText("#3e2723");

// The engine's view of a run: what the comparison needs.
RunInfo info_of(const RunData& d) {
    RunInfo r;
    r.id = d.id;
    r.status = d.status;
    r.config = d.config;
    r.final_metrics = d.final_metrics;
    return r;
}

QTableWidget* make_table() {
    auto* t = new QTableWidget;
    t->setEditTriggers(QAbstractItemView::NoEditTriggers);
    t->setSelectionMode(QAbstractItemView::ContiguousSelection);  // copy a block of values
    t->setWordWrap(false);
    t->horizontalHeader()->setSectionResizeMode(QHeaderView::Interactive);
    t->horizontalHeader()->setStretchLastSection(true);
    t->verticalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
    return t;
}

QTableWidgetItem* value_item(const std::optional<std::string>& v) {
    auto* item = new QTableWidgetItem(v ? QString::fromStdString(*v) : QStringLiteral("—"));
    item->setToolTip(v ? QString::fromStdString(*v) : QObject::tr("this run has no such key"));
    if (!v) item->setForeground(QColor("#8a8a8a"));
    return item;
}
}  // namespace

CompareView::CompareView(QWidget* parent) : QWidget(parent) { build_ui(); }

void CompareView::build_ui() {
    auto* v = new QVBoxLayout(this);
    auto* top = new QHBoxLayout;
    title_ = new QLabel;
    all_keys_ = new QCheckBox(tr("Show all config keys"));
    all_keys_->setToolTip(tr("Also list the keys whose values are the same in every run (not highlighted)"));
    export_ = new QPushButton(tr("Export table…"));
    export_->setToolTip(tr("Save the config differences and the metrics as CSV, Markdown, LaTeX or JSON"));
    top->addWidget(title_, 1);
    top->addWidget(all_keys_);
    top->addWidget(export_);
    v->addLayout(top);

    diff_ = make_table();
    scores_ = make_table();
    config_box_ = new QGroupBox;
    (new QVBoxLayout(config_box_))->addWidget(diff_);
    auto* scores_box = new QGroupBox(tr("Final metrics — best per row in bold"));
    baseline_ = new QComboBox;
    baseline_->setToolTip(tr("Pin a run as the baseline: the others' metrics also show their difference to it "
                             "(scores in percentage points, other numbers as a ratio)"));
    baseline_->setSizeAdjustPolicy(QComboBox::AdjustToContents);
    auto* scores_layout = new QVBoxLayout(scores_box);
    auto* baseline_row = new QHBoxLayout;
    baseline_row->addWidget(new QLabel(tr("baseline:")));
    baseline_row->addWidget(baseline_);
    baseline_row->addStretch(1);
    scores_layout->addLayout(baseline_row);
    scores_layout->addWidget(scores_);
    auto* tables = new QSplitter(Qt::Horizontal);
    tables->addWidget(config_box_);
    tables->addWidget(scores_box);
    plots_ = new ComparePlots;
    auto* split = new QSplitter(Qt::Vertical);
    split->setObjectName("compare_split");
    split->setChildrenCollapsible(false);
    split->addWidget(tables);
    split->addWidget(scrolling(plots_));
    split->setStretchFactor(0, 2);
    split->setStretchFactor(1, 3);
    tables->setMinimumHeight(160);
    v->addWidget(split, 1);

    connect(all_keys_, &QCheckBox::toggled, this, [this](bool all) { set_only_differing(!all); });
    connect(baseline_, &QComboBox::currentIndexChanged, this, &CompareView::fill_scores);
    connect(export_, &QPushButton::clicked, this, &CompareView::export_dialog);
    set_runs(std::vector<RunData>{});
}

void CompareView::set_runs(const std::vector<RunData>& runs) {
    runs_ = runs;
    std::vector<RunInfo> infos;
    for (const RunData& d : runs_) infos.push_back(info_of(d));
    comparison_ = round_metrics(compare_runs(infos));
    title_->setText(runs_.empty() ? tr("Select two or more runs in the Runs tab and press Compare.")
                                  : tr("<b>Comparing %n run(s)</b> — %1 config key(s) differ", nullptr, int(runs_.size()))
                                        .arg(comparison_.config.size()));
    export_->setEnabled(!runs_.empty());
    {  // the pinned run survives a new selection that still has it
        const qint64 pinned = baseline_->currentData().toLongLong();
        const QSignalBlocker block(baseline_);
        baseline_->clear();
        baseline_->addItem(tr("none"), qint64(0));
        for (const RunData& d : runs_) baseline_->addItem(d.label, qint64(d.id));
        const int at = baseline_->findData(pinned);
        baseline_->setCurrentIndex(pinned != 0 && at > 0 ? at : 0);
    }
    fill_config();
    fill_scores();
    plots_->set_runs(runs_);
}

void CompareView::set_runs(const ExperimentDb& db, const std::vector<std::int64_t>& ids) {
    std::vector<RunData> runs;
    for (std::int64_t id : ids) runs.push_back(RunData::load(db, id));
    set_runs(runs);
}

void CompareView::set_only_differing(bool only) {
    only_differing_ = only;
    {
        QSignalBlocker block(all_keys_);
        all_keys_->setChecked(!only);
    }
    fill_config();
}

void CompareView::fill_config() {
    std::vector<nlohmann::json> configs;
    for (const RunData& d : runs_) configs.push_back(d.config);
    config_rows_ = config_rows(configs, only_differing_);
    config_box_->setTitle(only_differing_ ? tr("Config — the keys that differ") : tr("Config — every key, the differing ones highlighted"));
    diff_->clear();
    diff_->setColumnCount(int(runs_.size()));
    diff_->setRowCount(int(config_rows_.size()));
    for (int c = 0; c < int(runs_.size()); ++c) diff_->setHorizontalHeaderItem(c, new QTableWidgetItem(runs_[std::size_t(c)].label));
    for (int r = 0; r < int(config_rows_.size()); ++r) {
        const DiffRow& row = config_rows_[std::size_t(r)];
        diff_->setVerticalHeaderItem(r, new QTableWidgetItem(QString::fromStdString(row.key)));
        for (int c = 0; c < int(row.values.size()); ++c) {
            QTableWidgetItem* item = value_item(row.values[std::size_t(c)]);
            if (row.differs) {
                item->setBackground(kDiffBackground);
                if (row.values[std::size_t(c)]) item->setForeground(kDiffText);
            }
            diff_->setItem(r, c, item);
        }
    }
    diff_->resizeColumnsToContents();
}

void CompareView::fill_scores() {
    scores_->clear();
    scores_->setColumnCount(int(runs_.size()));
    scores_->setRowCount(int(comparison_.metrics.size()));
    for (int c = 0; c < int(runs_.size()); ++c) scores_->setHorizontalHeaderItem(c, new QTableWidgetItem(runs_[std::size_t(c)].label));
    for (int r = 0; r < int(comparison_.metrics.size()); ++r) {
        const MetricRow& m = comparison_.metrics[std::size_t(r)];
        scores_->setVerticalHeaderItem(r, new QTableWidgetItem(QString::fromStdString(m.key)));
        for (int c = 0; c < int(m.text.size()); ++c) {
            QTableWidgetItem* item = value_item(m.text[std::size_t(c)]);
            if (const int base = baseline(); base >= 0)
                if (const auto vs = versus_baseline(m, std::size_t(c), std::size_t(base)))
                    item->setText(item->text() + "  (" + QString::fromStdString(*vs) + ")");
            item->setTextAlignment(m.values[std::size_t(c)] ? Qt::AlignRight | Qt::AlignVCenter : Qt::AlignLeft | Qt::AlignVCenter);
            if (m.best[std::size_t(c)]) {
                QFont f = item->font();
                f.setBold(true);
                item->setFont(f);
                item->setToolTip(item->toolTip() + tr(" (best)"));
            }
            scores_->setItem(r, c, item);
        }
    }
    scores_->resizeColumnsToContents();
}

void CompareView::set_baseline(int index) { baseline_->setCurrentIndex(index < 0 ? 0 : index + 1); }

int CompareView::baseline() const { return baseline_->currentIndex() - 1; }

int CompareView::diff_rows() const { return int(comparison_.config.size()); }

QStringList CompareView::diff_keys() const {
    QStringList out;
    for (const DiffRow& d : config_rows_)
        if (d.differs) out << QString::fromStdString(d.key);
    return out;
}

bool CompareView::is_highlighted(int row, int col) const {
    const QTableWidgetItem* item = diff_->item(row, col);
    return item && item->background().style() != Qt::NoBrush && item->background().color() == kDiffBackground;
}

bool CompareView::is_best(int row, int col) const {
    const QTableWidgetItem* item = scores_->item(row, col);
    return item && item->font().bold();
}

bool CompareView::export_table(const QString& path, const QString& format, QString* error) {
    const auto fail = [&](const QString& why) {
        if (error) *error = why;
        return false;
    };
    std::string text;
    try {
        text = render_comparison(comparison_, table_format(format.toStdString()), true);
    } catch (const Error& e) {
        return fail(QString::fromUtf8(e.what()));
    }
    try {
        write_file_atomically(path.toStdString(), text);  // the engine's durable writer, as every other file
    } catch (const Error& e) {
        return fail(QString::fromUtf8(e.what()));
    }
    emit exported(path);
    return true;
}

void CompareView::export_dialog() {
    QStringList ids;
    for (const RunData& d : runs_) ids << QString::number(d.id);
    const ExportChoice choice = ask_export_path(this, tr("Export comparison table"), QString("compare-runs-%1").arg(ids.join('-')));
    if (choice.path.isEmpty()) return;
    QString why;
    if (!export_table(choice.path, choice.format, &why)) QMessageBox::warning(this, tr("Export table"), why);
}

}  // namespace meft::ui
