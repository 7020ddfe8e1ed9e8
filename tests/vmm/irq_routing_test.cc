#include "vmm/irq_routing.h"

#include <catch2/catch.hpp>
#include <map>

#include "arch/x86/layout.h"

namespace mote {
namespace {

std::map<uint32_t, uint32_t> IoapicGsiByPin(const std::vector<kvm_irq_routing_entry>& routes,
                                            bool* duplicate_pin) {
  std::map<uint32_t, uint32_t> by_pin;
  *duplicate_pin = false;
  for (const kvm_irq_routing_entry& e : routes) {
    if (e.type != KVM_IRQ_ROUTING_IRQCHIP || e.u.irqchip.irqchip != KVM_IRQCHIP_IOAPIC) continue;
    if (by_pin.count(e.u.irqchip.pin)) *duplicate_pin = true;
    by_pin[e.u.irqchip.pin] = e.gsi;
  }
  return by_pin;
}

// KVM acknowledges an IOAPIC pin's EOI for one GSI only: two GSIs on pin 2
// left the PIT with one tick (pit_ticks on hardware KVM).
TEST_CASE("Every IOAPIC pin has at most one GSI, and the PIT's is pin 2", "[irq_routing]") {
  bool duplicate_pin = false;
  auto by_pin = IoapicGsiByPin(IsaIrqRoutes(), &duplicate_pin);
  CHECK_FALSE(duplicate_pin);
  REQUIRE(by_pin.count(x86::kPitIoapicPin));
  CHECK(by_pin[x86::kPitIoapicPin] == 0);
  for (uint32_t pin = 0; pin < x86::kIoapicPins; ++pin) {
    if (pin == 0) continue;  // ISA IRQ 0 moved to pin 2: nothing on pin 0
    INFO("pin " << pin);
    REQUIRE(by_pin.count(pin));
    if (pin != x86::kPitIoapicPin) CHECK(by_pin[pin] == pin);
  }
}

TEST_CASE("ISA IRQs but the cascade reach the PICs", "[irq_routing]") {
  std::map<uint32_t, int> pic_routes;
  for (const kvm_irq_routing_entry& e : IsaIrqRoutes()) {
    if (e.type == KVM_IRQ_ROUTING_IRQCHIP && e.u.irqchip.irqchip != KVM_IRQCHIP_IOAPIC) {
      pic_routes[e.gsi]++;
      CHECK(e.u.irqchip.pin == e.gsi % 8);
    }
  }
  CHECK(pic_routes.size() == 15);
  CHECK(pic_routes.count(2) == 0);
}

}  // namespace
}  // namespace mote
