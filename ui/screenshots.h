// screenshots.h — renders each main view of the workbench to PNG (docs/screenshots, the README):
// runs two short toy experiments (full fine-tuning and MEFT3), two seeds each, into the window's
// database, then grabs the experiment view during nothing but real data, the runs browser with a
// stored run opened, the comparison of two runs, the four grouped by seeds (mean ± std bands), and
// their paper table with full fine-tuning pinned as the baseline, and MEFT3's step memory timeline
// with full fine-tuning's overlaid. Used by tools/screenshots.sh under the offscreen platform.
#pragma once
#include <QString>

namespace meft::ui {

class MainWindow;

// Returns the process exit code (0 when every PNG was written).
int render_screenshots(MainWindow& w, const QString& dir);

}  // namespace meft::ui
