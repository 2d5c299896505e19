#include "ui/runs/run_overview.h"

namespace meft::ui {

namespace {
using nlohmann::json;

QString esc(const std::string& s) { return QString::fromStdString(s).toHtmlEscaped(); }

// A value as the tables show it: numbers to 6 significant digits, strings bare, the rest as JSON.
QString text(const json& v) {
    if (v.is_number_integer()) return QString::number(v.get<long long>());
    if (v.is_number()) return QString::number(v.get<double>(), 'g', 6);
    if (v.is_string()) return esc(v.get<std::string>());
    return esc(v.dump());
}

QString table(const json& object) {
    if (!object.is_object() || object.empty()) return QObject::tr("<p><i>none recorded</i></p>");
    QString h = "<table cellspacing='0' cellpadding='2'>";
    for (auto it = object.begin(); it != object.end(); ++it)
        h += QString("<tr><td style='color:palette(mid)'>%1&nbsp;&nbsp;</td><td>%2</td></tr>").arg(esc(it.key()), text(*it));
    return h + "</table>";
}

// The config's value at a dotted path, or null.
json at(const json& config, const char* dotted) {
    const json* v = &config;
    for (const QString& k : QString(dotted).split('.')) {
        if (!v->is_object() || !v->contains(k.toStdString())) return nullptr;
        v = &(*v)[k.toStdString()];
    }
    return *v;
}
}  // namespace

RunOverview::RunOverview(QWidget* parent) : QTextBrowser(parent) {
    setOpenLinks(false);
    setMinimumWidth(220);
    show_nothing();
}

void RunOverview::show_nothing() { setHtml(tr("<p><i>Open a run (double-click it above) to see its overview.</i></p>")); }

void RunOverview::show_run(const RunData& run) {
    const RunInfo& r = run.info;
    QString h = QString("<h3>%1</h3>").arg(run.label.toHtmlEscaped());
    const bool bad = r.status == "failed";
    const bool stopped = r.status == "cancelled" || r.status == "interrupted";
    h += QString("<p><b>%1</b>%2</p>")
             .arg(esc(r.status), bad ? QString(" <span style='color:#b00020'>— the run ended with an error</span>") : QString());
    if (!r.message.empty())
        h += QString("<p style='color:%1; white-space:pre-wrap'>%2</p>").arg(bad ? "#b00020" : "palette(text)", esc(r.message));
    if (stopped) h += tr("<p>Continue it from its last checkpoint: <code>meft resume %1</code></p>").arg(r.id);
    h += tr("<p>started %1<br>ended %2<br>experiment %3 · %n step(s) recorded</p>", nullptr, r.steps)
             .arg(esc(r.created_at), r.finished_at.empty() ? tr("—") : esc(r.finished_at), esc(r.experiment));
    json what = json::object();
    for (const char* k : {"method.name", "task.name", "backbone.arch", "backbone.preset", "backbone.path", "training.learning_rate",
                          "training.batch_size", "training.epochs", "training.max_steps", "training.max_seq_length",
                          "training.seed", "training.backend", "training.dtype"}) {
        const json v = at(r.config, k);
        if (!v.is_null() && !(v.is_string() && v.get<std::string>().empty())) what[k] = v;
    }
    h += tr("<h4>Config</h4>") + table(what);
    h += tr("<h4>Final metrics</h4>") + table(r.final_metrics);
    h += tr("<h4>Environment</h4>") + table(r.environment);
    setHtml(h);
}

}  // namespace meft::ui
