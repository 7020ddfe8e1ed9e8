// Fuzz target: the JSON VM description loader (vmm/config_json.cc), the code
// behind --config and the C API's JSON setters: any text, valid JSON of the
// wrong shape, huge numbers, odd strings. A description it accepts must pass
// ValidateConfig and survive a round trip through VmConfigToJson.
#include <cstdlib>
#include <string>

#include "tests/fuzz/fuzz_support.h"
#include "vmm/config_json.h"
#include "vmm/vm_config.h"

using namespace mote;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::QuietLogs();
  std::string text(reinterpret_cast<const char*>(data), size);
  VmConfig config;
  if (!ApplyVmConfigJson(text, config).ok()) return 0;
  if (!ValidateConfig(config).ok()) abort();  // accepted means valid
  std::string again =
      VmConfigToJson(config).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  VmConfig round;
  if (!ApplyVmConfigJson(again, round).ok()) abort();  // what it wrote, it reads
  return 0;
}
