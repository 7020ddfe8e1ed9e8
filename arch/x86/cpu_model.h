// The CPU a VM's vCPUs are given, as `--cpu` spells it: a template, then
// features switched on or off by QEMU's names, then an optional vendor and
// brand: "host,-x2apic,+pcid,vendor=AuthenticAMD". The features are the
// CPUID bits in kCpuFeatures; ApplyCpuModel turns a model into the CPUID
// table every vCPU starts from. Pure functions; any thread.
#ifndef MOTE_ARCH_X86_CPU_MODEL_H_
#define MOTE_ARCH_X86_CPU_MODEL_H_

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "vmm/base/kvm.h"

namespace mote::x86 {

enum class CpuTemplate {
  kHost,     // everything KVM supports on this host
  kMinimal,  // a portable baseline: no cx16, xsave/xsaves, AVX-class features
};

enum class CpuidRegister : uint8_t { kEax, kEbx, kEcx, kEdx };

// One CPUID feature under its QEMU name: its bit (kvmclock: two bits). `needs`: a feature it cannot
// work without (AVX2 without AVX, AVX without XSAVE), or empty.
struct CpuFeature {
  std::string_view name;
  uint32_t leaf;
  uint32_t subleaf;
  CpuidRegister reg;
  uint32_t mask;
  std::string_view needs = {};
};

// Every feature `--cpu` can switch, aliases included ("sse3" and "pni").
std::span<const CpuFeature> CpuFeatures();
// The feature named `name` ('_' and '-' are the same); nullptr if none.
const CpuFeature* FindCpuFeature(std::string_view name);

struct CpuFeatureChange {
  const CpuFeature* feature;
  bool enable;
};

struct CpuModel {
  CpuTemplate base = CpuTemplate::kHost;
  std::vector<CpuFeatureChange> changes;  // in the order given
  std::string vendor;                     // 12 characters, or "": KVM's
  std::string brand;                      // "": the template's
};

// "TEMPLATE[,+FEATURE|-FEATURE|FEATURE=on|off...][,vendor=ID][,model-id=TEXT]".
absl::StatusOr<CpuModel> ParseCpuModel(std::string_view text);

// Whether `table` has `feature` set (false if its leaf is missing).
bool HasCpuFeature(CpuidEntries& table, const CpuFeature& feature);

// Applies the model's feature changes and vendor to `table`, the template's
// CPUID. A feature switched on must be one KVM offers (in `offered`, the
// supported CPUID plus what mote adds itself); one switched on that needs a
// feature switched off is an error naming both; a feature the user did not
// ask for loses its bit when what it needs is switched off (-xsave takes AVX
// with it, as the minimal template does). Leaf 0xd follows XSAVE.
absl::Status ApplyCpuFeatureChanges(const CpuModel& model, const CpuidEntries& offered,
                                    CpuidEntries& table);

}  // namespace mote::x86

#endif  // MOTE_ARCH_X86_CPU_MODEL_H_
