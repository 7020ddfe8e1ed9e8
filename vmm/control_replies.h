// The typed replies of the control commands that report state: VmRunner's
// handlers return them, libmote reads them as they are, and to_json gives
// the QMP client the same thing in QMP's words (JSON exists only at the
// socket).
// Thread-safety: plain values.
#ifndef MOTE_VMM_CONTROL_REPLIES_H_
#define MOTE_VMM_CONTROL_REPLIES_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "nlohmann/json.hpp"

namespace mote::control {

// query-status: "prelaunch", "running", "paused" or "shutdown".
struct RunState {
  std::string status;
  bool running = false;
};

// x-mote-query-counters.
struct VcpuCounters {
  uint32_t index = 0;
  int thread_id = 0;                                    // the host thread running it
  std::vector<std::pair<std::string, uint64_t>> exits;  // KVM exits by reason: io, mmio, ...
};
struct DiskCounters {
  std::string id;
  uint64_t reads = 0, writes = 0, flushes = 0, bytes_read = 0, bytes_written = 0, errors = 0;
  uint64_t throttled = 0, throttled_ms = 0;  // requests held back by rate limits, and for how long
};
struct NicCounters {
  uint32_t index = 0;
  uint64_t tx_frames = 0, tx_bytes = 0, tx_dropped = 0, rx_frames = 0, rx_bytes = 0, rx_dropped = 0;
  uint64_t throttled = 0, throttled_ms = 0;  // as DiskCounters'
};
struct Counters {
  std::vector<VcpuCounters> vcpus;
  std::vector<DiskCounters> disks;
  std::vector<NicCounters> nics;
};

void to_json(nlohmann::json& j, const RunState& s);
void to_json(nlohmann::json& j, const VcpuCounters& c);
void to_json(nlohmann::json& j, const DiskCounters& c);
void to_json(nlohmann::json& j, const NicCounters& c);
void to_json(nlohmann::json& j, const Counters& c);

}  // namespace mote::control

#endif  // MOTE_VMM_CONTROL_REPLIES_H_
