#include "arch/x86/cpu_model.h"

#include <catch2/catch.hpp>
#include <string>

#include "arch/x86/cpuid.h"

namespace mote::x86 {
namespace {

constexpr uint32_t kX2apic = 1u << 21, kPcid = 1u << 17, kXsave = 1u << 26, kOsxsave = 1u << 27,
                   kAvx = 1u << 28, kHypervisor = 1u << 31, kAvx2 = 1u << 5;

kvm_cpuid_entry2 Entry(uint32_t function, uint32_t index, uint32_t eax, uint32_t ebx, uint32_t ecx,
                       uint32_t edx) {
  kvm_cpuid_entry2 e{};
  e.function = function;
  e.index = index;
  e.flags = function == 7 || function == 0xd ? KVM_CPUID_FLAG_SIGNIFCANT_INDEX : 0;
  e.eax = eax;
  e.ebx = ebx;
  e.ecx = ecx;
  e.edx = edx;
  return e;
}

// What KVM offers in these tests: x2apic, pcid, xsave (with leaf 0xd), avx,
// avx2, apic and fxsr; no la57.
CpuidEntries Offered() {
  CpuidEntries t;
  t.entries = {
      Entry(0, 0, 0xd, 0x756e6547, 0x6c65746e, 0x49656e69),  // GenuineIntel
      Entry(1, 0, 0, 0, kX2apic | kPcid | kXsave | kOsxsave | kAvx, (1u << 9) | (1u << 24)),
      Entry(7, 0, 0, kAvx2, 0, 0),
      Entry(0xd, 0, 0x7, 0x340, 0x340, 0),
      Entry(0xd, 1, 0x1, 0, 0, 0),
      Entry(0x80000000, 0, 0x80000001, 0, 0, 0),
  };
  return t;
}

CpuidEntries Model(std::string_view text) {
  absl::StatusOr<CpuModel> model = ParseCpuModel(text);
  INFO(text);
  REQUIRE(model.ok());
  absl::StatusOr<CpuidEntries> table = ModelCpuid(Offered(), *model);
  INFO(table.status().message());
  REQUIRE(table.ok());
  return *table;
}

std::string ModelError(std::string_view text) {
  absl::StatusOr<CpuModel> model = ParseCpuModel(text);
  if (!model.ok()) return std::string(model.status().message());
  absl::StatusOr<CpuidEntries> table = ModelCpuid(Offered(), *model);
  return table.ok() ? "(no error)" : std::string(table.status().message());
}

TEST_CASE("--cpu parses a template, feature switches, vendor and model id", "[cpu_model]") {
  absl::StatusOr<CpuModel> m =
      ParseCpuModel("minimal,+x2apic,-pcid,sse4_1=off,vendor=AuthenticAMD,model-id=Test CPU");
  REQUIRE(m.ok());
  CHECK(m->base == CpuTemplate::kMinimal);
  REQUIRE(m->changes.size() == 3);
  CHECK(m->changes[0].feature->name == "x2apic");
  CHECK(m->changes[0].enable);
  CHECK(m->changes[1].feature->name == "pcid");
  CHECK_FALSE(m->changes[1].enable);
  CHECK(m->changes[2].feature->name == "sse4-1");  // '_' and '-' are one
  CHECK(m->vendor == "AuthenticAMD");
  CHECK(m->brand == "Test CPU");
}

TEST_CASE("--cpu refuses what it does not know, with the reason", "[cpu_model]") {
  CHECK(ModelError("pentium") ==
        "unknown CPU template 'pentium' (expected host or minimal, then ,+FEATURE or ,-FEATURE)");
  CHECK(ModelError("host,+warp-drive").find("unknown CPU feature 'warp-drive'") == 0);
  CHECK(ModelError("host,x2apic") ==
        "'x2apic': expected +FEATURE, -FEATURE, FEATURE=on|off, vendor=ID or model-id=TEXT");
  CHECK(ModelError("host,vendor=Intel") ==
        "vendor 'Intel' is not 12 characters (e.g. GenuineIntel)");
  CHECK(ModelError("host,+").find("unknown CPU feature ''") == 0);
}

TEST_CASE("QEMU's feature names map to the CPUID bits of the SDM", "[cpu_model]") {
  struct {
    const char* name;
    uint32_t leaf, subleaf;
    CpuidRegister reg;
    uint32_t mask;
  } known[] = {
      {"x2apic", 1, 0, CpuidRegister::kEcx, 1u << 21},
      {"pcid", 1, 0, CpuidRegister::kEcx, 1u << 17},
      {"invpcid", 7, 0, CpuidRegister::kEbx, 1u << 10},
      {"avx2", 7, 0, CpuidRegister::kEbx, 1u << 5},
      {"xsave", 1, 0, CpuidRegister::kEcx, 1u << 26},
      {"la57", 7, 0, CpuidRegister::kEcx, 1u << 16},
      {"lm", 0x80000001, 0, CpuidRegister::kEdx, 1u << 29},
      {"xsaves", 0xd, 1, CpuidRegister::kEax, 1u << 3},
  };
  for (const auto& k : known) {
    INFO(k.name);
    const CpuFeature* f = FindCpuFeature(k.name);
    REQUIRE(f != nullptr);
    CHECK(f->leaf == k.leaf);
    CHECK(f->subleaf == k.subleaf);
    CHECK(f->reg == k.reg);
    CHECK(f->mask == k.mask);
  }
  // Every dependency names a feature of the table.
  for (const CpuFeature& f : CpuFeatures()) {
    INFO(f.name);
    if (!f.needs.empty()) CHECK(FindCpuFeature(f.needs) != nullptr);
  }
}

TEST_CASE("-FEATURE clears the bit the guest reads", "[cpu_model]") {
  CpuidEntries t = Model("host,-x2apic,-pcid");
  CHECK((t.Find(1)->ecx & (kX2apic | kPcid)) == 0);
  CHECK((t.Find(1)->ecx & kAvx) != 0);                                    // the rest stays
  CHECK((Model("host,x2apic=off,+x2apic").Find(1)->ecx & kX2apic) != 0);  // the last word wins
  CHECK((Model("host,-hypervisor").Find(1)->ecx & kHypervisor) == 0);
  CHECK((Model("host").Find(1)->ecx & kHypervisor) != 0);
}

TEST_CASE("+FEATURE is refused where KVM cannot give it", "[cpu_model]") {
  CHECK(ModelError("host,+la57") == "+la57: KVM on this host cannot give this feature");
  CHECK(ModelError("minimal,+cx16") == "+cx16: KVM on this host cannot give this feature");
}

TEST_CASE("Feature dependencies: errors for what the user asked, cascades otherwise",
          "[cpu_model]") {
  CHECK(ModelError("host,+avx2,-avx") == "+avx2 needs avx, which -avx takes away");
  CHECK(ModelError("minimal,+avx") ==
        "+avx needs xsave, which this CPU template lacks (add +xsave)");
  // -avx takes AVX2 along, as nobody asked for it.
  CpuidEntries no_avx = Model("host,-avx");
  CHECK((no_avx.Find(7, 0)->ebx & kAvx2) == 0);
  // -xsave takes AVX, AVX2, OSXSAVE and the XSAVE leaf.
  CpuidEntries no_xsave = Model("host,-xsave");
  CHECK((no_xsave.Find(1)->ecx & (kXsave | kOsxsave | kAvx)) == 0);
  CHECK((no_xsave.Find(7, 0)->ebx & kAvx2) == 0);
  CHECK(no_xsave.Find(0xd, 0) == nullptr);
  // The minimal template plus XSAVE and AVX back: leaf 0xd returns with them.
  CpuidEntries back = Model("minimal,+xsave,+avx,+avx2");
  CHECK((back.Find(1)->ecx & (kXsave | kAvx)) == (kXsave | kAvx));
  CHECK((back.Find(7, 0)->ebx & kAvx2) != 0);
  REQUIRE(back.Find(0xd, 0) != nullptr);
  CHECK(back.Find(0xd, 0)->eax == 0x7);
}

TEST_CASE("vendor= and model-id= set leaf 0 and the brand string", "[cpu_model]") {
  CpuidEntries t = Model("host,vendor=AuthenticAMD,model-id=Test CPU");
  const kvm_cpuid_entry2* leaf0 = t.Find(0);
  std::string vendor(reinterpret_cast<const char*>(&leaf0->ebx), 4);
  vendor += std::string(reinterpret_cast<const char*>(&leaf0->edx), 4);
  vendor += std::string(reinterpret_cast<const char*>(&leaf0->ecx), 4);
  CHECK(vendor == "AuthenticAMD");
  CHECK(leaf0->eax == 0xd);  // the highest leaf stays
  const kvm_cpuid_entry2* brand = t.Find(0x80000002);
  REQUIRE(brand != nullptr);
  CHECK(std::string(reinterpret_cast<const char*>(&brand->eax), 4) == "Test");
}

}  // namespace
}  // namespace mote::x86
