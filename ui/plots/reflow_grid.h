// reflow_grid.h — plot panels in reading order, two to a row when the pane is wide enough for two
// at their minimum width, one to a row otherwise: a narrow pane (a laptop screen, a wide form
// beside it) scrolls down through full-width plots instead of sideways through cut-off ones.
#pragma once
#include <vector>

#include <QWidget>

class QGridLayout;

namespace meft::ui {

class ReflowGrid : public QWidget {
    Q_OBJECT
public:
    explicit ReflowGrid(QWidget* parent = nullptr);
    void add(QWidget* w);  // the next panel in reading order
    int columns() const { return columns_; }

protected:
    void resizeEvent(QResizeEvent* event) override;

private:
    void place(int columns);

    QGridLayout* grid_ = nullptr;
    std::vector<QWidget*> items_;
    int columns_ = 2;
};

}  // namespace meft::ui
