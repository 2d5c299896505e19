# targets.cmake — the libFuzzer targets, one per parser: built by tests/fuzz/CMakeLists.txt (fuzz
# build) and run for a few seconds each by tests/fuzz/fuzz_ctest.cmake (main build's ctest).
set(MEFT_FUZZ_TARGETS
  fuzz_experiment       # experiment files and --set overrides (store/experiment.h)
  fuzz_model_config     # config.json (model/config.h)
  fuzz_safetensors      # .safetensors headers, shard indexes (model/safetensors.h)
  fuzz_tokenizer_json   # tokenizer folders with tokenizer.json (data/tokenizer.h)
  fuzz_vocab_merges     # vocab.txt; vocab.json + merges.txt (data/wordpiece.h, data/bpe.h)
  fuzz_glue_tsv         # GLUE TSV splits, tokenized (data/glue.h, data/text_task.h)
  fuzz_qa_jsonl         # ARC/OpenBookQA/PIQA/SciQ files (data/qa.h)
  fuzz_predict_jsonl    # meft predict's JSON lines (data/jsonl_examples.h)
)
