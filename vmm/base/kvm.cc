#include "vmm/base/kvm.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_format.h"
#include "vmm/base/kvm_abi.h"
#include "vmm/base/status_macros.h"

namespace mote {
namespace {

constexpr int kKvmApiVersion = 12;
constexpr size_t kMaxCpuidEntries = 256;

// ioctl() retried on EINTR, which KVM returns when a signal arrives mid-call.
template <typename Arg>
int Ioctl(int fd, unsigned long request, Arg arg) {
  int ret;
  do {
    ret = ::ioctl(fd, request, arg);
  } while (ret < 0 && errno == EINTR);
  return ret;
}

// A flexible-array ioctl argument: `header` followed by `count` entries.
template <typename Header, typename Entry>
class FlexArg {
 public:
  explicit FlexArg(size_t count) : buf_(sizeof(Header) + count * sizeof(Entry), 0) {}
  Header* header() { return reinterpret_cast<Header*>(buf_.data()); }
  Entry* entries() { return reinterpret_cast<Entry*>(buf_.data() + sizeof(Header)); }
  void* data() { return buf_.data(); }

 private:
  std::vector<uint8_t> buf_;
};

}  // namespace

kvm_cpuid_entry2* CpuidEntries::Find(uint32_t function, uint32_t index) {
  for (auto& e : entries) {
    if (e.function != function) continue;
    if ((e.flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) && e.index != index) continue;
    return &e;
  }
  return nullptr;
}

absl::StatusOr<KvmSystem> KvmSystem::Open(const std::string& path) {
  FileDescriptor fd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
  if (!fd.ok()) return ErrnoToStatus(errno, "open " + path);
  int version = Ioctl(fd.get(), KVM_GET_API_VERSION, 0);
  if (version != kKvmApiVersion) {
    return absl::FailedPreconditionError(
        absl::StrFormat("%s: KVM API version %d, mote needs %d", path, version, kKvmApiVersion));
  }
  int run_size = Ioctl(fd.get(), KVM_GET_VCPU_MMAP_SIZE, 0);
  if (run_size <= 0) return ErrnoToStatus(errno, "KVM_GET_VCPU_MMAP_SIZE");
  return KvmSystem(std::move(fd), run_size);
}

int KvmSystem::CheckExtension(long capability) const {
  int ret = Ioctl(fd_.get(), KVM_CHECK_EXTENSION, capability);
  return ret < 0 ? 0 : ret;
}

int KvmSystem::MaxVcpus() const {
  int max = CheckExtension(KVM_CAP_MAX_VCPUS);
  if (max <= 0) max = CheckExtension(KVM_CAP_NR_VCPUS);
  return max > 0 ? max : 4;  // the API document's default when neither is reported
}

absl::StatusOr<CpuidEntries> KvmSystem::GetSupportedCpuid() const {
  FlexArg<kvm_abi::CpuidHeader, kvm_cpuid_entry2> arg(kMaxCpuidEntries);
  arg.header()->nent = kMaxCpuidEntries;
  if (Ioctl(fd_.get(), kvm_abi::kGetSupportedCpuid, arg.data()) < 0) {
    return ErrnoToStatus(errno, "KVM_GET_SUPPORTED_CPUID");
  }
  CpuidEntries out;
  out.entries.assign(arg.entries(), arg.entries() + arg.header()->nent);
  return out;
}

absl::StatusOr<std::vector<uint32_t>> KvmSystem::GetMsrIndexList() const {
  kvm_abi::MsrListHeader probe{0};
  // The first call fails with E2BIG and tells how many there are.
  if (Ioctl(fd_.get(), kvm_abi::kGetMsrIndexList, &probe) < 0 && errno != E2BIG) {
    return ErrnoToStatus(errno, "KVM_GET_MSR_INDEX_LIST");
  }
  FlexArg<kvm_abi::MsrListHeader, uint32_t> arg(probe.nmsrs);
  arg.header()->nmsrs = probe.nmsrs;
  if (Ioctl(fd_.get(), kvm_abi::kGetMsrIndexList, arg.data()) < 0) {
    return ErrnoToStatus(errno, "KVM_GET_MSR_INDEX_LIST");
  }
  return std::vector<uint32_t>(arg.entries(), arg.entries() + arg.header()->nmsrs);
}

absl::StatusOr<VmFd> KvmSystem::CreateVm() const {
  int fd;
  // KVM_CREATE_VM can fail with EINTR after a signal; retried by Ioctl.
  fd = Ioctl(fd_.get(), KVM_CREATE_VM, 0);
  if (fd < 0) return ErrnoToStatus(errno, "KVM_CREATE_VM");
  return VmFd(FileDescriptor(fd), run_size_);
}

int VmFd::CheckExtension(long capability) const {
  int ret = Ioctl(fd_.get(), KVM_CHECK_EXTENSION, capability);
  return ret < 0 ? 0 : ret;
}

absl::Status VmFd::SetTssAddress(uint64_t addr) {
  if (Ioctl(fd_.get(), KVM_SET_TSS_ADDR, static_cast<unsigned long>(addr)) < 0) {
    return ErrnoToStatus(errno, absl::StrFormat("KVM_SET_TSS_ADDR 0x%x", addr));
  }
  return absl::OkStatus();
}

absl::Status VmFd::SetIdentityMapAddress(uint64_t addr) {
  if (Ioctl(fd_.get(), KVM_SET_IDENTITY_MAP_ADDR, &addr) < 0) {
    return ErrnoToStatus(errno, absl::StrFormat("KVM_SET_IDENTITY_MAP_ADDR 0x%x", addr));
  }
  return absl::OkStatus();
}

absl::Status VmFd::CreateIrqchip() {
  if (Ioctl(fd_.get(), KVM_CREATE_IRQCHIP, 0) < 0)
    return ErrnoToStatus(errno, "KVM_CREATE_IRQCHIP");
  return absl::OkStatus();
}

absl::Status VmFd::CreatePit2() {
  kvm_pit_config config{};
  config.flags = KVM_PIT_SPEAKER_DUMMY;
  if (Ioctl(fd_.get(), KVM_CREATE_PIT2, &config) < 0)
    return ErrnoToStatus(errno, "KVM_CREATE_PIT2");
  return absl::OkStatus();
}

absl::Status VmFd::SetPitHpetLegacy(bool enabled) {
  kvm_pit_state2 state{};
  if (Ioctl(fd_.get(), KVM_GET_PIT2, &state) < 0) return ErrnoToStatus(errno, "KVM_GET_PIT2");
  state.flags = enabled ? (state.flags | KVM_PIT_FLAGS_HPET_LEGACY)
                        : (state.flags & ~KVM_PIT_FLAGS_HPET_LEGACY);
  if (Ioctl(fd_.get(), KVM_SET_PIT2, &state) < 0) return ErrnoToStatus(errno, "KVM_SET_PIT2");
  return absl::OkStatus();
}

absl::Status VmFd::SetUserMemoryRegion(uint32_t slot, uint64_t guest_phys, uint64_t size,
                                       void* host) {
  kvm_userspace_memory_region region{};
  region.slot = slot;
  region.guest_phys_addr = guest_phys;
  region.memory_size = size;
  region.userspace_addr = reinterpret_cast<uint64_t>(host);
  if (Ioctl(fd_.get(), KVM_SET_USER_MEMORY_REGION, &region) < 0) {
    return ErrnoToStatus(
        errno, absl::StrFormat("KVM_SET_USER_MEMORY_REGION slot %d gpa 0x%x size 0x%x", slot,
                               guest_phys, size));
  }
  return absl::OkStatus();
}

absl::Status VmFd::SetGsiRouting(const std::vector<kvm_irq_routing_entry>& entries) {
  FlexArg<kvm_abi::IrqRoutingHeader, kvm_irq_routing_entry> arg(entries.size());
  arg.header()->nr = entries.size();
  std::memcpy(arg.entries(), entries.data(), entries.size() * sizeof(kvm_irq_routing_entry));
  if (Ioctl(fd_.get(), kvm_abi::kSetGsiRouting, arg.data()) < 0) {
    return ErrnoToStatus(errno,
                         absl::StrFormat("KVM_SET_GSI_ROUTING (%d entries)", entries.size()));
  }
  return absl::OkStatus();
}

absl::Status VmFd::SetIrqLine(uint32_t irq, bool level) {
  kvm_irq_level line{};
  line.irq = irq;
  line.level = level ? 1 : 0;
  if (Ioctl(fd_.get(), KVM_IRQ_LINE, &line) < 0) {
    return ErrnoToStatus(errno, absl::StrFormat("KVM_IRQ_LINE %d", irq));
  }
  return absl::OkStatus();
}

absl::StatusOr<kvm_clock_data> VmFd::GetClock() const {
  kvm_clock_data clock{};
  if (Ioctl(fd_.get(), KVM_GET_CLOCK, &clock) < 0) return ErrnoToStatus(errno, "KVM_GET_CLOCK");
  return clock;
}

absl::Status VmFd::SetClock(const kvm_clock_data& clock) {
  kvm_clock_data set{};
  set.clock = clock.clock;  // only the time: flags ask KVM for more than it takes back
  if (Ioctl(fd_.get(), KVM_SET_CLOCK, &set) < 0) return ErrnoToStatus(errno, "KVM_SET_CLOCK");
  return absl::OkStatus();
}

absl::Status VmFd::EnableCapability(uint32_t capability, uint64_t arg0) {
  kvm_enable_cap cap{};
  cap.cap = capability;
  cap.args[0] = arg0;
  if (Ioctl(fd_.get(), KVM_ENABLE_CAP, &cap) < 0) {
    return ErrnoToStatus(errno, absl::StrFormat("KVM_ENABLE_CAP %d", capability));
  }
  return absl::OkStatus();
}

absl::Status VmFd::AddMmioEventFd(uint64_t addr, uint32_t len, uint64_t datamatch, int event_fd) {
  kvm_ioeventfd io{};
  io.addr = addr;
  io.len = len;
  io.datamatch = datamatch;
  io.fd = event_fd;
  io.flags = KVM_IOEVENTFD_FLAG_DATAMATCH;
  if (Ioctl(fd_.get(), KVM_IOEVENTFD, &io) < 0) {
    return ErrnoToStatus(errno, absl::StrFormat("KVM_IOEVENTFD 0x%x data %d", addr, datamatch));
  }
  return absl::OkStatus();
}

absl::Status VmFd::SetMmioWriteEventFd(uint64_t addr, int event_fd, bool assign) {
  kvm_ioeventfd io{};
  io.addr = addr;
  io.len = 0;
  io.fd = event_fd;
  io.flags = assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN;
  if (Ioctl(fd_.get(), KVM_IOEVENTFD, &io) < 0) {
    return ErrnoToStatus(
        errno, absl::StrFormat("KVM_IOEVENTFD %s 0x%x", assign ? "assign" : "deassign", addr));
  }
  return absl::OkStatus();
}

absl::Status VmFd::AddIrqFd(int event_fd, uint32_t gsi) {
  kvm_irqfd irqfd{};
  irqfd.fd = event_fd;
  irqfd.gsi = gsi;
  if (Ioctl(fd_.get(), KVM_IRQFD, &irqfd) < 0) {
    return ErrnoToStatus(errno, absl::StrFormat("KVM_IRQFD gsi %d", gsi));
  }
  return absl::OkStatus();
}

absl::StatusOr<VcpuFd> VmFd::CreateVcpu(uint32_t id) const {
  int fd = Ioctl(fd_.get(), KVM_CREATE_VCPU, static_cast<unsigned long>(id));
  if (fd < 0) return ErrnoToStatus(errno, absl::StrFormat("KVM_CREATE_VCPU %d", id));
  FileDescriptor vcpu(fd);
  void* run = mmap(nullptr, run_size_, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu.get(), 0);
  if (run == MAP_FAILED)
    return ErrnoToStatus(errno, absl::StrFormat("mmap kvm_run of vCPU %d", id));
  return VcpuFd(std::move(vcpu), static_cast<kvm_run*>(run), run_size_, id);
}

VcpuFd::VcpuFd(VcpuFd&& other) noexcept
    : fd_(std::move(other.fd_)), run_(other.run_), run_size_(other.run_size_), id_(other.id_) {
  other.run_ = nullptr;
}

VcpuFd& VcpuFd::operator=(VcpuFd&& other) noexcept {
  if (this != &other) {
    if (run_ != nullptr) munmap(run_, run_size_);
    fd_ = std::move(other.fd_);
    run_ = other.run_;
    run_size_ = other.run_size_;
    id_ = other.id_;
    other.run_ = nullptr;
  }
  return *this;
}

VcpuFd::~VcpuFd() {
  if (run_ != nullptr) munmap(run_, run_size_);
}

int VcpuFd::Run() {
  // Not retried: EINTR is how a kick reaches the vCPU loop.
  return ::ioctl(fd_.get(), KVM_RUN, 0) < 0 ? errno : 0;
}

#define MOTE_VCPU_GET(Type, Request, Name)                                    \
  absl::StatusOr<Type> VcpuFd::Name() const {                                 \
    Type value{};                                                             \
    if (Ioctl(fd_.get(), Request, &value) < 0) {                              \
      return ErrnoToStatus(errno, absl::StrFormat(#Request " vCPU %d", id_)); \
    }                                                                         \
    return value;                                                             \
  }
#define MOTE_VCPU_SET(Type, Request, Name)                                    \
  absl::Status VcpuFd::Name(const Type& value) {                              \
    if (Ioctl(fd_.get(), Request, &value) < 0) {                              \
      return ErrnoToStatus(errno, absl::StrFormat(#Request " vCPU %d", id_)); \
    }                                                                         \
    return absl::OkStatus();                                                  \
  }
MOTE_VCPU_GET(kvm_regs, KVM_GET_REGS, GetRegs)
MOTE_VCPU_SET(kvm_regs, KVM_SET_REGS, SetRegs)
MOTE_VCPU_GET(kvm_sregs, KVM_GET_SREGS, GetSregs)
MOTE_VCPU_SET(kvm_sregs, KVM_SET_SREGS, SetSregs)
MOTE_VCPU_SET(kvm_fpu, KVM_SET_FPU, SetFpu)
MOTE_VCPU_GET(kvm_fpu, KVM_GET_FPU, GetFpu)
MOTE_VCPU_GET(kvm_xcrs, KVM_GET_XCRS, GetXcrs)
MOTE_VCPU_SET(kvm_xcrs, KVM_SET_XCRS, SetXcrs)
MOTE_VCPU_GET(kvm_debugregs, KVM_GET_DEBUGREGS, GetDebugRegs)
MOTE_VCPU_SET(kvm_debugregs, KVM_SET_DEBUGREGS, SetDebugRegs)
MOTE_VCPU_GET(kvm_vcpu_events, KVM_GET_VCPU_EVENTS, GetVcpuEvents)
MOTE_VCPU_SET(kvm_vcpu_events, KVM_SET_VCPU_EVENTS, SetVcpuEvents)
MOTE_VCPU_GET(kvm_mp_state, KVM_GET_MP_STATE, GetMpState)
MOTE_VCPU_GET(kvm_lapic_state, KVM_GET_LAPIC, GetLapic)
MOTE_VCPU_SET(kvm_lapic_state, KVM_SET_LAPIC, SetLapic)
#undef MOTE_VCPU_GET
#undef MOTE_VCPU_SET

absl::Status VcpuFd::SetCpuid(const CpuidEntries& cpuid) {
  FlexArg<kvm_abi::CpuidHeader, kvm_cpuid_entry2> arg(cpuid.entries.size());
  arg.header()->nent = cpuid.entries.size();
  std::memcpy(arg.entries(), cpuid.entries.data(), cpuid.entries.size() * sizeof(kvm_cpuid_entry2));
  if (Ioctl(fd_.get(), kvm_abi::kSetCpuid2, arg.data()) < 0) {
    return ErrnoToStatus(errno, absl::StrFormat("KVM_SET_CPUID2 vCPU %d", id_));
  }
  return absl::OkStatus();
}

absl::Status VcpuFd::SetMsrs(const std::vector<kvm_msr_entry>& msrs) {
  FlexArg<kvm_abi::MsrsHeader, kvm_msr_entry> arg(msrs.size());
  arg.header()->nmsrs = msrs.size();
  std::memcpy(arg.entries(), msrs.data(), msrs.size() * sizeof(kvm_msr_entry));
  int ret = Ioctl(fd_.get(), kvm_abi::kSetMsrs, arg.data());
  if (ret < 0) return ErrnoToStatus(errno, absl::StrFormat("KVM_SET_MSRS vCPU %d", id_));
  if (static_cast<size_t>(ret) != msrs.size()) {
    return absl::InternalError(
        absl::StrFormat("KVM_SET_MSRS vCPU %d: set %d of %d (MSR 0x%x refused)", id_, ret,
                        msrs.size(), msrs[ret].index));
  }
  return absl::OkStatus();
}

absl::StatusOr<size_t> VcpuFd::SetMsrsUpTo(absl::Span<const kvm_msr_entry> msrs) {
  FlexArg<kvm_abi::MsrsHeader, kvm_msr_entry> arg(msrs.size());
  arg.header()->nmsrs = msrs.size();
  std::memcpy(arg.entries(), msrs.data(), msrs.size() * sizeof(kvm_msr_entry));
  int ret = Ioctl(fd_.get(), kvm_abi::kSetMsrs, arg.data());
  if (ret < 0) return ErrnoToStatus(errno, absl::StrFormat("KVM_SET_MSRS vCPU %d", id_));
  return static_cast<size_t>(ret);
}

absl::Status VcpuFd::SetMpState(uint32_t state) {
  kvm_mp_state mp{};
  mp.mp_state = state;
  if (Ioctl(fd_.get(), KVM_SET_MP_STATE, &mp) < 0) {
    return ErrnoToStatus(errno, absl::StrFormat("KVM_SET_MP_STATE vCPU %d", id_));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<uint8_t>> VcpuFd::GetXsave(size_t size) const {
  std::vector<uint8_t> area(std::max(size, sizeof(kvm_abi::Xsave)), 0);
  // KVM_GET_XSAVE refuses an area bigger than its 4 KiB; KVM_GET_XSAVE2 writes all of it.
  bool xsave2 = size > sizeof(kvm_abi::Xsave);
  unsigned long request = xsave2 ? kvm_abi::kGetXsave2 : kvm_abi::kGetXsave;
  if (Ioctl(fd_.get(), request, area.data()) < 0) {
    int err = errno;
    return ErrnoToStatus(
        err, absl::StrFormat("%s (%d bytes) vCPU %d", xsave2 ? "KVM_GET_XSAVE2" : "KVM_GET_XSAVE",
                             area.size(), id_));
  }
  return area;
}

absl::Status VcpuFd::SetXsave(const std::vector<uint8_t>& area) {
  if (area.size() < sizeof(kvm_abi::Xsave)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("KVM_SET_XSAVE vCPU %d: %d bytes", id_, area.size()));
  }
  if (Ioctl(fd_.get(), kvm_abi::kSetXsave, area.data()) < 0) {
    return ErrnoToStatus(errno, absl::StrFormat("KVM_SET_XSAVE vCPU %d", id_));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<kvm_msr_entry>> VcpuFd::GetMsrs(
    const std::vector<uint32_t>& indices) const {
  std::vector<kvm_msr_entry> read;
  size_t next = 0;
  while (next < indices.size()) {
    size_t count = indices.size() - next;
    FlexArg<kvm_abi::MsrsHeader, kvm_msr_entry> arg(count);
    arg.header()->nmsrs = count;
    for (size_t i = 0; i < count; ++i) arg.entries()[i].index = indices[next + i];
    int ret = Ioctl(fd_.get(), kvm_abi::kGetMsrs, arg.data());
    if (ret < 0) return ErrnoToStatus(errno, absl::StrFormat("KVM_GET_MSRS vCPU %d", id_));
    read.insert(read.end(), arg.entries(), arg.entries() + ret);
    next += ret + 1;  // skips the one KVM stopped at
  }
  return read;
}

absl::StatusOr<uint32_t> VcpuFd::GetTscKhz() const {
  int khz = Ioctl(fd_.get(), KVM_GET_TSC_KHZ, 0);
  if (khz < 0) return ErrnoToStatus(errno, absl::StrFormat("KVM_GET_TSC_KHZ vCPU %d", id_));
  return static_cast<uint32_t>(khz);
}

absl::Status VcpuFd::SetTscKhz(uint32_t khz) {
  if (Ioctl(fd_.get(), KVM_SET_TSC_KHZ, static_cast<unsigned long>(khz)) < 0) {
    return ErrnoToStatus(errno, absl::StrFormat("KVM_SET_TSC_KHZ %d vCPU %d", khz, id_));
  }
  return absl::OkStatus();
}

absl::StatusOr<kvm_irqchip> VmFd::GetIrqchip(uint32_t chip_id) const {
  kvm_irqchip chip{};
  chip.chip_id = chip_id;
  if (Ioctl(fd_.get(), KVM_GET_IRQCHIP, &chip) < 0) {
    return ErrnoToStatus(errno, absl::StrFormat("KVM_GET_IRQCHIP %d", chip_id));
  }
  return chip;
}

absl::Status VmFd::SetIrqchip(const kvm_irqchip& chip) {
  if (Ioctl(fd_.get(), KVM_SET_IRQCHIP, &chip) < 0) {
    return ErrnoToStatus(errno, absl::StrFormat("KVM_SET_IRQCHIP %d", chip.chip_id));
  }
  return absl::OkStatus();
}

absl::StatusOr<kvm_pit_state2> VmFd::GetPit2() const {
  kvm_pit_state2 pit{};
  if (Ioctl(fd_.get(), KVM_GET_PIT2, &pit) < 0) return ErrnoToStatus(errno, "KVM_GET_PIT2");
  return pit;
}

absl::Status VmFd::SetPit2(const kvm_pit_state2& pit) {
  if (Ioctl(fd_.get(), KVM_SET_PIT2, &pit) < 0) return ErrnoToStatus(errno, "KVM_SET_PIT2");
  return absl::OkStatus();
}

absl::Status VmFd::SetDirtyLogging(uint32_t slot, uint64_t guest_phys, uint64_t size, void* host,
                                   bool on) {
  kvm_userspace_memory_region region{};
  region.slot = slot;
  region.flags = on ? KVM_MEM_LOG_DIRTY_PAGES : 0;
  region.guest_phys_addr = guest_phys;
  region.memory_size = size;
  region.userspace_addr = reinterpret_cast<uint64_t>(host);
  if (Ioctl(fd_.get(), KVM_SET_USER_MEMORY_REGION, &region) < 0) {
    return ErrnoToStatus(errno, absl::StrFormat("KVM_SET_USER_MEMORY_REGION slot %d (dirty log %s)",
                                                slot, on ? "on" : "off"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<uint64_t>> VmFd::GetDirtyLog(uint32_t slot, uint64_t size) const {
  std::vector<uint64_t> bitmap((size / 4096 + 63) / 64, 0);
  kvm_dirty_log log{};
  log.slot = slot;
  log.dirty_bitmap = bitmap.data();
  if (Ioctl(fd_.get(), KVM_GET_DIRTY_LOG, &log) < 0) {
    return ErrnoToStatus(errno, absl::StrFormat("KVM_GET_DIRTY_LOG slot %d", slot));
  }
  return bitmap;
}

}  // namespace mote
