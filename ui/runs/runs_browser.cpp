#include "ui/runs/runs_browser.h"

#include <algorithm>
#include <set>

#include <QAbstractTableModel>
#include <QComboBox>
#include <QDialog>
#include <QDialogButtonBox>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QItemSelectionModel>
#include <QLabel>
#include <QLineEdit>
#include <QMessageBox>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QSortFilterProxyModel>
#include <QTableView>
#include <QTimer>
#include <QVBoxLayout>

#include "store/database.h"
#include "store/run_table.h"

namespace meft::ui {

namespace {
constexpr int kSortRole = Qt::UserRole;      // numbers for numeric columns, lower-case text else
constexpr int kRunIdRole = Qt::UserRole + 1;  // the row's run id

const char* const kStatuses[] = {"queued", "running", "finished", "failed", "interrupted", "cancelled"};

// Light tint and dark text per status, readable on light and dark themes alike.
std::pair<QColor, QColor> status_colours(const std::string& status) {
    if (status == "running") return {QColor("#dbe8ff"), QColor("#0b4fb3")};
    if (status == "finished") return {QColor("#dcf3df"), QColor("#1b6e2a")};
    if (status == "failed") return {QColor("#fbdcdc"), QColor("#a3161b")};
    if (status == "interrupted" || status == "cancelled") return {QColor("#ffe8cc"), QColor("#9a4a00")};
    return {QColor(), QColor()};
}

QStringList split_tags(const std::string& tags) {
    QStringList out;
    for (const QString& t : QString::fromStdString(tags).split(',', Qt::SkipEmptyParts)) out << t.trimmed();
    return out;
}

QString qs(const std::string& s) { return QString::fromStdString(s); }
}  // namespace

// ---- the model: one RunSummary per row ---------------------------------------------------------

class RunsModel : public QAbstractTableModel {
public:
    using QAbstractTableModel::QAbstractTableModel;

    void set_runs(std::vector<RunSummary> runs) {
        beginResetModel();
        runs_ = std::move(runs);
        endResetModel();
    }
    const std::vector<RunSummary>& runs() const { return runs_; }
    // Replaces the rows of runs already shown (a running run's step count); others are ignored.
    void update_runs(const std::vector<RunSummary>& runs) {
        for (const RunSummary& r : runs) {
            const int row = row_of(r.id);
            if (row < 0) continue;
            runs_[std::size_t(row)] = r;
            emit dataChanged(index(row, 0), index(row, RunsBrowser::kColumnCount - 1));
        }
    }
    int row_of(std::int64_t id) const {
        for (std::size_t i = 0; i < runs_.size(); ++i)
            if (runs_[i].id == id) return int(i);
        return -1;
    }

    int rowCount(const QModelIndex& parent = {}) const override { return parent.isValid() ? 0 : int(runs_.size()); }
    int columnCount(const QModelIndex& parent = {}) const override { return parent.isValid() ? 0 : RunsBrowser::kColumnCount; }

    QVariant headerData(int section, Qt::Orientation o, int role) const override {
        if (o != Qt::Horizontal) return {};
        static const char* const names[] = {"id", "experiment", "method", "task", "status", "steps", "main score",
                                            "act. MiB", "trainable %", "tags", "notes", "created"};
        static const char* const tips[] = {
            "Run id", "Experiment name", "PEFT method", "Task", "Run status", "Steps recorded",
            "The task's headline dev metric (CoLA Matthews, STS-B Pearson, MRPC/QQP F1, MNLI matched, else accuracy)",
            "Peak activation memory of a training step (MiB)", "Trainable parameters as a share of all parameters",
            "Tags (double-click to edit)", "Notes (double-click to edit)", "When the run started (UTC)"};
        if (role == Qt::DisplayRole) return QObject::tr(names[section]);
        if (role == Qt::ToolTipRole) return QObject::tr(tips[section]);
        return {};
    }

