/* LAPIC and IOAPIC programming. Each register access is an MMIO exit, so
 * these touch as few registers as they can. */
#include "apic.h"

#define IOAPIC_REGSEL 0x00
#define IOAPIC_WIN 0x10
#define IOAPIC_REDTBL(pin) (0x10 + 2 * (pin))
#define REDTBL_LEVEL (1u << 15)
#define REDTBL_ACTIVE_LOW (1u << 13)

void lapic_enable(void) {
  lapic_write(LAPIC_TPR, 0);
  lapic_write(LAPIC_SVR, LAPIC_SVR_ENABLE | VEC_SPURIOUS);
}

bool lapic_send_ipi(uint32_t apic_id, uint32_t icr) {
  lapic_write(LAPIC_ICR_HI, apic_id << 24);
  lapic_write(LAPIC_ICR_LO, icr); /* this write sends it */
  for (int i = 0; i < 100000; ++i) {
    if (!(lapic_read(LAPIC_ICR_LO) & ICR_DELIVERY_PENDING)) return true;
    cpu_relax();
  }
  return false;
}

uint32_t ioapic_read(uint32_t reg) {
  mmio_write32(IOAPIC_ADDR + IOAPIC_REGSEL, reg);
  return mmio_read32(IOAPIC_ADDR + IOAPIC_WIN);
}

static void ioapic_write(uint32_t reg, uint32_t v) {
  mmio_write32(IOAPIC_ADDR + IOAPIC_REGSEL, reg);
  mmio_write32(IOAPIC_ADDR + IOAPIC_WIN, v);
}

void ioapic_route(uint32_t pin, uint8_t vector, uint32_t apic_id, bool level, bool active_low) {
  /* Destination first, so the entry is never live with a stale one. */
  ioapic_write(IOAPIC_REDTBL(pin) + 1, apic_id << 24);
  ioapic_write(IOAPIC_REDTBL(pin),
               vector | (level ? REDTBL_LEVEL : 0) | (active_low ? REDTBL_ACTIVE_LOW : 0));
}
