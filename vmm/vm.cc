#include "vmm/vm.h"

#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <future>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "arch/x86/acpi/tables.h"
#include "arch/x86/cpuid.h"
#include "arch/x86/layout.h"
#include "arch/x86/memory_map.h"
#include "arch/x86/registers.h"
#include "arch/x86/reset_vector.h"
#include "devices/acpi_pm1.h"
#include "vmm/base/logging.h"
#include "vmm/base/seccomp_filter.h"
#include "vmm/base/status_macros.h"
#include "vmm/config_json.h"
#include "vmm/device_kinds/platform.h"
#include "vmm/device_kinds/virtio_blk.h"
#include "vmm/device_kinds/virtio_net.h"
#include "vmm/snapshot/postcopy_target.h"
#include "vmm/snapshot/snapshot_dir.h"
#include "vmm/startup_timings.h"

namespace mote {
namespace {

constexpr uint64_t kTssAddr = 0xfffbd000;  // 3 pages KVM needs on Intel, inside the MMIO hole

// Room for one virtio-pci function per slot after the host bridge.
constexpr size_t kMaxPciDevices = pci::kSlotCount - 1;

// The --fw-cfg items with their bytes: files are read here, before any KVM
// object exists, so an unreadable one is reported first.
absl::StatusOr<std::vector<FwCfgFile>> ReadFwCfgItems(const std::vector<FwCfgConfig>& items) {
  std::vector<FwCfgFile> files;
  for (const FwCfgConfig& item : items) {
    FwCfgFile& file = files.emplace_back();
    file.name = item.name;
    if (item.file.empty()) {
      file.data.assign(item.string.begin(), item.string.end());
    } else {
      MOTE_ASSIGN_OR_RETURN(file.data, ReadFwCfgFile(item.file, item.name));
    }
  }
  return files;
}

}  // namespace

sigset_t Vm::StopSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  return set;
}

// An ISA interrupt line into the in-kernel PIC/IOAPIC pair.
class Vm::IsaIrqLine : public IrqLine {
 public:
  IsaIrqLine(VmFd* vm, uint32_t gsi) : vm_(vm), gsi_(gsi) {}
  void SetLevel(bool asserted) override {
    if (absl::Status s = vm_->SetIrqLine(gsi_, asserted); !s.ok()) {
      MOTE_LOG_LIMITED(limiter_, spdlog::level::warn, "{}", s.ToString());
    }
  }

 private:
  VmFd* const vm_;
  const uint32_t gsi_;
  RateLimiter limiter_;
};

absl::StatusOr<std::unique_ptr<Vm>> Vm::Create(const VmConfig& config, EventLoop* loop,
                                               EventCallback on_event, absl::Time launch_time,
                                               FileDescriptor incoming) {
  VmConfig named = config;
  FillDefaultNames(named);
  std::unique_ptr<Vm> vm(new Vm(named, loop, std::move(on_event), launch_time));
  vm->incoming_ = std::move(incoming);
  MOTE_RETURN_IF_ERROR(vm->Build());
  return vm;
}

Vm::Vm(const VmConfig& config, EventLoop* loop, EventCallback on_event, absl::Time launch_time)
    : config_(config), launch_time_(launch_time), loop_(loop), on_event_(std::move(on_event)) {}

Vm::~Vm() {
  // A vCPU waiting for a post-copy page is let go first (it reads zeros).
  postcopy_.reset();
  for (auto& v : vcpus_) v->Kick();
  vcpus_.clear();  // joins
  // A shared loop outlives this VM: take its host fds off it.
  if (loop_ != nullptr) {
    if (timer_fd_.ok()) (void)loop_->Remove(timer_fd_.get());
    if (signal_fd_.ok()) (void)loop_->Remove(signal_fd_.get());
    if (stdin_watched_) (void)loop_->Remove(STDIN_FILENO);
  }
}

void Vm::ParkVcpus() {
  for (auto& v : vcpus_) v->Pause();
  absl::StatusOr<kvm_clock_data> clock = vm_fd_->GetClock();
  if (clock.ok())
    paused_clock_ = *clock;
  else
    spdlog::warn("pause: {}", clock.status().ToString());
}

void Vm::UnparkVcpus() {
  if (paused_clock_.has_value()) {
    if (absl::Status s = vm_fd_->SetClock(*paused_clock_); !s.ok())
      spdlog::warn("resume: {}", s.ToString());
    paused_clock_.reset();
  }
  for (auto& v : vcpus_) v->Resume();
}

// The vCPUs run while the VM is neither stopped (Pause) nor suspended (S3).
void Vm::Pause() {
  if (paused_.exchange(true)) return;
  if (!suspended_) ParkVcpus();
  if (on_event_) on_event_({VmEvent::Kind::kStop});
}

