#include "vmm/irq_routing.h"

#include <unistd.h>

#include "arch/x86/layout.h"
#include "virtio/transport_core.h"
#include "vmm/base/status_macros.h"

namespace mote {

std::vector<kvm_irq_routing_entry> IsaIrqRoutes() {
  std::vector<kvm_irq_routing_entry> routes;
  auto add = [&routes](uint32_t gsi, uint32_t chip, uint32_t pin) {
    kvm_irq_routing_entry e{};
    e.gsi = gsi;
    e.type = KVM_IRQ_ROUTING_IRQCHIP;
    e.u.irqchip.irqchip = chip;
    e.u.irqchip.pin = pin;
    routes.push_back(e);
  };
  for (uint32_t irq = 0; irq < 16; ++irq) {
    if (irq == 2) continue;  // the slave PIC's cascade input
    add(irq, irq < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE, irq % 8);
  }
  // GSI 0 (the PIT) takes IOAPIC pin 2, as the MADT override says, and GSI 2
  // gets no IOAPIC route at all: KVM remembers one GSI per pin for EOIs, so a
  // second GSI on pin 2 would swallow the EOI of the PIT's tick and the PIT
  // would never send another (QEMU leaves GSI 2 out the same way).
  for (uint32_t gsi = 0; gsi < x86::kIoapicPins; ++gsi) {
    if (gsi == x86::kPitIoapicPin) continue;
    add(gsi, KVM_IRQCHIP_IOAPIC, gsi == 0 ? x86::kPitIoapicPin : gsi);
  }
  return routes;
}

IrqRouting::IrqRouting(VmFd* vm)
    : vm_(vm), isa_routes_(IsaIrqRoutes()), next_msi_gsi_(x86::kIoapicPins) {}

absl::Status IrqRouting::InstallIsaRoutes() {
  std::lock_guard lock(mu_);
  return Commit();
}

uint32_t IrqRouting::AllocateMsiGsi() {
  std::lock_guard lock(mu_);
  return next_msi_gsi_++;
}

absl::Status IrqRouting::SetMsiRoute(uint32_t gsi, uint64_t address, uint32_t data) {
  std::lock_guard lock(mu_);
  kvm_irq_routing_entry e{};
  e.gsi = gsi;
  e.type = KVM_IRQ_ROUTING_MSI;
  e.u.msi.address_lo = static_cast<uint32_t>(address);
  e.u.msi.address_hi = static_cast<uint32_t>(address >> 32);
  e.u.msi.data = data;
  msi_routes_[gsi] = e;
  return Commit();
}

absl::Status IrqRouting::Commit() {
  std::vector<kvm_irq_routing_entry> all = isa_routes_;
  for (const auto& [gsi, e] : msi_routes_) all.push_back(e);
  return vm_->SetGsiRouting(all);
}

absl::StatusOr<std::unique_ptr<KvmMsiRouter>> KvmMsiRouter::Create(VmFd* vm, IrqRouting* routing,
                                                                   uint16_t count) {
  std::vector<Vector> vectors;
  for (uint16_t i = 0; i < count; ++i) {
    MOTE_ASSIGN_OR_RETURN(FileDescriptor fd, virtio::NewEventFd());
    uint32_t gsi = routing->AllocateMsiGsi();
    // An irqfd on a GSI without a route injects nothing until Route gives it one.
    MOTE_RETURN_IF_ERROR(vm->AddIrqFd(fd.get(), gsi));
    vectors.push_back({gsi, std::move(fd)});
  }
  return std::unique_ptr<KvmMsiRouter>(new KvmMsiRouter(routing, std::move(vectors)));
}

void KvmMsiRouter::Route(uint16_t vector, uint64_t address, uint32_t data) {
  if (absl::Status s = routing_->SetMsiRoute(vectors_[vector].gsi, address, data); !s.ok()) {
    MOTE_LOG_LIMITED(limiter_, spdlog::level::warn, "MSI-X vector {}: {}", vector, s.ToString());
  }
}

void KvmMsiRouter::Fire(uint16_t vector) { virtio::SignalEventFd(vectors_[vector].irqfd.get()); }

}  // namespace mote
