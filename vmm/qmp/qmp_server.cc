#include "vmm/qmp/qmp_server.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <optional>
#include <string_view>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "vmm/base/status_macros.h"
#include "vmm/qmp/qmp_stream.h"

namespace mote::qmp {
namespace {

using nlohmann::json;

constexpr size_t kReadChunk = 64 * 1024;
// A client with this much unsent output gets no further request handled
// until it reads: a client that only writes cannot make mote buffer replies
// without bound (its requests wait in the kernel's socket buffer instead).
constexpr size_t kPauseOutputBytes = 64 * 1024;
// Fairness: one wake-up of the listener takes at most this many connections.
constexpr int kMaxAcceptsPerWakeup = 64;
// A JSON parse error quotes the input; a reply needs no more than this of it.
constexpr size_t kMaxParseErrorDetail = 256;

json ErrorMessage(const std::string& error_class, const std::string& desc) {
  return {{"error", {{"class", error_class}, {"desc", desc}}}};
}

// QEMU ends every message with CRLF. Replacing invalid UTF-8 (a dispatcher
// may pass on bytes from the guest) keeps dump() from throwing.
std::string Serialize(const json& message) {
  return message.dump(-1, ' ', false, json::error_handler_t::replace) + "\r\n";
}

// nlohmann words it "[json.exception.parse_error.101] parse error at line 1,
// column 1: syntax error ..."; QEMU's replies read "JSON parse error, ...".
std::string ParseErrorDetail(const json::exception& e) {
  std::string_view what = e.what();
  if (size_t bracket = what.find("] "); bracket != std::string_view::npos) {
    what.remove_prefix(bracket + 2);
  }
  if (what.substr(0, 12) == "parse error ") what.remove_prefix(12);
  if (what.size() > kMaxParseErrorDetail) {
    return std::string(what.substr(0, kMaxParseErrorDetail)) + "...";
  }
  return std::string(what);
}

// A socket file without a listener is what a killed mote leaves behind:
// replace it. One with a listener belongs to a running mote: refuse.
absl::Status RemoveStaleSocket(const std::string& path, const sockaddr_un& addr) {
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return ErrnoToStatus(errno, "stat " + path);
  }
  if (!S_ISSOCK(st.st_mode)) {
    return absl::FailedPreconditionError(path + ": exists and is not a socket");
  }
  FileDescriptor probe(socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!probe.ok()) return ErrnoToStatus(errno, "socket");
  // EAGAIN: a listener whose backlog is full is alive all the same.
  if (connect(probe.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0 ||
      errno == EAGAIN || errno == EINPROGRESS) {
    return absl::AlreadyExistsError(path + ": in use by a running mote");
  }
  if (errno != ECONNREFUSED) return ErrnoToStatus(errno, "connect " + path);
  if (unlink(path.c_str()) != 0 && errno != ENOENT) {
    return ErrnoToStatus(errno, "unlink stale socket " + path);
  }
  spdlog::info("{}: replaced a stale socket file", path);
  return absl::OkStatus();
}

// Who may connect: the socket file's mode and group.
struct Access {
  mode_t mode;
  gid_t group;  // -1: leave it
};

// A listening socket at `addr`'s path, with `access`, or nothing there.
// Errors name `shown`, the path the user asked for (not a temporary name).
absl::StatusOr<FileDescriptor> BindAndListen(const std::string& path, const sockaddr_un& addr,
                                             const std::string& shown, Access access) {
  FileDescriptor fd(socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.ok()) return ErrnoToStatus(errno, "socket");
  // bind() gives the new file the socket inode's mode less the umask: 0600
  // first, so there is no moment when other users may connect; the group,
  // then the mode asked for (exact whatever the umask).
  (void)fchmod(fd.get(), 0600);
  if (bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    return ErrnoToStatus(errno, "bind " + shown);
  }
  if (access.group != static_cast<gid_t>(-1) &&
      fchownat(AT_FDCWD, path.c_str(), static_cast<uid_t>(-1), access.group, AT_SYMLINK_NOFOLLOW) !=
          0) {
    int err = errno;
    unlink(path.c_str());
    return ErrnoToStatus(err, absl::StrFormat("chown %s to group %d", shown, access.group));
  }
  if (chmod(path.c_str(), access.mode) != 0) {
    int err = errno;
    unlink(path.c_str());
    return ErrnoToStatus(err, "chmod " + shown);
  }
  if (listen(fd.get(), SOMAXCONN) != 0) {
    int err = errno;
    unlink(path.c_str());
    return ErrnoToStatus(err, "listen " + shown);
  }
  return fd;
}

absl::StatusOr<FileDescriptor> Listen(const std::string& path, Access access) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty()) return absl::InvalidArgumentError("the QMP socket path is empty");
  if (path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: a socket path has at most %d bytes", path, sizeof(addr.sun_path) - 1));
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  MOTE_RETURN_IF_ERROR(RemoveStaleSocket(path, addr));

  // The file appears only once the socket listens, so a client that sees it
  // can connect at once: bind a temporary name in the same directory, then
  // link it to `path` (which fails if another mote took `path` meanwhile).
  size_t slash = path.rfind('/');
  std::string temp = (slash == std::string::npos ? "" : path.substr(0, slash + 1)) +
                     absl::StrFormat(".mote-qmp-%d-%p", getpid(), static_cast<const void*>(&addr));
  if (temp.size() >= sizeof(addr.sun_path))
    return BindAndListen(path, addr, path, access);  // no room: bind it directly
  sockaddr_un temp_addr{};
  temp_addr.sun_family = AF_UNIX;
  std::memcpy(temp_addr.sun_path, temp.data(), temp.size());
  MOTE_ASSIGN_OR_RETURN(FileDescriptor fd, BindAndListen(temp, temp_addr, path, access));
  int linked = link(temp.c_str(), path.c_str());
  int err = errno;
  unlink(temp.c_str());
  if (linked != 0) {
    if (err == EEXIST) return absl::AlreadyExistsError(path + ": in use by a running mote");
    // A file system without hard links: bind the path itself.
    if (err == EPERM || err == EOPNOTSUPP) return BindAndListen(path, addr, path, access);
    return ErrnoToStatus(err, "link " + path);
  }
  return fd;
}

}  // namespace