void Vm::Resume() {
  if (!paused_.exchange(false)) return;
  if (!suspended_) UnparkVcpus();
  if (on_event_) on_event_({VmEvent::Kind::kResume});
}

void Vm::Suspend() {
  if (suspended_.load() || ended()) return;
  if (!paused_) ParkVcpus();
  suspended_ = true;
  spdlog::info("guest suspended to RAM (ACPI S3)");
  if (on_event_) on_event_({VmEvent::Kind::kSuspend});
}

absl::Status Vm::Wakeup(uint16_t why) {
  if (!suspended_.load()) {
    return absl::FailedPreconditionError("Unable to wake up: guest is not in suspended state");
  }
  // The guest's 16-bit waking vector in the FACS (offset 12), written before it slept.
  absl::StatusOr<uint32_t> vector = mem_->ReadObj<uint32_t>(GuestAddress{facs_addr_ + 12});
  if (!vector.ok() || *vector == 0) {
    RequestEnd({OutcomeKind::kReset, 0, "guest woke from S3 with no waking vector: a reset"});
    return absl::OkStatus();
  }
  for (size_t i = 0; i < vcpus_.size(); ++i) {
    VcpuFd& fd = vcpus_[i]->fd();
    if (i == 0) {
      MOTE_ASSIGN_OR_RETURN(kvm_sregs sregs, fd.GetSregs());
      MOTE_RETURN_IF_ERROR(fd.SetSregs(x86::WakeSregs(sregs, *vector)));
      MOTE_RETURN_IF_ERROR(fd.SetRegs(x86::WakeRegs(*vector)));
      MOTE_RETURN_IF_ERROR(fd.SetMpState(KVM_MP_STATE_RUNNABLE));
    } else {
      // As after power-on: waiting for the OS's INIT and SIPI.
      MOTE_RETURN_IF_ERROR(fd.SetMpState(KVM_MP_STATE_INIT_RECEIVED));
    }
  }
  if (acpi_pm1_ != nullptr) acpi_pm1_->Wake(why);
  suspended_ = false;
  if (!paused_) UnparkVcpus();
  spdlog::info("guest woke from S3 at 0x{:x}", *vector);
  if (on_event_) on_event_({VmEvent::Kind::kWakeup});
  return absl::OkStatus();
}

// Made on the RTC's first alarm: a guest that sets none pays nothing.
LoopTimer* Vm::RtcTimer() {
  MutexLock lock(&rtc_timer_mu_);
  if (rtc_timer_ == nullptr) {
    absl::StatusOr<std::unique_ptr<LoopTimer>> timer =
        LoopTimer::Create(loop_, CLOCK_REALTIME, [this] { rtc_->OnAlarmTimer(); });
    if (!timer.ok()) {
      spdlog::warn("RTC alarm: {}", timer.status().ToString());
      return nullptr;
    }
    rtc_timer_ = std::move(*timer);
  }
  return rtc_timer_.get();
}

void Vm::OnRtcAlarm() {
  // RTC_STS; with RTC_EN the alarm also wakes a guest suspended to RAM.
  if (acpi_pm1_ != nullptr && acpi_pm1_->RtcAlarm() && suspended_.load()) {
    loop_->Post([this] { (void)Wakeup(AcpiPm1::kRtcStatus); });
  }
}

void Vm::PressPowerButton() {
  if (suspended_.load()) {
    // A sleeping guest wakes on its power button, as a PC does.
    loop_->Post([this] { (void)Wakeup(AcpiPm1::kPowerButtonStatus); });
    return;
  }
  // An edge: the IOAPIC pin is edge-triggered (the GED's _CRS says so).
  for (bool level : {true, false}) {
    if (absl::Status s = vm_fd_->SetIrqLine(x86::kGedGsi, level); !s.ok()) {
      spdlog::warn("power button: {}", s.ToString());
    }
  }
}

bool Vm::ended() const {
  MutexLock lock(&mu_);
  return outcome_.has_value();
}

uint64_t Vm::VcpuExitCount(size_t index, uint32_t reason) const {
  return index < vcpus_.size() ? vcpus_[index]->ExitCount(reason) : 0;
}

int Vm::VcpuThreadId(size_t index) const {
  return index < vcpus_.size() ? vcpus_[index]->thread_id() : 0;
}

