#include "ui/runs/table_export.h"

#include <vector>

#include <QFileDialog>
#include <QFileInfo>

namespace meft::ui {

ExportChoice ask_export_path(QWidget* parent, const QString& title, const QString& default_name, const QStringList& formats) {
    struct Choice {
        QString filter, format, suffix;
    };
    const std::vector<Choice> all = {{QObject::tr("CSV (*.csv)"), "csv", "csv"},
                                     {QObject::tr("Markdown (*.md)"), "markdown", "md"},
                                     {QObject::tr("LaTeX (*.tex)"), "latex", "tex"},
                                     {QObject::tr("JSON (*.json)"), "json", "json"}};
    std::vector<Choice> choices;
    for (const QString& f : formats)
        for (const Choice& c : all)
            if (c.format == f) choices.push_back(c);
    if (choices.empty()) return {};
    QStringList filters;
    for (const Choice& c : choices) filters << c.filter;
    QString selected = filters.first();
    QString path = QFileDialog::getSaveFileName(parent, title, default_name, filters.join(";;"), &selected);
    if (path.isEmpty()) return {};
    Choice chosen = choices.front();
    for (const Choice& c : choices)
        if (c.filter == selected) chosen = c;
    for (const Choice& c : choices)  // a typed suffix wins over the filter
        if (QFileInfo(path).suffix().compare(c.suffix, Qt::CaseInsensitive) == 0) chosen = c;
    if (QFileInfo(path).suffix().isEmpty()) path += "." + chosen.suffix;
    return {path, chosen.format};
}

}  // namespace meft::ui
