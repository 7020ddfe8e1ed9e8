/* test=cpuid: prints the CPU the guest kernel sees (CPUID in ring 0): the
 * vendor, the brand string and a few feature bits by QEMU's names, so a host
 * test can check what --cpu switched on and off. Checks that the features
 * it reports are consistent (AVX needs XSAVE, x2APIC needs the APIC). */
#include "../arch.h"
#include "../lib.h"
#include "../test.h"

static bool bit(uint32_t reg, unsigned n) { return (reg >> n) & 1; }

void test_cpuid(void) {
  uint32_t leaf0[4], leaf1[4], leaf7[4] = {0}, ext[4];
  cpuid0(0, 0, leaf0);
  cpuid0(1, 0, leaf1);
  if (leaf0[0] >= 7) cpuid0(7, 0, leaf7);
  char vendor[13];
  memcpy(vendor, &leaf0[1], 4);
  memcpy(vendor + 4, &leaf0[3], 4);
  memcpy(vendor + 8, &leaf0[2], 4);
  vendor[12] = 0;
  char brand[49] = "";
  cpuid0(0x80000000, 0, ext);
  if (ext[0] >= 0x80000004) {
    for (uint32_t i = 0; i < 3; ++i) cpuid0(0x80000002 + i, 0, (uint32_t*)(brand + 16 * i));
    brand[48] = 0;
  }
  bool x2apic = bit(leaf1[2], 21), pcid = bit(leaf1[2], 17), xsave = bit(leaf1[2], 26),
       avx = bit(leaf1[2], 28), apic = bit(leaf1[3], 9), avx2 = bit(leaf7[1], 5),
       invpcid = bit(leaf7[1], 10), hypervisor = bit(leaf1[2], 31);
  printf("cpuid: vendor=%s brand=%s\n", vendor, brand);
  printf("cpuid: x2apic=%d pcid=%d invpcid=%d xsave=%d avx=%d avx2=%d hypervisor=%d\n", x2apic,
         pcid, invpcid, xsave, avx, avx2, hypervisor);
  expect(!avx || xsave, "cpuid_avx_needs_xsave", "AVX without XSAVE");
  expect(!avx2 || avx, "cpuid_avx2_needs_avx", "AVX2 without AVX");
  expect(!x2apic || apic, "cpuid_x2apic_needs_apic", "x2APIC without the APIC");
}
