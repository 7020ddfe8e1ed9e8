// Vm: owns everything of one virtual machine (KVM objects, guest memory,
// buses, devices, vCPU threads, the event loop) and runs it to an outcome.
// Create() builds the whole machine and loads the kernel, with the vCPU
// threads started and parked; Start() lets them go; Run() runs the event loop
// on the calling thread until the guest ends, a timeout expires, --expect
// matches or a stop signal arrives, then stops and joins every thread before
// returning.
// Thread-safety: Create, Start and Run in that order (Run may be on another
// thread); RequestEnd from any thread.
#ifndef MOTE_VMM_VM_H_
#define MOTE_VMM_VM_H_

#include <signal.h>

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "arch/x86/acpi/tables.h"
#include "arch/x86/cpuid.h"
#include "arch/x86/kernel_loader.h"
#include "devices/acpi_pm1.h"
#include "devices/cmos_rtc.h"
#include "devices/fw_cfg.h"
#include "devices/hpet.h"
#include "devices/pci/pci_root.h"
#include "devices/serial.h"
#include "virtio/mmio_transport.h"
#include "virtio/pci_transport.h"
#include "vmm/base/bus.h"
#include "vmm/base/event_loop.h"
#include "vmm/base/guest_memory.h"
#include "vmm/base/kvm.h"
#include "vmm/base/mutex.h"
#include "vmm/base/platform_hooks.h"
#include "vmm/console.h"
#include "vmm/device_kinds/device_kind.h"
#include "vmm/hpet_timers.h"
#include "vmm/irq_routing.h"
#include "vmm/loop_timer.h"
#include "vmm/outcome.h"
#include "vmm/snapshot/memory_file.h"
#include "vmm/snapshot/state_file.h"
#include "vmm/vcpu.h"
#include "vmm/vm_config.h"

namespace mote {
class PostcopyTarget;
}

namespace mote {

// What happened to a VM, for control clients (QMP events of the same names).
struct VmEvent {
  enum class Kind { kStop, kResume, kShutdown, kGuestPanicked, kSuspend, kWakeup };
  Kind kind;
  OutcomeKind outcome = OutcomeKind::kHostError;  // kShutdown, kGuestPanicked: why
};

class Vm : public GuestEventSink {
 public:
  using EventCallback = std::function<void(const VmEvent&)>;

  // Creates the KVM objects, memory and devices, loads the kernel and writes
  // the boot tables, for a `config` that passed ValidateConfig (checked once,
  // where it enters: libmote::Vm::Create). Errors name the bad input. The
  // VM's devices and host events run on `loop` (which must outlive the Vm),
  // or on a loop of its own when `loop` is null. `on_event` (optional) is
  // called on the thread where the event happens. The boot timer counts
  // from `launch_time` (the runner's start). With `incoming` (a migration
  // stream whose head was received into config.restore), the VM is built
  // from the head, then takes its RAM and state from the stream, and tells
  // the source it has them.
  static absl::StatusOr<std::unique_ptr<Vm>> Create(const VmConfig& config,
                                                    EventLoop* loop = nullptr,
                                                    EventCallback on_event = nullptr,
                                                    absl::Time launch_time = absl::Now(),
                                                    FileDescriptor incoming = FileDescriptor());
  ~Vm() override;

  // Lets the vCPUs run: Create leaves their threads parked, so starting a
  // guest costs no thread start-up. With `paused` they wait for Resume().
  // Once, before Run; any thread.
  void Start(bool paused);
  struct RunFlags {
    // SIGINT, SIGTERM and SIGHUP end the VM (OutcomeKind::kSignal). They are
    // read through a signalfd, so the process must block them in every
    // thread (StopSignals); an embedder that keeps its signals leaves it off.
    bool stop_on_signals = false;
  };
  // Runs the loop until the VM ends; every vCPU thread has been joined on
  // return.
  VmOutcome Run(RunFlags flags);

  // Stops every vCPU between instructions and returns once all are stopped;
  // Resume lets them run on. kvmclock time stands still in between, as
  // under QEMU (the raw TSC goes on). Loop thread.
  void Pause();
  void Resume();
  // ACPI S3 (--acpi full): the guest asked to sleep (OnGuestEvent posts
  // Suspend); Wakeup puts the boot vCPU at the FACS waking vector, the
  // others back to waiting for SIPI, sets WAK_STS and `why` (AcpiPm1 status
  // bits) and lets them run. FailedPrecondition when not suspended. Loop thread.
  void Suspend();
  absl::Status Wakeup(uint16_t why = 0);
  bool suspended() const { return suspended_.load(); }
  // Presses the ACPI power button (an edge on the GED's GSI): a guest that
  // listens shuts down. Any thread.
  void PressPowerButton();
  bool paused() const { return paused_.load(); }
  bool ended() const;
  const VmConfig& config() const { return config_; }
  size_t vcpu_count() const { return vcpus_.size(); }
  // KVM exits of vCPU `index` with `reason` (KVM_EXIT_*), and its host thread.
  uint64_t VcpuExitCount(size_t index, uint32_t reason) const;
  int VcpuThreadId(size_t index) const;
  // The virtio devices by kind, in registry order, each kind's in config
  // order (their counters: loop thread only).
  struct DeviceGroup {
    const DeviceKind* kind;
    VirtioDevices devices;
  };
  const std::vector<DeviceGroup>& device_groups() const { return device_groups_; }
  // The instances of one kind; empty when the VM has none.
  const VirtioDevices& devices(const DeviceKind& kind) const;

