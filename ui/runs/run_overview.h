// run_overview.h — one stored run at a glance, beside its plots in the Runs tab: its status (a
// failed, cancelled or interrupted run with its message and how to go on), when it ran, what it
// trained (method, task, backbone, the main training settings), its final metrics and the
// environment it ran in (program, commit, backend, threads).
#pragma once
#include <QTextBrowser>

#include "ui/runs/run_data.h"

namespace meft::ui {

class RunOverview : public QTextBrowser {
    Q_OBJECT
public:
    explicit RunOverview(QWidget* parent = nullptr);
    void show_run(const RunData& run);
    void show_nothing();
};

}  // namespace meft::ui
