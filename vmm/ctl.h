// `mote ctl`: a small QMP client for people and shell scripts. It connects
// to a running mote's --api-socket, negotiates, and either sends one command
// (printing the reply's `return` value as one line of JSON; exit 1 with the
// error on stderr when mote answers with a QMP error) or follows the event
// stream (one JSON line per event until mote goes away).
// Thread-safety: runs on the calling thread; blocking I/O.
#ifndef MOTE_VMM_CTL_H_
#define MOTE_VMM_CTL_H_

#include <string>

#include "CLI/CLI.hpp"

namespace mote {

struct CtlRequest {
  std::string socket;
  std::string command;
  std::string arguments;  // a JSON object, or empty
  bool events = false;
  bool incremental = false;  // snapshot: only the pages written since the last
  double timeout_seconds = 30;
};

void AddCtlFlags(CLI::App* ctl, CtlRequest& request);
// The process exit code: 0 done, 1 a QMP error reply, 2 bad use or no mote there.
int RunCtl(const CtlRequest& request);

}  // namespace mote

#endif  // MOTE_VMM_CTL_H_
