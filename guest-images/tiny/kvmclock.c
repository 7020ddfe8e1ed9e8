#include "kvmclock.h"

#include "arch.h"
#include "cpu.h"

struct pvclock_vcpu_time_info kvmclock __attribute__((aligned(64)));

bool kvmclock_enable(void) {
  syscall0(SYS_KVMCLOCK);
  return kvmclock.tsc_to_system_mul != 0;
}

uint64_t kvmclock_ns(void) {
  uint32_t version;
  uint64_t ns;
  do {
    version = kvmclock.version;
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    uint64_t delta = rdtsc() - kvmclock.tsc_timestamp;
    int8_t shift = kvmclock.tsc_shift;
    delta = shift < 0 ? delta >> -shift : delta << shift;
    ns = kvmclock.system_time +
         (uint64_t)(((unsigned __int128)delta * kvmclock.tsc_to_system_mul) >> 32);
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
  } while ((version & 1) || version != kvmclock.version);
  return ns;
}
