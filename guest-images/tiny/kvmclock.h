/* kvmclock (KVM's paravirtual clock, Documentation/virt/kvm/x86/msr.rst):
 * the host publishes system_time and a TSC scale in a structure the guest
 * registers through an MSR; the guest's nanoseconds are system_time plus the
 * scaled TSC delta. A VMM that stops a guest (QMP stop) saves and restores
 * the clock, so kvmclock time does not move while the guest is paused, unlike
 * the raw TSC. Boot CPU only. */
#ifndef MOTETEST_KVMCLOCK_H_
#define MOTETEST_KVMCLOCK_H_

#include <stdbool.h>
#include <stdint.h>

struct pvclock_vcpu_time_info {
  volatile uint32_t version; /* odd while the host updates it */
  uint32_t pad0;
  volatile uint64_t tsc_timestamp;
  volatile uint64_t system_time; /* ns */
  volatile uint32_t tsc_to_system_mul;
  volatile int8_t tsc_shift;
  volatile uint8_t flags;
  uint8_t pad[2];
};

extern struct pvclock_vcpu_time_info kvmclock;

/* Registers the structure (a system call); false when the host never filled it in. */
bool kvmclock_enable(void);
/* Nanoseconds of kvmclock time. */
uint64_t kvmclock_ns(void);

#endif /* MOTETEST_KVMCLOCK_H_ */