struct QmpServer::Client {
  Client(uint64_t id, FileDescriptor fd, size_t max_request_bytes)
      : id(id), fd(std::move(fd)), input(max_request_bytes) {}
  size_t pending() const { return output.size() - sent; }

  const uint64_t id;
  FileDescriptor fd;
  Peer peer;  // SO_PEERCRED at accept
  JsonStreamSplitter input;
  std::string output;  // output[sent..] is not written yet
  size_t sent = 0;
  uint32_t interest = EPOLLIN;  // what the loop watches the fd for
  bool negotiated = false;      // qmp_capabilities done: commands and events
  bool input_ended = false;     // the client shut down its writing side
  bool backlog = false;         // requests wait until the client reads replies
  bool dead = false;            // to be closed by Reap() at the end of this callback
};

absl::StatusOr<std::unique_ptr<QmpServer>> QmpServer::Create(EventLoop* loop,
                                                             QmpDispatcher* dispatcher,
                                                             Options options) {
  MOTE_ASSIGN_OR_RETURN(FileDescriptor listener,
                        Listen(options.path, {options.mode, options.group}));
  std::unique_ptr<QmpServer> server(
      new QmpServer(loop, dispatcher, std::move(options), std::move(listener)));
  // From here the destructor removes the file if anything fails.
  struct stat st;
  if (stat(server->options_.path.c_str(), &st) == 0) {
    server->socket_dev_ = st.st_dev;
    server->socket_ino_ = st.st_ino;
  }
  QmpServer* s = server.get();
  MOTE_RETURN_IF_ERROR(loop->Add(s->listener_.get(), EPOLLIN, [s](uint32_t) { s->OnAccept(); }));
  spdlog::debug("QMP: listening on {}", s->options_.path);
  return server;
}

