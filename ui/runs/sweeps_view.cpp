#include "ui/runs/sweeps_view.h"

#include <algorithm>
#include <chrono>
#include <set>

#include <QCheckBox>
#include <QDateTime>
#include <QElapsedTimer>
#include <QFontDatabase>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QMessageBox>
#include <QPlainTextEdit>
#include <QProcess>
#include <QPushButton>
#include <QSplitter>
#include <QTableWidget>
#include <QTimer>
#include <QVBoxLayout>

#include "core/error.h"
#include "run/sweep_submit.h"
#include "store/merge.h"

namespace meft::ui {

namespace {

QString q(const std::string& s) { return QString::fromStdString(s); }

QColor state_colour(const std::string& state) {
    if (state == "finished") return QColor(0xd8, 0xf0, 0xd8);
    if (state == "failed") return QColor(0xf6, 0xd0, 0xd0);
    if (state == "running") return QColor(0xd4, 0xe4, 0xf8);
    if (state == "cancelled") return QColor(0xf8, 0xe6, 0xc8);
    return QColor(0xec, 0xec, 0xec);  // queued, unknown
}

QTableWidget* make_table(const QStringList& headers) {
    auto* t = new QTableWidget(0, static_cast<int>(headers.size()));
    t->setHorizontalHeaderLabels(headers);
    t->setSelectionBehavior(QAbstractItemView::SelectRows);
    t->setSelectionMode(QAbstractItemView::SingleSelection);
    t->setEditTriggers(QAbstractItemView::NoEditTriggers);
    t->verticalHeader()->setVisible(false);
    t->horizontalHeader()->setStretchLastSection(true);
    t->setWordWrap(false);
    t->verticalHeader()->setDefaultSectionSize(t->fontMetrics().height() + 8);
    return t;
}

void set_row(QTableWidget* t, int row, const QStringList& cells, const QColor& background = {}) {
    for (int c = 0; c < cells.size(); ++c) {
        auto* item = new QTableWidgetItem(cells[c]);
        item->setToolTip(cells[c]);
        if (background.isValid()) item->setBackground(background);
        t->setItem(row, c, item);
    }
}

}  // namespace

SweepsView::SweepsView(ExperimentDb* db, QWidget* parent) : QWidget(parent), db_(db) {
    sweeps_ = make_table({tr("Sweep"), tr("Mode"), tr("Slurm job"), tr("Expansions"), tr("Submitted"), tr("Folder")});
    sweeps_->setObjectName("sweeps");
    expansions_ = make_table({tr("#"), tr("State"), tr("Detail"), tr("Gathered"), tr("Expansion")});
    expansions_->setObjectName("expansions");
    summary_ = new QLabel(tr("No sweep chosen. Sweeps submitted with `meft sweep submit` or the Experiment tab's "
                             "Submit to Slurm… are listed here."));
    summary_->setWordWrap(true);
    summary_->setTextInteractionFlags(Qt::TextSelectableByMouse);
    log_ = new QPlainTextEdit;
    log_->setReadOnly(true);
    log_->setPlaceholderText(tr("the chosen expansion's log (last lines)"));
    log_->setFont(QFontDatabase::systemFont(QFontDatabase::FixedFont));
    refresh_ = new QPushButton(tr("Refresh"));
    refresh_->setToolTip(tr("Ask Slurm and the shards again now (it happens every few seconds on its own)"));
    gather_ = new QPushButton(tr("Gather finished runs"));
    gather_->setToolTip(tr("Merge the finished expansions' runs into this database (a run already here is skipped)"));
    auto_gather_ = new QCheckBox(tr("Gather as they finish"));
    auto_gather_->setChecked(true);
    auto_gather_->setToolTip(tr("Each finished expansion's run is merged into this database when it finishes; it "
                                "then appears in the Runs tab"));
    cancel_ = new QPushButton(tr("Cancel sweep…"));
    cancel_->setToolTip(tr("Cancel every task that has not ended (scancel); finished runs stay"));
    resume_ = new QPushButton(tr("Resume"));
    resume_->setToolTip(tr("Run the sweep again: each task continues its expansion (finished ones end at once, stopped "
                           "ones resume from their checkpoints, failed ones are not retried)"));
    forget_ = new QPushButton(tr("Forget"));
    forget_->setToolTip(tr("Remove the sweep from this list; its folder and the runs gathered from it stay"));

    auto* buttons = new QHBoxLayout;
    for (QWidget* w : std::initializer_list<QWidget*>{refresh_, gather_, auto_gather_}) buttons->addWidget(w);
    buttons->addStretch(1);
    buttons->addWidget(resume_);
    buttons->addWidget(cancel_);
    buttons->addWidget(forget_);
    auto* lower = new QWidget;
    auto* lv = new QVBoxLayout(lower);
    lv->setContentsMargins(0, 0, 0, 0);
    lv->addWidget(summary_);
    lv->addLayout(buttons);
    auto* exp_split = new QSplitter(Qt::Horizontal);
    exp_split->setObjectName("sweep_expansions_split");
    exp_split->setChildrenCollapsible(false);
    exp_split->addWidget(expansions_);
    exp_split->addWidget(log_);
    exp_split->setStretchFactor(0, 3);
    exp_split->setStretchFactor(1, 2);
    lv->addWidget(exp_split, 1);
    auto* split = new QSplitter(Qt::Vertical);
    split->setObjectName("sweeps_split");
    split->setChildrenCollapsible(false);
    split->addWidget(sweeps_);
    split->addWidget(lower);
    split->setSizes({180, 500});
    auto* layout = new QVBoxLayout(this);
    layout->addWidget(split);

    timer_ = new QTimer(this);
    timer_->setInterval(200);
    timer_->setProperty("poll_ms", 5000);
    connect(timer_, &QTimer::timeout, this, &SweepsView::poll);
    timer_->start();
    connect(sweeps_, &QTableWidget::itemSelectionChanged, this, [this] {
        status_.reset();
        sweep_.reset();
        expansions_->setRowCount(0);
        log_->clear();
        summary_->setText(selected_sweep().isEmpty() ? tr("No sweep chosen.") : tr("asking…"));
        update_buttons();
        refresh_status();
    });
    connect(expansions_, &QTableWidget::itemSelectionChanged, this, &SweepsView::show_log_of_selected);
    connect(refresh_, &QPushButton::clicked, this, &SweepsView::refresh_status);
    connect(gather_, &QPushButton::clicked, this, [this] { gather_finished(); });
    connect(cancel_, &QPushButton::clicked, this, [this] { cancel_sweep(true); });
    connect(forget_, &QPushButton::clicked, this, [this] { forget_sweep(true); });
    connect(resume_, &QPushButton::clicked, this, [this] { resume_sweep(); });
    reload();
}

SweepsView::~SweepsView() {
    if (pending_.valid()) pending_.wait();  // squeue answers in moments; never leave the thread behind
}

void SweepsView::set_poll_interval(int ms) { timer_->setProperty("poll_ms", ms); }

QString SweepsView::selected_sweep() const {
    const auto rows = sweeps_->selectionModel()->selectedRows();
    if (rows.isEmpty()) return {};
    const QTableWidgetItem* item = sweeps_->item(rows.front().row(), 5);
    return item ? item->text() : QString();
}

QString SweepsView::summary() const { return summary_->text(); }
QString SweepsView::log_text() const { return log_->toPlainText(); }

void SweepsView::reload() {
    const QString keep = selected_sweep();
    std::vector<SweepRow> rows;
    try {
        rows = db_->sweeps();
    } catch (const std::exception& ex) {
        emit message(QString::fromUtf8(ex.what()), true);
    }
    {
        const QSignalBlocker block(sweeps_);
        sweeps_->setRowCount(static_cast<int>(rows.size()));
        for (int r = 0; r < static_cast<int>(rows.size()); ++r) {
            const SweepRow& s = rows[static_cast<std::size_t>(rows.size() - 1 - static_cast<std::size_t>(r))];  // newest first
            set_row(sweeps_, r, {q(s.name), q(s.mode), q(s.job_id), QString::number(s.expansions), q(s.created_at), q(s.dir)});
        }
        sweeps_->resizeColumnsToContents();
    }
    if (!keep.isEmpty() && select_sweep(keep)) return;
    if (sweeps_->rowCount() > 0 && keep.isEmpty()) sweeps_->selectRow(0);
    else if (sweeps_->rowCount() == 0) emit sweeps_->itemSelectionChanged();
}

bool SweepsView::select_sweep(const QString& dir) {
    for (int r = 0; r < sweeps_->rowCount(); ++r)
        if (sweeps_->item(r, 5)->text() == dir) {
            if (selected_sweep() != dir) sweeps_->selectRow(r);
            return true;
        }
    return false;
}

void SweepsView::refresh_status() {
    const QString dir = selected_sweep();
    if (dir.isEmpty() || pending_.valid()) return;
    pending_dir_ = dir;
    timer_->setProperty("asked", QVariant::fromValue<qint64>(QDateTime::currentMSecsSinceEpoch()));
    pending_ = std::async(std::launch::async, [d = dir.toStdString()] {
        Answer a;
        try {
            Sweep s = read_sweep(d);
            a.status = sweep_status(s, ask_scheduler(s));
            a.sweep = std::move(s);
        } catch (const std::exception& ex) {
            a.error = QString::fromUtf8(ex.what());
        }
        return a;
    });
}

void SweepsView::poll() {
    if (pending_.valid()) {
        if (pending_.wait_for(std::chrono::seconds(0)) != std::future_status::ready) return;
        Answer a = pending_.get();
        if (pending_dir_ == selected_sweep()) show_status(std::move(a));
        return;
    }
    // A sweep whose tasks have all ended (and whose finished runs are gathered) is asked once a
    // minute: each ask opens every shard.
    bool settled = status_.has_value();
    if (status_)
        for (const ExpansionStatus& e : status_->expansions)
            settled = settled && e.state != "queued" && e.state != "running" && e.state != "unknown" &&
                      (e.state != "finished" || e.gathered || !auto_gather_->isChecked());
    const int interval = settled ? std::max(60000, timer_->property("poll_ms").toInt()) : timer_->property("poll_ms").toInt();
    const qint64 asked = timer_->property("asked").toLongLong();
    if (!selected_sweep().isEmpty() && QDateTime::currentMSecsSinceEpoch() - asked >= interval) refresh_status();
}

void SweepsView::show_status(Answer a) {
    if (!a.error.isEmpty()) {
        summary_->setText(tr("Cannot read this sweep: %1").arg(a.error));
        summary_->setStyleSheet("color: #b00020;");
        status_.reset();
        sweep_.reset();
        expansions_->setRowCount(0);
        update_buttons();
        emit status_shown();
        return;
    }
    summary_->setStyleSheet({});
    sweep_ = std::move(a.sweep);
    status_ = std::move(a.status);
    // Which runs this database has; gather the newly finished ones when asked to.
    auto mark = [this] {
        for (ExpansionStatus& e : status_->expansions) e.gathered = !e.run_uuid.empty() && db_->has_run_uuid(e.run_uuid);
    };
    try {
        mark();
        bool waiting = false;
        for (const ExpansionStatus& e : status_->expansions) waiting = waiting || (e.state == "finished" && !e.gathered);
        if (waiting && auto_gather_->isChecked() && !db_->read_only()) {
            gather_finished();
            mark();
        }
    } catch (const std::exception& ex) {
        emit message(QString::fromUtf8(ex.what()), true);
    }
    const int keep_row = expansions_->currentRow();
    {
        const QSignalBlocker block(expansions_);
        expansions_->setRowCount(static_cast<int>(status_->expansions.size()));
        for (int r = 0; r < static_cast<int>(status_->expansions.size()); ++r) {
            const ExpansionStatus& e = status_->expansions[static_cast<std::size_t>(r)];
            set_row(expansions_, r, {QString::number(e.index), q(e.state), q(e.detail), e.gathered ? tr("yes") : QString(), q(e.label)},
                    state_colour(e.state));
        }
        expansions_->resizeColumnsToContents();
        // A failure's message can be long: the detail column stays readable, its full text in the
        // tooltip and the log beside; the expansion's label takes what is left.
        expansions_->setColumnWidth(2, std::min(expansions_->columnWidth(2), 30 * expansions_->fontMetrics().averageCharWidth()));
        if (keep_row >= 0 && keep_row < expansions_->rowCount()) expansions_->selectRow(keep_row);
    }
    QStringList counts;
    for (const auto& [state, n] : status_->counts()) counts << QString("%1 %2").arg(n).arg(q(state));
    int gathered = 0;
    for (const ExpansionStatus& e : status_->expansions) gathered += e.gathered ? 1 : 0;
    summary_->setText(tr("<b>%1</b> — %2 expansions: %3; %4 gathered into this database. %5%6")
                          .arg(q(sweep_->name).toHtmlEscaped())
                          .arg(sweep_->expansions())
                          .arg(counts.join(", "))
                          .arg(gathered)
                          .arg(q(status_->scheduler).toHtmlEscaped())
                          .arg(sweep_->cancelled_at.empty() ? QString() : tr(" Cancelled %1.").arg(q(sweep_->cancelled_at))));
    show_log_of_selected();
    update_buttons();
    emit status_shown();
}

void SweepsView::show_log_of_selected() {
    if (!sweep_ || !status_) return;
    int row = expansions_->currentRow();
    if (row < 0)  // nothing chosen: the first failed expansion's log, if any
        for (std::size_t i = 0; i < status_->expansions.size() && row < 0; ++i)
            if (status_->expansions[i].state == "failed") row = static_cast<int>(i);
    if (row < 0 || row >= static_cast<int>(status_->expansions.size())) {
        log_->clear();
        return;
    }
    const ExpansionStatus& e = status_->expansions[static_cast<std::size_t>(row)];
    const std::string tail = file_tail(sweep_->log(e.index), 30);
    log_->setPlainText(tr("expansion %1 (%2) — %3\n\n").arg(e.index).arg(q(e.label), q(sweep_->log(e.index).string())) +
                       (tail.empty() ? tr("(no log yet)") : q(tail)));
}

int SweepsView::gather_finished() {
    if (!sweep_) return 0;
    if (db_->read_only()) {
        emit message(tr("cannot gather: the experiment database is read-only"), true);
        return 0;
    }
    int added = 0;
    for (const ExpansionStatus& e : status_ ? status_->expansions : std::vector<ExpansionStatus>{}) {
        if (e.state != "finished" || e.gathered) continue;
        try {
            added += static_cast<int>(merge_runs(*db_, sweep_->shard(e.index)).added.size());
        } catch (const std::exception& ex) {
            emit message(QString::fromUtf8(ex.what()), true);
        }
    }
    if (added > 0) {
        emit message(tr("gathered %1 run(s) of sweep %2 into the database").arg(added).arg(q(sweep_->name)), false);
        emit gathered(added);
    }
    return added;
}

bool SweepsView::cancel_sweep(bool confirm) {
    if (!sweep_) return false;
    if (confirm &&
        QMessageBox::question(this, tr("Cancel sweep"),
                              tr("Cancel every task of %1 that has not ended? Finished runs stay; a cancelled run can be "
                                 "resumed from its checkpoint.").arg(q(sweep_->name)),
                              QMessageBox::Yes | QMessageBox::No, QMessageBox::No) != QMessageBox::Yes)
        return false;
    try {
        Sweep s = *sweep_;
        meft::cancel_sweep(s);
        if (!db_->read_only()) db_->record_sweep(sweep_row(s));
        emit message(tr("cancelled sweep %1").arg(q(s.name)), false);
    } catch (const std::exception& ex) {
        emit message(QString::fromUtf8(ex.what()), true);
        if (confirm) QMessageBox::warning(this, tr("Cancel sweep"), QString::fromUtf8(ex.what()));
        return false;
    }
    refresh_status();
    return true;
}

bool SweepsView::resume_sweep() {
    if (!sweep_) return false;
    try {
        Sweep s = *sweep_;
        if (s.mode == "slurm") {
            resubmit_to_slurm(s);
            if (!db_->read_only()) db_->record_sweep(sweep_row(s));
            emit message(tr("resubmitted sweep %1: Slurm job %2").arg(q(s.name), q(s.job_id)), false);
        } else {
            if (ask_scheduler(s).local_alive) throw Error(s.dir.string() + ": its tasks are still running (pid " + std::to_string(s.pid) + ")");
            if (meft_.empty()) throw Error("the meft program was not found next to the workbench or on PATH");
            const QString log = q((s.dir / "logs" / "resume.log").string());
            QProcess p;
            p.setProgram(q(meft_.string()));
            p.setArguments({"sweep", "resume", q(s.dir.string())});
            p.setStandardOutputFile(log, QIODevice::Append);
            p.setStandardErrorFile(log, QIODevice::Append);
            if (!p.startDetached()) throw Error("cannot start " + meft_.string() + " sweep resume");
            emit message(tr("resuming sweep %1 here (meft sweep resume; its output in %2)").arg(q(s.name), log), false);
        }
    } catch (const std::exception& ex) {
        emit message(QString::fromUtf8(ex.what()), true);
        return false;
    }
    refresh_status();
    return true;
}

bool SweepsView::forget_sweep(bool confirm) {
    const QString dir = selected_sweep();
    if (dir.isEmpty() || db_->read_only()) return false;
    if (confirm &&
        QMessageBox::question(this, tr("Forget sweep"),
                              tr("Remove %1 from this list? Its folder and the runs gathered from it stay.").arg(dir),
                              QMessageBox::Yes | QMessageBox::No, QMessageBox::No) != QMessageBox::Yes)
        return false;
    db_->forget_sweep(dir.toStdString());
    sweeps_->clearSelection();
    reload();
    return true;
}

void SweepsView::update_buttons() {
    const bool chosen = sweep_.has_value();
    const bool writable = !db_->read_only();
    gather_->setEnabled(chosen && writable);
    auto_gather_->setEnabled(writable);
    cancel_->setEnabled(chosen && sweep_->cancelled_at.empty());
    bool unfinished = false;  // something a resume would continue
    if (status_)
        for (const ExpansionStatus& e : status_->expansions) unfinished = unfinished || e.state == "cancelled" || e.state == "unknown" || e.state == "failed";
    resume_->setEnabled(chosen && unfinished);
    forget_->setEnabled(!selected_sweep().isEmpty() && writable);
    refresh_->setEnabled(!selected_sweep().isEmpty());
}

}  // namespace meft::ui
