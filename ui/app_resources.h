// app_resources.h — the workbench's compiled-in resources (resources/meft-workbench.qrc).
#pragma once
#include <QIcon>
#include <nlohmann/json.hpp>

namespace meft::ui {

// The application icon: the SVG plus its PNG renderings (16 to 256 px).
QIcon application_icon();
// The experiment a new form starts from (resources/default-experiment.json).
nlohmann::json default_experiment();

}  // namespace meft::ui
