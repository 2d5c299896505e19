# sources.cmake — every engine source file, one list per layer (paths relative to engine/), and
# the helper that turns a list into absolute paths. Included by engine/CMakeLists.txt (the layer
# libraries) and by the sanitizer and fuzzing builds (tests/asan.cmake, tests/fuzz/), which take
# parts of these lists, so a new source file is named once.

# core without build_info.cpp (which reads the generated git_commit.h of the engine's build)
set(MEFT_SOURCES_core_ops
  core/arena.cpp
  core/backend.cpp
  core/file_io.cpp
  core/host_memory.cpp
  core/thread_pool.cpp
  core/cpu_backend.cpp
  core/cpu_bf16_gemm.cpp
  core/cpu_philox.cpp
  core/cpu_vector_math.cpp
  core/shape_backend.cpp
  core/backend_select.cpp)
set(MEFT_SOURCES_core core/build_info.cpp ${MEFT_SOURCES_core_ops})
# The backbone families (model/arch/): config.json, presets, names. config.cpp needs them.
set(MEFT_SOURCES_model_config
  model/config.cpp
  model/arch/arch.cpp
  model/arch/config_json.cpp
  model/arch/bert.cpp
  model/arch/roberta.cpp
  model/arch/bart.cpp
  model/arch/opt.cpp)
set(MEFT_SOURCES_model
  ${MEFT_SOURCES_model_config}
  model/params.cpp
  model/safetensors.cpp
  model/edits.cpp
  model/transformer_layer.cpp
  model/layer_stack.cpp
  model/model.cpp
  model/backbone.cpp
  model/encoder.cpp
  model/encoder_decoder.cpp
  model/decoder.cpp
  model/sequence_classifier.cpp
  model/causal_lm.cpp
  model/masked_lm.cpp
  model/checkpoint.cpp)
set(MEFT_SOURCES_peft
  peft/method.cpp
  peft/method_edit.cpp
  peft/lora.cpp
  peft/dora.cpp
  peft/vera.cpp
  peft/adapter.cpp
  peft/ia3.cpp
  peft/prefix.cpp
  peft/meft_stack.cpp
  peft/method_knobs.cpp
  peft/peft_export.cpp)
set(MEFT_SOURCES_data
  data/toy_task.cpp
  data/jsonl_examples.cpp
  data/batching.cpp
  data/glue.cpp
  data/qa.cpp
  data/choice_prompt.cpp
  data/qa_lm_task.cpp
  data/qa_pair_task.cpp
  data/wordpiece.cpp
  data/bpe.cpp
  data/tokenizer.cpp
  data/text_task.cpp
  data/text_encoding.cpp
  data/text_corpus.cpp
  data/mlm_task.cpp)
set(MEFT_SOURCES_train
  train/optimizer.cpp
  train/schedule.cpp
  train/trainer.cpp
  train/non_finite.cpp
  train/metrics.cpp
  train/memory_plan.cpp
  train/memory_timeline.cpp)
set(MEFT_SOURCES_store
  store/experiment.cpp
  store/database.cpp
  store/run_table.cpp
  store/run_filter.cpp
  store/step_axis.cpp
  store/run_groups.cpp
  store/step_memory.cpp
  store/pareto.cpp
  store/merge.cpp
  store/saved_model.cpp
  store/model_discovery.cpp
  store/run_command.cpp)
set(MEFT_SOURCES_run
  run/run_setup.cpp
  run/run_recorder.cpp
  run/runner.cpp
  run/preflight.cpp
  run/run_outputs.cpp
  run/subprocess.cpp
  run/sweep.cpp
  run/slurm.cpp
  run/sweep_status.cpp
  run/sweep_submit.cpp)

# meft_engine_sources(OUT layer-or-list...): the absolute paths of the named lists
# (MEFT_SOURCES_<name>) and single files ("model/safetensors.cpp").
function(meft_engine_sources out)
  set(_files)
  foreach(item IN LISTS ARGN)
    if(DEFINED MEFT_SOURCES_${item})
      set(_items ${MEFT_SOURCES_${item}})
    else()
      set(_items ${item})
    endif()
    foreach(f IN LISTS _items)
      list(APPEND _files ${PROJECT_SOURCE_DIR}/engine/${f})
    endforeach()
  endforeach()
  set(${out} ${_files} PARENT_SCOPE)
endfunction()