absl::Status Vm::Build() {
  MOTE_ASSIGN_OR_RETURN(cpu_model_, x86::ParseCpuModel(config_.cpu));
  if (!config_.restore.empty()) {
    // A bad snapshot is refused before anything is opened.
    MOTE_ASSIGN_OR_RETURN(restore_from_, ReadSnapshotState(config_.restore));
    MOTE_RETURN_IF_ERROR(CheckSnapshotMachine(*restore_from_));
  }
  // The user's files and TAPs first, so a bad --disk or --net is reported
  // before anything else; each device takes the next virtio-mmio slot and GSI.
  MOTE_ASSIGN_OR_RETURN(VirtioDevices virtio_devices, OpenVirtioDevices());
  FwCfgContents fw_cfg;
  MOTE_ASSIGN_OR_RETURN(fw_cfg.files, ReadFwCfgItems(config_.fw_cfg));
  bool pci = config_.transport == VirtioTransport::kPci;
  size_t room = pci ? kMaxPciDevices : std::size(x86::kVirtioMmioGsis);
  if (virtio_devices.size() > room) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%d virtio devices: mote has room for %d on virtio-%s",
                        virtio_devices.size(), room, pci ? "pci" : "mmio"));
  }
  // Guest RAM, the firmware tables and the kernel need no KVM: a bad kernel,
  // initrd or command line is reported before any KVM object exists (and on
  // a host without KVM). Only the copying of a big kernel and initrd leaves
  // the overlap with memory registration below; a tiny kernel's costs µs.
  x86::acpi::AcpiConfig acpi;
  acpi.num_cpus = config_.cpus;
  x86::KernelLoadRequest request;
  request.kernel_path = config_.kernel;
  request.initrd_path = config_.initrd;
  request.cmdline = config_.cmdline;
  acpi.pci_host_bridge = pci;
  acpi.hardware_reduced = config_.acpi == AcpiMode::kReduced;
  if (config_.hpet) {
    acpi.hpet_block_id = Hpet::kEventTimerBlockId;
    acpi.hpet_min_tick = static_cast<uint16_t>(Hpet::kMinPeriodicTicks);
  }
  for (size_t slot = 0; !pci && slot < virtio_devices.size(); ++slot) {
    uint64_t base = x86::kVirtioMmioStart + slot * x86::kVirtioMmioSlotSize;
    // Described twice, as Firecracker does: on the command line for kernels
    // without ACPI, and in the DSDT.
    absl::StrAppendFormat(&request.cmdline, "%svirtio_mmio.device=4K@0x%x:%d",
                          request.cmdline.empty() ? "" : " ", base, x86::kVirtioMmioGsis[slot]);
    acpi.virtio_mmio.push_back({base, x86::kVirtioMmioSlotSize, x86::kVirtioMmioGsis[slot]});
  }
  MOTE_ASSIGN_OR_RETURN(mem_,
                        GuestMemory::Create(x86::RamRegions(config_.memory_bytes),
                                            config_.hugepages ? GuestMemory::Pages::kHuge2M
                                                              : GuestMemory::Pages::kTransparent));
  fw_cfg.cpus = static_cast<uint16_t>(config_.cpus);
  fw_cfg.ram_bytes = config_.memory_bytes;
  fw_cfg.cmdline = request.cmdline;
  MOTE_ASSIGN_OR_RETURN(fw_cfg_, FwCfg::Create(std::move(fw_cfg), mem_.get()));
  if (incoming_.ok()) {
    // Migrated in: RAM comes from the stream once the VM is built.
  } else if (restore_from_) {
    // The snapshot's RAM, mapped copy-on-write: nothing is read until touched.
    MOTE_RETURN_IF_ERROR(LoadSnapshotMemory(config_.restore));
  } else {
    MOTE_RETURN_IF_ERROR(LoadGuestImage(acpi, std::move(request)));
  }
  startup::Mark(startup::Phase::kKernelLoaded);

  absl::StatusOr<KvmSystem> kvm = KvmSystem::Open(config_.kvm_device);
  if (!kvm.ok()) {
    return absl::Status(kvm.status().code(),
                        "cannot use KVM: " + std::string(kvm.status().message()) +
                            " (mote needs read/write access to " + config_.kvm_device + ")");
  }
  kvm_.emplace(std::move(*kvm));
  int max_vcpus = kvm_->MaxVcpus();
  if (config_.cpus > static_cast<uint32_t>(max_vcpus)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "--cpus %d: this host's KVM allows at most %d vCPUs", config_.cpus, max_vcpus));
  }
  MOTE_ASSIGN_OR_RETURN(VmFd vm_fd, kvm_->CreateVm());
  vm_fd_.emplace(std::move(vm_fd));
  MOTE_RETURN_IF_ERROR(vm_fd_->SetTssAddress(kTssAddr));
  MOTE_RETURN_IF_ERROR(vm_fd_->CreateIrqchip());
  // Only now, before any vCPU: KVM takes the dirty ring at no other time.
  MOTE_ASSIGN_OR_RETURN(dirty_rings_, DirtyRings::Enable(&*vm_fd_, config_.dirty_ring));
  startup::Mark(startup::Phase::kVmCreated);
  // With the irqchip in place, registering guest RAM waits several ms for
  // KVM (an SRCU grace period, mostly asleep): it runs on a thread of its own
  // while the devices and vCPUs are set up, and is joined before Build
  // returns (the future's destructor waits on an early return).
  std::future<absl::Status> memory_slots = std::async(
      std::launch::async, [vm = &*vm_fd_, mem = mem_.get()] { return RegisterMemory(*vm, *mem); });
  absl::Status built = BuildOnTopOfMemory(virtio_devices);
  absl::Status registered = memory_slots.get();
  if (!built.ok()) return built;
  MOTE_RETURN_IF_ERROR(registered);
  if (restore_from_) {
    if (incoming_.ok()) {
      MOTE_RETURN_IF_ERROR(ReceiveIncoming());
    } else {
      MOTE_RETURN_IF_ERROR(RestoreState(*restore_from_));
    }
    restore_from_.reset();
  }
  return absl::OkStatus();
}

