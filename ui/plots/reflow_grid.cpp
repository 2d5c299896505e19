#include "ui/plots/reflow_grid.h"

#include <algorithm>

#include <QGridLayout>
#include <QResizeEvent>

namespace meft::ui {

ReflowGrid::ReflowGrid(QWidget* parent) : QWidget(parent) {
    grid_ = new QGridLayout(this);
    grid_->setContentsMargins(0, 0, 0, 0);
    grid_->setSpacing(6);
}

void ReflowGrid::add(QWidget* w) {
    items_.push_back(w);
    const int i = static_cast<int>(items_.size()) - 1;
    grid_->addWidget(w, i / columns_, i % columns_);
}

void ReflowGrid::place(int columns) {
    columns_ = columns;
    for (QWidget* w : items_) grid_->removeWidget(w);
    for (int i = 0; i < static_cast<int>(items_.size()); ++i) grid_->addWidget(items_[std::size_t(i)], i / columns, i % columns);
    // The columns of a wider layout keep no stretch or minimum behind.
    for (int c = 0; c < 2; ++c) grid_->setColumnStretch(c, c < columns ? 1 : 0);
}

void ReflowGrid::resizeEvent(QResizeEvent* event) {
    QWidget::resizeEvent(event);
    int widest = 0;
    for (const QWidget* w : items_) widest = std::max(widest, w->minimumSizeHint().width());
    const int want = event->size().width() >= 2 * widest + grid_->spacing() ? 2 : 1;
    if (want != columns_) place(want);
}

}  // namespace meft::ui
