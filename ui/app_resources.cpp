#include "ui/app_resources.h"

#include <QFile>

#include "core/error.h"

// Q_INIT_RESOURCE must be used outside any namespace. A static library's resources are linked
// only when referenced, so every accessor below calls this first.
static void init_meft_resources() {
    static const bool done = [] {
        Q_INIT_RESOURCE(meft_workbench);
        return true;
    }();
    (void)done;
}

namespace meft::ui {

QIcon application_icon() {
    init_meft_resources();
    QIcon icon(":/meft/meft-workbench.svg");
    for (int size : {16, 32, 48, 64, 128, 256})
        icon.addFile(QString(":/meft/icons/meft-workbench-%1.png").arg(size), QSize(size, size));
    return icon;
}

nlohmann::json default_experiment() {
    init_meft_resources();
    QFile f(":/meft/default-experiment.json");
    if (!f.open(QIODevice::ReadOnly)) throw Error("the workbench was built without its resources (:/meft/default-experiment.json)");
    return nlohmann::json::parse(f.readAll().toStdString());
}

}  // namespace meft::ui
