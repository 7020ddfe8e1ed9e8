#include "vmm/config_section.h"

#include <cmath>
#include <cstdint>

namespace mote {

absl::StatusOr<KeyValues> SplitKeyValues(std::string_view text) {
  KeyValues items;
  size_t i = 0;
  while (true) {
    size_t end = text.find_first_of("=,", i);
    std::string key(text.substr(i, end == std::string_view::npos ? end : end - i));
    std::string value;
    i = end;
    if (i != std::string_view::npos && text[i] == '=') {
      ++i;
      if (i < text.size() && text[i] == '"') {
        for (++i;; ++i) {  // a quoted value, to its closing quote
          if (i >= text.size()) return absl::InvalidArgumentError("a quote is not closed");
          if (text[i] == '"') break;
          if (text[i] == '\\' && i + 1 < text.size()) ++i;
          value += text[i];
        }
        ++i;
        if (i < text.size() && text[i] != ',') {
          return absl::InvalidArgumentError("'" + key + "': text after the closing quote");
        }
      } else {
        end = text.find(',', i);
        value = std::string(text.substr(i, end == std::string_view::npos ? end : end - i));
        i = end;
      }
    }
    if (key.empty()) return absl::InvalidArgumentError("an item without a name");
    items.emplace_back(std::move(key), std::move(value));
    if (i == std::string_view::npos || i >= text.size()) return items;
    ++i;  // the comma
  }
}

absl::Status JsonMemberError(const std::string& path, const std::string& message) {
  return absl::InvalidArgumentError(path + ": " + message);
}

absl::StatusOr<std::string> JsonMemberText(const nlohmann::ordered_json& value, MemberType type,
                                           const std::string& path) {
  switch (type) {
    case MemberType::kString:
      if (!value.is_string()) return JsonMemberError(path, "expected a string");
      return value.get<std::string>();
    case MemberType::kBool:
      if (!value.is_boolean()) return JsonMemberError(path, "expected true or false");
      return std::string(value.get<bool>() ? "on" : "off");
    case MemberType::kInteger:
      // A JSON Schema "integer": any number without a fractional part.
      if (value.is_number_integer()) {
        return value.is_number_unsigned() ? std::to_string(value.get<uint64_t>())
                                          : std::to_string(value.get<int64_t>());
      }
      if (value.is_number_float()) {
        double d = value.get<double>();
        if (std::trunc(d) == d && std::fabs(d) < 0x1p53) {
          return std::to_string(static_cast<int64_t>(d));
        }
      }
      return JsonMemberError(path, "expected an integer");
  }
  return JsonMemberError(path, "unknown member type");
}

}  // namespace mote
