#include "vmm/base/bus.h"

#include <algorithm>

#include "absl/strings/str_format.h"

namespace mote {

absl::Status Bus::Insert(std::shared_ptr<BusDevice> device, uint64_t base, uint64_t len) {
  if (len == 0 || base + len < base) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s bus: bad range 0x%x+0x%x", name_, base, len));
  }
  // The next entry must start at or after our end; the previous must end at or before base.
  auto next = entries_.lower_bound(base);
  if (next != entries_.end() && next->first < base + len) {
    return absl::AlreadyExistsError(absl::StrFormat(
        "%s bus: range 0x%x+0x%x overlaps device at 0x%x", name_, base, len, next->first));
  }
  if (next != entries_.begin()) {
    auto prev = std::prev(next);
    if (prev->first + prev->second.len > base) {
      return absl::AlreadyExistsError(absl::StrFormat(
          "%s bus: range 0x%x+0x%x overlaps device at 0x%x", name_, base, len, prev->first));
    }
  }
  entries_.emplace(base, Entry{len, std::move(device)});
  return absl::OkStatus();
}

absl::Status Bus::Remove(uint64_t base) {
  if (entries_.erase(base) == 0) {
    return absl::NotFoundError(absl::StrFormat("%s bus: no device at 0x%x", name_, base));
  }
  return absl::OkStatus();
}

const Bus::Entry* Bus::Find(uint64_t addr, uint64_t size, uint64_t* offset) const {
  auto it = entries_.upper_bound(addr);
  if (it == entries_.begin()) return nullptr;
  --it;
  uint64_t off = addr - it->first;
  if (off >= it->second.len || size > it->second.len - off) return nullptr;
  *offset = off;
  return &it->second;
}

bool Bus::Read(uint64_t addr, absl::Span<uint8_t> data) const {
  uint64_t offset = 0;
  const Entry* e = Find(addr, data.size(), &offset);
  if (e == nullptr) {
    std::fill(data.begin(), data.end(), 0xff);
    unmapped_reads_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  e->device->Read(offset, data);
  return true;
}

bool Bus::Write(uint64_t addr, absl::Span<const uint8_t> data) const {
  uint64_t offset = 0;
  const Entry* e = Find(addr, data.size(), &offset);
  if (e == nullptr) {
    unmapped_writes_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  e->device->Write(offset, data);
  return true;
}

}  // namespace mote
