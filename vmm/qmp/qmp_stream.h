// JsonStreamSplitter: cuts the byte stream a QMP client sends into top-level
// JSON texts, without parsing them (nlohmann parses each text afterwards).
// QMP input is a stream of values that need not be one per line, so the
// splitter tracks strings, escapes and nesting depth the way QEMU's
// json-streamer does. It bounds memory: a value longer than the limit is
// reported as kTooLarge (the caller drops the client) instead of buffered.
//
// Resynchronisation after bad input follows QEMU's lexer: an ASCII control
// character other than \t \r \n, or a 0xFE/0xFF byte, is a lexical error
// anywhere (also inside a string, where a raw newline is one too); it ends
// the value in progress with one kError and the splitter starts afresh after
// that byte. So a client can always force a known-good state by sending such
// a byte, and an unterminated string heals at the end of its line.
//
// Owned by one QMP client connection; thread-compatible.
#ifndef MOTE_VMM_QMP_QMP_STREAM_H_
#define MOTE_VMM_QMP_QMP_STREAM_H_

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace mote::qmp {

class JsonStreamSplitter {
 public:
  struct Item {
    enum class Kind {
      kValue,     // `text` is one complete top-level JSON text (maybe invalid inside)
      kError,     // `text` says why the bytes since the last item are no JSON
      kTooLarge,  // a value outgrew the limit; the stream is abandoned
    };
    Kind kind;
    std::string text;
  };

  // QEMU's limit (MAX_NESTING in json-streamer.c) is 1024 as well.
  static constexpr size_t kDefaultMaxDepth = 1024;

  explicit JsonStreamSplitter(size_t max_value_bytes, size_t max_depth = kDefaultMaxDepth)
      : max_value_bytes_(max_value_bytes), max_depth_(max_depth) {}

  // Appends received bytes. After kTooLarge they are dropped.
  void Feed(std::string_view data);
  // The next item, or nullopt until more bytes are fed. kTooLarge repeats.
  std::optional<Item> Next();
  // Between items: drops what is left of the current line (up to and
  // including the next newline, or a byte that is a lexical error). For
  // after a value that did not parse: "this is not json" is then one error,
  // not four, and a line-by-line client gets one answer per line.
  void SkipLine() { skip_line_ = true; }
  // Bytes held (consumed ones are dropped at the next Feed).
  size_t buffered() const { return buf_.size(); }
  // True while part of a value has been received (e.g. at end of stream).
  bool in_value() const { return start_ != kNone; }

 private:
  static constexpr size_t kNone = static_cast<size_t>(-1);

  Item TakeValue(size_t end);
  Item TakeError(std::string why);
  void Reset();

  const size_t max_value_bytes_;
  const size_t max_depth_;
  std::string buf_;
  size_t pos_ = 0;         // next byte to scan
  size_t start_ = kNone;   // first byte of the value in progress
  size_t depth_ = 0;       // open { and [ in the value in progress
  bool too_deep_ = false;  // depth_ went past max_depth_ in this value
  bool scalar_ = false;    // the value in progress is a bare top-level token
  bool in_string_ = false;
  bool escape_ = false;  // the previous byte in a string was a backslash
  bool too_large_ = false;
  bool skip_line_ = false;
};

}  // namespace mote::qmp

#endif  // MOTE_VMM_QMP_QMP_STREAM_H_
