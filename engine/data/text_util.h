// text_util.h — small string helpers shared by the dataset loaders.
#pragma once
#include <cctype>
#include <string>
#include <vector>

namespace meft {

// Lower case, without '-', '_' and spaces: "SST-2" -> "sst2", "dev_matched" -> "devmatched".
inline std::string squash(const std::string& s) {
    std::string out;
    for (unsigned char c : s)
        if (c != '-' && c != '_' && c != ' ') out.push_back(static_cast<char>(std::tolower(c)));
    return out;
}

// "a, b, c" — for error messages listing what is allowed.
inline std::string join(const std::vector<std::string>& v, const char* sep = ", ") {
    std::string out;
    for (std::size_t i = 0; i < v.size(); ++i) out += (i ? sep : "") + v[i];
    return out;
}

}  // namespace meft
