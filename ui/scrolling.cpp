// scrolling.cpp — the wheel guard of scrolled forms.
#include "ui/scrolling.h"

#include <QAbstractSlider>
#include <QAbstractSpinBox>
#include <QComboBox>
#include <QCoreApplication>
#include <QScrollBar>
#include <QWheelEvent>

namespace meft::ui {

bool WheelGuard::eventFilter(QObject* watched, QEvent* event) {
    if (event->type() != QEvent::Wheel || !watched->isWidgetType()) return false;
    // The value widget under the pointer (a spin box's line edit counts as its spin box).
    QWidget* field = nullptr;
    for (QWidget* w = static_cast<QWidget*>(watched); w && !field; w = w->parentWidget())
        if (qobject_cast<QComboBox*>(w) || qobject_cast<QAbstractSpinBox*>(w) ||
            (qobject_cast<QAbstractSlider*>(w) && !qobject_cast<QScrollBar*>(w)))
            field = w;
    if (!field || field->hasFocus()) return false;
    QScrollArea* area = nullptr;
    for (QWidget* w = field->parentWidget(); w && !area; w = w->parentWidget()) area = qobject_cast<QScrollArea*>(w);
    if (!area) return false;
    QCoreApplication::sendEvent(area->verticalScrollBar(), event);
    return true;  // the field keeps its value
}

}  // namespace meft::ui
