// database_choice.h — the workbench never starts on, or silently exits because of, a database it
// cannot use (not an SQLite file, damaged, unreadable, from a newer meft): it says which file and
// why, and offers to open another database or create a new one.
#pragma once
#include <filesystem>
#include <functional>
#include <optional>

#include <QString>

class QWidget;

namespace meft::ui {

// Asked when a database cannot be used: the file and the reason; returns another file to try, or
// nothing to give up.
using DatabaseChooser = std::function<std::optional<std::filesystem::path>(const std::filesystem::path&, const QString&)>;

// `db` if it opens (read-only when its file or folder is not writable), else whatever `choose`
// picks until one opens; nothing when `choose` gives up.
std::optional<std::filesystem::path> usable_database(std::filesystem::path db, const DatabaseChooser& choose);

// The dialog: the file, why it cannot be used, and Open another… / Create new… / Quit.
std::optional<std::filesystem::path> ask_for_database(QWidget* parent, const std::filesystem::path& file, const QString& reason);

}  // namespace meft::ui
