// QmpServer over real Unix sockets, served by a real EventLoop on its own
// thread, with a fake dispatcher; JsonStreamSplitter on its own.
#include "vmm/qmp/qmp_server.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "tests/support/temp_dir.h"
#include "vmm/base/event_loop.h"
#include "vmm/base/mutex.h"
#include "vmm/qmp/qmp_stream.h"

namespace mote::qmp {
namespace {

using nlohmann::json;
using Kind = JsonStreamSplitter::Item::Kind;

const json kVersion = {{"qemu", {{"major", 7}, {"minor", 2}, {"micro", 0}}},
                       {"package", "mote test"}};

using mote::TempDir;

bool WaitFor(const std::function<bool()>& done, int timeout_ms = 5000) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

// Answers a few made-up commands; records where and what it ran.
class FakeDispatcher : public QmpDispatcher {
 public:
  QmpResult Execute(const std::string& command, const json& arguments, const Peer& peer) override {
    {
      MutexLock lock(&mu_);
      calls_.push_back(command);
      threads_.push_back(std::this_thread::get_id());
    }
    if (command == "echo") return arguments;
    if (command == "whoami") return json{{"pid", peer.pid}, {"uid", peer.uid}, {"gid", peer.gid}};
    if (command == "fail") return QmpError{"DeviceNotFound", "Device 'disk9' not found"};
    if (command == "emit") {
      server->Emit("DURING", {{"n", 1}});
      return json::object();
    }
    if (command == "big") {
      return json{{"blob", std::string(arguments.at("bytes").get<size_t>(), 'b')}};
    }
    if (command == "throw") return json{{"x", arguments.at("missing").get<int>()}};
    return QmpError{"CommandNotFound", "The command " + command + " has not been found"};
  }
  std::vector<std::string> calls() {
    MutexLock lock(&mu_);
    return calls_;
  }
  std::vector<std::thread::id> threads() {
    MutexLock lock(&mu_);
    return threads_;
  }

  QmpServer* server = nullptr;

 private:
  Mutex mu_;
  std::vector<std::string> calls_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread::id> threads_ ABSL_GUARDED_BY(mu_);
};

// A server on a loop thread; the server is destroyed after the loop stopped.
class Harness {
 public:
  explicit Harness(QmpServer::Options options = {}) {
    auto loop = EventLoop::Create();
    REQUIRE(loop.ok());
    loop_ = std::move(*loop);
    if (options.path.empty()) options.path = dir_.Path("qmp.sock");
    options.version = kVersion;
    path_ = options.path;
    auto server = QmpServer::Create(loop_.get(), &dispatcher_, options);
    REQUIRE(server.ok());
    server_ = std::move(*server);
    dispatcher_.server = server_.get();
    thread_ = std::thread([this] { (void)loop_->Run(); });
    loop_thread_ = thread_.get_id();
  }
  ~Harness() {
    StopLoop();
    server_.reset();
  }
  void StopLoop() {
    if (!thread_.joinable()) return;
    loop_->Stop();
    thread_.join();
  }

