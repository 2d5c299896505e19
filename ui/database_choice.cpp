#include "ui/database_choice.h"

#include <QFileDialog>
#include <QMessageBox>
#include <QPushButton>

#include "store/database.h"

namespace meft::ui {

std::optional<std::filesystem::path> usable_database(std::filesystem::path db, const DatabaseChooser& choose) {
    for (;;) {
        try {
            ExperimentDb probe(db, DbAccess::Reading);
            return db;
        } catch (const std::exception& e) {
            const std::optional<std::filesystem::path> other = choose(db, QString::fromUtf8(e.what()));
            if (!other) return std::nullopt;
            db = *other;
        }
    }
}

std::optional<std::filesystem::path> ask_for_database(QWidget* parent, const std::filesystem::path& file, const QString& reason) {
    QMessageBox box(QMessageBox::Warning, QObject::tr("Cannot open the experiment database"),
                    QObject::tr("The workbench cannot use the experiment database\n%1\n\n%2")
                        .arg(QString::fromStdString(file.string()), reason),
                    QMessageBox::NoButton, parent);
    QPushButton* open = box.addButton(QObject::tr("Open another…"), QMessageBox::AcceptRole);
    QPushButton* create = box.addButton(QObject::tr("Create new…"), QMessageBox::ActionRole);
    box.addButton(QObject::tr("Quit"), QMessageBox::RejectRole);
    const QString dir = QString::fromStdString(file.parent_path().string());
    for (;;) {
        box.exec();
        QString chosen;
        if (box.clickedButton() == open)
            chosen = QFileDialog::getOpenFileName(parent, QObject::tr("Open an experiment database"), dir,
                                                  QObject::tr("Experiment databases (*.sqlite *.db);;All files (*)"));
        else if (box.clickedButton() == create)
            chosen = QFileDialog::getSaveFileName(parent, QObject::tr("Create an experiment database"), dir + "/experiments.sqlite",
                                                  QObject::tr("Experiment databases (*.sqlite)"), nullptr,
                                                  QFileDialog::DontConfirmOverwrite);
        else
            return std::nullopt;
        if (!chosen.isEmpty()) return std::filesystem::path(chosen.toStdString());
    }
}

}  // namespace meft::ui
