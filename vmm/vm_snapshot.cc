// Vm's snapshot half: the VM's state as a StateFile (docs/snapshot.md) and
// back. Sections: "machine" (what must match for a restore), "vcpu/N",
// "irqchip", "pit", "clock", one per device with state (named by where it
// sits: "pio/0x3f8/serial") and one per virtio device from its kind's hooks
// ("virtio/virtio-blk/0").
#include <stdlib.h>

#include <algorithm>
#include <set>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "vmm/base/logging.h"
#include "vmm/base/seccomp_filter.h"
#include "vmm/base/status_macros.h"
#include "vmm/snapshot/migration_stream.h"
#include "vmm/snapshot/postcopy_target.h"
#include "vmm/snapshot/restore_error.h"
#include "vmm/snapshot/snapshot_dir.h"
#include "vmm/snapshot/vcpu_state.h"
#include "vmm/vm.h"
#include "vmm/vm_runner.h"

namespace mote {
namespace {

constexpr uint32_t kMachineVersion = 1;
constexpr uint32_t kIrqchipVersion = 1;
constexpr uint32_t kPitVersion = 1;
constexpr uint32_t kClockVersion = 1;
constexpr uint32_t kMemoryVersion = 1;
constexpr size_t kMaxSnapshotChain = 64;
constexpr size_t kMaxCpuidEntries = 256;
constexpr size_t kMaxDevices = 1024;

// What a snapshot's VM was: checked against the VM a restore builds.
struct Machine {
  std::string mote_version;
  std::string cpu;
  uint32_t cpus = 0;
  uint64_t memory_bytes = 0;
  uint64_t facs_addr = 0;
  bool pit = false;
  bool suspended = false;
  CpuidEntries cpuid;
  std::vector<std::string> devices;  // section names, in creation order
};

std::vector<uint8_t> EncodeMachine(const Machine& m) {
  StateWriter out;
  out.String(m.mote_version);
  out.String(m.cpu);
  out.U32(m.cpus);
  out.U64(m.memory_bytes);
  out.U64(m.facs_addr);
  out.Bool(m.pit);
  out.Bool(m.suspended);
  out.U32(static_cast<uint32_t>(m.cpuid.entries.size()));
  for (const kvm_cpuid_entry2& e : m.cpuid.entries) out.Struct(e);
  out.U32(static_cast<uint32_t>(m.devices.size()));
  for (const std::string& d : m.devices) out.String(d);
  return out.Take();
}

absl::StatusOr<Machine> DecodeMachine(const StateSection& section) {
  StateReader in(section.bytes, "state file: machine");
  Machine m;
  m.mote_version = in.String(64);
  m.cpu = in.String(4096);
  m.cpus = in.U32();
  m.memory_bytes = in.U64();
  m.facs_addr = in.U64();
  m.pit = in.Bool();
  m.suspended = in.Bool();
  uint32_t entries = in.U32();
  if (entries > kMaxCpuidEntries) in.Fail(absl::StrFormat("%d CPUID entries", entries));
  for (uint32_t i = 0; in.ok() && i < entries; ++i) {
    m.cpuid.entries.push_back(in.Struct<kvm_cpuid_entry2>());
  }
  uint32_t devices = in.U32();
  if (devices > kMaxDevices) in.Fail(absl::StrFormat("%d devices", devices));
  for (uint32_t i = 0; in.ok() && i < devices; ++i) m.devices.push_back(in.String(256));
  if (absl::Status s = in.status(); !s.ok()) {
    return RestoreError(RestoreFailure::kCorrupt, std::string(s.message()));
  }
  return m;
}

// The "memory" section: the parent snapshot's directory ("" for a full
// snapshot) and the pages this snapshot's memory file holds.
struct MemorySection {
  std::string parent;
  PageBitmap pages;
};

std::vector<uint8_t> EncodeMemory(const MemorySection& m) {
  StateWriter out;
  out.String(m.parent);
  out.U32(static_cast<uint32_t>(m.pages.size()));
  for (uint64_t w : m.pages) out.U64(w);
  return out.Take();
}

absl::StatusOr<MemorySection> DecodeMemory(const StateFile& file, const std::string& dir) {
  MemorySection m;
  const StateSection* s = file.Find("memory");
  if (s == nullptr) return m;  // a full snapshot
  StateReader in(s->bytes, dir + ": memory");
  m.parent = in.String(4096);
  uint32_t words = in.U32();
  if (words > (kMaxMemoryBytes >> 12) / 64 + 1) in.Fail(absl::StrFormat("%d bitmap words", words));
  for (uint32_t i = 0; in.ok() && i < words; ++i) m.pages.push_back(in.U64());
  if (absl::Status st = in.status(); !st.ok()) {
    return RestoreError(RestoreFailure::kCorrupt, std::string(st.message()));
  }
  return m;
}

// A section's bytes, or the restore error naming it.
absl::StatusOr<const StateSection*> Need(const StateFile& file, const std::string& name,
                                         uint32_t max_version) {
  const StateSection* s = file.Find(name);
  if (s == nullptr) {
    return RestoreError(RestoreFailure::kLayout,
                        "snapshot: no state for " + name +
                            " (the snapshot's VM had no such device: a different layout)");
  }
  if (s->version > max_version) {
    return RestoreError(RestoreFailure::kNewerFormat,
                        absl::StrFormat("snapshot: %s has state version %d, this mote reads up "
                                        "to %d (written by a newer mote)",
                                        name, s->version, max_version));
  }
  return s;
}

absl::Status Corrupt(const absl::Status& s) {
  return s.ok() ? s
                : RestoreError(RestoreFailure::kCorrupt, "snapshot: " + std::string(s.message()));
}

// The CPUID words that carry feature flags: (leaf, subleaf, register index
// 0..3 = eax, ebx, ecx, edx, name).
struct FeatureWord {
  uint32_t function, index;
  int reg;
  const char* name;
};
constexpr FeatureWord kFeatureWords[] = {
    {1, 0, 2, "CPUID.1:ECX"},
    {1, 0, 3, "CPUID.1:EDX"},
    {7, 0, 1, "CPUID.7.0:EBX"},
    {7, 0, 2, "CPUID.7.0:ECX"},
    {7, 0, 3, "CPUID.7.0:EDX"},
    {0xd, 1, 0, "CPUID.0xD.1:EAX"},
    {0x80000001, 0, 2, "CPUID.0x80000001:ECX"},
    {0x80000001, 0, 3, "CPUID.0x80000001:EDX"},
};

uint32_t Reg(const kvm_cpuid_entry2& e, int reg) {
  const uint32_t regs[] = {e.eax, e.ebx, e.ecx, e.edx};
  return regs[reg];
}

}  // namespace

void Vm::AddStateful(std::string name, BusDevice* bus, pci::PciDevice* pci) {
  stateful_.push_back({std::move(name), bus, pci});
}

std::string Vm::SlotKindName(size_t slot) const {
  for (const DeviceGroup& group : device_groups_) {
    if (slot < group.devices.size()) return std::string(group.kind->name);
    slot -= group.devices.size();
  }
  return "virtio";
}

absl::Status Vm::CheckCpuidFits(const CpuidEntries& saved, const CpuidEntries& host) {
  CpuidEntries h = host, s = saved;
  for (const FeatureWord& w : kFeatureWords) {
    kvm_cpuid_entry2* se = s.Find(w.function, w.index);
    if (se == nullptr) continue;
    kvm_cpuid_entry2* he = h.Find(w.function, w.index);
    uint32_t missing = Reg(*se, w.reg) & ~(he == nullptr ? 0 : Reg(*he, w.reg));
    if (missing != 0) {
      return RestoreError(RestoreFailure::kCpuid,
                          absl::StrFormat("snapshot: the guest's CPU had features this host's KVM "
                                          "cannot give: %s bits 0x%08x",
                                          w.name, missing));
    }
  }
  return absl::OkStatus();
}

absl::Status Vm::CheckSnapshotMachine(const StateFile& file) {
  MOTE_ASSIGN_OR_RETURN(const StateSection* section, Need(file, "machine", kMachineVersion));
  MOTE_ASSIGN_OR_RETURN(Machine m, DecodeMachine(*section));
  if (m.cpus != config_.cpus) {
    return RestoreError(
        RestoreFailure::kLayout,
        absl::StrFormat("snapshot: %d vCPUs, this VM would have %d", m.cpus, config_.cpus));
  }
  if (m.memory_bytes != config_.memory_bytes) {
    return RestoreError(RestoreFailure::kLayout,
                        absl::StrFormat("snapshot: %d MiB of RAM, this VM would have %d MiB",
                                        m.memory_bytes >> 20, config_.memory_bytes >> 20));
  }
  if (m.cpuid.entries.empty()) {
    return RestoreError(RestoreFailure::kCorrupt, "snapshot: machine: no CPUID");
  }
  facs_addr_ = m.facs_addr;
  restore_pit_ = m.pit;
  model_cpuid_ = m.cpuid;
  return absl::OkStatus();
}

absl::StatusOr<StateFile> Vm::SaveState() {
  StateFile file;
  // Devices first: completing their requests in flight raises interrupts,
  // which the irqchip and vCPU state below must then hold.
  for (const StatefulDevice& d : stateful_) {
    uint32_t version = d.bus != nullptr ? d.bus->state_version() : d.pci->state_version();
    if (version == 0) {
      return absl::FailedPreconditionError("snapshot: device " + d.name + " cannot be saved");
    }
    StateWriter out;
    if (d.bus != nullptr) {
      d.bus->SaveState(out);
    } else {
      d.pci->SaveState(out);
    }
    file.Add(d.name, version, out.Take());
  }
  for (const DeviceGroup& group : device_groups_) {
    for (size_t i = 0; i < group.devices.size(); ++i) {
      if (!group.kind->save_state) {
        return absl::FailedPreconditionError(
            absl::StrFormat("snapshot: device %s cannot be saved", group.kind->name));
      }
      MOTE_ASSIGN_OR_RETURN(std::vector<uint8_t> bytes, group.kind->save_state(*group.devices[i]));
      file.Add(absl::StrFormat("virtio/%s/%d", group.kind->name, i), 1, std::move(bytes));
    }
  }
  StateWriter chips;
  for (uint32_t chip = 0; chip < 3; ++chip) {
    MOTE_ASSIGN_OR_RETURN(kvm_irqchip state, vm_fd_->GetIrqchip(chip));
    chips.Struct(state);
  }
  file.Add("irqchip", kIrqchipVersion, chips.Take());
  if (pit_enabled_) {
    MOTE_ASSIGN_OR_RETURN(kvm_pit_state2 pit, vm_fd_->GetPit2());
    StateWriter out;
    out.Struct(pit);
    file.Add("pit", kPitVersion, out.Take());
  }
  MOTE_ASSIGN_OR_RETURN(VcpuStateShape shape, QueryVcpuStateShape(*kvm_, *vm_fd_));
  for (size_t i = 0; i < vcpus_.size(); ++i) {
    StateWriter out;
    MOTE_RETURN_IF_ERROR(SaveVcpu(vcpus_[i]->fd(), shape, out));
    file.Add(absl::StrFormat("vcpu/%d", i), kVcpuStateVersion, out.Take());
  }
  kvm_clock_data clock{};
  if (paused_clock_.has_value()) {
    clock = *paused_clock_;
  } else {
    MOTE_ASSIGN_OR_RETURN(clock, vm_fd_->GetClock());
  }
  StateWriter clock_out;
  clock_out.U64(clock.clock);
  file.Add("clock", kClockVersion, clock_out.Take());

  std::vector<std::string> devices;
  for (const StateSection& s : file.sections) devices.push_back(s.name);
  file.sections.insert(
      file.sections.begin(),
      {"machine", kMachineVersion, EncodeMachineSection(suspended_.load(), std::move(devices))});
  return file;
}

absl::Status Vm::RestoreDevices(const StateFile& file) {
  std::set<std::string> expected = {"machine", "irqchip", "clock", "memory"};
  if (pit_enabled_) expected.insert("pit");
  for (size_t i = 0; i < vcpus_.size(); ++i) expected.insert(absl::StrFormat("vcpu/%d", i));
  for (const StatefulDevice& d : stateful_) expected.insert(d.name);
  for (const DeviceGroup& group : device_groups_) {
    for (size_t i = 0; i < group.devices.size(); ++i) {
      expected.insert(absl::StrFormat("virtio/%s/%d", group.kind->name, i));
    }
  }
  std::vector<std::string> extra;
  for (const StateSection& s : file.sections) {
    if (!expected.count(s.name)) extra.push_back(s.name);
  }
  if (!extra.empty()) {
    return RestoreError(
        RestoreFailure::kLayout,
        "snapshot: this VM has no " + absl::StrJoin(extra, ", ") + " (a different device layout)");
  }
  for (const StatefulDevice& d : stateful_) {
    uint32_t version = d.bus != nullptr ? d.bus->state_version() : d.pci->state_version();
    MOTE_ASSIGN_OR_RETURN(const StateSection* s, Need(file, d.name, version));
    StateReader in(s->bytes, d.name);
    absl::Status restored = d.bus != nullptr ? d.bus->RestoreState(in) : d.pci->RestoreState(in);
    if (restored.ok()) restored = in.status();
    if (!restored.ok())
      return Corrupt(
          absl::Status(restored.code(), d.name + ": " + std::string(restored.message())));
  }
  for (const DeviceGroup& group : device_groups_) {
    for (size_t i = 0; i < group.devices.size(); ++i) {
      std::string name = absl::StrFormat("virtio/%s/%d", group.kind->name, i);
      MOTE_ASSIGN_OR_RETURN(const StateSection* s, Need(file, name, 1));
      if (!group.kind->restore_state) {
        return RestoreError(RestoreFailure::kLayout, "snapshot: " + name + " cannot be restored");
      }
      if (absl::Status r = group.kind->restore_state(*group.devices[i], s->bytes); !r.ok()) {
        return RestoreError(RestoreFailure::kLayout, name + ": " + std::string(r.message()));
      }
    }
  }
  return absl::OkStatus();
}

absl::Status Vm::RestoreState(const StateFile& file) {
  for (size_t i = 0; i < vcpus_.size(); ++i) {
    std::string name = absl::StrFormat("vcpu/%d", i);
    MOTE_ASSIGN_OR_RETURN(const StateSection* s, Need(file, name, kVcpuStateVersion));
    StateReader in(s->bytes, name);
    MOTE_RETURN_IF_ERROR(Corrupt(RestoreVcpu(vcpus_[i]->fd(), in)));
  }
  {
    MOTE_ASSIGN_OR_RETURN(const StateSection* s, Need(file, "irqchip", kIrqchipVersion));
    StateReader in(s->bytes, "irqchip");
    kvm_irqchip chips[3];
    for (kvm_irqchip& chip : chips) chip = in.Struct<kvm_irqchip>();
    for (uint32_t i = 0; i < 3; ++i) {
      if (chips[i].chip_id != i) in.Fail("chip ids out of order");
    }
    MOTE_RETURN_IF_ERROR(Corrupt(in.status()));
    for (const kvm_irqchip& chip : chips) MOTE_RETURN_IF_ERROR(vm_fd_->SetIrqchip(chip));
  }
  if (pit_enabled_) {
    MOTE_ASSIGN_OR_RETURN(const StateSection* s, Need(file, "pit", kPitVersion));
    StateReader in(s->bytes, "pit");
    auto pit = in.Struct<kvm_pit_state2>();
    MOTE_RETURN_IF_ERROR(Corrupt(in.status()));
    MOTE_RETURN_IF_ERROR(vm_fd_->SetPit2(pit));
  }
  MOTE_RETURN_IF_ERROR(RestoreDevices(file));
  MOTE_ASSIGN_OR_RETURN(const StateSection* section, Need(file, "machine", kMachineVersion));
  MOTE_ASSIGN_OR_RETURN(Machine m, DecodeMachine(*section));
  suspended_ = m.suspended;
  // Guest time goes on from where it stood.
  MOTE_ASSIGN_OR_RETURN(const StateSection* s, Need(file, "clock", kClockVersion));
  StateReader in(s->bytes, "clock");
  kvm_clock_data clock{};
  clock.clock = in.U64();
  MOTE_RETURN_IF_ERROR(Corrupt(in.status()));
  MOTE_RETURN_IF_ERROR(vm_fd_->SetClock(clock));
  spdlog::info("restored from {}", config_.restore);
  return absl::OkStatus();
}

absl::StatusOr<PageBitmap> Vm::TakeDirtyPages() {
  PageBitmap pages = mem_->TakeWrittenPages();
  if (dirty_rings_ != nullptr) {
    MOTE_ASSIGN_OR_RETURN(PageBitmap written, dirty_rings_->Take());
    for (size_t i = 0; i < pages.size() && i < written.size(); ++i) pages[i] |= written[i];
    return pages;
  }
  uint64_t first_page = 0;
  const auto& regions = mem_->regions();
  for (uint32_t slot = 0; slot < regions.size(); ++slot) {
    MOTE_ASSIGN_OR_RETURN(std::vector<uint64_t> log, vm_fd_->GetDirtyLog(slot, regions[slot].size));
    for (uint64_t p = 0; p < regions[slot].size / 4096; ++p) {
      if (log[p / 64] >> (p % 64) & 1) {
        uint64_t g = first_page + p;
        pages[g / 64] |= 1ull << (g % 64);
      }
    }
    first_page += regions[slot].size / 4096;
  }
  return pages;
}

absl::Status Vm::StartDirtyLogging() {
  if (dirty_logging_) return absl::OkStatus();
  const auto& regions = mem_->regions();
  if (dirty_rings_ != nullptr) {
    std::vector<const VcpuFd*> fds;
    for (const auto& vcpu : vcpus_) fds.push_back(&vcpu->fd());
    std::vector<uint64_t> slot_pages;
    for (const auto& region : regions) slot_pages.push_back(region.size / 4096);
    MOTE_RETURN_IF_ERROR(dirty_rings_->Map(fds, std::move(slot_pages)));
    spdlog::info("dirty pages: KVM dirty ring, {} entries per vCPU", dirty_rings_->entries());
  } else {
    spdlog::info("dirty pages: KVM dirty bitmap");
  }
  for (uint32_t slot = 0; slot < regions.size(); ++slot) {
    MOTE_RETURN_IF_ERROR(vm_fd_->SetDirtyLogging(slot, regions[slot].guest_base, regions[slot].size,
                                                 regions[slot].host, true));
  }
  mem_->SetWriteTracking(true);
  dirty_logging_ = true;
  return absl::OkStatus();
}

absl::Status Vm::LoadSnapshotMemory(const std::string& dir) {
  // The chain from `dir` up to the full snapshot at its root.
  std::vector<std::pair<std::string, MemorySection>> chain;
  std::string at = dir;
  while (true) {
    if (chain.size() == kMaxSnapshotChain) {
      return RestoreError(
          RestoreFailure::kCorrupt,
          absl::StrFormat("snapshot %s: more than %d parents (a loop?)", dir, kMaxSnapshotChain));
    }
    absl::StatusOr<StateFile> file = at == dir ? *restore_from_ : ReadSnapshotState(at);
    if (!file.ok()) {
      return absl::Status(file.status().code(),
                          "parent snapshot " + at + ": " + std::string(file.status().message()));
    }
    MOTE_ASSIGN_OR_RETURN(MemorySection m, DecodeMemory(*file, at));
    std::string parent = m.parent;
    chain.emplace_back(at, std::move(m));
    if (parent.empty()) break;
    at = parent;
  }
  MOTE_RETURN_IF_ERROR(
      LoadMemoryFile(*mem_, chain.back().first + "/" + kSnapshotMemoryFile, config_.hugepages));
  for (size_t i = chain.size() - 1; i-- > 0;) {
    MOTE_RETURN_IF_ERROR(
        ApplyMemoryPages(*mem_, chain[i].first + "/" + kSnapshotMemoryFile, chain[i].second.pages));
  }
  return absl::OkStatus();
}

std::vector<uint8_t> Vm::EncodeMachineSection(bool suspended,
                                              std::vector<std::string> devices) const {
  return EncodeMachine(Machine{.mote_version = kMoteVersion,
                               .cpu = config_.cpu,
                               .cpus = config_.cpus,
                               .memory_bytes = config_.memory_bytes,
                               .facs_addr = facs_addr_,
                               .pit = pit_enabled_,
                               .suspended = suspended,
                               .cpuid = model_cpuid_,
                               .devices = std::move(devices)});
}

std::vector<uint8_t> Vm::SaveMachineStateFile() const {
  StateFile file;
  file.Add("machine", kMachineVersion, EncodeMachineSection(false, {}));
  return file.Encode();
}

absl::Status Vm::ReceiveIncoming() {
  MOTE_ASSIGN_OR_RETURN(ReceivedMigration received, ReceiveMigrationBody(incoming_.get(), *mem_));
  MOTE_ASSIGN_OR_RETURN(StateFile state, StateFile::Parse(received.state));
  // The VM was built from the head's machine: the state must be of it.
  MOTE_RETURN_IF_ERROR(CheckSnapshotMachine(state));
  if (restore_pit_ != pit_enabled_) {
    return RestoreError(RestoreFailure::kLayout, "migration stream: the state's PIT differs");
  }
  // The source let its images go before it sent the state.
  MOTE_RETURN_IF_ERROR(SetDeviceLocks(true));
  if (received.postcopy) {
    // Before the devices restore: what they read must be the source's.
    MOTE_ASSIGN_OR_RETURN(postcopy_, PostcopyTarget::Create(std::move(incoming_),
                                                            std::move(received.pages_at_source)));
    MOTE_RETURN_IF_ERROR(
        postcopy_->Attach(*mem_, SeccompModeOf(config_), [this](const std::string& why) {
          RequestEnd({OutcomeKind::kHostError, 0, why});
        }));
  }
  MOTE_RETURN_IF_ERROR(RestoreState(state));
  if (postcopy_ != nullptr) {
    postcopy_->Acknowledge();  // and the source's pages may come
  } else {
    AcknowledgeMigration(incoming_.get());
    incoming_.Reset();
  }
  return absl::OkStatus();
}

absl::Status Vm::SetDeviceLocks(bool held) {
  absl::Status first;
  for (const DeviceGroup& group : device_groups_) {
    if (!group.kind->set_locks) continue;
    for (const auto& device : group.devices) first.Update(group.kind->set_locks(*device, held));
  }
  return first;
}

absl::StatusOr<std::vector<uint8_t>> Vm::SaveStateFile() {
  MOTE_ASSIGN_OR_RETURN(StateFile state, SaveState());
  state.Add("memory", kMemoryVersion, EncodeMemory(MemorySection{}));
  return state.Encode();
}

absl::StatusOr<MemoryFileStats> Vm::Snapshot(const std::string& dir, bool incremental) {
  if (ended()) return absl::FailedPreconditionError("the guest has shut down");
  if (incremental && last_snapshot_dir_.empty()) {
    return absl::FailedPreconditionError(
        "an incremental snapshot needs an earlier snapshot of this VM: take a full one first");
  }
  bool was_running = !paused_.load();
  if (was_running) Pause();
  absl::StatusOr<MemoryFileStats> stats = [&]() -> absl::StatusOr<MemoryFileStats> {
    MOTE_ASSIGN_OR_RETURN(StateFile state, SaveState());
    // Devices are quiesced and the vCPUs stopped: from here on, every
    // write lands in the logs the next incremental snapshot reads.
    MemorySection memory;
    if (dirty_logging_) {
      MOTE_ASSIGN_OR_RETURN(PageBitmap dirty, TakeDirtyPages());
      if (incremental) {
        memory.parent = last_snapshot_dir_;
        memory.pages = std::move(dirty);
      }
    }
    state.Add("memory", kMemoryVersion, EncodeMemory(memory));
    MOTE_ASSIGN_OR_RETURN(
        MemoryFileStats written,
        WriteSnapshotDir(dir, config_, state, *mem_, incremental ? &memory.pages : nullptr));
    MOTE_RETURN_IF_ERROR(StartDirtyLogging());
    char* absolute = realpath(dir.c_str(), nullptr);
    last_snapshot_dir_ = absolute != nullptr ? absolute : dir;
    free(absolute);
    return written;
  }();
  if (was_running) Resume();
  return stats;
}

}  // namespace mote
