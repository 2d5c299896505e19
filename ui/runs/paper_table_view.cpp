#include "ui/runs/paper_table_view.h"

#include <map>

#include <QApplication>
#include <QClipboard>
#include <QComboBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QMessageBox>
#include <QPushButton>
#include <QTableWidget>
#include <QVBoxLayout>

#include "core/error.h"
#include "core/file_io.h"
#include "ui/runs/table_export.h"

namespace meft::ui {

namespace {
QString qs(const std::string& s) { return QString::fromStdString(s); }
}  // namespace

PaperTableView::PaperTableView(QWidget* parent) : QWidget(parent) {
    baseline_ = new QComboBox;
    baseline_->setToolTip(tr("Pin a row as the baseline: every other cell also shows its difference to it, in points"));
    baseline_->setSizeAdjustPolicy(QComboBox::AdjustToContents);
    baseline_->setMinimumContentsLength(12);
    export_ = new QPushButton(tr("Export…"));
    export_->setToolTip(tr("Save the table as Markdown, LaTeX or CSV (as `meft runs export` writes it)"));
    copy_ = new QPushButton(tr("Copy Markdown"));
    copy_->setToolTip(tr("Copy the table as Markdown to the clipboard"));
    note_ = new QLabel;
    note_->setWordWrap(true);
    note_->setTextInteractionFlags(Qt::TextSelectableByMouse);
    auto* top = new QHBoxLayout;
    top->addWidget(new QLabel(tr("baseline:")));
    top->addWidget(baseline_);
    top->addStretch(1);
    top->addWidget(copy_);
    top->addWidget(export_);

    grid_ = new QTableWidget;
    grid_->setEditTriggers(QAbstractItemView::NoEditTriggers);
    grid_->setSelectionMode(QAbstractItemView::ContiguousSelection);
    grid_->setWordWrap(false);
    grid_->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);

    auto* v = new QVBoxLayout(this);
    v->addLayout(top);
    v->addWidget(note_);
    v->addWidget(grid_, 1);

    connect(baseline_, &QComboBox::currentIndexChanged, this, &PaperTableView::fill);
    connect(export_, &QPushButton::clicked, this, &PaperTableView::export_dialog);
    connect(copy_, &QPushButton::clicked, this, [this] { QApplication::clipboard()->setText(text("markdown")); });
    set_runs({});
}

void PaperTableView::set_runs(const std::vector<RunInfo>& runs) {
    std::vector<RunInfo> usable;
    refused_.clear();
    for (const RunInfo& r : runs) {
        const std::string why = paper_table_refusal(r);
        if (why.empty()) usable.push_back(r);
        else refused_.emplace_back(r.id, why);
    }
    pooled_ = usable.size();
    table_ = paper_table(usable);
    const QString keep = baseline();
    {
        const QSignalBlocker block(baseline_);
        baseline_->clear();
        baseline_->addItem(tr("none"), QString());
        for (const PaperRow& r : table_.rows) baseline_->addItem(qs(r.label()), qs(r.label()));
        const int at = baseline_->findData(keep);
        baseline_->setCurrentIndex(at < 0 ? 0 : at);
    }
    fill();
}

std::vector<std::int64_t> PaperTableView::left_out() const {
    std::vector<std::int64_t> out;
    for (const auto& [run, why] : refused_) out.push_back(run);
    return out;
}

void PaperTableView::set_baseline(const QString& row_label) {
    const int at = baseline_->findData(row_label);
    baseline_->setCurrentIndex(at < 0 ? 0 : at);
}

QString PaperTableView::baseline() const { return baseline_->currentData().toString(); }

QString PaperTableView::note() const { return note_->text(); }

