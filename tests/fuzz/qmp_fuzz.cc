// Fuzz target: the QMP control socket (vmm/qmp/): the stream splitter, the
// request checks and the dispatcher mote uses (VmRunner, here with no VM
// booted, as before the first boot or after the guest ended). Each input is
// what one client sends on a fresh connection before it hangs up; the
// server must answer, drop the client cleanly and stay ready for the next.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "tests/fuzz/fuzz_support.h"
#include "vmm/qmp/qmp_server.h"
#include "vmm/vm_config.h"
#include "vmm/vm_runner.h"

using namespace mote;

namespace {

struct Fixture {
  Fixture() {
    auto l = EventLoop::Create();
    if (!l.ok()) abort();
    loop = std::move(*l);
    VmConfig config;
    config.kernel = "/nonexistent";
    auto r = VmRunner::Create(config, RunOptions{});
    if (!r.ok()) abort();
    runner = std::move(*r);
    path = "/tmp/mote-qmp-fuzz-" + std::to_string(getpid()) + ".sock";
    qmp::QmpServer::Options options;
    options.path = path;
    options.version = {{"qemu", {{"major", 0}, {"minor", 1}, {"micro", 0}}}};
    options.max_request_bytes = 64 << 10;
    auto s = qmp::QmpServer::Create(loop.get(), runner.get(), options);
    if (!s.ok()) abort();
    server = std::move(*s);
  }
  std::unique_ptr<EventLoop> loop;
  std::unique_ptr<VmRunner> runner;
  std::string path;
  std::unique_ptr<qmp::QmpServer> server;
};

int Connect(const std::string& path) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  path.copy(addr.sun_path, sizeof(addr.sun_path) - 1);
  if (fd < 0 || connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) abort();
  return fd;
}

// Reads what is there; false once the server has closed the connection.
bool DrainOpen(int fd) {
  char buffer[65536];
  while (true) {
    ssize_t n = recv(fd, buffer, sizeof(buffer), MSG_DONTWAIT);
    if (n == 0) return false;
    if (n < 0) return errno == EAGAIN || errno == EINTR;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::QuietLogs();
  static Fixture* f = new Fixture();
  FileDescriptor client(Connect(f->path));
  fuzz::RunLoopOnce(*f->loop);  // accept, greet
  size_t sent = 0;
  while (sent < size) {
    ssize_t n = send(client.get(), data + sent, size - sent, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0 && errno != EAGAIN) break;
    if (n > 0) sent += static_cast<size_t>(n);
    fuzz::RunLoopOnce(*f->loop);
    if (!DrainOpen(client.get())) break;
  }
  shutdown(client.get(), SHUT_WR);
  // The server sees the hang-up, answers what is left and lets go of the
  // client; a client it keeps is a leak.
  for (int round = 0; round < 100 && f->server->client_count() > 0; ++round) {
    fuzz::RunLoopOnce(*f->loop);
    DrainOpen(client.get());
  }
  if (f->server->client_count() != 0) abort();
  return 0;
}