QmpServer::QmpServer(EventLoop* loop, QmpDispatcher* dispatcher, Options options,
                     FileDescriptor listener)
    : loop_(loop),
      dispatcher_(dispatcher),
      options_(std::move(options)),
      listener_(std::move(listener)),
      spare_fd_(open("/dev/null", O_RDONLY | O_CLOEXEC)),
      read_buffer_(kReadChunk, '\0') {}

QmpServer::~QmpServer() {
  DeliverEvents(/*from_posted_work=*/false);
  for (auto& [id, client] : clients_) {
    if (!client->dead) WriteOutput(*client);
    loop_->Remove(client->fd.get()).IgnoreError();
  }
  clients_.clear();
  loop_->Remove(listener_.get()).IgnoreError();  // fails harmlessly if Create failed before Add
  listener_.Reset();
  struct stat st;
  if (lstat(options_.path.c_str(), &st) == 0 && st.st_dev == socket_dev_ &&
      st.st_ino == socket_ino_) {
    unlink(options_.path.c_str());
  }
}

Peer Peer::Self() { return {getpid(), getuid(), getgid()}; }

void QmpServer::OnAccept() {
  for (int i = 0; i < kMaxAcceptsPerWakeup; ++i) {
    FileDescriptor conn(accept4(listener_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!conn.ok()) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      if ((errno == EMFILE || errno == ENFILE) && spare_fd_.ok()) {
        // Level-triggered epoll would report the pending connection forever:
        // take it with the spare descriptor and drop it.
        MOTE_LOG_LIMITED(log_limiter_, spdlog::level::warn,
                         "{}: out of file descriptors, QMP connection refused", options_.path);
        spare_fd_.Reset();
        FileDescriptor dropped(accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
        dropped.Reset();
        spare_fd_.Reset(open("/dev/null", O_RDONLY | O_CLOEXEC));
        continue;
      }
      MOTE_LOG_LIMITED(log_limiter_, spdlog::level::warn, "{}: accept: {}", options_.path,
                       std::strerror(errno));
      break;
    }
    if (clients_.size() >= options_.max_clients) {
      MOTE_LOG_LIMITED(log_limiter_, spdlog::level::warn,
                       "{}: already {} QMP clients, connection refused", options_.path,
                       clients_.size());
      // Say why before closing: a client sees this line, then end of file.
      std::string line = Serialize(
          ErrorMessage("GenericError",
                       absl::StrFormat("too many QMP clients (at most %d)", options_.max_clients)));
      (void)!send(conn.get(), line.data(), line.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      continue;
    }
    AddClient(std::move(conn));
  }
  Reap();
}

void QmpServer::AddClient(FileDescriptor fd) {
  uint64_t id = next_client_id_++;
  auto owned = std::make_unique<Client>(id, std::move(fd), options_.max_request_bytes);
  Client& client = *owned;
  ucred cred{};
  socklen_t cred_size = sizeof(cred);
  if (getsockopt(client.fd.get(), SOL_SOCKET, SO_PEERCRED, &cred, &cred_size) == 0) {
    client.peer = {cred.pid, cred.uid, cred.gid};
  }
  absl::Status added = loop_->Add(client.fd.get(), EPOLLIN,
                                  [this, id](uint32_t events) { OnClientEvent(id, events); });
  if (!added.ok()) {
    MOTE_LOG_LIMITED(log_limiter_, spdlog::level::warn, "QMP client: {}", added.ToString());
    return;
  }
  clients_.emplace(id, std::move(owned));
  client_count_.store(clients_.size());
  MOTE_LOG_LIMITED(debug_limiter_, spdlog::level::debug, "QMP client {} connected", id);
  Send(client, {{"QMP", {{"version", options_.version}, {"capabilities", json::array()}}}});
  WriteOutput(client);
  UpdateInterest(client);
}

void QmpServer::OnClientEvent(uint64_t id, uint32_t events) {
  // Look the client up by id, not by fd: the loop may still report events of
  // a closed client whose fd number a new client has taken.
  auto it = clients_.find(id);
  if (it == clients_.end() || it->second->dead) return;
  Client& client = *it->second;
  // EPOLLHUP/EPOLLERR come whatever was asked for; the read or write below
  // finds out what they mean, so a stale report does no harm.
  constexpr uint32_t kTrouble = EPOLLERR | EPOLLHUP;
  if ((events & (EPOLLOUT | kTrouble)) != 0 && client.pending() > 0) WriteOutput(client);
  if (!client.dead && (client.interest & EPOLLIN) != 0 && (events & (EPOLLIN | kTrouble)) != 0) {
    ReadInput(client);
  }
  while (!client.dead) {
    ProcessInput(client);
    WriteOutput(client);
    // Writing may have made room for the requests still waiting.
    if (!client.backlog || client.pending() >= kPauseOutputBytes) break;
  }
  if (!client.dead) {
    if (client.input_ended && !client.backlog && client.pending() == 0) {
      client.dead = true;  // everything it sent is answered
    } else {
      UpdateInterest(client);
    }
  }
  Reap();
}

void QmpServer::ReadInput(Client& client) {
  ssize_t n = recv(client.fd.get(), read_buffer_.data(), read_buffer_.size(), MSG_DONTWAIT);
  if (n > 0) {
    client.input.Feed(std::string_view(read_buffer_.data(), static_cast<size_t>(n)));
  } else if (n == 0) {
    // Requests already received are still answered (a client may shut down
    // its side after writing); a partial one is dropped.
    client.input_ended = true;
    if (client.input.in_value()) {
      MOTE_LOG_LIMITED(debug_limiter_, spdlog::level::debug,
                       "QMP client {} hung up in the middle of a request", client.id);
    }
  } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
    client.dead = true;  // ECONNRESET and the like
  }
}

void QmpServer::ProcessInput(Client& client) {
  client.backlog = false;
  while (!client.dead) {
    if (client.pending() >= kPauseOutputBytes) {
      client.backlog = true;
      return;
    }
    std::optional<JsonStreamSplitter::Item> item = client.input.Next();
    if (!item.has_value()) return;
    switch (item->kind) {
      case JsonStreamSplitter::Item::Kind::kValue:
        HandleText(client, item->text);
        break;
      case JsonStreamSplitter::Item::Kind::kError:
        Send(client, ErrorMessage("GenericError", "JSON parse error, " + item->text));
        break;
      case JsonStreamSplitter::Item::Kind::kTooLarge:
        MOTE_LOG_LIMITED(log_limiter_, spdlog::level::warn,
                         "QMP client {}: request larger than {} bytes, disconnected", client.id,
                         options_.max_request_bytes);
        Send(client,
             ErrorMessage("GenericError", absl::StrFormat("request too large (more than %d bytes)",
                                                          options_.max_request_bytes)));
        WriteOutput(client);  // best effort: the connection goes either way
        client.dead = true;
        return;
    }
  }
}

void QmpServer::HandleText(Client& client, const std::string& text) {
  json request;
  try {
    request = json::parse(text);
  } catch (const json::exception& e) {
    Send(client, ErrorMessage("GenericError", "JSON parse error, " + ParseErrorDetail(e)));
    // Resynchronise at the next line: QEMU would answer each further bare
    // word of "this is not json" too, but one answer per line is what a
    // line-by-line client (socat, scripts) can follow.
    client.input.SkipLine();
    return;
  }
  json reply = HandleRequest(client, request);
  // As QEMU, echo the id whenever the request carried one, errors included.
  if (request.is_object()) {
    if (auto id = request.find("id"); id != request.end()) reply["id"] = *id;
  }
  Send(client, reply);
}

json QmpServer::HandleRequest(Client& client, const json& request) {
  // The checks and their wording are QEMU's (qapi/qmp-dispatch.c). mote
  // offers no "oob" capability, so "exec-oob" is an unexpected member there too.
  if (!request.is_object()) return ErrorMessage("GenericError", "QMP input must be a JSON object");
  for (const auto& [key, value] : request.items()) {
    if (key == "execute") {
      if (!value.is_string()) {
        return ErrorMessage("GenericError", "QMP input member 'execute' must be a string");
      }
    } else if (key == "arguments") {
      if (!value.is_object()) {
        return ErrorMessage("GenericError", "QMP input member 'arguments' must be an object");
      }
    } else if (key != "id") {
      return ErrorMessage("GenericError",
                          absl::StrFormat("QMP input member '%s' is unexpected", key));
    }
  }
  auto execute = request.find("execute");
  if (execute == request.end()) {
    return ErrorMessage("GenericError", "QMP input lacks member 'execute'");
  }
  const std::string& command = execute->get_ref<const std::string&>();
  json arguments = request.value("arguments", json::object());

  if (!client.negotiated) {
    if (command != "qmp_capabilities") {
      return ErrorMessage("CommandNotFound",
                          "Expecting capabilities negotiation with 'qmp_capabilities'");
    }
    return Negotiate(client, arguments);
  }
  if (command == "qmp_capabilities") {
    return ErrorMessage("CommandNotFound",
                        "Capabilities negotiation is already complete, command ignored");
  }

  QmpResult result;
  try {
    result = dispatcher_->Execute(command, arguments, client.peer);
  } catch (const std::exception& e) {
    // A dispatcher reading arguments with json::at() may throw on bad input;
    // that is the client's error, not a reason to die.
    MOTE_LOG_LIMITED(log_limiter_, spdlog::level::warn, "QMP command {}: exception: {}", command,
                     e.what());
    result = QmpError{"GenericError", std::string(e.what())};
  }
  // Events the command raised (STOP for `stop`) go out before its reply, as in QEMU.
  DeliverEvents(/*from_posted_work=*/false);
  if (const QmpError* error = std::get_if<QmpError>(&result)) {
    return ErrorMessage(error->error_class, error->desc);
  }
  return {{"return", std::move(std::get<json>(result))}};
}

json QmpServer::Negotiate(Client& client, const json& arguments) {
  for (const auto& [key, value] : arguments.items()) {
    if (key != "enable") {
      return ErrorMessage("GenericError", absl::StrFormat("Parameter '%s' is unexpected", key));
    }
  }
  if (auto enable = arguments.find("enable"); enable != arguments.end()) {
    if (!enable->is_array()) {
      return ErrorMessage("GenericError", "Invalid parameter type for 'enable', expected: array");
    }
    // The greeting offers no capability, so any request is one not available.
    if (!enable->empty()) {
      const json& first = enable->front();
      std::string name = first.is_string() ? first.get<std::string>() : first.dump();
      return ErrorMessage("GenericError", absl::StrFormat("Capability '%s' not available", name));
    }
  }
  client.negotiated = true;
  return {{"return", json::object()}};
}

void QmpServer::Send(Client& client, const json& message) { Queue(client, Serialize(message)); }

void QmpServer::Queue(Client& client, const std::string& line) {
  if (client.dead) return;
  if (client.pending() + line.size() > options_.max_output_bytes) {
    MOTE_LOG_LIMITED(log_limiter_, spdlog::level::warn,
                     "QMP client {} does not read ({} bytes unsent), disconnected", client.id,
                     client.pending());
    client.dead = true;
    return;
  }
  // Drop the written prefix once it is the bigger part, not on every write.
  if (client.sent > 0 && client.sent >= client.output.size() / 2) {
    client.output.erase(0, client.sent);
    client.sent = 0;
  }
  client.output += line;
}

void QmpServer::WriteOutput(Client& client) {
  while (!client.dead && client.pending() > 0) {
    ssize_t n = send(client.fd.get(), client.output.data() + client.sent, client.pending(),
                     MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      client.sent += static_cast<size_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      return;
    } else {
      client.dead = true;  // EPIPE, ECONNRESET: gone mid-reply
    }
  }
  if (client.pending() == 0) {
    client.sent = 0;
    if (client.output.capacity() > kPauseOutputBytes) {
      client.output = std::string();
    } else {
      client.output.clear();
    }
  }
}

void QmpServer::UpdateInterest(Client& client) {
  if (client.dead) return;
  uint32_t want = 0;
  if (!client.input_ended && client.pending() < kPauseOutputBytes) want |= EPOLLIN;
  // Also while requests wait or the client has hung up: a writable socket
  // reports at once, and OnClientEvent then handles them or closes.
  if (client.pending() > 0 || client.backlog || client.input_ended) want |= EPOLLOUT;
  if (want == client.interest) return;
  absl::Status modified = loop_->Modify(client.fd.get(), want);
  if (!modified.ok()) {
    MOTE_LOG_LIMITED(log_limiter_, spdlog::level::warn, "QMP client {}: {}", client.id,
                     modified.ToString());
    client.dead = true;
    return;
  }
  client.interest = want;
}

void QmpServer::Emit(const std::string& name, const json& data) {
  timespec now{};
  clock_gettime(CLOCK_REALTIME, &now);
  json event = {{"event", name},
                {"timestamp", {{"seconds", now.tv_sec}, {"microseconds", now.tv_nsec / 1000}}}};
  if (!data.is_null()) event["data"] = data;
  std::string line = Serialize(event);
  {
    MutexLock lock(&events_mu_);
    queued_events_.push_back(std::move(line));
    if (delivery_posted_) return;  // the delivery already on its way takes this one too
    delivery_posted_ = true;
  }
  loop_->Post([this, alive = std::weak_ptr<int>(alive_)] {
    if (alive.expired()) return;
    DeliverEvents(/*from_posted_work=*/true);
    Reap();
  });
}

void QmpServer::DeliverEvents(bool from_posted_work) {
  std::vector<std::string> events;
  {
    MutexLock lock(&events_mu_);
    events.swap(queued_events_);
    if (from_posted_work) delivery_posted_ = false;
  }
  if (events.empty()) return;
  for (auto& [id, client] : clients_) {
    if (client->dead || !client->negotiated) continue;  // QEMU sends events in command mode only
    for (const std::string& line : events) Queue(*client, line);
    WriteOutput(*client);
    UpdateInterest(*client);
  }
}

void QmpServer::Flush(absl::Duration timeout) {
  DeliverEvents(/*from_posted_work=*/false);
  absl::Time deadline = absl::Now() + timeout;
  while (true) {
    std::vector<pollfd> waiting;
    for (auto& [id, client] : clients_) {
      WriteOutput(*client);
      if (!client->dead && client->pending() > 0) waiting.push_back({client->fd.get(), POLLOUT, 0});
    }
    absl::Duration left = deadline - absl::Now();
    if (waiting.empty() || left <= absl::ZeroDuration()) break;
    int ms = static_cast<int>(std::min<int64_t>(absl::ToInt64Milliseconds(left) + 1, 1000));
    if (poll(waiting.data(), waiting.size(), ms) < 0 && errno != EINTR) break;
  }
  for (auto& [id, client] : clients_) UpdateInterest(*client);
  Reap();
}

void QmpServer::Reap() {
  for (auto it = clients_.begin(); it != clients_.end();) {
    if (!it->second->dead) {
      ++it;
      continue;
    }
    loop_->Remove(it->second->fd.get()).IgnoreError();
    MOTE_LOG_LIMITED(debug_limiter_, spdlog::level::debug, "QMP client {} disconnected", it->first);
    it = clients_.erase(it);
  }
  client_count_.store(clients_.size());
}

}  // namespace mote::qmp