    QVariant data(const QModelIndex& index, int role) const override {
        if (!index.isValid() || index.row() >= int(runs_.size())) return {};
        const RunSummary& r = runs_[std::size_t(index.row())];
        const int c = index.column();
        switch (role) {
            case Qt::DisplayRole: return display(r, c);
            case kSortRole: return sort_key(r, c);
            case kRunIdRole: return QVariant::fromValue<qint64>(r.id);
            case Qt::TextAlignmentRole:
                return c == RunsBrowser::kId || c == RunsBrowser::kSteps || c == RunsBrowser::kScore || c == RunsBrowser::kMemory ||
                               c == RunsBrowser::kTrainable
                           ? QVariant(Qt::AlignRight | Qt::AlignVCenter)
                           : QVariant(Qt::AlignLeft | Qt::AlignVCenter);
            case Qt::BackgroundRole:
                if (c == RunsBrowser::kStatus && status_colours(r.status).first.isValid()) return status_colours(r.status).first;
                return {};
            case Qt::ForegroundRole:
                if (c == RunsBrowser::kStatus && status_colours(r.status).second.isValid()) return status_colours(r.status).second;
                return {};
            case Qt::ToolTipRole:
                if (c == RunsBrowser::kScore && r.score) return qs(r.score_key) + QString(" %1").arg(*r.score, 0, 'f', 4);
                if (c == RunsBrowser::kNotes && !r.notes.empty()) return qs(r.notes);
                if (c == RunsBrowser::kCreated) return qs(r.created_at);
                if (c == RunsBrowser::kTags || c == RunsBrowser::kNotes) return QObject::tr("Double-click to edit tags and notes");
                return {};
            default: return {};
        }
    }

private:
    static QVariant display(const RunSummary& r, int c) {
        switch (c) {
            case RunsBrowser::kId: return QString::number(r.id);
            case RunsBrowser::kExperiment: return qs(r.experiment);
            case RunsBrowser::kMethod: return qs(r.method);
            case RunsBrowser::kTask: return qs(r.task);
            case RunsBrowser::kStatus: return qs(r.status);
            case RunsBrowser::kSteps: return QString::number(r.steps);
            case RunsBrowser::kScore: return r.score ? QString::number(*r.score, 'f', 4) : QString();
            case RunsBrowser::kMemory: return r.activation_mib ? QString::number(*r.activation_mib, 'f', 1) : QString();
            case RunsBrowser::kTrainable: return r.trainable_percent ? QString::number(*r.trainable_percent, 'f', 2) : QString();
            case RunsBrowser::kTags: return split_tags(r.tags).join(", ");
            case RunsBrowser::kNotes: return qs(r.notes).simplified();
            case RunsBrowser::kCreated: return qs(r.created_at).replace('T', ' ').left(16);  // to the minute
            default: return {};
        }
    }
    // Numeric columns sort as numbers; a run without the value gives an invalid QVariant.
    static QVariant sort_key(const RunSummary& r, int c) {
        const auto opt = [](const std::optional<double>& v) { return v ? QVariant(*v) : QVariant(); };
        switch (c) {
            case RunsBrowser::kId: return QVariant(double(r.id));
            case RunsBrowser::kSteps: return QVariant(double(r.steps));
            case RunsBrowser::kScore: return opt(r.score);
            case RunsBrowser::kMemory: return opt(r.activation_mib);
            case RunsBrowser::kTrainable: return opt(r.trainable_percent);
            case RunsBrowser::kCreated: return qs(r.created_at);  // to the millisecond
            default: return display(r, c).toString().toLower();
        }
    }

    std::vector<RunSummary> runs_;
};

// ---- the filter: text in any column, a whole tag, a status; numeric sorting ----------------------

class RunsFilter : public QSortFilterProxyModel {
public:
    using QSortFilterProxyModel::QSortFilterProxyModel;

