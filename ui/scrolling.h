// scrolling.h — a pane's content in a scroll area, so a window smaller than the content's minimum
// (a laptop screen) scrolls the pane instead of clipping it or refusing to shrink.
#pragma once
#include <QFrame>
#include <QObject>
#include <QScrollArea>

namespace meft::ui {

// While installed (QApplication::installEventFilter), a mouse wheel over a combo box, spin box
// or slider inside a scroll area that does not have the keyboard focus scrolls the area instead
// of changing the value: scrolling a long form never silently changes a setting under the
// pointer. Click (or tab) into the field first to wheel through its values.
class WheelGuard : public QObject {
public:
    using QObject::QObject;

protected:
    bool eventFilter(QObject* watched, QEvent* event) override;
};

inline QScrollArea* scrolling(QWidget* content) {
    auto* s = new QScrollArea;
    s->setWidget(content);
    s->setWidgetResizable(true);  // the content takes the pane's width and at least its own minimum height
    s->setFrameShape(QFrame::NoFrame);
    return s;
}

}  // namespace meft::ui
