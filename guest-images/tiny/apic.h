/* Local APIC (xAPIC MMIO) and IOAPIC access, usable from ring 3 and ring 0. */
#ifndef MOTETEST_APIC_H_
#define MOTETEST_APIC_H_

#include <stdbool.h>
#include <stdint.h>

#include "arch.h"
#include "platform.h"

#define LAPIC_ID 0x020
#define LAPIC_TPR 0x080
#define LAPIC_EOI 0x0b0
#define LAPIC_SVR 0x0f0
#define LAPIC_ICR_LO 0x300
#define LAPIC_ICR_HI 0x310

#define LAPIC_SVR_ENABLE 0x100
#define ICR_INIT 0x00000500
#define ICR_STARTUP 0x00000600
#define ICR_LEVEL_ASSERT 0x00004000
#define ICR_DELIVERY_PENDING 0x00001000

static inline uint32_t lapic_read(uint32_t reg) { return mmio_read32(LAPIC_ADDR + reg); }
static inline void lapic_write(uint32_t reg, uint32_t v) { mmio_write32(LAPIC_ADDR + reg, v); }
static inline uint32_t lapic_id(void) { return lapic_read(LAPIC_ID) >> 24; }
static inline void lapic_eoi(void) { lapic_write(LAPIC_EOI, 0); }

/* Software-enables this CPU's LAPIC, spurious vector VEC_SPURIOUS, TPR 0. */
void lapic_enable(void);
/* Sends an IPI (ICR low word `icr`) to `apic_id`; false if the APIC still
 * reports it pending after a bounded wait. */
bool lapic_send_ipi(uint32_t apic_id, uint32_t icr);

/* Routes IOAPIC `pin` to `vector` on `apic_id` (fixed delivery, physical
 * destination). level/active_low come from the MADT override flags. */
void ioapic_route(uint32_t pin, uint8_t vector, uint32_t apic_id, bool level, bool active_low);
uint32_t ioapic_read(uint32_t reg);

#endif /* MOTETEST_APIC_H_ */