void PaperTableView::fill() {
    const std::string base = baseline().toStdString();
    grid_->clear();
    grid_->setRowCount(int(table_.rows.size()));
    grid_->setColumnCount(int(table_.tasks.size()));
    QStringList header;
    for (const std::string& t : table_.tasks) header << QString("%1\n%2").arg(qs(t), qs(headline_metric_key(t)));
    grid_->setHorizontalHeaderLabels(header);
    QStringList rows;
    for (const PaperRow& r : table_.rows) rows << qs(r.label()) + (r.label() == base ? tr("  (baseline)") : QString());
    grid_->setVerticalHeaderLabels(rows);
    for (int i = 0; i < int(table_.rows.size()); ++i) {
        const std::string label = table_.rows[std::size_t(i)].label();
        for (int j = 0; j < int(table_.tasks.size()); ++j) {
            const std::string& task = table_.tasks[std::size_t(j)];
            const PaperCell* c = table_.cell(label, task);
            if (!c) continue;
            QString text = qs(paper_cell_text(*c));
            if (!base.empty() && label != base)
                if (const auto d = table_.points_over(label, base, task)) text += QString("  (%1%2)").arg(*d >= 0 ? "+" : "").arg(*d, 0, 'f', 1);
            auto* item = new QTableWidgetItem(text);
            item->setTextAlignment(Qt::AlignRight | Qt::AlignVCenter);
            QFont f = item->font();
            f.setBold(c->best);
            item->setFont(f);
            QStringList runs;
            for (std::size_t k = 0; k < c->runs.size(); ++k) runs << QString("#%1: %2").arg(c->runs[k]).arg(c->values[k], 0, 'f', 4);
            item->setToolTip((c->runs.size() == 1 ? tr("1 run:") : tr("%1 runs, one per seed:").arg(c->runs.size())) + "\n" +
                             runs.join('\n'));
            grid_->setItem(i, j, item);
        }
    }
    grid_->resizeColumnsToContents();
    QString note = (pooled_ == 1 ? tr("1 run pooled") : tr("%1 runs pooled").arg(pooled_)) +
                   tr(": each cell is the mean ± sample std over a configuration's seeds, in percent; the best mean "
                      "per task is bold.");
    QStringList every;  // the tooltip names every run left out; the note, a few per reason
    if (!refused_.empty()) {
        std::map<std::string, std::vector<std::int64_t>> by_reason;
        for (const auto& [run, reason] : refused_) {
            by_reason[reason].push_back(run);
            every << QString("#%1 %2").arg(run).arg(qs(reason));
        }
        constexpr std::size_t kNamed = 5;
        QStringList parts;
        for (const auto& [reason, runs] : by_reason) {
            QStringList ids;
            for (std::size_t i = 0; i < std::min(runs.size(), kNamed); ++i) ids << QString("#%1").arg(runs[i]);
            if (runs.size() > kNamed) ids << QStringLiteral("…");
            parts << QString("%1 %2 (%3)").arg(runs.size()).arg(qs(reason), ids.join(", "));
        }
        note += " " + tr("Left out: %1.").arg(parts.join("; "));
    }
    note_->setToolTip(every.isEmpty() ? QString() : tr("Left out:\n%1").arg(every.join('\n')));
    if (table_.rows.empty()) note = refused_.empty() ? tr("Choose runs in the Runs tab and press Table.") : note;
    note_->setText(note);
    export_->setEnabled(!table_.rows.empty());
    copy_->setEnabled(!table_.rows.empty());
}

QString PaperTableView::text(const QString& format) const {
    return qs(render_paper_table(table_, table_format(format.toStdString())));
}

bool PaperTableView::export_table(const QString& path, const QString& format, QString* error) {
    try {
        write_file_atomically(path.toStdString(), text(format).toStdString());
    } catch (const Error& e) {
        if (error) *error = QString::fromUtf8(e.what());
        return false;
    }
    emit exported(path);
    return true;
}

void PaperTableView::export_dialog() {
    const ExportChoice choice = ask_export_path(this, tr("Export paper table"), "paper-table", {"markdown", "latex", "csv"});
    if (choice.path.isEmpty()) return;
    QString why;
    if (!export_table(choice.path, choice.format, &why)) QMessageBox::warning(this, tr("Export table"), why);
}

}  // namespace meft::ui
