// scrolling.h — a pane's content in a scroll area, so a window smaller than the content's minimum
// (a laptop screen) scrolls the pane instead of clipping it or refusing to shrink.
#pragma once
#include <QFrame>
#include <QScrollArea>

namespace meft::ui {

inline QScrollArea* scrolling(QWidget* content) {
    auto* s = new QScrollArea;
    s->setWidget(content);
    s->setWidgetResizable(true);  // the content takes the pane's width and at least its own minimum height
    s->setFrameShape(QFrame::NoFrame);
    return s;
}

}  // namespace meft::ui