absl::Status Vm::LoadGuestImage(const x86::acpi::AcpiConfig& acpi, x86::KernelLoadRequest request) {
  MOTE_ASSIGN_OR_RETURN(uint64_t rsdp, x86::acpi::WriteAcpiTables(*mem_, acpi, &facs_addr_));
  request.ram_bytes = config_.memory_bytes;
  request.acpi_rsdp_addr = rsdp;
  MOTE_ASSIGN_OR_RETURN(boot_, x86::LoadKernel(*mem_, request));
  MOTE_RETURN_IF_ERROR(x86::WriteBootTables(*mem_, boot_.mode));
  MOTE_RETURN_IF_ERROR(x86::WriteResetVector(*mem_));
  spdlog::debug("kernel {}: {}, entry 0x{:x}", config_.kernel, boot_.format_name, boot_.entry);
  return absl::OkStatus();
}

absl::Status Vm::RegisterMemory(VmFd& vm, const GuestMemory& mem) {
  const auto& regions = mem.regions();
  for (uint32_t slot = 0; slot < regions.size(); ++slot) {
    MOTE_RETURN_IF_ERROR(vm.SetUserMemoryRegion(slot, regions[slot].guest_base, regions[slot].size,
                                                regions[slot].host));
  }
  startup::Mark(startup::Phase::kMemoryRegistered);
  return absl::OkStatus();
}

absl::Status Vm::BuildOnTopOfMemory(const VirtioDevices& virtio_devices) {
  bool pci = config_.transport == VirtioTransport::kPci;
  // A Linux kernel calibrates against the PIT; the tiny kernels do not need it,
  // and it costs ~15 ms of VM teardown here (README: "Choosing the PIT").
  pit_enabled_ =
      restore_from_ ? restore_pit_
                    : config_.pit == PitMode::kOn ||
                          (config_.pit == PitMode::kAuto && boot_.mode == x86::EntryMode::kLinux64);
  if (pit_enabled_) {
    MOTE_RETURN_IF_ERROR(vm_fd_->CreatePit2());
  }
  irq_routing_ = std::make_unique<IrqRouting>(&*vm_fd_);
  // KVM's default routing differs only for IRQ 0; MSI routes replace the
  // table anyway, so it is only worth an ioctl for the PIT now.
  if (pit_enabled_) MOTE_RETURN_IF_ERROR(irq_routing_->InstallIsaRoutes());
  if (loop_ == nullptr) {
    MOTE_ASSIGN_OR_RETURN(own_loop_, EventLoop::Create());
    loop_ = own_loop_.get();
  }
  MOTE_RETURN_IF_ERROR(CreateDevices());
  MOTE_RETURN_IF_ERROR(pci ? CreateVirtioPci(virtio_devices) : CreateVirtioMmio(virtio_devices));
  if (config_.hpet) MOTE_RETURN_IF_ERROR(CreateHpet());
  MOTE_RETURN_IF_ERROR(CreateVcpus());
  startup::Mark(startup::Phase::kVcpusCreated);
  return absl::OkStatus();
}

absl::StatusOr<VirtioDevices> Vm::OpenVirtioDevices() {
  VirtioDevices in_slot_order;
  for (const DeviceKind* kind : DeviceKinds()) {
    MOTE_ASSIGN_OR_RETURN(VirtioDevices devices, kind->open(config_));
    in_slot_order.insert(in_slot_order.end(), devices.begin(), devices.end());
    device_groups_.push_back({kind, std::move(devices)});
  }
  return in_slot_order;
}

