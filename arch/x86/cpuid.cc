#include "arch/x86/cpuid.h"

#include <algorithm>
#include <cstring>

namespace mote::x86 {
namespace {

// Leaf 1.
constexpr uint32_t kEcxFma = 1u << 12, kEcxCx16 = 1u << 13, kEcxXsave = 1u << 26,
                   kEcxOsxsave = 1u << 27, kEcxAvx = 1u << 28, kEcxF16c = 1u << 29,
                   kEcxTscDeadline = 1u << 24, kEcxHypervisor = 1u << 31;
constexpr uint32_t kEdxHtt = 1u << 28;
// Leaf 7 subleaf 0: AVX2 and every AVX-512 / AMX bit.
constexpr uint32_t kLeaf7EbxAvx = (1u << 5) | (1u << 16) | (1u << 17) | (1u << 21) | (1u << 26) |
                                  (1u << 27) | (1u << 28) | (1u << 30) | (1u << 31);
constexpr uint32_t kLeaf7EcxAvx = (1u << 1) | (1u << 6) | (1u << 11) | (1u << 12) | (1u << 14);
constexpr uint32_t kLeaf7EdxAvx =
    (1u << 2) | (1u << 3) | (1u << 8) | (1u << 22) | (1u << 23) | (1u << 24) | (1u << 25);
// Leaf 0x80000001 ECX: XOP and FMA4.
constexpr uint32_t kExtEcxAvx = (1u << 11) | (1u << 16);

constexpr uint32_t kLevelTypeSmt = 1, kLevelTypeCore = 2;

uint32_t BitsFor(uint32_t count) {
  uint32_t bits = 0;
  while ((1u << bits) < count) ++bits;
  return bits;
}

// Leaves 0xB and 0x1F: one thread per core, num_vcpus cores in one package.
void SetTopologyLeaf(CpuidEntries& table, uint32_t leaf, uint32_t vcpu_id, uint32_t num_vcpus) {
  bool present = table.Find(leaf, 0) != nullptr;
  table.entries.erase(
      std::remove_if(table.entries.begin(), table.entries.end(),
                     [leaf](const kvm_cpuid_entry2& e) { return e.function == leaf; }),
      table.entries.end());
  if (!present) return;
  for (uint32_t index = 0; index < 3; ++index) {
    kvm_cpuid_entry2 e{};
    e.function = leaf;
    e.index = index;
    e.flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX;
    e.edx = vcpu_id;  // x2APIC ID
    if (index == 0) {
      e.eax = 0;  // no SMT bits in the APIC ID
      e.ebx = 1;
      e.ecx = (kLevelTypeSmt << 8) | index;
    } else if (index == 1) {
      e.eax = BitsFor(num_vcpus);
      e.ebx = num_vcpus;
      e.ecx = (kLevelTypeCore << 8) | index;
    } else {
      e.ecx = index;  // level type 0: end of the list
    }
    table.entries.push_back(e);
  }
}

void ApplyMinimalTemplate(CpuidEntries& table) {
  if (kvm_cpuid_entry2* e = table.Find(1)) {
    e->ecx &= ~(kEcxFma | kEcxCx16 | kEcxXsave | kEcxOsxsave | kEcxAvx | kEcxF16c);
  }
  if (kvm_cpuid_entry2* e = table.Find(7, 0)) {
    e->ebx &= ~kLeaf7EbxAvx;
    e->ecx &= ~kLeaf7EcxAvx;
    e->edx &= ~kLeaf7EdxAvx;
  }
  if (kvm_cpuid_entry2* e = table.Find(0x80000001)) e->ecx &= ~kExtEcxAvx;
  // Leaf 0xd goes with XSAVE in ApplyCpuFeatureChanges.
}

constexpr uint32_t kLeafExtMax = 0x80000000, kLeafBrandFirst = 0x80000002,
                   kLeafBrandLast = 0x80000004;

// Leaves 0x80000002-4: the processor brand string, 48 bytes with its NUL.
// KVM leaves them empty, and Linux then names the CPU "family/model".
void SetBrandString(CpuidEntries& table, const std::string& brand) {
  char bytes[48] = {};
  std::memcpy(bytes, brand.data(), std::min(brand.size(), sizeof(bytes) - 1));
  kvm_cpuid_entry2* max = table.Find(kLeafExtMax);
  if (max == nullptr) return;  // no extended leaves at all
  max->eax = std::max(max->eax, kLeafBrandLast);
  for (uint32_t leaf = kLeafBrandFirst; leaf <= kLeafBrandLast; ++leaf) {
    kvm_cpuid_entry2* e = table.Find(leaf);
    if (e == nullptr) {
      kvm_cpuid_entry2 added{};
      added.function = leaf;
      table.entries.push_back(added);
      e = &table.entries.back();
    }
    const char* part = bytes + 16 * (leaf - kLeafBrandFirst);
    std::memcpy(&e->eax, part, 4);
    std::memcpy(&e->ebx, part + 4, 4);
    std::memcpy(&e->ecx, part + 8, 4);
    std::memcpy(&e->edx, part + 12, 4);
  }
}

bool HasBrandString(CpuidEntries& table) {
  const kvm_cpuid_entry2* e = table.Find(kLeafBrandFirst);
  return e != nullptr && (e->eax | e->ebx | e->ecx | e->edx) != 0;
}

}  // namespace

std::string HostBrandString() {
  // Not <cpuid.h>: this directory's own cpuid.h shadows it on the include path.
  auto cpuid = [](uint32_t leaf, uint32_t* r) {
    asm volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3]) : "a"(leaf), "c"(0));
  };
  uint32_t regs[12] = {};
  cpuid(kLeafExtMax, regs);
  if (regs[0] < kLeafBrandLast) return "";
  for (uint32_t i = 0; i < 3; ++i) cpuid(kLeafBrandFirst + i, &regs[4 * i]);
  char bytes[49] = {};
  std::memcpy(bytes, regs, 48);
  std::string brand(bytes);
  brand.erase(0, brand.find_first_not_of(' '));
  return brand;
}

