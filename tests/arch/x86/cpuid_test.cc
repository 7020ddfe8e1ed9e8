#include "arch/x86/cpuid.h"

#include <catch2/catch.hpp>

namespace mote::x86 {
namespace {

kvm_cpuid_entry2 Entry(uint32_t function, uint32_t index, uint32_t eax, uint32_t ebx, uint32_t ecx,
                       uint32_t edx, bool indexed = false) {
  kvm_cpuid_entry2 e{};
  e.function = function;
  e.index = index;
  e.flags = indexed ? KVM_CPUID_FLAG_SIGNIFCANT_INDEX : 0;
  e.eax = eax;
  e.ebx = ebx;
  e.ecx = ecx;
  e.edx = edx;
  return e;
}

// A host-like table: leaf 1 with cx16/xsave/avx, leaf 7 with avx2/avx512f,
// leaf 0xb, leaf 0xd, an L3 cache in leaf 4, and the KVM signature leaf.
CpuidEntries HostTable() {
  CpuidEntries t;
  t.entries = {
      Entry(0, 0, 0x1f, 0x756e6547, 0x6c65746e, 0x49656e69),
      Entry(1, 0, 0x000906ea, 0x00000800, (1u << 13) | (1u << 26) | (1u << 28) | (1u << 0),
            (1u << 28) | 1),
      Entry(4, 3, (3u << 5) | 0x3, 0, 0, 0, true),
      Entry(7, 0, 0, (1u << 5) | (1u << 16) | (1u << 3), 0, 0, true),
      Entry(0xb, 0, 1, 2, 0x100, 0, true),
      Entry(0xd, 0, 0x7, 0x340, 0x340, 0, true),
      Entry(0x40000000, 0, 0x40000001, 0x4b4d564b, 0x564b4d56, 0x4d, false),
  };
  return t;
}

// The CPUID vCPU `id` of `cpus` gets from `supported` under `model`.
CpuidEntries Cpuid(const CpuidEntries& supported, uint32_t id, uint32_t cpus,
                   std::string_view model = "host", bool tsc_deadline = false) {
  absl::StatusOr<CpuModel> parsed = ParseCpuModel(model);
  REQUIRE(parsed.ok());
  absl::StatusOr<CpuidEntries> table = ModelCpuid(supported, *parsed, tsc_deadline);
  INFO(table.status().message());
  REQUIRE(table.ok());
  return VcpuCpuid(*table, id, cpus);
}

TEST_CASE("CPUID: each vCPU gets its APIC ID and the VM's CPU count", "[cpuid]") {
  CpuidEntries host = HostTable();
  for (uint32_t id : {0u, 1u, 3u}) {
    CpuidEntries t = Cpuid(host, id, 4);
    kvm_cpuid_entry2* leaf1 = t.Find(1);
    REQUIRE(leaf1 != nullptr);
    CHECK((leaf1->ebx >> 24) == id);
    CHECK(((leaf1->ebx >> 16) & 0xff) == 4);
    CHECK((leaf1->ecx & (1u << 31)) != 0);  // hypervisor present
    CHECK((leaf1->edx & (1u << 28)) != 0);  // HTT: more than one logical CPU
    kvm_cpuid_entry2* smt = t.Find(0xb, 0);
    kvm_cpuid_entry2* core = t.Find(0xb, 1);
    kvm_cpuid_entry2* end = t.Find(0xb, 2);
    REQUIRE((smt && core && end));
    CHECK(smt->edx == id);
    CHECK(((smt->ecx >> 8) & 0xff) == 1);
    CHECK(core->ebx == 4);
    CHECK(core->eax == 2);  // 2 bits of APIC ID for 4 cores
    CHECK(((end->ecx >> 8) & 0xff) == 0);
    CHECK((t.Find(4, 3)->eax >> 26) == 3);  // 4 cores per package
  }
  CHECK((Cpuid(host, 0, 1).Find(1)->edx & (1u << 28)) == 0);
}

TEST_CASE("CPUID: TSC-deadline is offered only when the LAPIC has it", "[cpuid]") {
  CHECK((Cpuid(HostTable(), 0, 1, "host", true).Find(1)->ecx & (1u << 24)) != 0);
  CHECK((Cpuid(HostTable(), 0, 1, "host", false).Find(1)->ecx & (1u << 24)) == 0);
}

TEST_CASE("CPUID: the KVM leaves are kept", "[cpuid]") {
  CpuidEntries t = Cpuid(HostTable(), 0, 1);
  kvm_cpuid_entry2* kvm = t.Find(0x40000000);
  REQUIRE(kvm != nullptr);
  CHECK(kvm->ebx == 0x4b4d564b);  // "KVMK"
}

TEST_CASE("CPUID minimal template hides cx16, xsave and AVX-class features", "[cpuid]") {
  CpuidEntries host = HostTable();
  CpuidEntries t = Cpuid(host, 0, 1, "minimal");
  kvm_cpuid_entry2* leaf1 = t.Find(1);
  CHECK((leaf1->ecx & (1u << 13)) == 0);
  CHECK((leaf1->ecx & (1u << 26)) == 0);
  CHECK((leaf1->ecx & (1u << 28)) == 0);
  CHECK((leaf1->ecx & 1u) == 1);  // SSE3 stays
  kvm_cpuid_entry2* leaf7 = t.Find(7, 0);
  CHECK((leaf7->ebx & ((1u << 5) | (1u << 16))) == 0);
  CHECK((leaf7->ebx & (1u << 3)) != 0);  // BMI1 is not AVX-class
  CHECK(t.Find(0xd, 0) == nullptr);
  // The host template leaves them alone.
  CpuidEntries h = Cpuid(host, 0, 1);
  CHECK((h.Find(1)->ecx & (1u << 13)) != 0);
  CHECK(h.Find(0xd, 0) != nullptr);
}

TEST_CASE("CPU template names parse", "[cpuid]") {
  CHECK(ParseCpuModel("host")->base == CpuTemplate::kHost);
  CHECK(ParseCpuModel("minimal")->base == CpuTemplate::kMinimal);
  CHECK(!ParseCpuModel("skylake").ok());
}

}  // namespace
}  // namespace mote::x86

