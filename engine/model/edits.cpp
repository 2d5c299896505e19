#include "model/edits.h"

namespace meft {

const char* site_name(Site s) {
    switch (s) {
        case Site::Query: return "query";
        case Site::Key: return "key";
        case Site::Value: return "value";
        case Site::AttentionOutput: return "attention_output";
        case Site::FfnIn: return "ffn_in";
        case Site::FfnOut: return "ffn_out";
        case Site::FfnActivation: return "ffn_activation";
        case Site::AfterAttention: return "after_attention";
        case Site::AfterFfn: return "after_ffn";
        case Site::FfnParallel: return "ffn_parallel";
        case Site::KeyValuePrefix: return "key_value_prefix";
    }
    return "?";
}

}  // namespace meft