const VirtioDevices& Vm::devices(const DeviceKind& kind) const {
  static const VirtioDevices kNone;
  for (const DeviceGroup& group : device_groups_) {
    if (group.kind == &kind) return group.devices;
  }
  return kNone;
}

absl::Status Vm::SetDiskThrottle(const std::string& id, const DiskThrottle& throttle) {
  const VirtioDevices& disks = devices(kVirtioBlk);
  for (size_t i = 0; i < config_.disks.size() && i < disks.size(); ++i) {
    if (config_.disks[i].id != id) continue;
    config_.disks[i].throttle = throttle;
    kVirtioBlk.set_limits(*disks[i], DiskLimits(throttle));
    return absl::OkStatus();
  }
  return absl::NotFoundError("Device '" + id + "' not found");
}

absl::Status Vm::SetNetThrottle(size_t index, const NetThrottle& throttle) {
  const VirtioDevices& nics = devices(kVirtioNet);
  if (index >= nics.size() || index >= config_.nets.size()) {
    return absl::NotFoundError("NIC " + std::to_string(index) + " not found");
  }
  config_.nets[index].throttle = throttle;
  kVirtioNet.set_limits(*nics[index], NetLimits(throttle));
  return absl::OkStatus();
}

absl::Status Vm::CreateVirtioPci(const VirtioDevices& devices) {
  pci_root_ = std::make_unique<pci::PciRoot>();
  MOTE_RETURN_IF_ERROR(pio_bus_.Insert(pci_root_->config_ports(), x86::kPciConfigAddressPort,
                                       pci::kConfigPortCount));
  AddStateful(absl::StrFormat("pio/0x%x/pci-config", x86::kPciConfigAddressPort),
              pci_root_->config_ports().get());
  MOTE_RETURN_IF_ERROR(mmio_bus_.Insert(pci_root_->ecam(), x86::kPciEcamStart, x86::kPciEcamSize));
  MOTE_RETURN_IF_ERROR(mmio_bus_.Insert(pci_root_->bar_window(x86::kPciMmioStart),
                                        x86::kPciMmioStart, x86::kPciMmioEnd - x86::kPciMmioStart));
  VmFd* vm_fd = &*vm_fd_;
  auto notify_hook = [vm_fd](uint64_t address, int fd, bool assign) {
    return vm_fd->SetMmioWriteEventFd(address, fd, assign);
  };
  for (size_t i = 0; i < devices.size(); ++i) {
    MOTE_ASSIGN_OR_RETURN(std::unique_ptr<KvmMsiRouter> router,
                          KvmMsiRouter::Create(vm_fd, irq_routing_.get(),
                                               virtio::PciTransport::VectorCount(*devices[i])));
    // BAR0s side by side from the window's start, as firmware would assign them.
    virtio::PciTransport::Placement placement;
    placement.bar_address =
        static_cast<uint32_t>(x86::kPciMmioStart + i * virtio::PciTransport::kBarSize);
    placement.window_start = x86::kPciMmioStart;
    placement.window_end = x86::kPciMmioEnd;
    MOTE_ASSIGN_OR_RETURN(std::shared_ptr<virtio::PciTransport> transport,
                          virtio::PciTransport::Create(devices[i], mem_.get(), loop_, router.get(),
                                                       placement, notify_hook));
    msi_routers_.push_back(std::move(router));
    pci::PciDevice* function = transport.get();
    MOTE_ASSIGN_OR_RETURN(int slot, pci_root_->AddDevice(std::move(transport)));
    AddStateful(absl::StrFormat("pci/00:%02x.0/%s", slot, SlotKindName(i)), nullptr, function);
  }
  return absl::OkStatus();
}

absl::Status Vm::CreateVirtioMmio(const VirtioDevices& devices) {
  for (size_t slot = 0; slot < devices.size(); ++slot) {
    uint64_t base = x86::kVirtioMmioStart + slot * x86::kVirtioMmioSlotSize;
    MOTE_ASSIGN_OR_RETURN(std::shared_ptr<virtio::MmioTransport> transport,
                          virtio::MmioTransport::Create(devices[slot], mem_.get(), loop_));
    MOTE_RETURN_IF_ERROR(vm_fd_->AddIrqFd(transport->interrupt_fd(), x86::kVirtioMmioGsis[slot]));
    // Queue notifications skip the vCPU exit: KVM signals the queue's eventfd.
    for (uint16_t q = 0; q < transport->num_queues(); ++q) {
      MOTE_RETURN_IF_ERROR(vm_fd_->AddMmioEventFd(base + virtio::MmioTransport::kQueueNotifyOffset,
                                                  4, q, transport->queue_notify_fd(q)));
    }
    MOTE_RETURN_IF_ERROR(mmio_bus_.Insert(transport, base, x86::kVirtioMmioSlotSize));
    AddStateful(absl::StrFormat("mmio/0x%x/%s", base, SlotKindName(slot)), transport.get());
    virtio_mmio_.push_back(std::move(transport));
  }
  return absl::OkStatus();
}

