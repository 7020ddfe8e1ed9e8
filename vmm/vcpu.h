// Vcpu: one host thread running KVM_RUN for one vCPU and dispatching its port
// and MMIO exits to the buses. It never does blocking host I/O itself. Kick()
// makes a running KVM_RUN return (immediate_exit + a signal), so Stop and
// Join always finish; Pause() parks the thread between exits until Resume(). Exit counts per reason
// are kept for the control plane. Thread-safety: Start/Join from the owner; Kick, Pause, Resume and
// counters from any thread.
#ifndef MOTE_VMM_VCPU_H_
#define MOTE_VMM_VCPU_H_

#include <array>
#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

#include "vmm/base/bus.h"
#include "vmm/base/guest_memory.h"
#include "vmm/base/kvm.h"
#include "vmm/base/seccomp_filter.h"
#include "vmm/dirty_ring.h"
#include "vmm/outcome.h"

namespace mote {

class Vcpu {
 public:
  // Called once (from this vCPU's thread) when the guest's run on this vCPU
  // must end the VM: a fatal KVM exit, or a triple fault / system event.
  using EndCallback = std::function<void(VmOutcome)>;

  // `dirty_rings` (may be null) is harvested when this vCPU's ring is full.
  // The thread installs the vCPU seccomp filter on itself in `seccomp` mode
  // before its first KVM_RUN.
  Vcpu(VcpuFd fd, const Bus* pio_bus, const Bus* mmio_bus, const GuestMemory* mem,
       EndCallback on_end, DirtyRings* dirty_rings = nullptr,
       SeccompMode seccomp = SeccompMode::kOff);
  ~Vcpu();

  void Start();
  // Asks the thread to leave KVM_RUN and stop; safe before Start and repeatedly.
  void Kick();
  void Join();
  // Parks the vCPU thread outside KVM_RUN and waits until it is parked (or
  // has ended).
  void Pause();
  void Resume();

  VcpuFd& fd() { return fd_; }
  uint64_t ExitCount(uint32_t reason) const;
  // The host thread's id (gettid), 0 before it started.
  int thread_id() const { return thread_id_.load(); }

  // Installs the (empty) kick signal handler once per process.
  static void InstallKickSignalHandler();

 private:
  void Loop();
  // Leaves KVM_RUN soon, without asking the thread to end.
  void Interrupt();
  // Parks while pause_requested_; on the vCPU thread.
  void ParkIfPaused();
  // Handles one exit; false when the vCPU must stop.
  bool HandleExit();

  static constexpr size_t kExitReasons = 64;
  VcpuFd fd_;
  const Bus* const pio_bus_;
  const Bus* const mmio_bus_;
  const GuestMemory* const mem_;
  const EndCallback on_end_;
  DirtyRings* const dirty_rings_;
  const SeccompMode seccomp_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> started_{false};
  std::atomic<int> thread_id_{0};
  std::thread thread_;
  std::array<std::atomic<uint64_t>, kExitReasons> exit_counts_{};
  // Pause hand-shake (std::mutex: the vCPU thread waits on it).
  std::mutex pause_mu_;
  std::condition_variable pause_cv_;
  bool pause_requested_ = false;            // guarded by pause_mu_
  bool parked_ = false;                     // guarded by pause_mu_
  bool ended_ = false;                      // guarded by pause_mu_: the thread left Loop
  std::atomic<bool> pause_pending_{false};  // a cheap copy of pause_requested_ for Loop
};

}  // namespace mote

#endif  // MOTE_VMM_VCPU_H_
