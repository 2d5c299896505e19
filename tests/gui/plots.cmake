# The plot widgets (PlotPanel, RunPlots, ComparePlots): throttled redraw, live appends, log y,
# export, comparison. Offscreen, so no display is needed.
add_executable(test_plots test_plots.cpp)
target_link_libraries(test_plots PRIVATE meft_ui Qt6::Test)
set_target_properties(test_plots PROPERTIES AUTOMOC ON)
add_test(NAME test_plots COMMAND test_plots)
set_tests_properties(test_plots PROPERTIES LABELS "gui" ENVIRONMENT "QT_QPA_PLATFORM=offscreen" TIMEOUT 120)
