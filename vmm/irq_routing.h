// IrqRouting: mote's copy of the VM's KVM GSI routing table. KVM only takes
// the whole table at once, so the ISA/IOAPIC routes and every MSI route live
// here and each change resubmits them all. MSI routes get GSIs from 24 up
// (above the IOAPIC pins).
// KvmMsiRouter: the MSI-X vectors of one PCI function as KVM sees them: a
// GSI and an irqfd per vector; Route rewrites the GSI's MSI route, Fire
// signals the irqfd (so the interrupt is injected without an ioctl).
// Thread-safety: IrqRouting locks; KvmMsiRouter is called under its
// MsixVectors' lock.
#ifndef MOTE_VMM_IRQ_ROUTING_H_
#define MOTE_VMM_IRQ_ROUTING_H_

#include <linux/kvm.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "absl/status/statusor.h"
#include "devices/pci/msix.h"
#include "vmm/base/fd.h"
#include "vmm/base/kvm.h"
#include "vmm/base/logging.h"

namespace mote {

// The ISA routes: IRQs 0-15 (but 2) to the PICs, GSIs 0-23 to the IOAPIC
// with GSI 0 on pin 2, and at most one GSI per IOAPIC pin.
std::vector<kvm_irq_routing_entry> IsaIrqRoutes();

class IrqRouting {
 public:
  explicit IrqRouting(VmFd* vm);

  // ISA IRQs to both PICs and the IOAPIC, IOAPIC pins 16-23, and ISA IRQ 0
  // (the PIT) to IOAPIC pin 2 as the MADT override says.
  absl::Status InstallIsaRoutes();
  uint32_t AllocateMsiGsi();
  absl::Status SetMsiRoute(uint32_t gsi, uint64_t address, uint32_t data);

 private:
  absl::Status Commit();  // with mu_ held

  VmFd* const vm_;
  std::mutex mu_;
  std::vector<kvm_irq_routing_entry> isa_routes_;
  std::map<uint32_t, kvm_irq_routing_entry> msi_routes_;  // by GSI
  uint32_t next_msi_gsi_;
};

class KvmMsiRouter : public pci::MsiRouter {
 public:
  static absl::StatusOr<std::unique_ptr<KvmMsiRouter>> Create(VmFd* vm, IrqRouting* routing,
                                                              uint16_t vectors);
  void Route(uint16_t vector, uint64_t address, uint32_t data) override;
  void Fire(uint16_t vector) override;

 private:
  struct Vector {
    uint32_t gsi;
    FileDescriptor irqfd;
  };
  KvmMsiRouter(IrqRouting* routing, std::vector<Vector> vectors)
      : routing_(routing), vectors_(std::move(vectors)) {}

  IrqRouting* const routing_;
  const std::vector<Vector> vectors_;
  RateLimiter limiter_;
};

}  // namespace mote

#endif  // MOTE_VMM_IRQ_ROUTING_H_
