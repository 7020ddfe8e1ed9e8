// Thin RAII wrappers over the KVM ioctl API: KvmSystem (/dev/kvm), VmFd (one
// VM) and VcpuFd (one vCPU with its mmapped kvm_run). Each call returns a
// Status naming the ioctl and its context. No policy lives here.
// Thread-safety: KvmSystem and VmFd calls may come from any thread (KVM
// serialises them); a VcpuFd belongs to the thread that runs it, except
// kvm_run()->immediate_exit, which other threads may set to kick it.
#ifndef MOTE_VMM_BASE_KVM_H_
#define MOTE_VMM_BASE_KVM_H_

#include <linux/kvm.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "vmm/base/fd.h"

namespace mote {

// A kvm_cpuid2 with room for its entries.
struct CpuidEntries {
  std::vector<kvm_cpuid_entry2> entries;
  kvm_cpuid_entry2* Find(uint32_t function, uint32_t index = 0);
};

class VmFd;
class VcpuFd;

class KvmSystem {
 public:
  // Opens /dev/kvm (path overridable for tests) and checks KVM_GET_API_VERSION == 12.
  static absl::StatusOr<KvmSystem> Open(const std::string& path = "/dev/kvm");
  int CheckExtension(long capability) const;  // 0 when absent
  absl::StatusOr<CpuidEntries> GetSupportedCpuid() const;
  absl::StatusOr<std::vector<uint32_t>> GetMsrIndexList() const;
  int MaxVcpus() const;  // KVM_CAP_MAX_VCPUS, falling back to NR_VCPUS
  absl::StatusOr<VmFd> CreateVm() const;
  int fd() const { return fd_.get(); }

 private:
  explicit KvmSystem(FileDescriptor fd, int run_size) : fd_(std::move(fd)), run_size_(run_size) {}
  FileDescriptor fd_;
  int run_size_;
  friend class VmFd;
};

class VmFd {
 public:
  // KVM_CHECK_EXTENSION on this VM (some answers differ from /dev/kvm's); 0 when absent.
  int CheckExtension(long capability) const;
  absl::Status SetTssAddress(uint64_t addr);
  absl::Status SetIdentityMapAddress(uint64_t addr);
  absl::Status CreateIrqchip();
  absl::Status CreatePit2();
  // KVM_PIT_FLAGS_HPET_LEGACY: the PIT stops raising IRQ 0 while the HPET's
  // legacy replacement routing gives IRQ 0 to HPET timer 0.
  absl::Status SetPitHpetLegacy(bool enabled);
  absl::Status SetUserMemoryRegion(uint32_t slot, uint64_t guest_phys, uint64_t size, void* host);
  absl::Status SetGsiRouting(const std::vector<kvm_irq_routing_entry>& entries);
  absl::Status SetIrqLine(uint32_t irq, bool level);
  // kvmclock's VM-wide time: saved when the guest stops, restored when it
  // goes on, so the guest's clock does not move while it is paused.
  absl::StatusOr<kvm_clock_data> GetClock() const;
  absl::Status SetClock(const kvm_clock_data& clock);
  // The in-kernel PIC (chip 0 master, 1 slave) and IOAPIC (chip 2), and the
  // PIT, for snapshots.
  absl::StatusOr<kvm_irqchip> GetIrqchip(uint32_t chip_id) const;
  absl::Status SetIrqchip(const kvm_irqchip& chip);
  absl::StatusOr<kvm_pit_state2> GetPit2() const;
  absl::Status SetPit2(const kvm_pit_state2& pit);
  // Turns KVM's dirty-page log of memory slot `slot` on or off (re-registers
  // the slot with or without KVM_MEM_LOG_DIRTY_PAGES).
  absl::Status SetDirtyLogging(uint32_t slot, uint64_t guest_phys, uint64_t size, void* host,
                               bool on);
  // The slot's pages written since the last call (one bit per 4 KiB page,
  // `size` / 4096 bits), and clears the log.
  absl::StatusOr<std::vector<uint64_t>> GetDirtyLog(uint32_t slot, uint64_t size) const;
  absl::Status EnableCapability(uint32_t capability, uint64_t arg0 = 0);
  // KVM signals `event_fd` itself when the guest writes `datamatch` (len 4)
  // to MMIO address `addr`, without a userspace exit.
  absl::Status AddMmioEventFd(uint64_t addr, uint32_t len, uint64_t datamatch, int event_fd);
  // Any write to MMIO address `addr`, whatever its width, signals
  // `event_fd` (a zero-length ioeventfd); assign = false removes it.
  absl::Status SetMmioWriteEventFd(uint64_t addr, int event_fd, bool assign);
  // Signalling `event_fd` injects an edge on `gsi`.
  absl::Status AddIrqFd(int event_fd, uint32_t gsi);
  absl::StatusOr<VcpuFd> CreateVcpu(uint32_t id) const;
  int fd() const { return fd_.get(); }

