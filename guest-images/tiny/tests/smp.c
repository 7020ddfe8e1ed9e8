/* test=smp [cpus=N]: starts every enabled CPU of the MADT with INIT/SIPI/SIPI
 * (xAPIC ICR, from ring 3). Each AP runs the trampoline into long mode and
 * ring 3, prints "cpu N apic_id=M" and halts; the boot CPU checks that all of
 * them (and N, if given) came online. */
#include "../acpi.h"
#include "../apic.h"
#include "../arch.h"
#include "../boot.h"
#include "../lib.h"
#include "../machine.h"
#include "../platform.h"
#include "../test.h"
#include "../traps.h"

#define SIPI_VECTOR (AP_TRAMPOLINE_ADDR >> 12)

extern const char trampoline_start[], trampoline_end[];

uint8_t apic_to_cpu[256] = {[0 ... 255] = 0xff};
static volatile uint32_t aps_online;
static volatile uint32_t ap_mismatches;

/* The LAPIC ID register and CPUID (read for us in ring 0: see arch.h) must
 * agree. */
static bool report_cpu(uint32_t cpu) {
  uint32_t id = lapic_id();
  printf("cpu %u apic_id=%u\n", cpu, id); /* printf holds the console spinlock */
  if (cpuid_apic_ids[cpu] == id) return true;
  printf("FAIL cpu %u: CPUID says APIC ID %u\n", cpu, cpuid_apic_ids[cpu]);
  return false;
}

void ap_user_main(uint32_t cpu) {
  if (cpu == 0 && s3_resume) s3_resume(); /* the boot CPU back from S3 (test=s3) */
  if (!report_cpu(cpu)) __atomic_fetch_add(&ap_mismatches, 1, __ATOMIC_SEQ_CST);
  __atomic_fetch_add(&aps_online, 1, __ATOMIC_SEQ_CST);
  sys_halt();
}

void test_smp(void) {
  uint32_t ids[MAX_CPUS];
  int n = madt_cpus(ids, MAX_CPUS);
  if (!expect(n > 0, "smp_madt", "no MADT or no enabled CPU (%d)", n)) return;
  if (!expect(n <= MAX_CPUS, "smp_max", "%d CPUs, this kernel handles %d", n, MAX_CPUS)) return;
  uint32_t self = lapic_id();
  if (!report_cpu(0)) ap_mismatches++;

  /* CPU indexes in MADT order, the boot CPU first; ap_entry64 looks them up. */
  apic_to_cpu[self & 0xff] = 0;
  int next = 1;
  for (int i = 0; i < n; ++i) {
    if (ids[i] != self && ids[i] < 256) apic_to_cpu[ids[i]] = next++;
  }
  memcpy((void*)AP_TRAMPOLINE_ADDR, trampoline_start, trampoline_end - trampoline_start);
  __atomic_thread_fence(__ATOMIC_SEQ_CST);

  /* INIT to all, then the two SIPIs of the MP spec to all. KVM's in-kernel
   * LAPIC handles a pending INIT before a SIPI, so no 10 ms pause is needed;
   * a second SIPI to a running AP is ignored. */
  lapic_enable();
  bool sent = true;
  for (int i = 0; i < n; ++i) {
    if (ids[i] != self) sent &= lapic_send_ipi(ids[i], ICR_INIT | ICR_LEVEL_ASSERT);
  }
  for (int round = 0; round < 2; ++round) {
    for (int i = 0; i < n; ++i) {
      if (ids[i] != self) sent &= lapic_send_ipi(ids[i], ICR_STARTUP | SIPI_VECTOR);
    }
  }
  expect(sent, "smp_ipi", "an IPI stayed pending in the ICR");

  uint64_t deadline = deadline_ms(3000);
  while (aps_online < (uint32_t)(n - 1) && !deadline_passed(deadline)) cpu_relax();
  uint32_t online = aps_online + 1;
  boot_done(); /* every CPU is up: the benchmark times SMP boots to here */
  printf("smp: %u cpus online\n", online);
  expect(online == (uint32_t)n, "smp_online", "%u of %d MADT CPUs came online", online, n);
  expect(ap_mismatches == 0, "smp_apic_ids", "%u CPUs' CPUID and LAPIC IDs disagree",
         ap_mismatches);
  uint64_t want = cmdline_u64("cpus", 0);
  if (want) expect(want == (uint64_t)n, "smp_cpus", "MADT lists %d CPUs, cpus=%lu", n, want);
}