absl::Status Vm::CreateDevices() {
  MOTE_ASSIGN_OR_RETURN(console_, ConsoleOutput::Create(config_.console, config_.expect, [this] {
                          RequestEnd({OutcomeKind::kExpectMatched, 0, "console matched --expect"});
                        }));
  com1_irq_ = std::make_unique<IsaIrqLine>(&*vm_fd_, x86::kCom1Irq);
  serial_ = std::make_shared<Serial16550>(console_.get(), com1_irq_.get());
  MOTE_RETURN_IF_ERROR(pio_bus_.Insert(serial_, x86::kCom1Port, Serial16550::kRegisterCount));
  AddStateful(absl::StrFormat("pio/0x%x/serial", x86::kCom1Port), serial_.get());
  static_assert(FwCfg::kPortCount == x86::kFwCfgPortCount);
  MOTE_RETURN_IF_ERROR(pio_bus_.Insert(fw_cfg_, x86::kFwCfgPort, x86::kFwCfgPortCount));
  AddStateful(absl::StrFormat("pio/0x%x/fw-cfg", x86::kFwCfgPort), fw_cfg_.get());
  rtc_irq_ = std::make_unique<IsaIrqLine>(&*vm_fd_, x86::kRtcIrq);
  sci_irq_ = std::make_unique<IsaIrqLine>(&*vm_fd_, x86::kAcpiSciIrq);
  RtcAlarmWiring rtc_alarm{.arm =
                               [this](absl::Time when) {
                                 if (LoopTimer* timer = RtcTimer()) timer->Arm(when);
                               },
                           .disarm =
                               [this] {
                                 if (LoopTimer* timer = RtcTimer()) timer->Disarm();
                               },
                           .irq = rtc_irq_.get(),
                           .on_alarm = [this] { OnRtcAlarm(); }};
  PlatformWiring wiring{.events = this,
                        .clock = &clock_,
                        .monotonic = &monotonic_clock_,
                        .acpi_full = config_.acpi == AcpiMode::kFull,
                        .rtc_alarm = std::move(rtc_alarm),
                        .sci = sci_irq_.get()};
  for (const PortDevice& device : PlatformPortDevices()) {
    std::shared_ptr<BusDevice> made = device.make(wiring);
    if (device.name == "acpi-pm1") acpi_pm1_ = std::dynamic_pointer_cast<AcpiPm1>(made);
    if (device.name == "cmos-rtc") rtc_ = std::dynamic_pointer_cast<CmosRtc>(made);
    if (made == nullptr) continue;
    MOTE_RETURN_IF_ERROR(pio_bus_.Insert(made, device.port, device.port_count));
    AddStateful(absl::StrFormat("pio/0x%x/%s", device.port, device.name), made.get());
  }
  return absl::OkStatus();
}

// The HPET's interrupts may go to the legacy pins 2 and 8 (PIT and RTC) and
// to the IOAPIC-only pins no virtio-mmio device of this VM holds.
absl::Status Vm::CreateHpet() {
  MOTE_ASSIGN_OR_RETURN(hpet_timers_, HpetTimers::Create(loop_, pit_enabled_ ? &*vm_fd_ : nullptr));
  Hpet::IrqPins pins{};
  uint32_t route_cap = 0;
  auto wire = [&](uint32_t pin) {
    hpet_irqs_.push_back(std::make_unique<IsaIrqLine>(&*vm_fd_, pin));
    pins[pin] = hpet_irqs_.back().get();
    route_cap |= 1u << pin;
  };
  wire(x86::kPitIoapicPin);
  wire(x86::kRtcIrq);
  size_t mmio_used = virtio_mmio_.size();
  for (uint32_t pin = 16; pin < x86::kGedGsi; ++pin) {
    const uint32_t* end = std::begin(x86::kVirtioMmioGsis) + mmio_used;
    if (std::find(std::begin(x86::kVirtioMmioGsis), end, pin) == end) wire(pin);
  }
  hpet_ = std::make_shared<Hpet>(&monotonic_clock_, hpet_timers_.get(), pins, route_cap);
  MOTE_RETURN_IF_ERROR(hpet_timers_->Attach(hpet_.get()));
  AddStateful(absl::StrFormat("mmio/0x%x/hpet", x86::kHpetAddr), hpet_.get());
  return mmio_bus_.Insert(hpet_, x86::kHpetAddr, Hpet::kMmioSize);
}

