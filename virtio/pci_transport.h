// PciTransport: a virtio device as a modern virtio-pci function (virtio 1.2
// section 4.1): vendor 0x1af4, device 0x1040 + type, one 32-bit memory BAR0
// holding the common configuration, ISR, device configuration, notification
// area and MSI-X table/PBA, each found through a virtio vendor capability.
// Status, features and queues are TransportCore's, shared with virtio-mmio.
// Used-buffer interrupts go to the queue's MSI-X vector, configuration
// changes to the config vector; there is no INTx (interrupt pin 0).
// Queue notifications land on an eventfd per queue; NotifyHook lets the Vm
// register them as KVM ioeventfds wherever the guest puts BAR0.
// Thread-safety: config/BAR accesses from vCPU threads, notifications on the
// loop thread; one mutex serialises everything that touches the device, and
// MsixVectors has its own lock (taken inside this one).
#ifndef MOTE_VIRTIO_PCI_TRANSPORT_H_
#define MOTE_VIRTIO_PCI_TRANSPORT_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "devices/pci/config_space.h"
#include "devices/pci/msix.h"
#include "devices/pci/pci_device.h"
#include "virtio/transport_core.h"
#include "virtio/virtio_device.h"
#include "vmm/base/mutex.h"

namespace mote::virtio {

class PciTransport : public pci::PciDevice, public VirtioInterrupt {
 public:
  // BAR0 layout.
  static constexpr uint32_t kBarSize = 0x8000;
  static constexpr uint64_t kCommonOffset = 0x0000, kIsrOffset = 0x1000,
                            kDeviceConfigOffset = 0x2000, kNotifyOffset = 0x3000,
                            kMsixTableOffset = 0x4000, kMsixPbaOffset = 0x6000;
  static constexpr uint32_t kNotifyMultiplier = 4;  // queue i notifies at kNotifyOffset + 4 * i
  static constexpr uint16_t kNoVector = 0xffff;

  // Assigns (assign = true) or removes the KVM ioeventfd that signals `fd`
  // on any write to guest-physical `address`.
  using NotifyHook = std::function<absl::Status(uint64_t address, int fd, bool assign)>;

  struct Placement {
    uint32_t bar_address = 0;                   // where firmware would have put BAR0
    uint64_t window_start = 0, window_end = 0;  // BAR0 decodes only inside this window
  };

  // MSI-X vectors a device needs: one per queue, plus configuration changes.
  static uint16_t VectorCount(const VirtioDevice& device);

  // `mem`, `loop` and `router` (VectorCount(*device) vectors) must outlive
  // the transport. The hook is called for the initial BAR0 placement too.
  static absl::StatusOr<std::unique_ptr<PciTransport>> Create(
      std::shared_ptr<VirtioDevice> device, const GuestMemory* mem, EventLoop* loop,
      pci::MsiRouter* router, const Placement& placement, NotifyHook notify_hook);
  ~PciTransport() override;

  void ReadConfig(uint32_t offset, absl::Span<uint8_t> data) override;
  void WriteConfig(uint32_t offset, absl::Span<const uint8_t> data) override;
  bool ReadBar(uint64_t addr, absl::Span<uint8_t> data) override;
  bool WriteBar(uint64_t addr, absl::Span<const uint8_t> data) override;

  // Snapshot (version 1): config space bytes, MSI-X, ISR, the config and
  // queue vectors, then the core (TransportCore). Restoring routes the
  // deliverable MSI-X vectors again and moves BAR0 and its ioeventfds to
  // where the restored config space puts them.
  uint32_t state_version() const override { return 1; }
  void SaveState(StateWriter& out) override;
  absl::Status RestoreState(StateReader& in) override;

  // Called by the device with mu_ held.
  void SignalUsedBuffers(uint16_t queue) override;
  void SignalNeedsReset() override;

  uint8_t status() const;

 private:
  PciTransport(std::shared_ptr<VirtioDevice> device, pci::MsiRouter* router,
               const Placement& placement, NotifyHook notify_hook);
  void BuildCapabilities() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Accesses at `offset` inside BAR0.
  void BarRead(uint64_t offset, absl::Span<uint8_t> data) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void BarWrite(uint64_t offset, absl::Span<const uint8_t> data) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ReadCommon(uint64_t offset, absl::Span<uint8_t> data) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void WriteCommon(uint64_t offset, absl::Span<const uint8_t> data)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Follows the guest's BAR0 and memory-enable bit: moves the ioeventfds.
  void UpdateMapping() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The PCI-configuration access capability (cfg_type 5): its data window
  // reaches BAR0 at the offset the driver wrote into it.
  void PciCfgWindowRead() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void PciCfgWindowWrite() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Interrupt(uint8_t isr_bit, uint16_t vector) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ResetTransportState() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::shared_ptr<VirtioDevice> device_;
  const Placement placement_;
  const NotifyHook notify_hook_;
  pci::MsixVectors msix_;
  // BAR0's decoded base, or kUnmapped; read without the lock by ReadBar/WriteBar.
  static constexpr uint64_t kUnmapped = ~0ull;
  std::atomic<uint64_t> bar_base_{kUnmapped};

  // Declared before core_: the core takes it while it is destroyed.
  mutable Mutex mu_;
  std::unique_ptr<TransportCore> core_ ABSL_PT_GUARDED_BY(mu_);
  pci::PciConfigSpace config_ ABSL_GUARDED_BY(mu_);
  uint8_t msix_cap_ ABSL_GUARDED_BY(mu_) = 0;
  uint8_t pci_cfg_cap_ ABSL_GUARDED_BY(mu_) = 0;
  uint8_t isr_ ABSL_GUARDED_BY(mu_) = 0;
  uint16_t config_vector_ ABSL_GUARDED_BY(mu_) = kNoVector;
  std::vector<uint16_t> queue_vectors_ ABSL_GUARDED_BY(mu_);
};

}  // namespace mote::virtio

#endif  // MOTE_VIRTIO_PCI_TRANSPORT_H_
