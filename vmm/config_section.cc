#include "vmm/config_section.h"

#include <cmath>
#include <cstdint>
#include <optional>

#include "absl/strings/str_format.h"

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

namespace {

// A JSON Schema "integer": any number without a fractional part.
std::optional<std::string> IntegerText(const nlohmann::ordered_json& value) {
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
  return std::nullopt;
}

}  // namespace

absl::StatusOr<std::string> JsonMemberText(const nlohmann::ordered_json& value, MemberType type,
                                           const std::string& path, const char* expected) {
  std::optional<std::string> text;
  const char* type_name = "a string";
  switch (type) {
    case MemberType::kString:
      if (value.is_string()) text = value.get<std::string>();
      break;
    case MemberType::kBool:
      type_name = "true or false";
      if (value.is_boolean()) text = value.get<bool>() ? "on" : "off";
      break;
    case MemberType::kInteger:
      type_name = "an integer";
      text = IntegerText(value);
      break;
    case MemberType::kNumber:
      type_name = "a number";
      if (value.is_number()) text = absl::StrFormat("%.17g", value.get<double>());
      break;
    case MemberType::kSize:
      type_name = "a size or an integer";
      text = value.is_string() ? std::optional(value.get<std::string>()) : IntegerText(value);
      break;
    case MemberType::kList:
      type_name = "an array";
      break;
  }
  if (!text)
    return JsonMemberError(path, std::string("expected ") + (expected ? expected : type_name));
  return *text;
}

}  // namespace mote
