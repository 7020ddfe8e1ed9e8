// libmote's error handling: a call either succeeds or says why in one line.
// No exception crosses the library's boundary, and these headers need only
// the C++17 standard library (no Abseil, fmt or nlohmann types).
// Value types; thread-compatible.
#ifndef MOTE_INCLUDE_MOTE_RESULT_H_
#define MOTE_INCLUDE_MOTE_RESULT_H_

#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace libmote {

// Why a call failed, for a person: "disks[0].path: missing (required)".
struct Error {
  std::string message;
  // The exit code `mote run` gives this failure: a restore refused for one
  // of its reasons (README: "Exit codes"); 0 for the generic error (2).
  int exit_code = 0;
};

// Success, or an Error.
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Error error) : error_(std::move(error)) {}  // NOLINT: implicit, like a return value

  bool ok() const { return !error_.has_value(); }
  explicit operator bool() const { return ok(); }
  // The reason; empty when ok().
  const std::string& message() const {
    static const std::string kNone;
    return error_.has_value() ? error_->message : kNone;
  }
  int exit_code() const { return error_.has_value() ? error_->exit_code : 0; }

 private:
  std::optional<Error> error_;
};

// A value, or an Error (std::expected arrives only in C++23).
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : state_(std::move(value)) {}      // NOLINT: implicit on purpose
  Result(Error error) : state_(std::move(error)) {}  // NOLINT

  bool ok() const { return std::holds_alternative<T>(state_); }
  explicit operator bool() const { return ok(); }
  // The value; only when ok().
  T& value() & { return std::get<T>(state_); }
  const T& value() const& { return std::get<T>(state_); }
  T&& value() && { return std::get<T>(std::move(state_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  // The reason; empty when ok().
  const std::string& message() const {
    static const std::string kNone;
    return ok() ? kNone : std::get<Error>(state_).message;
  }
  Status status() const { return ok() ? Status() : Status(std::get<Error>(state_)); }
  int exit_code() const { return ok() ? 0 : std::get<Error>(state_).exit_code; }

 private:
  std::variant<T, Error> state_;
};

}  // namespace libmote

#endif  // MOTE_INCLUDE_MOTE_RESULT_H_