 private:
  VmFd(FileDescriptor fd, int run_size) : fd_(std::move(fd)), run_size_(run_size) {}
  FileDescriptor fd_;
  int run_size_;
  friend class KvmSystem;
};

class VcpuFd {
 public:
  VcpuFd(VcpuFd&& other) noexcept;
  VcpuFd& operator=(VcpuFd&& other) noexcept;
  ~VcpuFd();

  // KVM_RUN; returns the errno (0 on success) so callers can tell EINTR/EAGAIN apart.
  int Run();
  kvm_run* run() const { return run_; }

  absl::StatusOr<kvm_regs> GetRegs() const;
  absl::Status SetRegs(const kvm_regs& regs);
  absl::StatusOr<kvm_sregs> GetSregs() const;
  absl::Status SetSregs(const kvm_sregs& sregs);
  absl::Status SetFpu(const kvm_fpu& fpu);
  absl::Status SetCpuid(const CpuidEntries& cpuid);
  absl::Status SetMsrs(const std::vector<kvm_msr_entry>& msrs);
  // As SetMsrs, but KVM may stop at an MSR it refuses: the count it set.
  absl::StatusOr<size_t> SetMsrsUpTo(absl::Span<const kvm_msr_entry> msrs);
  absl::StatusOr<kvm_lapic_state> GetLapic() const;
  absl::Status SetLapic(const kvm_lapic_state& lapic);
  absl::Status SetMpState(uint32_t state);
  absl::StatusOr<kvm_mp_state> GetMpState() const;
  // The state a snapshot saves beyond the registers above.
  absl::StatusOr<kvm_fpu> GetFpu() const;
  absl::StatusOr<kvm_xcrs> GetXcrs() const;
  absl::Status SetXcrs(const kvm_xcrs& xcrs);
  absl::StatusOr<kvm_debugregs> GetDebugRegs() const;
  absl::Status SetDebugRegs(const kvm_debugregs& regs);
  absl::StatusOr<kvm_vcpu_events> GetVcpuEvents() const;
  absl::Status SetVcpuEvents(const kvm_vcpu_events& events);
  // The XSAVE area (KVM_GET_XSAVE2 with `size` > 4096, where KVM_CAP_XSAVE2
  // says the area is bigger).
  absl::StatusOr<std::vector<uint8_t>> GetXsave(size_t size) const;
  absl::Status SetXsave(const std::vector<uint8_t>& area);
  // Reads the MSRs in `indices`; an MSR KVM refuses to read is left out of
  // the result (KVM_GET_MSRS stops at it: the rest are read on).
  absl::StatusOr<std::vector<kvm_msr_entry>> GetMsrs(const std::vector<uint32_t>& indices) const;
  // The guest TSC's frequency in kHz.
  absl::StatusOr<uint32_t> GetTscKhz() const;
  absl::Status SetTscKhz(uint32_t khz);
  uint32_t id() const { return id_; }
  int fd() const { return fd_.get(); }

 private:
  VcpuFd(FileDescriptor fd, kvm_run* run, int run_size, uint32_t id)
      : fd_(std::move(fd)), run_(run), run_size_(run_size), id_(id) {}
  FileDescriptor fd_;
  kvm_run* run_ = nullptr;
  int run_size_ = 0;
  uint32_t id_ = 0;
  friend class VmFd;
};

}  // namespace mote

#endif  // MOTE_VMM_BASE_KVM_H_