    void set_filters(const QString& text, const QString& tag, const QString& status) {
        text_ = text.trimmed();
        tag_ = tag;
        status_ = status;
        invalidateFilter();
    }

protected:
    bool filterAcceptsRow(int row, const QModelIndex& parent) const override {
        const QAbstractItemModel* m = sourceModel();
        if (!status_.isEmpty() && m->index(row, RunsBrowser::kStatus, parent).data().toString() != status_) return false;
        if (!tag_.isEmpty() && !m->index(row, RunsBrowser::kTags, parent).data().toString().split(", ").contains(tag_)) return false;
        if (text_.isEmpty()) return true;
        for (int c = 0; c < RunsBrowser::kColumnCount; ++c)
            if (m->index(row, c, parent).data().toString().contains(text_, Qt::CaseInsensitive)) return true;
        return false;
    }
    // Numbers compare as numbers, text case-insensitively; a missing value sorts last either way.
    bool lessThan(const QModelIndex& a, const QModelIndex& b) const override {
        const QVariant x = a.data(kSortRole), y = b.data(kSortRole);
        if (!x.isValid() || !y.isValid()) {
            if (x.isValid() == y.isValid()) return false;
            return sortOrder() == Qt::AscendingOrder ? x.isValid() : !x.isValid();
        }
        if (x.typeId() == QMetaType::Double && y.typeId() == QMetaType::Double) return x.toDouble() < y.toDouble();
        return QString::localeAwareCompare(x.toString(), y.toString()) < 0;
    }

private:
    QString text_, tag_, status_;
};

// ---- the browser -------------------------------------------------------------------------------

RunsBrowser::RunsBrowser(ExperimentDb* db, QWidget* parent) : QWidget(parent), db_(db) {
    build_ui();
    refresh();
    poll_timer_ = new QTimer(this);
    poll_timer_->setInterval(1000);
    connect(poll_timer_, &QTimer::timeout, this, [this] { poll(); });
    poll_timer_->start();
}

bool RunsBrowser::resumable(const std::string& status) {
    return status == "cancelled" || status == "interrupted" || status == "failed";
}

int RunsBrowser::poll_interval() const { return poll_timer_->isActive() ? poll_timer_->interval() : 0; }

void RunsBrowser::set_poll_interval(int ms) {
    if (ms <= 0) {
        poll_timer_->stop();
        return;
    }
    poll_timer_->start(ms);
}

bool RunsBrowser::poll() {
    if (!db_) return false;
    try {
        const std::int64_t version = db_->data_version();
        if (version == data_version_) return false;
        data_version_ = version;
        if (db_->runs_stamp() != runs_stamp_) {
            refresh();
        } else {
            std::vector<RunSummary> running;
            for (const RunInfo& r : db_->runs("running")) running.push_back(summarize_run(r));
            model_->update_runs(running);
        }
    } catch (const std::exception&) {
        return false;  // a database busy for longer than its timeout: the next poll tries again
    }
    emit database_changed();
    return true;
}

RunsBrowser::~RunsBrowser() = default;

void RunsBrowser::build_ui() {
    model_ = new RunsModel(this);
    filter_ = new RunsFilter(this);
    filter_->setSourceModel(model_);
    filter_->setSortRole(kSortRole);

    auto* v = new QVBoxLayout(this);
    auto* filters = new QHBoxLayout;
    text_ = new QLineEdit;
    text_->setPlaceholderText(tr("Filter: text in any column (method, task, tag, note…)"));
    text_->setClearButtonEnabled(true);
    tag_ = new QComboBox;
    tag_->setToolTip(tr("Only runs with this tag"));
    tag_->setSizeAdjustPolicy(QComboBox::AdjustToContents);
    status_ = new QComboBox;
    status_->setToolTip(tr("Only runs with this status"));
    status_->addItem(tr("all statuses"), QString());
    for (const char* s : kStatuses) status_->addItem(QString::fromLatin1(s), QString::fromLatin1(s));
    count_ = new QLabel;
    filters->addWidget(text_, 1);
    filters->addWidget(tag_);
    filters->addWidget(status_);
    filters->addWidget(count_);
    v->addLayout(filters);

    table_ = new QTableView;
    table_->setModel(filter_);
    table_->setSortingEnabled(true);
    table_->sortByColumn(kId, Qt::DescendingOrder);  // newest first
    table_->setSelectionBehavior(QAbstractItemView::SelectRows);
    table_->setSelectionMode(QAbstractItemView::ExtendedSelection);
    table_->setEditTriggers(QAbstractItemView::NoEditTriggers);  // edits go through the dialog
    table_->setAlternatingRowColors(true);
    table_->setWordWrap(false);
    table_->setTextElideMode(Qt::ElideRight);
    table_->verticalHeader()->hide();
    table_->horizontalHeader()->setSectionsMovable(true);
    table_->horizontalHeader()->setSectionResizeMode(kNotes, QHeaderView::Stretch);  // notes take what is left
    v->addWidget(table_, 1);

    auto* buttons = new QHBoxLayout;
    open_ = new QPushButton(tr("Open"));
    open_->setToolTip(tr("Show the selected run's curves and memory"));
    compare_ = new QPushButton(tr("Compare"));
    compare_->setToolTip(tr("Compare the selected runs side by side (select two or more)"));
    to_form_ = new QPushButton(tr("To form"));
    to_form_->setToolTip(tr("Load the selected run's configuration into the Experiment form, to change it and run again"));
    edit_ = new QPushButton(tr("Tags && notes…"));
    delete_ = new QPushButton(tr("Delete…"));
    delete_->setToolTip(tr("Delete the selected runs and everything recorded for them"));
    resume_ = new QPushButton(tr("Resume"));
    resume_->setToolTip(tr("Continue the selected cancelled, interrupted or failed run from its checkpoint"));
    rerun_ = new QPushButton(tr("Rerun"));
    rerun_->setToolTip(tr("Run the selected runs' configurations again, each as a new run of the same experiment"));
    table_button_ = new QPushButton(tr("Table"));
    table_button_->setToolTip(tr("The paper table (methods × tasks, mean ± std over seeds) of the selected runs, "
                                 "or of every run shown when fewer than two are selected"));
    timeline_ = new QPushButton(tr("Timeline"));
    timeline_->setToolTip(tr("A training step's memory over time, per layer, for the selected run (a second "
                             "selected run is overlaid)"));
    auto* reload = new QPushButton(tr("Refresh"));
    reload->setToolTip(tr("Reload every run now (the table also follows the database on its own, every second)"));
    for (QPushButton* b : {open_, compare_, table_button_, timeline_, to_form_, resume_, rerun_, edit_}) buttons->addWidget(b);
    buttons->addStretch(1);
    buttons->addWidget(delete_);
    buttons->addWidget(reload);
    v->addLayout(buttons);

    const auto apply_filters = [this] {
        filter_->set_filters(text_->text(), tag_->currentData().toString(), status_->currentData().toString());
        update_buttons();
    };
    connect(text_, &QLineEdit::textChanged, this, apply_filters);
    connect(tag_, &QComboBox::currentIndexChanged, this, apply_filters);
    connect(status_, &QComboBox::currentIndexChanged, this, apply_filters);
    connect(table_->selectionModel(), &QItemSelectionModel::selectionChanged, this, &RunsBrowser::update_buttons);
    connect(table_, &QTableView::doubleClicked, this, &RunsBrowser::on_double_click);
    connect(open_, &QPushButton::clicked, this, &RunsBrowser::emit_open);
    connect(compare_, &QPushButton::clicked, this, &RunsBrowser::emit_compare);
    connect(to_form_, &QPushButton::clicked, this, [this] {
        const auto runs = selected_runs();
        if (runs.size() == 1) emit config_to_form(runs.front());
    });
    connect(resume_, &QPushButton::clicked, this, [this] {
        const auto runs = selected_runs();
        if (runs.size() == 1) emit resume_run(runs.front());
    });
    connect(rerun_, &QPushButton::clicked, this, [this] {
        const auto runs = selected_runs();
        if (!runs.empty()) emit rerun_runs(runs);
    });
    connect(table_button_, &QPushButton::clicked, this, [this] {
        const auto runs = selected_runs();
        emit table_runs(runs.size() >= 2 ? runs : visible_runs());
    });
    connect(timeline_, &QPushButton::clicked, this, [this] {
        const auto runs = selected_runs();
        if (runs.size() == 1 || runs.size() == 2) emit timeline_runs(runs);
    });
    connect(edit_, &QPushButton::clicked, this, [this] {
        const auto runs = selected_runs();
        if (runs.size() == 1) edit_with_dialog(runs.front());
    });
    connect(delete_, &QPushButton::clicked, this, [this] { delete_runs(selected_runs(), true); });
    connect(reload, &QPushButton::clicked, this, &RunsBrowser::refresh);
}

void RunsBrowser::set_database(ExperimentDb* db) {
    db_ = db;
    refresh();
}

void RunsBrowser::refresh() {
    const auto keep = selected_runs();
    std::vector<RunSummary> runs;
    if (db_) {
        data_version_ = db_->data_version();  // read first: a commit in between shows at the next poll
        runs_stamp_ = db_->runs_stamp();
        for (const RunInfo& r : db_->runs()) runs.push_back(summarize_run(r));
    }
    model_->set_runs(std::move(runs));
    rebuild_tag_choices();
    table_->resizeColumnsToContents();
    table_->setColumnWidth(kTags, std::min(table_->columnWidth(kTags), 200));
    select_runs(keep);
    update_buttons();
}

void RunsBrowser::rebuild_tag_choices() {
    const QString current = tag_->currentData().toString();
    QSignalBlocker block(tag_);
    tag_->clear();
    tag_->addItem(tr("all tags"), QString());
    for (const QString& t : tags()) tag_->addItem(t, t);
    const int at = tag_->findData(current);
    tag_->setCurrentIndex(at < 0 ? 0 : at);
    filter_->set_filters(text_->text(), tag_->currentData().toString(), status_->currentData().toString());
}

int RunsBrowser::visible_rows() const { return filter_->rowCount(); }
int RunsBrowser::total_rows() const { return model_->rowCount(); }

std::int64_t RunsBrowser::run_at(int visible_row) const {
    if (visible_row < 0 || visible_row >= filter_->rowCount()) return 0;
    return filter_->index(visible_row, 0).data(kRunIdRole).toLongLong();
}

QStringList RunsBrowser::tags() const {
    std::set<QString> all;
    for (const RunSummary& r : model_->runs())
        for (const QString& t : split_tags(r.tags)) all.insert(t);
    return QStringList(all.begin(), all.end());
}

void RunsBrowser::set_text_filter(const QString& text) { text_->setText(text); }

void RunsBrowser::set_tag_filter(const QString& tag) {
    int at = tag_->findData(tag);
    if (at < 0) {  // a tag no run has (yet): still a valid filter
        tag_->addItem(tag, tag);
        at = tag_->count() - 1;
    }
    tag_->setCurrentIndex(at);
}

void RunsBrowser::set_status_filter(const QString& status) {
    const int at = status_->findData(status);
    status_->setCurrentIndex(at < 0 ? 0 : at);
}

void RunsBrowser::select_runs(const std::vector<std::int64_t>& runs) {
    QItemSelection selection;
    for (std::int64_t id : runs) {
        const int row = model_->row_of(id);
        if (row < 0) continue;
        const QModelIndex at = filter_->mapFromSource(model_->index(row, 0));
        if (at.isValid()) selection.select(at, at);
    }
    table_->selectionModel()->select(selection, QItemSelectionModel::ClearAndSelect | QItemSelectionModel::Rows);
    if (!selection.isEmpty()) {
        table_->selectionModel()->setCurrentIndex(selection.indexes().first(), QItemSelectionModel::NoUpdate);
        table_->scrollTo(selection.indexes().first());
    }
}

std::vector<std::int64_t> RunsBrowser::selected_runs() const {
    QModelIndexList rows = table_->selectionModel()->selectedRows();
    std::sort(rows.begin(), rows.end(), [](const QModelIndex& a, const QModelIndex& b) { return a.row() < b.row(); });
    std::vector<std::int64_t> out;
    for (const QModelIndex& i : rows) out.push_back(i.data(kRunIdRole).toLongLong());
    return out;
}

std::vector<std::int64_t> RunsBrowser::visible_runs() const {
    std::vector<std::int64_t> out;
    for (int row = 0; row < filter_->rowCount(); ++row) out.push_back(run_at(row));
    return out;
}

void RunsBrowser::update_buttons() {
    const auto selected = selected_runs();
    const std::size_t n = selected.size();
    const bool writable = db_ && !db_->read_only();
    const int row = n == 1 ? model_->row_of(selected.front()) : -1;
    open_->setEnabled(n == 1);
    to_form_->setEnabled(n == 1);
    resume_->setEnabled(writable && row >= 0 && resumable(model_->runs()[std::size_t(row)].status));
    rerun_->setEnabled(writable && n >= 1);
    edit_->setEnabled(n == 1 && db_);
    compare_->setEnabled(n >= 2);
    table_button_->setEnabled(visible_rows() > 0);
    timeline_->setEnabled(n == 1 || n == 2);
    delete_->setEnabled(n >= 1 && db_);
    count_->setText(tr("%1 of %2 runs").arg(visible_rows()).arg(total_rows()));
}

void RunsBrowser::emit_open() {
    const auto runs = selected_runs();
    if (runs.size() == 1) emit open_run(runs.front());
}

void RunsBrowser::emit_compare() {
    const auto runs = selected_runs();
    if (runs.size() >= 2) emit compare_runs(runs);
}

void RunsBrowser::on_double_click(const QModelIndex& index) {
    const std::int64_t run = index.data(kRunIdRole).toLongLong();
    if (index.column() == kTags || index.column() == kNotes) edit_with_dialog(run);
    else emit open_run(run);
}

bool RunsBrowser::edit_tags(std::int64_t run, const QString& tags, const QString& notes, QString* error) {
    const auto fail = [&](const QString& why) {
        if (error) *error = why;
        return false;
    };
    if (!db_) return fail(tr("no experiment database is open"));
    std::vector<std::string> list;
    for (const QString& line : tags.split('\n')) {
        const QString t = line.trimmed();
        if (t.isEmpty()) continue;
        if (t.contains(',')) return fail(tr("tag \"%1\" has a comma: write one tag per line").arg(t));
        list.push_back(t.toStdString());
    }
    try {
        if (!db_->run(run)) return fail(tr("run %1 is no longer in the database").arg(run));
        db_->set_tags(run, list);
        db_->set_notes(run, notes.toStdString());
    } catch (const std::exception& ex) {
        return fail(QString::fromUtf8(ex.what()));
    }
    refresh();
    emit runs_changed();
    return true;
}

void RunsBrowser::edit_with_dialog(std::int64_t run) {
    const int row = model_->row_of(run);
    if (row < 0 || !db_) return;
    const RunSummary& r = model_->runs()[std::size_t(row)];
    QDialog dialog(this);
    dialog.setWindowTitle(tr("Tags and notes of run %1").arg(run));
    auto* form = new QFormLayout(&dialog);
    auto* tags = new QPlainTextEdit(split_tags(r.tags).join('\n'));
    tags->setPlaceholderText(tr("one tag per line"));
    tags->setToolTip(tr("One tag per line; a tag cannot contain a comma"));
    tags->setTabChangesFocus(true);
    auto* notes = new QPlainTextEdit(qs(r.notes));
    notes->setTabChangesFocus(true);
    auto* error = new QLabel;
    error->setStyleSheet("color: #b00020;");
    error->setWordWrap(true);
    error->hide();
    auto* box = new QDialogButtonBox(QDialogButtonBox::Save | QDialogButtonBox::Cancel);
    form->addRow(tr("Run"), new QLabel(QString("#%1 %2 · %3 · %4").arg(run).arg(qs(r.experiment), qs(r.method), qs(r.task))));
    form->addRow(tr("Tags\n(one per line)"), tags);
    form->addRow(tr("Notes"), notes);
    form->addRow(error);
    form->addRow(box);
    connect(box, &QDialogButtonBox::rejected, &dialog, &QDialog::reject);
    connect(box, &QDialogButtonBox::accepted, &dialog, [&] {
        QString why;
        if (edit_tags(run, tags->toPlainText(), notes->toPlainText(), &why)) {
            dialog.accept();
        } else {
            error->setText(why);
            error->show();
        }
    });
    dialog.resize(420, 320);
    dialog.exec();
}

bool RunsBrowser::delete_runs(const std::vector<std::int64_t>& runs, bool confirm) {
    if (!db_ || runs.empty()) return false;
    if (confirm) {
        QStringList ids;
        for (std::int64_t r : runs) ids << QString("#%1").arg(r);
        const auto answer = QMessageBox::question(
            this, tr("Delete runs"),
            tr("Delete %n run(s) (%1) and everything recorded for them — steps, evaluations, memory and "
               "checkpoint? This cannot be undone.", nullptr, int(runs.size())).arg(ids.join(", ")),
            QMessageBox::Yes | QMessageBox::No, QMessageBox::No);
        if (answer != QMessageBox::Yes) return false;
    }
    try {
        for (std::int64_t r : runs) db_->delete_run(r);
    } catch (const std::exception& ex) {
        if (confirm) QMessageBox::warning(this, tr("Delete runs"), QString::fromUtf8(ex.what()));
        refresh();
        return false;
    }
    refresh();
    emit runs_changed();
    return true;
}

}  // namespace meft::ui
