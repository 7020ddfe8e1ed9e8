// KVM ioctls whose argument ends in a flexible array. Debian 12's uapi
// headers declare those arrays with __DECLARE_FLEX_ARRAY, which in C++ adds
// an empty struct member: sizeof(kvm_cpuid2) is 12 instead of 8, so both the
// ioctl numbers (which encode the size) and the entry offsets come out wrong.
// mote builds these arguments as "header, then entries" with the headers
// below, and uses the request numbers defined here. Constants only.
#ifndef MOTE_VMM_BASE_KVM_ABI_H_
#define MOTE_VMM_BASE_KVM_ABI_H_

#include <linux/kvm.h>

#include <cstdint>

namespace mote::kvm_abi {

struct CpuidHeader {  // struct kvm_cpuid2 before entries[]
  uint32_t nent;
  uint32_t padding;
};
struct MsrsHeader {  // struct kvm_msrs before entries[]
  uint32_t nmsrs;
  uint32_t pad;
};
struct MsrListHeader {  // struct kvm_msr_list before indices[]
  uint32_t nmsrs;
};
struct IrqRoutingHeader {  // struct kvm_irq_routing before entries[]
  uint32_t nr;
  uint32_t flags;
};

struct Xsave {  // struct kvm_xsave without extra[] (KVM_CAP_XSAVE2 areas are longer)
  uint32_t region[1024];
};

inline constexpr unsigned long kGetXsave = _IOR(KVMIO, 0xa4, Xsave);
inline constexpr unsigned long kSetXsave = _IOW(KVMIO, 0xa5, Xsave);
inline constexpr unsigned long kGetXsave2 = _IOR(KVMIO, 0xcf, Xsave);
inline constexpr unsigned long kGetSupportedCpuid = _IOWR(KVMIO, 0x05, CpuidHeader);
inline constexpr unsigned long kGetMsrIndexList = _IOWR(KVMIO, 0x02, MsrListHeader);
inline constexpr unsigned long kSetCpuid2 = _IOW(KVMIO, 0x90, CpuidHeader);
inline constexpr unsigned long kSetMsrs = _IOW(KVMIO, 0x89, MsrsHeader);
inline constexpr unsigned long kGetMsrs = _IOWR(KVMIO, 0x88, MsrsHeader);
inline constexpr unsigned long kSetGsiRouting = _IOW(KVMIO, 0x6a, IrqRoutingHeader);

// The values a C compiler computes from the same headers.
static_assert(kGetSupportedCpuid == 0xc008ae05);
static_assert(kGetMsrIndexList == 0xc004ae02);
static_assert(kSetCpuid2 == 0x4008ae90);
static_assert(kSetMsrs == 0x4008ae89);
static_assert(kGetXsave == 0x9000aea4 && kSetXsave == 0x5000aea5 && kGetXsave2 == 0x9000aecf);
static_assert(kGetMsrs == 0xc008ae88);
static_assert(kSetGsiRouting == 0x4008ae6a);
static_assert(sizeof(kvm_cpuid_entry2) == 40 && sizeof(kvm_msr_entry) == 16 &&
              sizeof(kvm_irq_routing_entry) == 48);

}  // namespace mote::kvm_abi

#endif  // MOTE_VMM_BASE_KVM_ABI_H_