  TempDir dir_;
  std::string path_;
  std::unique_ptr<EventLoop> loop_;
  FakeDispatcher dispatcher_;
  std::unique_ptr<QmpServer> server_;
  std::thread thread_;
  std::thread::id loop_thread_;
};

// A QMP client that reads line by line with a timeout, so a test fails
// instead of hanging.
class TestClient {
 public:
  explicit TestClient(const std::string& path)
      : fd_(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    REQUIRE(fd_.ok());
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
    REQUIRE(connect(fd_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  }

  // False if the server closed the connection first.
  bool Send(std::string_view data) {
    while (!data.empty()) {
      ssize_t n = send(fd_.get(), data.data(), data.size(), MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }
  // One line without its "\n"; nullopt at end of stream or after the timeout.
  std::optional<std::string> ReadLine(int timeout_ms = 5000) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (true) {
      if (size_t nl = buf_.find('\n'); nl != std::string::npos) {
        std::string line = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        return line;
      }
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      pollfd p{fd_.get(), POLLIN, 0};
      if (left.count() <= 0 || poll(&p, 1, static_cast<int>(left.count())) <= 0) {
        return std::nullopt;
      }
      char chunk[65536];
      ssize_t n = recv(fd_.get(), chunk, sizeof(chunk), 0);
      if (n <= 0) return std::nullopt;  // end of stream, or ECONNRESET
      buf_.append(chunk, static_cast<size_t>(n));
    }
  }
  json Read() {
    std::optional<std::string> line = ReadLine();
    REQUIRE(line.has_value());
    return json::parse(*line);
  }
  json Execute(const json& request) {
    REQUIRE(Send(request.dump() + "\n"));
    return Read();
  }
  void Negotiate() {
    REQUIRE(Read().contains("QMP"));
    REQUIRE(Execute({{"execute", "qmp_capabilities"}}) == json{{"return", json::object()}});
  }
  // True once the server has closed the connection (what is unread is skipped).
  bool WaitClosed() {
    while (true) {
      pollfd p{fd_.get(), POLLIN, 0};
      if (poll(&p, 1, 5000) <= 0) return false;
      char chunk[65536];
      if (recv(fd_.get(), chunk, sizeof(chunk), 0) <= 0) return true;
    }
  }
  int fd() const { return fd_.get(); }

 private:
  FileDescriptor fd_;
  std::string buf_;
};

json Error(const std::string& error_class, const std::string& desc) {
  return {{"error", {{"class", error_class}, {"desc", desc}}}};
}

std::vector<JsonStreamSplitter::Item> Drain(JsonStreamSplitter& splitter) {
  std::vector<JsonStreamSplitter::Item> items;
  while (auto item = splitter.Next()) {
    items.push_back(*item);
    if (item->kind == Kind::kTooLarge) break;
  }
  return items;
}

std::vector<std::string> Values(const std::vector<JsonStreamSplitter::Item>& items) {
  std::vector<std::string> texts;
  for (const auto& item : items) {
    texts.push_back((item.kind == Kind::kValue ? "" : "!") + item.text);
  }
  return texts;
}

TEST_CASE("JsonStreamSplitter cuts top-level values by structure, not by lines", "[qmp]") {
  JsonStreamSplitter splitter(1024);
  splitter.Feed(" {\"a\": \"}{\\\"[\"}[1,\n[2]]\"s\\\"x\" 42 true\n\t{}x");
  // "x" has no delimiter yet: it may go on in the next write.
  CHECK(Values(Drain(splitter)) == std::vector<std::string>{"{\"a\": \"}{\\\"[\"}", "[1,\n[2]]",
                                                            "\"s\\\"x\"", "42", "true", "{}"});
  splitter.Feed("yz ");
  CHECK(Values(Drain(splitter)) == std::vector<std::string>{"xyz"});
  CHECK_FALSE(splitter.in_value());
}

TEST_CASE("JsonStreamSplitter joins a value fed one byte at a time", "[qmp]") {
  JsonStreamSplitter splitter(1024);
  const std::string text = R"({"execute": "x", "arguments": {"s": "a}b"}})";
  for (size_t i = 0; i + 1 < text.size(); ++i) {
    splitter.Feed(text.substr(i, 1));
    REQUIRE_FALSE(splitter.Next().has_value());
  }
  splitter.Feed(text.substr(text.size() - 1));
  CHECK(Values(Drain(splitter)) == std::vector<std::string>{text});
}

TEST_CASE("JsonStreamSplitter resynchronises after a lexical error, as QEMU's lexer", "[qmp]") {
  JsonStreamSplitter splitter(1024);
  // A raw newline ends a broken string; 0xff and other control bytes reset.
  splitter.Feed("{\"a\": \"open\n{\"b\": 1}\xff{\"c\":\x01 2}\n[3]");
  std::vector<std::string> got = Values(Drain(splitter));
  CHECK(got == std::vector<std::string>{"!invalid byte 0x0a in a string", "{\"b\": 1}",
                                        "!stray byte 0xff", "!invalid byte 0x01", "2", "}", "[3]"});
}

TEST_CASE("JsonStreamSplitter::SkipLine drops the rest of a line, whenever it arrives", "[qmp]") {
  JsonStreamSplitter splitter(1024);
  splitter.Feed("this is ");
  std::optional<JsonStreamSplitter::Item> first = splitter.Next();
  REQUIRE(first.has_value());
  CHECK(first->text == "this");
  splitter.SkipLine();
  CHECK(Values(Drain(splitter)).empty());
  splitter.Feed("not json {\"a\": 1}\n{\"b\": 2}\n");
  CHECK(Values(Drain(splitter)) == std::vector<std::string>{"{\"b\": 2}"});
  // A byte that resets QEMU's lexer ends the skipping too.
  splitter.SkipLine();
  splitter.Feed("junk\x01[1]");
  CHECK(Values(Drain(splitter)) == std::vector<std::string>{"[1]"});
}

TEST_CASE("JsonStreamSplitter rejects nesting beyond its limit and goes on", "[qmp]") {
  JsonStreamSplitter splitter(1 << 20, /*max_depth=*/4);
  splitter.Feed("[[[[1]]]] [[[[[1]]]]] [5]");
  CHECK(Values(Drain(splitter)) ==
        std::vector<std::string>{"[[[[1]]]]", "!nesting deeper than 4", "[5]"});
}

TEST_CASE("JsonStreamSplitter bounds its buffer: 10 MiB of garbage is refused early", "[qmp]") {
  const size_t kLimit = 1 << 20;
  JsonStreamSplitter splitter(kLimit);
  const std::string chunk(64 * 1024, 'x');
  size_t fed = 0;
  std::optional<JsonStreamSplitter::Item> item;
  while (fed < (10u << 20)) {
    splitter.Feed(chunk);
    fed += chunk.size();
    CHECK(splitter.buffered() <= kLimit + chunk.size());
    if ((item = splitter.Next()).has_value()) break;
  }
  REQUIRE(item.has_value());
  CHECK(item->kind == Kind::kTooLarge);
  CHECK(fed <= kLimit + chunk.size());
  splitter.Feed("{}");  // the stream is abandoned for good
  CHECK(splitter.buffered() == 0);
  CHECK(splitter.Next()->kind == Kind::kTooLarge);
}

TEST_CASE("QmpServer greets with its version and no capabilities, lines ending in CRLF", "[qmp]") {
  Harness h;
  TestClient client(h.path_);
  std::optional<std::string> line = client.ReadLine();
  REQUIRE(line.has_value());
  CHECK(line->back() == '\r');
  CHECK(json::parse(*line) ==
        json{{"QMP", {{"version", kVersion}, {"capabilities", json::array()}}}});
  CHECK(h.server_->client_count() == 1);
}

TEST_CASE("QmpServer runs no command before qmp_capabilities", "[qmp]") {
  Harness h;
  TestClient client(h.path_);
  client.Read();
  CHECK(client.Execute({{"execute", "echo"}, {"id", 1}}) ==
        json{{"error",
              {{"class", "CommandNotFound"},
               {"desc", "Expecting capabilities negotiation with 'qmp_capabilities'"}}},
             {"id", 1}});
  // mote offers no capability: asking for one fails and leaves negotiation open.
  CHECK(client.Execute({{"execute", "qmp_capabilities"}, {"arguments", {{"enable", {"oob"}}}}}) ==
        Error("GenericError", "Capability 'oob' not available"));
  CHECK(client.Execute({{"execute", "echo"}})["error"]["class"] == "CommandNotFound");
  CHECK(h.dispatcher_.calls().empty());
  CHECK(client.Execute(
            {{"execute", "qmp_capabilities"}, {"arguments", {{"enable", json::array()}}}}) ==
        json{{"return", json::object()}});
  CHECK(client.Execute({{"execute", "echo"}}) == json{{"return", json::object()}});
  CHECK(h.dispatcher_.calls() == std::vector<std::string>{"echo"});
}

TEST_CASE("QmpServer refuses a second qmp_capabilities and stays in command mode", "[qmp]") {
  Harness h;
  TestClient client(h.path_);
  client.Negotiate();
  CHECK(client.Execute({{"execute", "qmp_capabilities"}}) ==
        Error("CommandNotFound", "Capabilities negotiation is already complete, command ignored"));
  CHECK(client.Execute({{"execute", "echo"}, {"arguments", {{"a", 1}}}}) ==
        json{{"return", {{"a", 1}}}});
}

TEST_CASE("QmpServer passes arguments on the loop thread and echoes any id", "[qmp]") {
  Harness h;
  TestClient client(h.path_);
  client.Negotiate();
  json arguments = {{"a", 1}, {"b", {true, nullptr, "x"}}};
  CHECK(client.Execute({{"execute", "echo"}, {"arguments", arguments}, {"id", "req-1"}}) ==
        json{{"return", arguments}, {"id", "req-1"}});
  json odd_id = {{"n", {1, 2}}, {"s", "é"}};
  CHECK(client.Execute({{"execute", "echo"}, {"id", odd_id}}) ==
        json{{"return", json::object()}, {"id", odd_id}});
  json no_id = client.Execute({{"execute", "echo"}});
  CHECK_FALSE(no_id.contains("id"));
  for (std::thread::id t : h.dispatcher_.threads()) CHECK(t == h.loop_thread_);
}

TEST_CASE("QmpServer tells the dispatcher who connected (SO_PEERCRED)", "[qmp]") {
  Harness h;
  TestClient client(h.path_);
  client.Negotiate();
  CHECK(client.Execute({{"execute", "whoami"}}) ==
        json{{"return", {{"pid", getpid()}, {"uid", getuid()}, {"gid", getgid()}}}});
}

TEST_CASE("QmpServer answers a failed command with QEMU's error shape", "[qmp]") {
  Harness h;
  TestClient client(h.path_);
  client.Negotiate();
  CHECK(client.Execute({{"execute", "fail"}, {"id", 7}}) ==
        json{{"error", {{"class", "DeviceNotFound"}, {"desc", "Device 'disk9' not found"}}},
             {"id", 7}});
  CHECK(client.Execute({{"execute", "nope"}}) ==
        Error("CommandNotFound", "The command nope has not been found"));
  // A dispatcher that throws on bad arguments costs the client an error, not mote.
  json thrown = client.Execute({{"execute", "throw"}});
  CHECK(thrown["error"]["class"] == "GenericError");
  CHECK(client.Execute({{"execute", "echo"}}) == json{{"return", json::object()}});
}

TEST_CASE("QmpServer rejects malformed requests with QEMU's words", "[qmp]") {
  Harness h;
  TestClient client(h.path_);
  client.Negotiate();
  CHECK(client.Execute({{"execute", "echo"}, {"colour", "red"}, {"id", 1}}) ==
        json{{"error",
              {{"class", "GenericError"}, {"desc", "QMP input member 'colour' is unexpected"}}},
             {"id", 1}});
  CHECK(client.Execute({{"arguments", json::object()}}) ==
        Error("GenericError", "QMP input lacks member 'execute'"));
  CHECK(client.Execute({{"execute", 42}}) ==
        Error("GenericError", "QMP input member 'execute' must be a string"));
  CHECK(client.Execute({{"execute", "echo"}, {"arguments", {1}}}) ==
        Error("GenericError", "QMP input member 'arguments' must be an object"));
  CHECK(client.Execute({{"exec-oob", "echo"}}) ==
        Error("GenericError", "QMP input member 'exec-oob' is unexpected"));
  CHECK(h.dispatcher_.calls().empty());
}

TEST_CASE("QmpServer rejects JSON values that are not objects", "[qmp]") {
  Harness h;
  TestClient client(h.path_);
  client.Negotiate();
  for (const char* text : {"[1, 2, 3]", "\"execute\"", "42", "null"}) {
    REQUIRE(client.Send(std::string(text) + "\n"));
    CHECK(client.Read() == Error("GenericError", "QMP input must be a JSON object"));
  }
}

TEST_CASE("QmpServer answers bad JSON and then the next request on the connection", "[qmp]") {
  Harness h;
  TestClient client(h.path_);
  client.Negotiate();
  auto expect_parse_error = [&] {
    json reply = client.Read();
    CHECK(reply["error"]["class"] == "GenericError");
    CHECK(reply["error"]["desc"].get<std::string>().rfind("JSON parse error, ", 0) == 0);
    CHECK_FALSE(reply.contains("id"));
  };
  REQUIRE(client.Send("this is not json\n"));
  expect_parse_error();  // one per line: the rest of a bad line is dropped
  CHECK(client.Execute({{"execute", "echo"}, {"id", 1}}) ==
        json{{"return", json::object()}, {"id", 1}});
  // An unterminated string heals at the end of its line.
  REQUIRE(client.Send("{\"execute\": \"echo\", \"arguments\": {\"a\": \"open\n"));
  expect_parse_error();
  CHECK(client.Execute({{"execute", "echo"}, {"id", 2}}) ==
        json{{"return", json::object()}, {"id", 2}});
  // 0xff forces the parser back to a known state (QMP spec).
  REQUIRE(client.Send("{\"execute\": \xff"));
  expect_parse_error();
  REQUIRE(client.Send("{\"execute\": \"echo\" ]\n"));  // balanced but wrong
  expect_parse_error();
  CHECK(client.Execute({{"execute", "echo"}, {"id", 3}}) ==
        json{{"return", json::object()}, {"id", 3}});
}

TEST_CASE("QmpServer splits requests by JSON structure, not by writes", "[qmp]") {
  Harness h;
  TestClient client(h.path_);
  client.Negotiate();
  // Two in one write, then one pretty-printed over lines with braces in a string.
  REQUIRE(client.Send(
      R"({"execute":"echo","id":1}{"execute":"echo","id":2})"
      "\n{\n  \"execute\": \"echo\",\n  \"arguments\": {\"s\": \"}{\\\"]\"},\n  \"id\": 3\n}\n"));
  CHECK(client.Read()["id"] == 1);
  CHECK(client.Read()["id"] == 2);
  CHECK(client.Read() == json{{"return", {{"s", "}{\"]"}}}, {"id", 3}});
  // One request over many writes.
  const std::string request = R"({"execute": "echo", "arguments": {"k": "v"}, "id": 4})";
  for (char c : request) {
    REQUIRE(client.Send(std::string(1, c)));
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  CHECK(client.Read() == json{{"return", {{"k", "v"}}}, {"id", 4}});
}

TEST_CASE("QmpServer drops a client whose request passes the limit, and serves others", "[qmp]") {
  Harness h;  // max_request_bytes: 1 MiB
  TestClient big(h.path_);
  big.Negotiate();
  // 10 MiB can only be sent if mote keeps reading them: it must close first.
  std::string request = "{\"execute\": \"" + std::string(10 << 20, 'x') + "\"}\n";
  CHECK_FALSE(big.Send(request));
  CHECK(big.Read() == Error("GenericError", "request too large (more than 1048576 bytes)"));
  CHECK(big.WaitClosed());
  CHECK(WaitFor([&] { return h.server_->client_count() == 0; }));
  TestClient next(h.path_);
  next.Negotiate();
  CHECK(next.Execute({{"execute", "echo"}}) == json{{"return", json::object()}});
}

TEST_CASE("QmpServer cleans up clients that hang up mid-request or mid-reply", "[qmp]") {
  Harness h;
  TestClient stays(h.path_);
  stays.Negotiate();
  {
    TestClient gone(h.path_);
    gone.Negotiate();
    REQUIRE(gone.Send(R"({"execute": "ec)"));
  }
  {
    TestClient gone(h.path_);
    gone.Negotiate();
    // A reply far bigger than the socket buffers, never read.
    REQUIRE(gone.Send(R"({"execute": "big", "arguments": {"bytes": 4194304}})"));
    CHECK(WaitFor([&] { return h.dispatcher_.calls().size() == 1; }));
  }
  CHECK(WaitFor([&] { return h.server_->client_count() == 1; }));
  // A client that shuts down its side after writing still gets its answers.
  TestClient half(h.path_);
  half.Negotiate();
  REQUIRE(half.Send(R"({"execute": "echo", "id": 1}{"execute": "echo", "id": 2})"));
  REQUIRE(shutdown(half.fd(), SHUT_WR) == 0);
  CHECK(half.Read()["id"] == 1);
  CHECK(half.Read()["id"] == 2);
  CHECK(half.WaitClosed());
  CHECK(stays.Execute({{"execute", "echo"}}) == json{{"return", json::object()}});
  CHECK(WaitFor([&] { return h.server_->client_count() == 1; }));
}

TEST_CASE("QmpServer refuses clients beyond max_clients and keeps serving the rest", "[qmp]") {
  QmpServer::Options options;
  options.max_clients = 64;
  Harness h(options);
  std::vector<std::unique_ptr<TestClient>> clients;
  for (int i = 0; i < 100; ++i) clients.push_back(std::make_unique<TestClient>(h.path_));
  for (int i = 0; i < 100; ++i) {
    json first = clients[i]->Read();
    if (i < 64) {
      CHECK(first.contains("QMP"));
    } else {
      CHECK(first == Error("GenericError", "too many QMP clients (at most 64)"));
      CHECK(clients[i]->WaitClosed());
    }
  }
  CHECK(h.server_->client_count() == 64);
  for (int i : {0, 63}) {
    CHECK(clients[i]->Execute({{"execute", "qmp_capabilities"}}) ==
          json{{"return", json::object()}});
    CHECK(clients[i]->Execute({{"execute", "echo"}, {"id", i}})["id"] == i);
  }
  clients.resize(10);  // room again once some leave
  CHECK(WaitFor([&] { return h.server_->client_count() == 10; }));
  TestClient late(h.path_);
  CHECK(late.Read().contains("QMP"));
}

TEST_CASE("QmpServer sends events to negotiated clients only, with a timestamp", "[qmp]") {
  Harness h;
  TestClient ready(h.path_);
  ready.Negotiate();
  TestClient early(h.path_);
  REQUIRE(early.Read().contains("QMP"));
  time_t before = time(nullptr);
  h.server_->Emit("STOP", nullptr);
  h.server_->Emit("SHUTDOWN", {{"guest", true}, {"reason", "guest-shutdown"}});
  json stop = ready.Read();
  CHECK(stop["event"] == "STOP");
  CHECK_FALSE(stop.contains("data"));
  REQUIRE(stop["timestamp"].is_object());
  CHECK(stop["timestamp"]["seconds"].get<int64_t>() >= before);
  CHECK(stop["timestamp"]["seconds"].get<int64_t>() <= time(nullptr));
  CHECK(stop["timestamp"]["microseconds"].get<int64_t>() >= 0);
  CHECK(stop["timestamp"]["microseconds"].get<int64_t>() < 1000000);
  json shutdown = ready.Read();
  CHECK(shutdown["event"] == "SHUTDOWN");
  CHECK(shutdown["data"] == json{{"guest", true}, {"reason", "guest-shutdown"}});
  // Both went out together: had `early` got them, they would come before this reply.
  CHECK(early.Execute({{"execute", "qmp_capabilities"}}) == json{{"return", json::object()}});
  // An event raised by a command reaches everyone, and its client before the reply.
  REQUIRE(ready.Send(R"({"execute": "emit", "id": 5})"));
  CHECK(ready.Read()["event"] == "DURING");
  CHECK(ready.Read() == json{{"return", json::object()}, {"id", 5}});
  CHECK(early.Read()["event"] == "DURING");
}

TEST_CASE("QmpServer::Emit may be called from several threads at once", "[qmp]") {
  Harness h;
  TestClient client(h.path_);
  client.Negotiate();
  constexpr int kThreads = 4;
  constexpr int kEach = 50;
  std::vector<std::thread> emitters;
  for (int t = 0; t < kThreads; ++t) {
    emitters.emplace_back([&h, t] {
      for (int i = 0; i < kEach; ++i) h.server_->Emit("TICK", {{"thread", t}, {"seq", i}});
    });
  }
  for (auto& e : emitters) e.join();
  std::map<int, int> next_seq;
  for (int n = 0; n < kThreads * kEach; ++n) {
    json event = client.Read();
    REQUIRE(event["event"] == "TICK");
    int t = event["data"]["thread"];
    CHECK(event["data"]["seq"] == next_seq[t]++);  // each thread's events in its order
  }
  for (int t = 0; t < kThreads; ++t) CHECK(next_seq[t] == kEach);
}

TEST_CASE("QmpServer drops a client that does not read its output", "[qmp]") {
  QmpServer::Options options;
  options.max_output_bytes = 64 * 1024;
  Harness h(options);
  TestClient deaf(h.path_);
  deaf.Negotiate();
  const std::string padding(1000, 'p');
  for (int i = 0; i < 2000; ++i) h.server_->Emit("NOISE", {{"padding", padding}});
  CHECK(WaitFor([&] { return h.server_->client_count() == 0; }));
}

TEST_CASE("QmpServer::Flush delivers queued events after the loop stopped", "[qmp]") {
  Harness h;
  TestClient client(h.path_);
  client.Negotiate();
  h.StopLoop();
  h.server_->Emit("SHUTDOWN", {{"guest", false}, {"reason", "host-qmp-quit"}});
  h.server_->Flush(absl::Milliseconds(200));
  CHECK(client.Read()["event"] == "SHUTDOWN");
  h.server_.reset();
  CHECK(client.WaitClosed());
}

TEST_CASE("QmpServer makes its socket 0600 and removes it when destroyed", "[qmp]") {
  mode_t old_umask = umask(0);  // the mode must not depend on the umask
  Harness h;
  umask(old_umask);
  struct stat st;
  REQUIRE(stat(h.path_.c_str(), &st) == 0);
  CHECK(S_ISSOCK(st.st_mode));
  CHECK((st.st_mode & 07777) == 0600);
  h.StopLoop();
  h.server_.reset();
  CHECK(lstat(h.path_.c_str(), &st) != 0);
}

TEST_CASE("QmpServer replaces a stale socket and refuses a live one or another file", "[qmp]") {
  TempDir dir;
  FakeDispatcher dispatcher;
  auto loop = EventLoop::Create();
  REQUIRE(loop.ok());
  QmpServer::Options options;
  options.path = dir.Path("vm.sock");
  {
    // What a killed mote leaves: a socket file nobody listens on.
    FileDescriptor dead(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, options.path.c_str(), sizeof(addr.sun_path) - 1);
    REQUIRE(bind(dead.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  }
  auto first = QmpServer::Create(loop->get(), &dispatcher, options);
  REQUIRE(first.ok());

  auto second = QmpServer::Create(loop->get(), &dispatcher, options);
  REQUIRE_FALSE(second.ok());
  CHECK(std::string(second.status().message()) == options.path + ": in use by a running mote");
  struct stat st;
  CHECK(stat(options.path.c_str(), &st) == 0);  // the live one keeps its file

  options.path = dir.Path("not-a-socket");
  std::ofstream(options.path) << "precious";
  auto third = QmpServer::Create(loop->get(), &dispatcher, options);
  REQUIRE_FALSE(third.ok());
  CHECK(std::string(third.status().message()) == options.path + ": exists and is not a socket");
  CHECK(std::filesystem::file_size(options.path) == 8);

  options.path = dir.Path(std::string(120, 'p'));
  CHECK(QmpServer::Create(loop->get(), &dispatcher, options).status().code() ==
        absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace mote::qmp
