# The runs browser (filters, numeric sorting, tags and notes, delete, Compare) and the compare view
# (config diff highlighted, best scores bold, table export) over a temporary experiment database.
add_executable(test_browse_compare test_browse_compare.cpp)
target_link_libraries(test_browse_compare PRIVATE meft_ui Qt6::Test)
set_target_properties(test_browse_compare PROPERTIES AUTOMOC ON)
add_test(NAME test_browse_compare COMMAND test_browse_compare)
set_tests_properties(test_browse_compare PROPERTIES LABELS "gui" ENVIRONMENT "QT_QPA_PLATFORM=offscreen" TIMEOUT 120)