namespace mote::x86 {
namespace {

std::string Brand(CpuidEntries& t) {
  std::string s;
  for (uint32_t leaf = 0x80000002; leaf <= 0x80000004; ++leaf) {
    const kvm_cpuid_entry2* e = t.Find(leaf);
    if (e == nullptr) return "(leaf missing)";
    for (uint32_t r : {e->eax, e->ebx, e->ecx, e->edx}) {
      for (int i = 0; i < 4; ++i) s.push_back(static_cast<char>(r >> (8 * i)));
    }
  }
  return s.substr(0, s.find('\0'));
}

// KVM leaves the brand string empty; Linux then shows "model name: 17/01".
TEST_CASE("CPUID: the guest gets a brand string where KVM gives none", "[cpuid]") {
  CpuidEntries supported = HostTable();
  supported.entries.push_back(Entry(0x80000000, 0, 0x80000001, 0, 0, 0));
  supported.entries.push_back(Entry(0x80000001, 0, 0, 0, 0, 0));
  CpuidEntries minimal = Cpuid(supported, 0, 1, "minimal");
  CHECK(Brand(minimal) == kMinimalBrandString);
  CHECK(minimal.Find(0x80000000)->eax == 0x80000004);
  CpuidEntries host = Cpuid(supported, 0, 1);
  std::string want = HostBrandString().empty() ? kMinimalBrandString : HostBrandString();
  CHECK(Brand(host) == want);
  CHECK_FALSE(Brand(host).empty());
}

TEST_CASE("CPUID: a brand string KVM does give is kept with the host template", "[cpuid]") {
  CpuidEntries supported = HostTable();
  supported.entries.push_back(Entry(0x80000000, 0, 0x80000004, 0, 0, 0));
  supported.entries.push_back(Entry(0x80000002, 0, 0x61636f4c, 0x0000006c, 0, 0));  // "Local"
  supported.entries.push_back(Entry(0x80000003, 0, 0, 0, 0, 0));
  supported.entries.push_back(Entry(0x80000004, 0, 0, 0, 0, 0));
  CpuidEntries host = Cpuid(supported, 0, 1);
  CHECK(Brand(host) == "Local");
}

}  // namespace
}  // namespace mote::x86
