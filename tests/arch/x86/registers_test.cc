#include "arch/x86/registers.h"

#include <catch2/catch.hpp>

#include "arch/x86/layout.h"
#include "arch/x86/vcpu_dump.h"

namespace mote::x86 {
namespace {

std::unique_ptr<GuestMemory> Memory() {
  auto mem = GuestMemory::Create({{0, 16 << 20}});
  REQUIRE(mem.ok());
  return std::move(*mem);
}

TEST_CASE("64-bit entry: identity page tables cover the low 4 GiB", "[registers]") {
  auto mem = Memory();
  REQUIRE(WriteBootTables(*mem, EntryMode::kLinux64).ok());
  kvm_sregs sregs = BootSregs(kvm_sregs{}, EntryMode::kLinux64);
  CHECK(sregs.cr3 == kPml4Addr);
  CHECK((sregs.cr0 & 0x80000001) == 0x80000001);  // PG and PE
  CHECK((sregs.cr4 & 0x20) != 0);                 // PAE
  CHECK((sregs.efer & 0x500) == 0x500);           // LME and LMA
  CHECK(sregs.cs.l == 1);
  CHECK(sregs.cs.db == 0);
  CHECK(sregs.ds.db == 1);
  // Every 2 MiB page maps to itself, including the top of the MMIO hole.
  for (uint64_t gva : {0x0ull, 0x100000ull, 0x7ff123ull, 0xc0000000ull, 0xfee00300ull}) {
    auto gpa = TranslateGuestVirtual(*mem, sregs, gva);
    REQUIRE(gpa.has_value());
    CHECK(*gpa == gva);
  }
  CHECK_FALSE(TranslateGuestVirtual(*mem, sregs, 0x100000000ull).has_value());
}

TEST_CASE("32-bit entry: flat protected mode, paging off", "[registers]") {
  auto mem = Memory();
  REQUIRE(WriteBootTables(*mem, EntryMode::kPvh32).ok());
  kvm_sregs sregs = BootSregs(kvm_sregs{}, EntryMode::kPvh32);
  CHECK((sregs.cr0 & 1) == 1);
  CHECK((sregs.cr0 & 0x80000000) == 0);
  CHECK(sregs.efer == 0);
  CHECK(sregs.cs.db == 1);
  CHECK(sregs.cs.l == 0);
  CHECK(sregs.cs.limit == 0xffffffff);
  CHECK(sregs.cs.base == 0);
  CHECK(sregs.ss.limit == 0xffffffff);
  // The GDT in memory holds the same 32-bit code descriptor the CS cache does.
  CHECK(*mem->ReadObj<uint64_t>(GuestAddress{kGdtAddr + 8}) == 0x00cf9b000000ffff);
  CHECK(*TranslateGuestVirtual(*mem, sregs, 0x123456) == 0x123456);
}

TEST_CASE("Boot registers follow each entry convention", "[registers]") {
  BootSetup linux_boot{};
  linux_boot.mode = EntryMode::kLinux64;
  linux_boot.entry = 0x100200;
  linux_boot.rsi = kZeroPageAddr;
  kvm_regs r = BootRegs(linux_boot);
  CHECK(r.rip == 0x100200);
  CHECK(r.rsi == kZeroPageAddr);
  CHECK(r.rflags == 0x2);

  BootSetup mb{};
  mb.mode = EntryMode::kMultiboot32;
  mb.entry = 0x100000;
  mb.rax = 0x2badb002;
  mb.rbx = kBootInfoAddr;
  r = BootRegs(mb);
  CHECK(r.rax == 0x2badb002);
  CHECK(r.rbx == kBootInfoAddr);
}

}  // namespace
}  // namespace mote::x86