absl::StatusOr<CpuidEntries> ModelCpuid(const CpuidEntries& supported, const CpuModel& model,
                                        bool tsc_deadline) {
  CpuidEntries table = supported;
  if (kvm_cpuid_entry2* e = table.Find(1)) {
    e->ecx |= kEcxHypervisor;
    if (tsc_deadline) e->ecx |= kEcxTscDeadline;
  }
  const CpuidEntries offered = table;  // what a +FEATURE may ask for
  if (model.base == CpuTemplate::kMinimal) ApplyMinimalTemplate(table);
  if (absl::Status s = ApplyCpuFeatureChanges(model, offered, table); !s.ok()) return s;
  if (!model.brand.empty()) {
    SetBrandString(table, model.brand);
  } else if (model.base == CpuTemplate::kMinimal) {
    SetBrandString(table, kMinimalBrandString);
  } else if (!HasBrandString(table)) {
    std::string host = HostBrandString();
    SetBrandString(table, host.empty() ? kMinimalBrandString : host);
  }
  return table;
}

CpuidEntries VcpuCpuid(const CpuidEntries& model_cpuid, uint32_t vcpu_id, uint32_t num_vcpus) {
  CpuidEntries table = model_cpuid;
  if (kvm_cpuid_entry2* e = table.Find(1)) {
    // EBX: APIC ID [31:24], logical processors per package [23:16], CLFLUSH line (8 x 8 bytes).
    e->ebx = (vcpu_id << 24) | ((num_vcpus & 0xff) << 16) | (8u << 8) | (e->ebx & 0xff);
    if (num_vcpus > 1) {
      e->edx |= kEdxHtt;
    } else {
      e->edx &= ~kEdxHtt;
    }
  }
  // Leaf 4 (deterministic cache parameters): cores per package in EAX[31:26].
  for (auto& e : table.entries) {
    if (e.function != 4) continue;
    e.eax = (e.eax & 0x03ffffff) | ((num_vcpus - 1) << 26);
    // Caches are private to each single-threaded core...
    e.eax &= ~(0xfffu << 14);
    // ...except the last level, shared by the whole package.
    if (((e.eax >> 5) & 0x7) == 3) e.eax |= ((num_vcpus - 1) & 0xfff) << 14;
  }
  SetTopologyLeaf(table, 0xb, vcpu_id, num_vcpus);
  SetTopologyLeaf(table, 0x1f, vcpu_id, num_vcpus);
  return table;
}

}  // namespace mote::x86