  // Ends the VM with `outcome` unless an earlier outcome was recorded.
  void RequestEnd(VmOutcome outcome);

  void OnGuestEvent(GuestEvent event, uint64_t value) override;

  // The signals that end a VM (SIGINT, SIGTERM, SIGHUP) with
  // RunFlags::stop_on_signals.
  static sigset_t StopSignals();

  // Writes a snapshot of the whole VM into `dir` (vmm/snapshot/snapshot_dir.h):
  // a running guest is stopped for it (STOP, then RESUME, as under QEMU),
  // every device's requests in flight are completed first. A device that
  // cannot be saved refuses it, named. Loop thread.
  // With `incremental`, only the pages written since this VM's last
  // snapshot go into DIR, whose state names that snapshot as its parent
  // (FailedPrecondition when there was none).
  absl::StatusOr<MemoryFileStats> Snapshot(const std::string& dir, bool incremental = false);

  // For live migration (vmm/live_migration.h). Guest RAM; the logging of
  // written pages (from the first snapshot on, or from here); the pages
  // written since the last call (any thread); and the whole device and CPU
  // state of the stopped VM as a state file (loop thread).
  const GuestMemory& memory() const { return *mem_; }
  absl::Status StartDirtyLogging();
  absl::StatusOr<PageBitmap> TakeDirtyPages();
  absl::StatusOr<std::vector<uint8_t>> SaveStateFile();
  // A state file of the machine section alone (what a migration target
  // builds the VM from); the loop thread.
  std::vector<uint8_t> SaveMachineStateFile() const;
  // Takes or lets go every device's locks on its host files (disk images):
  // a migration's source lets go at the switch-over, and takes them again
  // if the migration fails. The first error; the loop thread.
  absl::Status SetDeviceLocks(bool held);
  // QMP block_set_io_throttle: disk `id` takes `throttle` from now on, and
  // the VM's config says so (a snapshot or migration carries it). NotFound:
  // no such disk. Loop thread.
  absl::Status SetDiskThrottle(const std::string& id, const DiskThrottle& throttle);
  // The same for NIC `index` (x-mote-set-net-throttle).
  absl::Status SetNetThrottle(size_t index, const NetThrottle& throttle);

  const x86::BootSetup& boot_setup() const { return boot_; }
  std::optional<absl::Duration> boot_time() const;

 private:
  class IsaIrqLine;
  Vm(const VmConfig& config, EventLoop* loop, EventCallback on_event, absl::Time launch_time);
  absl::Status Build();
  // Guest RAM into KVM memory slots (on a helper thread: see Build).
  static absl::Status RegisterMemory(VmFd& vm, const GuestMemory& mem);
  // ACPI tables, the kernel (and initrd, command line) and the boot tables
  // into guest RAM, before KVM is opened.
  absl::Status LoadGuestImage(const x86::acpi::AcpiConfig& acpi, x86::KernelLoadRequest request);
  // What Build does while the memory slots are registered: PIT, devices, vCPUs.
  absl::Status BuildOnTopOfMemory(const VirtioDevices& virtio_devices);
  absl::Status CreateMemory();
  absl::Status CreateDevices();
  absl::Status CreateHpet();
  absl::Status CreateVcpus();
  // Makes the configured virtio devices through the registry (vmm/device_kinds),
  // opening their backends: disk files and TAPs. Errors name the bad one.
  // Returns them in slot order.
  absl::StatusOr<VirtioDevices> OpenVirtioDevices();
  absl::Status CreateVirtioMmio(const VirtioDevices& devices);
  absl::Status CreateVirtioPci(const VirtioDevices& devices);
  absl::Status WatchHostEvents(bool stop_on_signals);  // stdin, timeout, signals

