#include "vmm/control_replies.h"

namespace mote::control {

using nlohmann::json;

void to_json(json& j, const RunState& s) {
  j = {{"status", s.status}, {"running", s.running}, {"singlestep", false}};
}

void to_json(json& j, const VcpuCounters& c) {
  json exits = json::object();
  for (const auto& [reason, count] : c.exits) exits[reason] = count;
  j = {{"cpu-index", c.index}, {"thread-id", c.thread_id}, {"exits", exits}};
}

void to_json(json& j, const DiskCounters& c) {
  j = {{"id", c.id},           {"reads", c.reads},           {"writes", c.writes},
       {"flushes", c.flushes}, {"bytes-read", c.bytes_read}, {"bytes-written", c.bytes_written},
       {"errors", c.errors},   {"throttled", c.throttled},   {"throttled-ms", c.throttled_ms}};
}

void to_json(json& j, const NicCounters& c) {
  j = {{"index", c.index},           {"tx-frames", c.tx_frames}, {"tx-bytes", c.tx_bytes},
       {"tx-dropped", c.tx_dropped}, {"rx-frames", c.rx_frames}, {"rx-bytes", c.rx_bytes},
       {"rx-dropped", c.rx_dropped}, {"throttled", c.throttled}, {"throttled-ms", c.throttled_ms}};
}

void to_json(json& j, const Counters& c) {
  j = {{"vcpus", c.vcpus}, {"disks", c.disks}, {"nics", c.nics}};
}

}  // namespace mote::control
