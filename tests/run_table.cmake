meft_add_test(test_run_table LABELS "unit;store" SOURCES test_run_table.cpp)
