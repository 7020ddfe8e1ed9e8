// An MsiRouter that records what MSI-X asks of the platform.
#ifndef MOTE_TESTS_SUPPORT_RECORDING_MSI_ROUTER_H_
#define MOTE_TESTS_SUPPORT_RECORDING_MSI_ROUTER_H_

#include <vector>

#include "devices/pci/msix.h"

namespace mote::pci::testing {

class RecordingRouter : public MsiRouter {
 public:
  struct RouteCall {
    uint16_t vector;
    uint64_t address;
    uint32_t data;
  };
  void Route(uint16_t vector, uint64_t address, uint32_t data) override {
    routes.push_back({vector, address, data});
  }
  void Fire(uint16_t vector) override { fired.push_back(vector); }
  std::vector<RouteCall> routes;
  std::vector<uint16_t> fired;
};

}  // namespace mote::pci::testing

#endif  // MOTE_TESTS_SUPPORT_RECORDING_MSI_ROUTER_H_