absl::Status Vm::CreateVcpus() {
  MOTE_ASSIGN_OR_RETURN(CpuidEntries supported, kvm_->GetSupportedCpuid());
  bool tsc_deadline = kvm_->CheckExtension(KVM_CAP_TSC_DEADLINE_TIMER) > 0;
  absl::StatusOr<CpuidEntries> cpuid = x86::ModelCpuid(supported, cpu_model_, tsc_deadline);
  if (!cpuid.ok()) {
    return absl::InvalidArgumentError("--cpu " + config_.cpu + ": " +
                                      std::string(cpuid.status().message()));
  }
  if (restore_from_) {
    // The guest must see the CPUID it saw before, and this host must give it.
    MOTE_RETURN_IF_ERROR(CheckCpuidFits(model_cpuid_, *cpuid));
    cpuid = model_cpuid_;
  }
  model_cpuid_ = *cpuid;
  Vcpu::InstallKickSignalHandler();
  for (uint32_t id = 0; id < config_.cpus; ++id) {
    MOTE_ASSIGN_OR_RETURN(VcpuFd fd, vm_fd_->CreateVcpu(id));
    MOTE_RETURN_IF_ERROR(fd.SetCpuid(x86::VcpuCpuid(*cpuid, id, config_.cpus)));
    MOTE_RETURN_IF_ERROR(x86::SetupCommonVcpuState(fd));
    // Application processors stay in wait-for-SIPI inside the in-kernel LAPIC.
    if (id == 0 && !restore_from_) MOTE_RETURN_IF_ERROR(x86::SetupBootVcpu(fd, boot_));
    auto vcpu = std::make_unique<Vcpu>(
        std::move(fd), &pio_bus_, &mmio_bus_, mem_.get(),
        [this](VmOutcome o) { RequestEnd(std::move(o)); }, dirty_rings_.get(),
        SeccompModeOf(config_));
    // The thread starts now and parks until Start: its start-up overlaps
    // the memory-slot registration instead of delaying the first KVM_RUN.
    vcpu->Pause();
    vcpu->Start();
    vcpus_.push_back(std::move(vcpu));
  }
  return absl::OkStatus();
}

absl::Status Vm::WatchHostEvents(bool stop_on_signals) {
  if (config_.timeout > 0) {
    absl::Duration timeout = absl::Seconds(config_.timeout);
    timer_fd_.Reset(timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK));
    if (!timer_fd_.ok()) return ErrnoToStatus(errno, "timerfd_create");
    itimerspec spec{};
    spec.it_value = absl::ToTimespec(timeout);
    if (timerfd_settime(timer_fd_.get(), 0, &spec, nullptr) != 0) {
      return ErrnoToStatus(errno, "timerfd_settime");
    }
    MOTE_RETURN_IF_ERROR(loop_->Add(timer_fd_.get(), EPOLLIN, [this, timeout](uint32_t) {
      RequestEnd({OutcomeKind::kTimeout, 0,
                  absl::StrFormat("timeout after %s", absl::FormatDuration(timeout))});
    }));
  }

  if (stop_on_signals) {
    sigset_t stop_signals = StopSignals();
    signal_fd_.Reset(signalfd(-1, &stop_signals, SFD_CLOEXEC | SFD_NONBLOCK));
    if (!signal_fd_.ok()) return ErrnoToStatus(errno, "signalfd");
    MOTE_RETURN_IF_ERROR(loop_->Add(signal_fd_.get(), EPOLLIN, [this](uint32_t) {
      signalfd_siginfo info;
      if (read(signal_fd_.get(), &info, sizeof(info)) == sizeof(info)) {
        RequestEnd({OutcomeKind::kSignal, info.ssi_signo,
                    absl::StrFormat("stopped by signal %s", strsignal(info.ssi_signo))});
      }
    }));
  }

  if (config_.console.kind != ConsoleKind::kStdio) return absl::OkStatus();
  bool interactive = isatty(STDIN_FILENO);
  absl::Status watch = loop_->Add(STDIN_FILENO, EPOLLIN, [this, interactive](uint32_t) {
    uint8_t buf[256];
    ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));
    if (n <= 0) {
      if (n < 0 && errno == EINTR) return;
      (void)loop_->Remove(STDIN_FILENO);  // EOF or error: no more input
      return;
    }
    absl::Span<const uint8_t> typed(buf, static_cast<size_t>(n));
    if (!interactive) {
      serial_->EnqueueInput(typed);
      return;
    }
    ConsoleEscape::Result r = console_escape_.Feed(typed);
    serial_->EnqueueInput(r.guest_input);
    if (r.quit) RequestEnd({OutcomeKind::kSignal, SIGINT, "stopped from the console (Ctrl-A x)"});
  });
  stdin_watched_ = watch.ok();
  if (!watch.ok()) {
    // /dev/null and regular files cannot be polled: the guest simply gets no input.
    spdlog::debug("console input disabled: {}", watch.ToString());
  }
  return absl::OkStatus();
}