  // Snapshots (vm_snapshot.cc). Every device with state, by the name its
  // section has: "pio/0x3f8/serial", "pci/00:01.0/virtio-blk", ...
  struct StatefulDevice {
    std::string name;
    BusDevice* bus = nullptr;
    pci::PciDevice* pci = nullptr;
  };
  void AddStateful(std::string name, BusDevice* bus, pci::PciDevice* pci = nullptr);
  absl::StatusOr<StateFile> SaveState();
  // Checks a snapshot's machine against this VM's (before anything is built).
  absl::Status CheckSnapshotMachine(const StateFile& file);
  absl::Status RestoreState(const StateFile& file);
  absl::Status RestoreDevices(const StateFile& file);
  // Maps a snapshot's memory, with its parents' under it (incremental ones).
  absl::Status LoadSnapshotMemory(const std::string& dir);
  // The machine section of a state file: what the VM is (CPUID, vCPUs, RAM,
  // PIT), and `devices`, the sections beside it.
  std::vector<uint8_t> EncodeMachineSection(bool suspended, std::vector<std::string> devices) const;
  // The rest of an incoming migration stream: RAM, state, post-copy.
  absl::Status ReceiveIncoming();
  FileDescriptor incoming_;
  std::string last_snapshot_dir_;  // absolute; loop thread
  bool dirty_logging_ = false;
  std::vector<StatefulDevice> stateful_;
  std::optional<StateFile> restore_from_;  // --restore: loaded by Build
  bool restore_pit_ = false;               // the snapshot's VM had a PIT
  // The kind of the virtio device in transport slot `slot` ("virtio-blk").
  std::string SlotKindName(size_t slot) const;
  // OK if `host` (this KVM's CPUID for the model) has every feature `saved` has.
  static absl::Status CheckCpuidFits(const CpuidEntries& saved, const CpuidEntries& host);
  CpuidEntries model_cpuid_;  // what every vCPU's CPUID is made from

  VmConfig config_;
  const absl::Time launch_time_;
  x86::CpuModel cpu_model_;
  std::optional<KvmSystem> kvm_;
  std::optional<VmFd> vm_fd_;
  // KVM's dirty ring where the host has it (null: the dirty bitmap); the
  // vCPUs, destroyed first, harvest it when theirs is full.
  std::unique_ptr<DirtyRings> dirty_rings_;
  std::unique_ptr<GuestMemory> mem_;
  // Post-copy: fills mem_'s pages as they are touched; gone first in ~Vm.
  std::unique_ptr<PostcopyTarget> postcopy_;
  SystemClock clock_;
  MonotonicClock monotonic_clock_;  // the HPET's and the ACPI PM timer's
  // Declared before the buses and devices, so it outlives every device that
  // watches fds on it (members are destroyed in reverse order).
  std::unique_ptr<EventLoop> own_loop_;  // when the caller gave none
  EventLoop* loop_ = nullptr;
  const EventCallback on_event_;
  void ParkVcpus();
  void UnparkVcpus();
  std::atomic<bool> paused_{false};
  std::atomic<bool> suspended_{false};
  uint64_t facs_addr_ = 0;
  std::shared_ptr<AcpiPm1> acpi_pm1_;  // --acpi full
  std::shared_ptr<CmosRtc> rtc_;
  std::unique_ptr<IsaIrqLine> rtc_irq_, sci_irq_;
  LoopTimer* RtcTimer();
  void OnRtcAlarm();
  Mutex rtc_timer_mu_;
  std::unique_ptr<LoopTimer> rtc_timer_ ABSL_GUARDED_BY(rtc_timer_mu_);
  std::optional<kvm_clock_data> paused_clock_;  // kvmclock at Pause; loop thread
  bool stdin_watched_ = false;
  Bus pio_bus_{"pio"};
  Bus mmio_bus_{"mmio"};
  std::unique_ptr<ConsoleOutput> console_;
  std::unique_ptr<IsaIrqLine> com1_irq_;
  std::shared_ptr<Serial16550> serial_;
  std::shared_ptr<FwCfg> fw_cfg_;
  // --hpet on: the timers outlive the device's use of them (the bus keeps
  // the device; the vCPUs and the loop's callbacks are gone first).
  std::unique_ptr<HpetTimers> hpet_timers_;
  std::vector<std::unique_ptr<IsaIrqLine>> hpet_irqs_;
  std::shared_ptr<Hpet> hpet_;
  std::unique_ptr<IrqRouting> irq_routing_;
  std::vector<std::unique_ptr<KvmMsiRouter>> msi_routers_;  // outlive the PCI functions
  std::unique_ptr<pci::PciRoot> pci_root_;
  std::vector<std::shared_ptr<virtio::MmioTransport>> virtio_mmio_;
  std::vector<DeviceGroup> device_groups_;
  std::vector<std::unique_ptr<Vcpu>> vcpus_;  // destroyed (joined) before the fds above
  x86::BootSetup boot_;
  FileDescriptor timer_fd_;
  FileDescriptor signal_fd_;
  bool pit_enabled_ = false;
  ConsoleEscape console_escape_;  // for stdin on a terminal; loop thread

  mutable Mutex mu_;
  std::optional<VmOutcome> outcome_ ABSL_GUARDED_BY(mu_);
  std::optional<absl::Duration> boot_time_ ABSL_GUARDED_BY(mu_);
};

}  // namespace mote

#endif  // MOTE_VMM_VM_H_
