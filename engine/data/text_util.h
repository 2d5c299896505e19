// text_util.h — small string helpers shared by the dataset loaders.
#pragma once
#include <cctype>
#include <string>
#include <string_view>
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

// Lines without their "\n" / "\r\n"; a last line without a newline counts, an empty tail does not.
inline std::vector<std::string_view> split_lines(std::string_view text) {
    std::vector<std::string_view> out;
    std::size_t start = 0;
    while (start < text.size()) {
        std::size_t nl = text.find('\n', start);
        if (nl == std::string_view::npos) nl = text.size();
        std::string_view line = text.substr(start, nl - start);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        out.push_back(line);
        start = nl + 1;
    }
    return out;
}

}  // namespace meft
