# Reliability suites of the experiment database, included from tests/CMakeLists.txt:
#   test_kill_soak    kill -9 `meft run` (and `meft resume`) at random moments, 24 times, into one
#                     database (45-75 s on two cores)
#   test_live_reader  a reader polls the database through ExperimentDb while `meft run` writes it;
#                     several programs open a fresh database at once (5-10 s)
# Both start the meft executable (its path compiled in as MEFT_EXE; $MEFT_EXE overrides it at run
# time) with MEFT_TRACE_COMMITS=1, which makes it report each committed transaction on stderr.
# test_kill_soak prints its seed; MEFT_SOAK_SEED=S replays it, MEFT_SOAK_TRIALS=N changes the count.
meft_add_test(test_kill_soak LABELS "store;reliability;slow" SOURCES test_kill_soak.cpp TIMEOUT 300)
meft_add_test(test_live_reader LABELS "store;reliability" SOURCES test_live_reader.cpp TIMEOUT 120)
foreach(t test_kill_soak test_live_reader)
  target_link_libraries(${t} PRIVATE SQLite::SQLite3)
  target_compile_definitions(${t} PRIVATE MEFT_EXE="$<TARGET_FILE:meft>")
  add_dependencies(${t} meft)
endforeach()
