// A configuration section (the VM, a disk, a NIC) declared once as a table of
// members. The one table drives the flags (a --disk/--net KEY=VALUE value, or
// the VM's own --cpus, --memory, ...), the JSON reader and writer of the VM
// description, and the flags' help, so a new member is one row. The JSON path sets members from
// JSON values directly: it never goes through flag text, so a JSON string may hold any character.
// Pure functions on values; any thread.
#ifndef MOTE_VMM_CONFIG_SECTION_H_
#define MOTE_VMM_CONFIG_SECTION_H_

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_join.h"
#include "nlohmann/json.hpp"

namespace mote {

// "a=1,b=\"x,y\"" -> {{"a", "1"}, {"b", "x,y"}}. A value in double quotes
// may hold commas, and \" and \\ for a quote and a backslash; "key" alone is
// key with an empty value.
using KeyValues = std::vector<std::pair<std::string, std::string>>;
absl::StatusOr<KeyValues> SplitKeyValues(std::string_view text);

// A member's JSON type. kSize: a string, or an integer (of MiB); kList: an
// array of sections, read by the member's own set_json.
enum class MemberType { kString, kBool, kInteger, kNumber, kSize, kList };

template <class Section>
struct SectionMember {
  const char* name;
  MemberType type;
  const char* syntax;  // the value in the flag's help: "FILE", "on|off", "1..16"
  // Sets the member from its text form (a bool is on or off, an integer is
  // decimal); the error says what is allowed.
  absl::Status (*set)(const std::string& text, Section& out);
  // Its JSON value for the writer; null: left out.
  nlohmann::json (*get)(const Section& in);
  // The VM's own members: the flag's help. Any member: what a JSON value of
  // the wrong type is told it should be ("an integer from 1 to 254"; null:
  // the type).
  const char* help = nullptr;
  const char* expected = nullptr;
  // kList only: the member from its JSON array (errors name `path`), and the
  // syntax of one item's flag value.
  absl::Status (*set_json)(const nlohmann::ordered_json& value, const std::string& path,
                           Section& out) = nullptr;
  std::string (*item_syntax)() = nullptr;
};

// What a section's flag says of itself: "path=FILE[,readonly=on|off]...".
template <class Section>
std::string SectionSyntax(const std::vector<SectionMember<Section>>& members) {
  std::string text;
  for (const auto& m : members) {
    text += text.empty() ? "" : "[,";
    text += std::string(m.name) + "=" + m.syntax;
    if (&m != &members.front()) text += "]";
  }
  return text;
}

template <class Section>
std::string MemberNames(const std::vector<SectionMember<Section>>& members) {
  std::vector<std::string> names;
  for (const auto& m : members) names.emplace_back(m.name);
  return absl::StrJoin(names, ", ");
}

template <class Section>
const SectionMember<Section>* FindSectionMember(const std::vector<SectionMember<Section>>& members,
                                                std::string_view name) {
  for (const auto& m : members) {
    if (name == m.name) return &m;
  }
  return nullptr;
}

// One flag value ("path=a.img,readonly=on") onto `section`. Errors name the
// flag and the item: "--disk cache=fast: expected writeback or none".
template <class Section>
absl::Status ApplyFlagText(const std::string& flag, const std::string& text,
                           const std::vector<SectionMember<Section>>& members, Section& section) {
  absl::StatusOr<KeyValues> items = SplitKeyValues(text);
  if (!items.ok())
    return absl::InvalidArgumentError(flag + " '" + text +
                                      "': " + std::string(items.status().message()));
  for (const auto& [key, value] : *items) {
    const SectionMember<Section>* m = FindSectionMember(members, key);
    if (m == nullptr) {
      return absl::InvalidArgumentError(flag + " '" + text + "': unknown option '" + key +
                                        "' (expected " + MemberNames(members) + ")");
    }
    if (absl::Status s = m->set(value, section); !s.ok()) {
      return absl::InvalidArgumentError(flag + " " + key + "=" + value + ": " +
                                        std::string(s.message()));
    }
  }
  return absl::OkStatus();
}

// The error of one JSON member: "PATH: MESSAGE".
absl::Status JsonMemberError(const std::string& path, const std::string& message);
// A JSON value in a member's text form, or the error naming `path` and what
// was `expected` (null: the type).
absl::StatusOr<std::string> JsonMemberText(const nlohmann::ordered_json& value, MemberType type,
                                           const std::string& path, const char* expected = nullptr);

// One JSON object of the VM description ("disks[1]") onto `section`. Errors
// name the member by its path; a bad value also says it as the flag would:
// "disks[1].cache: --disk cache=fast: expected writeback or none".
template <class Section>
absl::Status ApplyJsonObject(const std::string& flag, const nlohmann::ordered_json& object,
                             const std::string& path,
                             const std::vector<SectionMember<Section>>& members, Section& section) {
  if (!object.is_object()) return JsonMemberError(path, "expected an object");
  for (const auto& item : object.items()) {
    std::string member_path = path + "." + item.key();
    const SectionMember<Section>* m = FindSectionMember(members, item.key());
    if (m == nullptr) {
      return JsonMemberError(member_path,
                             "unknown member (expected one of: " + MemberNames(members) + ")");
    }
    absl::StatusOr<std::string> text =
        JsonMemberText(item.value(), m->type, member_path, m->expected);
    if (!text.ok()) return text.status();
    if (absl::Status s = m->set(*text, section); !s.ok()) {
      return JsonMemberError(
          member_path, flag + " " + item.key() + "=" + *text + ": " + std::string(s.message()));
    }
  }
  return absl::OkStatus();
}

template <class Section>
nlohmann::json SectionToJson(const Section& section,
                             const std::vector<SectionMember<Section>>& members) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& m : members) {
    nlohmann::json value = m.get(section);
    if (!value.is_null()) j[m.name] = std::move(value);
  }
  return j;
}

}  // namespace mote

#endif  // MOTE_VMM_CONFIG_SECTION_H_
