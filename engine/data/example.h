// example.h — one tokenized example and a task's splits.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace meft {

struct Example {
    std::vector<std::int32_t> input_ids;
    std::vector<std::int32_t> token_type_ids;   // empty = all zero
    std::vector<std::int32_t> attention_mask;   // empty = all one
    int label = -1;                             // class id (classification); -1 = unknown
    double target = 0.0;                        // value (regression)
};

struct TaskData {
    std::string name;
    int num_labels = 2;            // 1 = regression
    std::string metric_task;       // GLUE task whose metrics evaluation reports ("" = accuracy / pearson)
    std::vector<Example> train;
    std::vector<Example> dev;
    // A second evaluation split (MNLI: dev_mismatched). When present, metrics are reported as
    // "<metric>_<dev_name>" and "<metric>_<dev_extra_name>" (accuracy_matched, accuracy_mismatched).
    std::vector<Example> dev_extra;
    std::string dev_name, dev_extra_name;
    bool regression() const { return num_labels == 1; }
};

}  // namespace meft
