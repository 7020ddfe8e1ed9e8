#include "vmm/qmp/qmp_stream.h"

#include "absl/strings/str_format.h"

namespace mote::qmp {
namespace {

// A buffer that held one big request gives its memory back once drained, so
// an idle client costs little.
constexpr size_t kKeepCapacity = 64 * 1024;

bool IsSpace(unsigned char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

// What QEMU's lexer rejects wherever it appears (and clients send to reset it).
bool IsLexicalError(unsigned char c) { return (c < 0x20 && !IsSpace(c)) || c >= 0xfe; }

// Ends a bare top-level token (number, keyword or garbage).
bool IsDelimiter(unsigned char c) {
  return IsSpace(c) || c == '{' || c == '}' || c == '[' || c == ']' || c == '"';
}

}  // namespace

void JsonStreamSplitter::Feed(std::string_view data) {
  if (too_large_) return;
  // Drop what earlier items consumed, once per Feed rather than per item.
  size_t keep_from = start_ == kNone ? pos_ : start_;
  buf_.erase(0, keep_from);
  pos_ -= keep_from;
  if (start_ != kNone) start_ -= keep_from;
  if (buf_.empty() && buf_.capacity() > kKeepCapacity) buf_ = std::string();
  buf_.append(data.data(), data.size());
}

void JsonStreamSplitter::Reset() {
  start_ = kNone;
  depth_ = 0;
  too_deep_ = false;
  scalar_ = false;
  in_string_ = false;
  escape_ = false;
}

JsonStreamSplitter::Item JsonStreamSplitter::TakeValue(size_t end) {
  Item item{Item::Kind::kValue, buf_.substr(start_, end - start_)};
  if (too_deep_) item = {Item::Kind::kError, absl::StrFormat("nesting deeper than %d", max_depth_)};
  Reset();
  return item;
}

JsonStreamSplitter::Item JsonStreamSplitter::TakeError(std::string why) {
  Reset();
  return {Item::Kind::kError, std::move(why)};
}

std::optional<JsonStreamSplitter::Item> JsonStreamSplitter::Next() {
  if (too_large_) return Item{Item::Kind::kTooLarge, {}};
  while (pos_ < buf_.size()) {
    const unsigned char c = static_cast<unsigned char>(buf_[pos_]);
    if (start_ != kNone && pos_ - start_ >= max_value_bytes_) {
      too_large_ = true;
      buf_ = std::string();  // the rest of this stream is never looked at
      pos_ = 0;
      Reset();
      return Item{Item::Kind::kTooLarge, {}};
    }
    if (skip_line_) {
      ++pos_;  // between items: nothing is kept
      if (c == '\n' || IsLexicalError(c)) skip_line_ = false;
      continue;
    }
    if (in_string_) {
      ++pos_;
      // JSON strings hold no raw control characters: the value is broken, and
      // a raw newline is where the client's next line starts.
      if (c < 0x20 || c >= 0xfe) {
        return TakeError(absl::StrFormat("invalid byte 0x%02x in a string", static_cast<int>(c)));
      }
      if (escape_) {
        escape_ = false;
      } else if (c == '\\') {
        escape_ = true;
      } else if (c == '"') {
        in_string_ = false;
        if (depth_ == 0) return TakeValue(pos_);
      }
      continue;
    }
    if (IsLexicalError(c)) {
      ++pos_;
      return TakeError(absl::StrFormat("%s byte 0x%02x", start_ == kNone ? "stray" : "invalid",
                                       static_cast<int>(c)));
    }
    if (scalar_) {
      if (IsDelimiter(c)) return TakeValue(pos_);  // the delimiter belongs to what follows
      ++pos_;
      continue;
    }
    if (start_ == kNone) {
      ++pos_;
      if (IsSpace(c)) continue;
      start_ = pos_ - 1;
      if (c == '{' || c == '[') {
        depth_ = 1;
        too_deep_ = depth_ > max_depth_;
      } else if (c == '"') {
        in_string_ = true;
      } else if (c == '}' || c == ']') {
        return TakeValue(pos_);  // a stray closer: the parser words the error
      } else {
        scalar_ = true;
      }
      continue;
    }
    // Inside an object or array. Brackets are only counted: a mismatch such
    // as {"a": 1] still ends the value, and the parser rejects it.
    ++pos_;
    if (c == '"') {
      in_string_ = true;
    } else if (c == '{' || c == '[') {
      if (++depth_ > max_depth_) too_deep_ = true;
    } else if (c == '}' || c == ']') {
      if (--depth_ == 0) return TakeValue(pos_);
    }
  }
  return std::nullopt;
}

}  // namespace mote::qmp
