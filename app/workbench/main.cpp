// meft-workbench — the Qt workbench. Options: --db FILE (default: $MEFT_DB, the last session's
// database, or the user's data folder), --open EXPERIMENT.json, --screenshots DIR (render each main view to PNG and quit).
#include <cstdlib>

#include <QApplication>
#include <QCommandLineParser>
#include <QFileInfo>
#include <QIcon>

#include "core/build_info.h"

#include "ui/database_choice.h"
#include "ui/main_window.h"
#include "ui/screenshots.h"

int main(int argc, char** argv) {
    QApplication app(argc, argv);
    QApplication::setApplicationName("meft-workbench");
    QApplication::setApplicationVersion(meft::version());
    QCommandLineParser cli;
    cli.setApplicationDescription("MEFT Workbench: configure, run, watch and compare fine-tuning experiments");
    cli.addHelpOption();
    cli.addVersionOption();
    cli.addOption({"db", "experiment database", "FILE"});
    cli.addOption({"read-only", "browse and compare the database without writing it"});
    cli.addOption({"open", "experiment file to open", "FILE"});
    cli.addOption({"screenshots", "render each main view as PNG into DIR and quit", "DIR"});
    cli.process(app);
    try {
        // --db, else $MEFT_DB, else the database of the last session (when it still exists), else the default.
        const QString last = meft::ui::MainWindow::remembered_database();
        const std::filesystem::path asked =
            cli.isSet("db") ? std::filesystem::path(cli.value("db").toStdString())
            : !std::getenv("MEFT_DB") && !last.isEmpty() && std::filesystem::exists(last.toStdString())
                ? std::filesystem::path(last.toStdString())
                : meft::ExperimentDb::default_path();
        // A database that cannot be used is named with the reason, and another offered (never a silent exit).
        const std::optional<std::filesystem::path> db =
            meft::ui::usable_database(asked, [](const std::filesystem::path& file, const QString& why) {
                fprintf(stderr, "meft-workbench: %s: %s\n", file.string().c_str(), why.toUtf8().constData());
                return meft::ui::ask_for_database(nullptr, file, why);
            });
        if (!db) return 1;
        meft::ui::MainWindow w(*db, nullptr, cli.isSet("read-only"));
        if (cli.isSet("open")) {
            QString err;
            if (!w.open_experiment(cli.value("open"), &err)) {
                fprintf(stderr, "meft-workbench: %s\n", err.toUtf8().constData());
                return 1;
            }
        }
        if (cli.isSet("screenshots")) return meft::ui::render_screenshots(w, cli.value("screenshots"));
        if (!cli.isSet("open")) {  // the last experiment opened or saved, if it is still there
            const QString exp = meft::ui::MainWindow::remembered_experiment();
            if (!exp.isEmpty() && QFileInfo::exists(exp)) w.open_experiment(exp);
        }
        w.restore_settings();
        w.show();
        return app.exec();
    } catch (const std::exception& e) {
        fprintf(stderr, "meft-workbench: %s\n", e.what());
        return 1;
    }
}
