#include "ui/forms/plan_panel.h"
#include "store/step_memory.h"
#include "ui/forms/experiment_form.h"

#include <unistd.h>

#include <QComboBox>
#include <QLabel>
#include <QTimer>
#include <QVBoxLayout>
#include <qcustomplot.h>

#include "store/experiment.h"
#include "core/backend_select.h"
#include "core/host_memory.h"
#include "run/preflight.h"
#include "run/run_setup.h"
#include "train/memory_plan.h"

namespace meft::ui {

namespace {
constexpr double kMiB = 1024.0 * 1024.0;
constexpr double kGiB = kMiB * 1024.0;

QString bytes_text(double b) {
    return b >= kGiB ? QString("%1 GiB").arg(b / kGiB, 0, 'f', 2) : QString("%1 MiB").arg(b / kMiB, 0, 'f', 1);
}
QString count_text(double n) {
    return n >= 1e6 ? QString("%1 M").arg(n / 1e6, 0, 'f', 2) : QString("%1 k").arg(n / 1e3, 0, 'f', 1);
}
double physical_memory() { return double(sysconf(_SC_PHYS_PAGES)) * double(sysconf(_SC_PAGE_SIZE)); }
}  // namespace

PlanPanel::PlanPanel(QWidget* parent) : QWidget(parent) {
    auto* v = new QVBoxLayout(this);
    auto* title = new QLabel(tr("<b>Plan</b> (one training step)"));
    v->addWidget(title);
    device_ = new QComboBox;
    device_->setSizeAdjustPolicy(QComboBox::AdjustToMinimumContentsLengthWithIcon);
    device_->setMinimumContentsLength(12);
    device_->addItem(tr("this computer — %1 RAM").arg(bytes_text(physical_memory())), physical_memory());
    for (const auto& [name, gib] : {std::pair{"NVIDIA H100 — 80 GiB", 80}, {"NVIDIA A100 — 80 GiB", 80},
                                    {"NVIDIA A100 — 40 GiB", 40}, {"RTX A6000 — 48 GiB", 48},
                                    {"RTX 4090 / 3090 — 24 GiB", 24}, {"V100 / T4 — 16 GiB", 16}})
        device_->addItem(name, double(gib) * kGiB);
    device_->setToolTip(tr("The device whose memory the plan is checked against"));
    v->addWidget(device_);
    params_ = new QLabel;
    memory_ = new QLabel;
    fit_ = new QLabel;
    error_label_ = new QLabel;
    error_label_->setWordWrap(true);
    error_label_->setStyleSheet("color: #b00020;");
    for (QLabel* l : {params_, memory_, fit_, error_label_}) {
        l->setWordWrap(true);
        l->setTextInteractionFlags(Qt::TextSelectableByMouse);
        v->addWidget(l);
    }
    plot_ = new QCustomPlot;
    plot_->setMinimumHeight(180);
    plot_->yAxis->setLabel(tr("held + backward transient (MiB)"));
    plot_->xAxis->setTickLabelRotation(60);
    plot_->plotLayout()->insertRow(0);
    plot_->plotLayout()->addElement(0, 0, new QCPTextElement(plot_, tr("activation memory per layer"), QFont("sans", 9, QFont::Bold)));
    v->addWidget(plot_, 1);
    debounce_ = new QTimer(this);
    debounce_->setSingleShot(true);
    debounce_->setInterval(150);
    connect(debounce_, &QTimer::timeout, this, &PlanPanel::replan);
    connect(device_, &QComboBox::currentIndexChanged, this, &PlanPanel::replan);
}

void PlanPanel::set_experiment(const nlohmann::json& experiment, const std::filesystem::path& file, bool now) {
    experiment_ = experiment;
    file_ = file.empty() ? ExperimentForm::unsaved_path() : file;
    if (now) replan();
    else debounce_->start();
}

QString PlanPanel::memory_text() const { return memory_->text(); }

void PlanPanel::show_error(const QString& message) {
    const QString msg = ExperimentForm::readable(message);
    error_ = msg;
    problems_.clear();
    trainable_ = parameters_ = activation_ = resident_ = 0;
    bars_ = 0;
    fits_ = false;
    error_label_->setText(msg);
    params_->clear();
    memory_->clear();
    fit_->clear();
    plot_->clearPlottables();
    plot_->replot();
    emit planned();
}

void PlanPanel::replan() {
    MemoryPlanResult plan;
    QStringList problems;
    try {
        const std::vector<Experiment> exps = experiments_from_json(experiment_, file_);
        const Experiment& e = exps.front();
        // What a run would refuse, on the backend it would use (made once per kind).
        for (const Experiment& x : exps) {
            const std::string kind = resolve_backend(x.backend, backend_options(x));
            auto& be = backends_[kind];
            if (!be) be = make_backend(kind, backend_options(x));
            for (const std::string& p : preflight(x, *be).problems)
                if (const QString q = ExperimentForm::readable(QString::fromStdString(p)); !problems.contains(q)) problems << q;
        }
        plan = plan_run_memory(experiment_model_config(e), e.method, e.dtype, e.train.batch_size * rows_per_unit(e),
                               e.train.eval_batch_size, std::min(e.train.max_seq_length, experiment_model_config(e).max_tokens()));
    } catch (const std::bad_alloc&) {
        show_error(QString::fromStdString(out_of_memory_message("planning the experiment")));
        return;
    } catch (const std::exception& ex) {
        show_error(QString::fromStdString(ex.what()));
        return;
    }
    error_.clear();
    problems_ = problems;
    error_label_->setText(problems.isEmpty() ? QString() : tr("A run would be refused: %1").arg(problems.join("\n")));
    trainable_ = plan.trainable_parameters;
    parameters_ = plan.parameters;
    activation_ = static_cast<std::int64_t>(plan.report.activation_peak);
    resident_ = static_cast<std::int64_t>(plan.report.resident());
    params_->setText(tr("trainable: <b>%1</b> of %2 (%3%)")
                         .arg(count_text(double(trainable_)), count_text(double(parameters_)))
                         .arg(100.0 * double(trainable_) / double(std::max<std::int64_t>(parameters_, 1)), 0, 'f', 2));
    // The parts that add up to the activation peak (store/step_memory.h): MEFT holds little per
    // layer; its streams and the backward's recomputation make up most of its peak.
    const StepMemory parts = StepMemory::from_report(plan.report, 0, 0, 0);
    QStringList split;
    split << tr("held by layers %1").arg(bytes_text(double(parts.held_layers)));
    if (parts.remainders > 0) split << tr("remainders %1").arg(bytes_text(double(parts.remainders)));
    if (parts.streams > 0) split << tr("streams %1").arg(bytes_text(double(parts.streams)));
    split << tr("backward transient %1").arg(bytes_text(double(parts.transient)));
    memory_->setText(tr("activations: <b>%1</b> = %2<br>weights + grads + optimizer: %3")
                         .arg(bytes_text(double(activation_)), split.join(" + "), bytes_text(double(resident_))));
    const double capacity = device_->currentData().toDouble();
    const double need = double(plan.report.footprint());  // weights, gradients, state, activations in whole chunks, op workspaces
    fits_ = need <= capacity;
    fit_->setText(fits_ ? tr("<span style='color:#1b7f3b'>✓ fits: %1 of %2 (%3%)</span>")
                              .arg(bytes_text(need), bytes_text(capacity))
                              .arg(100.0 * need / capacity, 0, 'f', 1)
                        : tr("<span style='color:#b00020'>✗ does not fit: needs %1, the device has %2</span>")
                              .arg(bytes_text(need), bytes_text(capacity)));

    plot_->clearPlottables();
    auto* bars = new QCPBars(plot_->xAxis, plot_->yAxis);
    bars->setName(tr("held"));
    bars->setBrush(QColor(70, 130, 180));
    bars->setPen(Qt::NoPen);
    auto* transient = new QCPBars(plot_->xAxis, plot_->yAxis);  // stacked: what its backward adds
    transient->setName(tr("backward transient"));
    transient->setBrush(QColor(70, 130, 180).lighter(160));
    transient->setPen(Qt::NoPen);
    transient->moveAbove(bars);
    QSharedPointer<QCPAxisTickerText> ticker(new QCPAxisTickerText);
    QVector<double> keys, values, extra;
    const auto& layers = plan.report.layers;
    const int stride = std::max<int>(1, static_cast<int>(layers.size()) / 14);  // keep labels readable
    for (std::size_t i = 0; i < layers.size(); ++i) {
        keys << double(i);
        values << double(layers[i].held) / kMiB;
        extra << double(layers[i].transient) / kMiB;
        const std::string& l = layers[i].label;
        if (static_cast<int>(i) % stride == 0 || i + 1 == layers.size())
            ticker->addTick(double(i), QString::fromStdString(l.rfind("layer ", 0) == 0 ? l.substr(6) : l));
    }
    bars->setData(keys, values);
    transient->setData(keys, extra);
    bars_ = static_cast<int>(layers.size());
    plot_->xAxis->setTicker(ticker);
    plot_->xAxis->setRange(-0.7, double(layers.size()) - 0.3);
    plot_->yAxis->rescale();
    plot_->yAxis->setRangeLower(0);
    plot_->yAxis->setRangeUpper(plot_->yAxis->range().upper * 1.1 + 1e-9);
    plot_->replot();
    emit planned();
}

}  // namespace meft::ui
