#include "vmm/ctl.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>

#include "nlohmann/json.hpp"
#include "vmm/base/fd.h"

namespace mote {
namespace {

using nlohmann::json;

int Fail(const std::string& message) {
  std::fprintf(stderr, "mote ctl: error: %s\n", message.c_str());
  return 2;
}

// Reads QMP messages (one JSON value per line) from a blocking socket.
class QmpConnection {
 public:
  explicit QmpConnection(FileDescriptor fd) : fd_(std::move(fd)) {}

  // The next message; nullopt on EOF, timeout or garbage (`error_` says which).
  std::optional<json> Next(int timeout_ms) {
    while (true) {
      size_t nl = buffer_.find('\n');
      if (nl != std::string::npos) {
        std::string line = buffer_.substr(0, nl);
        buffer_.erase(0, nl + 1);
        if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
        try {
          return json::parse(line);
        } catch (const json::exception& e) {
          error_ = std::string("mote sent something that is not JSON: ") + e.what();
          return std::nullopt;
        }
      }
      pollfd p{fd_.get(), POLLIN, 0};
      int ready = poll(&p, 1, timeout_ms);
      if (ready == 0) {
        error_ = "no answer from mote in time";
        return std::nullopt;
      }
      if (ready < 0 && errno == EINTR) continue;
      char chunk[65536];
      ssize_t n = ready < 0 ? -1 : read(fd_.get(), chunk, sizeof(chunk));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        error_ =
            n == 0 ? "mote closed the connection" : std::string("read: ") + std::strerror(errno);
        return std::nullopt;
      }
      buffer_.append(chunk, static_cast<size_t>(n));
    }
  }

  bool Send(const json& message) {
    std::string text = message.dump() + "\n";
    size_t done = 0;
    while (done < text.size()) {
      ssize_t n = send(fd_.get(), text.data() + done, text.size() - done, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        error_ = std::string("write: ") + std::strerror(errno);
        return false;
      }
      done += static_cast<size_t>(n);
    }
    return true;
  }

  // The reply to the last command, skipping events on the way.
  std::optional<json> Reply(int timeout_ms) {
    while (std::optional<json> m = Next(timeout_ms)) {
      if (m->is_object() && (m->contains("return") || m->contains("error"))) return m;
    }
    return std::nullopt;
  }

  const std::string& error() const { return error_; }

 private:
  FileDescriptor fd_;
  std::string buffer_;
  std::string error_;
};

std::optional<QmpConnection> Connect(const std::string& path, std::string* error) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) {
    *error = path + ": socket path too long";
    return std::nullopt;
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  FileDescriptor fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.ok() || connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    *error =
        path + ": " + std::strerror(errno) + " (is mote running with --api-socket " + path + "?)";
    return std::nullopt;
  }
  return QmpConnection(std::move(fd));
}

}  // namespace

void AddCtlFlags(CLI::App* ctl, CtlRequest& request) {
  ctl->add_option("socket", request.socket, "mote's --api-socket path")->required();
  ctl->add_option("command", request.command,
                  "A QMP command, e.g. query-status, stop, cont, quit; or `snapshot DIR`");
  ctl->add_option("arguments", request.arguments,
                  "The command's arguments as a JSON object (snapshot: the directory)");
  ctl->add_flag("--events", request.events, "Print every event as one JSON line until mote exits");
  ctl->add_flag("--incremental", request.incremental,
                "snapshot: write only the pages written since the VM's last snapshot");
  ctl->add_option("--timeout", request.timeout_seconds, "Seconds to wait for the reply")
      ->capture_default_str();
}

int RunCtl(const CtlRequest& request) {
  if (request.events == !request.command.empty()) {
    return Fail("give either a COMMAND or --events");
  }
  json arguments = json::object();
  std::string command = request.command;
  if (command == "snapshot") {
    // Shorthand for QEMU's migrate to a file: `mote ctl SOCKET snapshot DIR`.
    if (request.arguments.empty()) return Fail("snapshot needs a directory: snapshot DIR");
    command = "migrate";
    arguments = {{"uri", "file:" + request.arguments}};
    if (request.incremental) arguments["x-mote-incremental"] = true;
  } else if (!request.arguments.empty()) {
    try {
      arguments = json::parse(request.arguments);
    } catch (const json::exception& e) {
      return Fail("arguments '" + request.arguments + "': not JSON (" + e.what() + ")");
    }
    if (!arguments.is_object()) return Fail("arguments must be a JSON object");
  }
  std::string error;
  std::optional<QmpConnection> qmp = Connect(request.socket, &error);
  if (!qmp) return Fail(error);
  int timeout_ms = static_cast<int>(request.timeout_seconds * 1000);
  std::optional<json> greeting = qmp->Next(timeout_ms);
  if (!greeting || !greeting->contains("QMP")) {
    return Fail("no QMP greeting on " + request.socket + ": " + qmp->error());
  }
  if (!qmp->Send({{"execute", "qmp_capabilities"}})) return Fail(qmp->error());
  std::optional<json> negotiated = qmp->Reply(timeout_ms);
  if (!negotiated || !negotiated->contains("return"))
    return Fail("capabilities negotiation failed");

  if (request.events) {
    // Until mote goes away: that is how the stream ends.
    while (std::optional<json> m = qmp->Next(-1)) {
      if (m->contains("event")) {
        std::printf("%s\n", m->dump().c_str());
        std::fflush(stdout);
      }
    }
    return 0;
  }
  json message = {{"execute", command}};
  if (!arguments.empty()) message["arguments"] = arguments;
  if (!qmp->Send(message)) return Fail(qmp->error());
  std::optional<json> reply = qmp->Reply(timeout_ms);
  if (!reply) return Fail(qmp->error());
  if (reply->contains("error")) {
    const json& e = (*reply)["error"];
    std::fprintf(stderr, "mote ctl: %s: %s\n", e.value("class", "GenericError").c_str(),
                 e.value("desc", "").c_str());
    return 1;
  }
  std::printf("%s\n", (*reply)["return"].dump().c_str());
  return 0;
}

}  // namespace mote
