// table_export.h — the save dialog every table export shares: the formats offered (CSV, Markdown,
// LaTeX, JSON), the file name, and a typed suffix that wins over the chosen filter.
#pragma once
#include <QString>
#include <QStringList>

class QWidget;

namespace meft::ui {

struct ExportChoice {
    QString path;    // empty: cancelled
    QString format;  // "csv", "markdown", "latex" or "json" (store/run_table.h table_format)
};

// Asks where to save; `formats` limits the choices (by format name, in the order offered).
ExportChoice ask_export_path(QWidget* parent, const QString& title, const QString& default_name,
                             const QStringList& formats = {"csv", "markdown", "latex", "json"});

}  // namespace meft::ui
