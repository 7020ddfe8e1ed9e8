// QmpServer: the wire protocol of mote's control socket, QEMU's QMP
// (https://www.qemu.org/docs/master/interop/qmp-spec.html): a Unix socket,
// a greeting, capabilities negotiation, execute/return/error with the id
// echoed, and events. What a command does is the QmpDispatcher's business
// (the VM side); this layer only frames, validates and routes.
//
// Threads: every client is served on the EventLoop's thread, so
// QmpDispatcher::Execute runs there too (docs/architecture.md: control requests never
// change VM state behind the loop's back). Emit and client_count may be
// called from any thread; Create, Flush and the destructor from the loop
// thread or while the loop is not running. Never destroy the server, or call
// Flush, from inside Execute.
// Ownership: the caller owns the server and keeps the loop and the
// dispatcher alive until the server is destroyed.
#ifndef MOTE_VMM_QMP_QMP_SERVER_H_
#define MOTE_VMM_QMP_QMP_SERVER_H_

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "vmm/base/event_loop.h"
#include "vmm/base/fd.h"
#include "vmm/base/logging.h"
#include "vmm/base/mutex.h"

namespace mote::qmp {

// A failed command. `error_class` is one of QEMU's: GenericError,
// CommandNotFound, DeviceNotActive, DeviceNotFound, KVMMissingCap.
struct QmpError {
  std::string error_class;
  std::string desc;
};

// A command's outcome: the "return" value (usually an object, {} if there is
// nothing to say), or an error.
using QmpResult = std::variant<nlohmann::json, QmpError>;

// Who sent a command: the connecting process as the kernel saw it at
// connect (SO_PEERCRED), or this process for an embedding caller.
struct Peer {
  pid_t pid = 0;
  uid_t uid = 0;
  gid_t gid = 0;
  static Peer Self();
};

class QmpDispatcher {
 public:
  virtual ~QmpDispatcher() = default;
  // Runs one command of a negotiated client, on the loop thread. `arguments`
  // is an object ({} when the request had none). Exceptions are caught and
  // answered as GenericError, but should not be relied on. Events emitted
  // (QmpServer::Emit) while this runs reach clients before this reply.
  virtual QmpResult Execute(const std::string& command, const nlohmann::json& arguments,
                            const Peer& peer) = 0;
};

class QmpServer {
 public:
  struct Options {
    std::string path;  // the Unix socket path
    // The greeting's "version", e.g. {"qemu": {...}, "package": "mote 0.1"}.
    nlohmann::json version;
    mode_t mode = 0600;                    // the socket file's mode
    gid_t group = static_cast<gid_t>(-1);  // its group; -1: the creating user's
    size_t max_clients = 64;               // more are accepted and closed at once
    size_t max_request_bytes = 1 << 20;    // a longer request: error, then close
    size_t max_output_bytes = 8 << 20;     // a client that lets more pile up is dropped
  };

  // Creates the socket file (options.mode and group) and serves it on `loop`. A stale
  // socket file (no listener) is replaced; a live one is refused with
  // "PATH: in use by a running mote"; any other file is refused.
  static absl::StatusOr<std::unique_ptr<QmpServer>> Create(EventLoop* loop,
                                                           QmpDispatcher* dispatcher,
                                                           Options options);
  // Tries once, without waiting, to send what is pending; then closes every
  // client and the listener and removes the socket file (if still ours).
  ~QmpServer();
  QmpServer(const QmpServer&) = delete;
  QmpServer& operator=(const QmpServer&) = delete;

  // Sends {"event", "data", "timestamp": {"seconds", "microseconds"}} (the
  // time of this call, CLOCK_REALTIME) to every negotiated client. Null
  // `data` leaves "data" out. Any thread: the event is queued and delivered
  // on the loop thread, in the order of the Emit calls.
  void Emit(const std::string& name, const nlohmann::json& data);

  // Delivers queued events and waits up to `timeout` for every client's
  // output to be written (e.g. the reply to `quit` and the last SHUTDOWN
  // before the process exits). Loop thread, or while the loop is stopped.
  void Flush(absl::Duration timeout);

  size_t client_count() const { return client_count_.load(); }
  const std::string& path() const { return options_.path; }

 private:
  struct Client;

  QmpServer(EventLoop* loop, QmpDispatcher* dispatcher, Options options, FileDescriptor listener);

  void OnAccept();
  void OnClientEvent(uint64_t id, uint32_t events);
  void AddClient(FileDescriptor fd);
  void ReadInput(Client& client);
  void ProcessInput(Client& client);
  void HandleText(Client& client, const std::string& text);
  nlohmann::json HandleRequest(Client& client, const nlohmann::json& request);
  nlohmann::json Negotiate(Client& client, const nlohmann::json& arguments);
  void Send(Client& client, const nlohmann::json& message);
  void Queue(Client& client, const std::string& line);
  void WriteOutput(Client& client);
  void UpdateInterest(Client& client);
  void DeliverEvents(bool from_posted_work);
  void Reap();

  EventLoop* const loop_;
  QmpDispatcher* const dispatcher_;
  const Options options_;
  FileDescriptor listener_;
  // Closed to make room when accept() hits the descriptor limit, so the
  // pending connection can be taken and dropped instead of spinning.
  FileDescriptor spare_fd_;
  dev_t socket_dev_ = 0;  // identify our socket file, so the destructor
  ino_t socket_ino_ = 0;  // never removes a successor's

  // Loop thread only.
  std::map<uint64_t, std::unique_ptr<Client>> clients_;
  uint64_t next_client_id_ = 1;
  std::string read_buffer_;

  std::atomic<size_t> client_count_{0};

  // Events from any thread, waiting for the loop thread.
  Mutex events_mu_;
  std::vector<std::string> queued_events_ ABSL_GUARDED_BY(events_mu_);
  bool delivery_posted_ ABSL_GUARDED_BY(events_mu_) = false;
  // Work posted to the loop holds a weak_ptr to this: it may run after the
  // server is gone (the loop is reused by the next boot) and must do nothing.
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);

  // Clients trigger most of what is logged; debug lines (connects) have
  // their own budget so they never silence a warning.
  RateLimiter log_limiter_;
  RateLimiter debug_limiter_;
};

}  // namespace mote::qmp

#endif  // MOTE_VMM_QMP_QMP_SERVER_H_