void Vm::Start(bool paused) {
  if (paused) {
    paused_ = true;  // they are parked already
    return;
  }
  if (suspended_) return;  // restored asleep (S3): a wake-up event starts them
  for (auto& v : vcpus_) v->Resume();
}

VmOutcome Vm::Run(RunFlags flags) {
  if (absl::Status s = WatchHostEvents(flags.stop_on_signals); !s.ok()) {
    return {OutcomeKind::kHostError, 0, s.ToString()};
  }
  absl::Status loop_status = loop_->Run();
  if (!loop_status.ok()) RequestEnd({OutcomeKind::kHostError, 0, loop_status.ToString()});
  for (auto& v : vcpus_) v->Kick();
  for (auto& v : vcpus_) v->Join();

  VmOutcome outcome;
  {
    MutexLock lock(&mu_);
    outcome = *outcome_;
  }
  // With --expect, a guest that ended on its own without the line has failed.
  bool guest_ended = outcome.kind == OutcomeKind::kPowerOff ||
                     outcome.kind == OutcomeKind::kDebugExit ||
                     outcome.kind == OutcomeKind::kReset || outcome.kind == OutcomeKind::kPanic;
  if (!config_.expect.empty() && guest_ended) {
    if (console_->MatchedOrFinalLineMatches()) {
      outcome = {OutcomeKind::kExpectMatched, 0, "console matched --expect"};
    } else {
      outcome = {OutcomeKind::kExpectNotMet, 0,
                 "the guest ended (" + outcome.detail + ") before the console matched --expect"};
    }
  }
  return outcome;
}

void Vm::RequestEnd(VmOutcome outcome) {
  {
    MutexLock lock(&mu_);
    if (outcome_.has_value()) return;
    outcome_ = outcome;
  }
  if (on_event_) {
    if (outcome.kind == OutcomeKind::kPanic)
      on_event_({VmEvent::Kind::kGuestPanicked, outcome.kind});
    on_event_({VmEvent::Kind::kShutdown, outcome.kind});
  }
  // Stop the vCPUs now, not when the loop thread wakes: a guest that wrote
  // "exit" must not run on (and print) in the meantime.
  for (auto& v : vcpus_) v->Kick();
  loop_->Stop();
}

void Vm::OnGuestEvent(GuestEvent event, uint64_t value) {
  switch (event) {
    case GuestEvent::kPowerOff:
      RequestEnd({OutcomeKind::kPowerOff, 0, "guest powered off"});
      break;
    case GuestEvent::kReset:
      RequestEnd({OutcomeKind::kReset, 0, "guest requested a reset"});
      break;
    case GuestEvent::kSuspend:
      // From a vCPU thread, which Suspend stops: the loop does it.
      loop_->Post([this] { Suspend(); });
      break;
    case GuestEvent::kPanic:
      RequestEnd({OutcomeKind::kPanic, value, "guest panicked (pvpanic)"});
      break;
    case GuestEvent::kDebugExit:
      RequestEnd({OutcomeKind::kDebugExit, value,
                  absl::StrFormat("guest wrote 0x%x to the debug-exit port", value)});
      break;
    case GuestEvent::kBootDone: {
      startup::Mark(startup::Phase::kBootTimer);
      absl::Duration elapsed = absl::Now() - launch_time_;
      bool first;
      {
        MutexLock lock(&mu_);
        first = !boot_time_.has_value();
        if (first) boot_time_ = elapsed;
      }
      // Whole microseconds, printed as ms: fmt's floating-point formatter is
      // a cold path worth a millisecond of a tiny guest's start-up.
      int64_t us = absl::ToInt64Microseconds(elapsed);
      if (first) spdlog::info("guest boot done {}.{:03} ms after launch", us / 1000, us % 1000);
      break;
    }
  }
}

std::optional<absl::Duration> Vm::boot_time() const {
  MutexLock lock(&mu_);
  return boot_time_;
}

}  // namespace mote
