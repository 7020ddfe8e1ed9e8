#include "arch/x86/cpu_model.h"

#include <algorithm>

namespace mote::x86 {
namespace {

using R = CpuidRegister;
constexpr uint32_t kExt = 0x80000001, kKvm = 0x40000001;

// Bits from the Intel SDM (vol. 2A, CPUID), AMD's APM (vol. 3, appendix E)
// and the KVM API document; names as QEMU's -cpu spells them.
constexpr CpuFeature kFeatures[] = {
    // Leaf 1, EDX.
    {"fpu", 1, 0, R::kEdx, 1u << 0},
    {"vme", 1, 0, R::kEdx, 1u << 1},
    {"de", 1, 0, R::kEdx, 1u << 2},
    {"pse", 1, 0, R::kEdx, 1u << 3},
    {"tsc", 1, 0, R::kEdx, 1u << 4},
    {"msr", 1, 0, R::kEdx, 1u << 5},
    {"pae", 1, 0, R::kEdx, 1u << 6},
    {"mce", 1, 0, R::kEdx, 1u << 7},
    {"cx8", 1, 0, R::kEdx, 1u << 8},
    {"apic", 1, 0, R::kEdx, 1u << 9},
    {"sep", 1, 0, R::kEdx, 1u << 11},
    {"mtrr", 1, 0, R::kEdx, 1u << 12},
    {"pge", 1, 0, R::kEdx, 1u << 13},
    {"mca", 1, 0, R::kEdx, 1u << 14},
    {"cmov", 1, 0, R::kEdx, 1u << 15},
    {"pat", 1, 0, R::kEdx, 1u << 16},
    {"pse36", 1, 0, R::kEdx, 1u << 17},
    {"clflush", 1, 0, R::kEdx, 1u << 19},
    {"mmx", 1, 0, R::kEdx, 1u << 23},
    {"fxsr", 1, 0, R::kEdx, 1u << 24},
    {"sse", 1, 0, R::kEdx, 1u << 25, "fxsr"},
    {"sse2", 1, 0, R::kEdx, 1u << 26, "sse"},
    {"ss", 1, 0, R::kEdx, 1u << 27},
    // Leaf 1, ECX.
    {"pni", 1, 0, R::kEcx, 1u << 0, "sse2"},
    {"sse3", 1, 0, R::kEcx, 1u << 0, "sse2"},
    {"pclmulqdq", 1, 0, R::kEcx, 1u << 1, "sse2"},
    {"monitor", 1, 0, R::kEcx, 1u << 3},
    {"vmx", 1, 0, R::kEcx, 1u << 5},
    {"ssse3", 1, 0, R::kEcx, 1u << 9, "sse3"},
    {"fma", 1, 0, R::kEcx, 1u << 12, "avx"},
    {"cx16", 1, 0, R::kEcx, 1u << 13},
    {"pdcm", 1, 0, R::kEcx, 1u << 15},
    {"pcid", 1, 0, R::kEcx, 1u << 17},
    {"sse4.1", 1, 0, R::kEcx, 1u << 19, "ssse3"},
    {"sse4-1", 1, 0, R::kEcx, 1u << 19, "ssse3"},
    {"sse4.2", 1, 0, R::kEcx, 1u << 20, "sse4.1"},
    {"sse4-2", 1, 0, R::kEcx, 1u << 20, "sse4.1"},
    {"x2apic", 1, 0, R::kEcx, 1u << 21, "apic"},
    {"movbe", 1, 0, R::kEcx, 1u << 22},
    {"popcnt", 1, 0, R::kEcx, 1u << 23},
    {"tsc-deadline", 1, 0, R::kEcx, 1u << 24, "apic"},
    {"aes", 1, 0, R::kEcx, 1u << 25, "sse2"},
    {"xsave", 1, 0, R::kEcx, 1u << 26, "fxsr"},
    {"avx", 1, 0, R::kEcx, 1u << 28, "xsave"},
    {"f16c", 1, 0, R::kEcx, 1u << 29, "avx"},
    {"rdrand", 1, 0, R::kEcx, 1u << 30},
    {"hypervisor", 1, 0, R::kEcx, 1u << 31},
    // Leaf 7, subleaf 0, EBX.
    {"fsgsbase", 7, 0, R::kEbx, 1u << 0},
    {"tsc-adjust", 7, 0, R::kEbx, 1u << 1},
    {"bmi1", 7, 0, R::kEbx, 1u << 3},
    {"hle", 7, 0, R::kEbx, 1u << 4},
    {"avx2", 7, 0, R::kEbx, 1u << 5, "avx"},
    {"smep", 7, 0, R::kEbx, 1u << 7},
    {"bmi2", 7, 0, R::kEbx, 1u << 8},
    {"erms", 7, 0, R::kEbx, 1u << 9},
    {"invpcid", 7, 0, R::kEbx, 1u << 10},
    {"rtm", 7, 0, R::kEbx, 1u << 11},
    {"mpx", 7, 0, R::kEbx, 1u << 14},
    {"avx512f", 7, 0, R::kEbx, 1u << 16, "avx2"},
    {"avx512dq", 7, 0, R::kEbx, 1u << 17, "avx512f"},
    {"rdseed", 7, 0, R::kEbx, 1u << 18},
    {"adx", 7, 0, R::kEbx, 1u << 19},
    {"smap", 7, 0, R::kEbx, 1u << 20},
    {"avx512ifma", 7, 0, R::kEbx, 1u << 21, "avx512f"},
    {"clflushopt", 7, 0, R::kEbx, 1u << 23},
    {"clwb", 7, 0, R::kEbx, 1u << 24},
    {"avx512pf", 7, 0, R::kEbx, 1u << 26, "avx512f"},
    {"avx512er", 7, 0, R::kEbx, 1u << 27, "avx512f"},
    {"avx512cd", 7, 0, R::kEbx, 1u << 28, "avx512f"},
    {"sha-ni", 7, 0, R::kEbx, 1u << 29, "sse2"},
    {"avx512bw", 7, 0, R::kEbx, 1u << 30, "avx512f"},
    {"avx512vl", 7, 0, R::kEbx, 1u << 31, "avx512f"},
    // Leaf 7, subleaf 0, ECX.
    {"avx512vbmi", 7, 0, R::kEcx, 1u << 1, "avx512f"},
    {"umip", 7, 0, R::kEcx, 1u << 2},
    {"pku", 7, 0, R::kEcx, 1u << 3},
    {"waitpkg", 7, 0, R::kEcx, 1u << 5},
    {"avx512vbmi2", 7, 0, R::kEcx, 1u << 6, "avx512f"},
    {"gfni", 7, 0, R::kEcx, 1u << 8},
    {"vaes", 7, 0, R::kEcx, 1u << 9, "avx"},
    {"vpclmulqdq", 7, 0, R::kEcx, 1u << 10, "avx"},
    {"avx512vnni", 7, 0, R::kEcx, 1u << 11, "avx512f"},
    {"avx512bitalg", 7, 0, R::kEcx, 1u << 12, "avx512f"},
    {"avx512-vpopcntdq", 7, 0, R::kEcx, 1u << 14, "avx512f"},
    {"la57", 7, 0, R::kEcx, 1u << 16},
    {"rdpid", 7, 0, R::kEcx, 1u << 22},
    {"cldemote", 7, 0, R::kEcx, 1u << 25},
    {"movdiri", 7, 0, R::kEcx, 1u << 27},
    {"movdir64b", 7, 0, R::kEcx, 1u << 28},
    // Leaf 7, subleaf 0, EDX.
    {"avx512-4vnniw", 7, 0, R::kEdx, 1u << 2, "avx512f"},
    {"avx512-4fmaps", 7, 0, R::kEdx, 1u << 3, "avx512f"},
    {"fsrm", 7, 0, R::kEdx, 1u << 4},
    {"md-clear", 7, 0, R::kEdx, 1u << 10},
    {"serialize", 7, 0, R::kEdx, 1u << 14},
    {"avx512-fp16", 7, 0, R::kEdx, 1u << 23, "avx512bw"},
    {"amx-tile", 7, 0, R::kEdx, 1u << 24, "xsave"},
    {"amx-bf16", 7, 0, R::kEdx, 1u << 22, "amx-tile"},
    {"amx-int8", 7, 0, R::kEdx, 1u << 25, "amx-tile"},
    {"spec-ctrl", 7, 0, R::kEdx, 1u << 26},
    {"stibp", 7, 0, R::kEdx, 1u << 27},
    {"arch-capabilities", 7, 0, R::kEdx, 1u << 29},
    {"ssbd", 7, 0, R::kEdx, 1u << 31},
    // Leaf 0xd, subleaf 1, EAX.
    {"xsaveopt", 0xd, 1, R::kEax, 1u << 0, "xsave"},
    {"xsavec", 0xd, 1, R::kEax, 1u << 1, "xsave"},
    {"xgetbv1", 0xd, 1, R::kEax, 1u << 2, "xsave"},
    {"xsaves", 0xd, 1, R::kEax, 1u << 3, "xsave"},
    // Leaf 0x80000001, EDX.
    {"syscall", kExt, 0, R::kEdx, 1u << 11},
    {"nx", kExt, 0, R::kEdx, 1u << 20},
    {"xd", kExt, 0, R::kEdx, 1u << 20},
    {"mmxext", kExt, 0, R::kEdx, 1u << 22},
    {"pdpe1gb", kExt, 0, R::kEdx, 1u << 26},
    {"rdtscp", kExt, 0, R::kEdx, 1u << 27},
    {"lm", kExt, 0, R::kEdx, 1u << 29},
    // Leaf 0x80000001, ECX.
    {"lahf-lm", kExt, 0, R::kEcx, 1u << 0},
    {"svm", kExt, 0, R::kEcx, 1u << 2},
    {"abm", kExt, 0, R::kEcx, 1u << 5},
    {"sse4a", kExt, 0, R::kEcx, 1u << 6},
    {"misalignsse", kExt, 0, R::kEcx, 1u << 7},
    {"3dnowprefetch", kExt, 0, R::kEcx, 1u << 8},
    {"xop", kExt, 0, R::kEcx, 1u << 11, "avx"},
    {"fma4", kExt, 0, R::kEcx, 1u << 16, "avx"},
    {"tbm", kExt, 0, R::kEcx, 1u << 21},
    {"topoext", kExt, 0, R::kEcx, 1u << 22},
    // KVM's paravirtual features (leaf 0x40000001, EAX).
    {"kvmclock", kKvm, 0, R::kEax, (1u << 0) | (1u << 3)},
    {"kvm-nopiodelay", kKvm, 0, R::kEax, 1u << 1},
    {"kvm-asyncpf", kKvm, 0, R::kEax, 1u << 4},
    {"kvm-steal-time", kKvm, 0, R::kEax, 1u << 5},
    {"kvm-pv-eoi", kKvm, 0, R::kEax, 1u << 6},
    {"kvm-pv-unhalt", kKvm, 0, R::kEax, 1u << 7},
    {"kvm-pv-tlb-flush", kKvm, 0, R::kEax, 1u << 9},
    {"kvm-pv-ipi", kKvm, 0, R::kEax, 1u << 11},
};

uint32_t& Register(kvm_cpuid_entry2& e, CpuidRegister reg) {
  switch (reg) {
    case R::kEax:
      return e.eax;
    case R::kEbx:
      return e.ebx;
    case R::kEcx:
      return e.ecx;
    case R::kEdx:
      break;
  }
  return e.edx;
}

void SetBit(CpuidEntries& table, const CpuFeature& f, bool on) {
  kvm_cpuid_entry2* e = table.Find(f.leaf, f.subleaf);
  if (e == nullptr) return;
  Register(*e, f.reg) = on ? (Register(*e, f.reg) | f.mask) : (Register(*e, f.reg) & ~f.mask);
}

// What the user said about `f` last (aliases count as the same bit).
const CpuFeatureChange* LastChange(const CpuModel& model, const CpuFeature& f) {
  const CpuFeatureChange* last = nullptr;
  for (const CpuFeatureChange& c : model.changes) {
    if (c.feature->leaf == f.leaf && c.feature->subleaf == f.subleaf && c.feature->reg == f.reg &&
        c.feature->mask == f.mask) {
      last = &c;
    }
  }
  return last;
}

constexpr uint32_t kLeafXsave = 0xd;

// XSAVE's state-component leaf lives and dies with XSAVE; OSXSAVE is the
// guest OS's to set (KVM mirrors CR4.OSXSAVE), never on without XSAVE.
void FollowXsave(const CpuidEntries& offered, CpuidEntries& table) {
  const CpuFeature* xsave = FindCpuFeature("xsave");
  auto is_xsave_leaf = [](const kvm_cpuid_entry2& e) { return e.function == kLeafXsave; };
  bool has_leaf = std::any_of(table.entries.begin(), table.entries.end(), is_xsave_leaf);
  if (!HasCpuFeature(table, *xsave)) {
    std::erase_if(table.entries, is_xsave_leaf);
    if (kvm_cpuid_entry2* e = table.Find(1)) e->ecx &= ~(1u << 27);
  } else if (!has_leaf) {
    for (const kvm_cpuid_entry2& e : offered.entries) {
      if (is_xsave_leaf(e)) table.entries.push_back(e);
    }
  }
}

absl::Status SetVendor(const std::string& vendor, CpuidEntries& table) {
  kvm_cpuid_entry2* leaf0 = table.Find(0);
  if (leaf0 == nullptr) return absl::FailedPreconditionError("KVM gave no CPUID leaf 0");
  // "GenuineIntel": EBX "Genu", EDX "ineI", ECX "ntel".
  auto word = [&](size_t at) {
    uint32_t w = 0;
    for (size_t i = 0; i < 4; ++i) w |= uint32_t{static_cast<uint8_t>(vendor[at + i])} << (8 * i);
    return w;
  };
  leaf0->ebx = word(0);
  leaf0->edx = word(4);
  leaf0->ecx = word(8);
  return absl::OkStatus();
}

// Drops `prefix` from the front of `text` if it is there.
bool ConsumePrefix(std::string_view& text, std::string_view prefix) {
  if (!text.starts_with(prefix)) return false;
  text.remove_prefix(prefix.size());
  return true;
}

bool ConsumeSuffix(std::string_view& text, std::string_view suffix) {
  if (!text.ends_with(suffix)) return false;
  text.remove_suffix(suffix.size());
  return true;
}

std::vector<std::string_view> SplitCommas(std::string_view text) {
  std::vector<std::string_view> items;
  for (size_t comma; (comma = text.find(',')) != std::string_view::npos;) {
    items.push_back(text.substr(0, comma));
    text.remove_prefix(comma + 1);
  }
  items.push_back(text);
  return items;
}

std::string ChangeText(const CpuFeatureChange& c) {
  return (c.enable ? "+" : "-") + std::string(c.feature->name);
}

}  // namespace

std::span<const CpuFeature> CpuFeatures() { return kFeatures; }

const CpuFeature* FindCpuFeature(std::string_view name) {
  std::string normal(name);
  std::replace(normal.begin(), normal.end(), '_', '-');
  for (const CpuFeature& f : kFeatures) {
    if (f.name == normal) return &f;
  }
  return nullptr;
}

bool HasCpuFeature(CpuidEntries& table, const CpuFeature& feature) {
  kvm_cpuid_entry2* e = table.Find(feature.leaf, feature.subleaf);
  return e != nullptr && (Register(*e, feature.reg) & feature.mask) != 0;
}

absl::StatusOr<CpuModel> ParseCpuModel(std::string_view text) {
  std::vector<std::string_view> items = SplitCommas(text);
  CpuModel model;
  if (items[0] == "host") {
    model.base = CpuTemplate::kHost;
  } else if (items[0] == "minimal") {
    model.base = CpuTemplate::kMinimal;
  } else {
    return absl::InvalidArgumentError("unknown CPU template '" + std::string(items[0]) +
                                      "' (expected host or minimal, then ,+FEATURE or ,-FEATURE)");
  }
  for (size_t i = 1; i < items.size(); ++i) {
    std::string_view item = items[i];
    std::string_view name = item;
    bool enable = true;
    if (ConsumePrefix(item, "vendor=")) {
      if (item.size() != 12) {
        return absl::InvalidArgumentError("vendor '" + std::string(item) +
                                          "' is not 12 characters (e.g. GenuineIntel)");
      }
      model.vendor = std::string(item);
      continue;
    }
    if (ConsumePrefix(item, "model-id=")) {
      if (item.size() > 47) return absl::InvalidArgumentError("model-id is over 47 characters");
      model.brand = std::string(item);
      continue;
    }
    if (ConsumePrefix(name, "+")) {
      enable = true;
    } else if (ConsumePrefix(name, "-")) {
      enable = false;
    } else if (ConsumeSuffix(name, "=on")) {
      enable = true;
    } else if (ConsumeSuffix(name, "=off")) {
      enable = false;
    } else {
      return absl::InvalidArgumentError("'" + std::string(item) +
                                        "': expected +FEATURE, -FEATURE, FEATURE=on|off, "
                                        "vendor=ID or model-id=TEXT");
    }
    const CpuFeature* feature = FindCpuFeature(name);
    if (feature == nullptr) {
      return absl::InvalidArgumentError("unknown CPU feature '" + std::string(name) +
                                        "' (QEMU's names: x2apic, pcid, avx2, ...; the README "
                                        "lists them)");
    }
    model.changes.push_back({feature, enable});
  }
  return model;
}

absl::Status ApplyCpuFeatureChanges(const CpuModel& model, const CpuidEntries& offered,
                                    CpuidEntries& table) {
  CpuidEntries kvm = offered;
  for (const CpuFeatureChange& c : model.changes) {
    if (c.enable && !HasCpuFeature(kvm, *c.feature)) {
      return absl::InvalidArgumentError("+" + std::string(c.feature->name) +
                                        ": KVM on this host cannot give this feature");
    }
    // The leaf may be missing from the template's table (leaf 0xd under
    // minimal); it comes back with its feature.
    if (c.enable && table.Find(c.feature->leaf, c.feature->subleaf) == nullptr) {
      table.entries.push_back(*kvm.Find(c.feature->leaf, c.feature->subleaf));
      kvm_cpuid_entry2& added = table.entries.back();
      added.eax = added.ebx = added.ecx = added.edx = 0;
    }
    SetBit(table, *c.feature, c.enable);
  }
  // Dependencies, to a fixed point: -avx also takes avx2 and then avx512f.
  for (bool changed = true; changed;) {
    changed = false;
    for (const CpuFeature& f : kFeatures) {
      if (f.needs.empty() || !HasCpuFeature(table, f)) continue;
      const CpuFeature& needed = *FindCpuFeature(f.needs);
      if (HasCpuFeature(table, needed)) continue;
      const CpuFeatureChange* asked = LastChange(model, f);
      // Where KVM itself offers a feature without its prerequisite, that is
      // the host's business unless the user asked for the feature.
      if (!HasCpuFeature(kvm, needed) && (asked == nullptr || !asked->enable)) continue;
      if (asked != nullptr && asked->enable) {
        const CpuFeatureChange* removed = LastChange(model, needed);
        return absl::InvalidArgumentError(
            ChangeText(*asked) + " needs " + std::string(needed.name) +
            (removed != nullptr
                 ? ", which " + ChangeText(*removed) + " takes away"
                 : ", which this CPU template lacks (add +" + std::string(needed.name) + ")"));
      }
      SetBit(table, f, false);
      changed = true;
    }
  }
  FollowXsave(offered, table);
  if (!model.vendor.empty()) return SetVendor(model.vendor, table);
  return absl::OkStatus();
}

}  // namespace mote::x86
