// text_example.h — examples as the dataset files give them, before tokenization.
#pragma once
#include <optional>
#include <string>
#include <vector>

namespace meft {

// One GLUE-style example: a sentence or a pair, and its label (class id) or score (regression).
struct TextExample {
    std::string text_a;
    std::optional<std::string> text_b;
    int label = -1;          // class id; -1 when the split has no labels (test)
    double target = 0.0;     // regression score (STS-B)
    std::string id;          // the row's id when the file has one, else its line number
};

// One multiple-choice QA item (OpenBookQA, ARC, PIQA, SciQ).
struct ChoiceExample {
    std::string context;                  // supporting text (SciQ), else empty
    std::string question;
    std::vector<std::string> choices;
    int answer = -1;                      // index into choices; -1 when unlabelled
    std::string id;
};

}  // namespace meft
