#include "devices/pci/msix.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "absl/strings/str_format.h"

namespace mote::pci {
namespace {

constexpr uint32_t kVectorControlMask = 1;

}  // namespace

MsixVectors::MsixVectors(uint16_t count, MsiRouter* router) : router_(router), entries_(count) {}

bool MsixVectors::Deliverable(const Entry& e) const {
  return enabled_ && !function_masked_ && !(e.words[3] & kVectorControlMask);
}

void MsixVectors::Sync(uint16_t vector) {
  Entry& e = entries_[vector];
  if (!Deliverable(e)) return;
  uint64_t address = e.words[0] | uint64_t{e.words[1]} << 32;
  if (!e.routed || e.routed_address != address || e.routed_data != e.words[2]) {
    router_->Route(vector, address, e.words[2]);
    e.routed = true;
    e.routed_address = address;
    e.routed_data = e.words[2];
  }
  if (e.pending) {
    e.pending = false;
    router_->Fire(vector);
  }
}

void MsixVectors::ReadTable(uint64_t offset, absl::Span<uint8_t> data) {
  std::fill(data.begin(), data.end(), 0);
  if ((data.size() != 4 && data.size() != 8) || offset % data.size() != 0) return;
  std::lock_guard lock(mu_);
  for (size_t done = 0; done < data.size(); done += 4) {
    uint64_t at = offset + done;
    if (at / kMsixEntrySize >= entries_.size()) return;
    uint32_t word = entries_[at / kMsixEntrySize].words[(at % kMsixEntrySize) / 4];
    std::memcpy(data.data() + done, &word, 4);
  }
}

void MsixVectors::WriteTable(uint64_t offset, absl::Span<const uint8_t> data) {
  if ((data.size() != 4 && data.size() != 8) || offset % data.size() != 0) return;
  std::lock_guard lock(mu_);
  for (size_t done = 0; done < data.size(); done += 4) {
    uint64_t at = offset + done;
    uint64_t index = at / kMsixEntrySize;
    if (index >= entries_.size()) return;
    uint32_t word;
    std::memcpy(&word, data.data() + done, 4);
    size_t field = (at % kMsixEntrySize) / 4;
    // Only the mask bit of vector control is defined; the rest is reserved.
    entries_[index].words[field] = field == 3 ? (word & kVectorControlMask) : word;
    Sync(static_cast<uint16_t>(index));
  }
}

void MsixVectors::ReadPba(uint64_t offset, absl::Span<uint8_t> data) {
  std::fill(data.begin(), data.end(), 0);
  if ((data.size() != 4 && data.size() != 8) || offset % data.size() != 0) return;
  std::lock_guard lock(mu_);
  for (size_t byte = 0; byte < data.size(); ++byte) {
    for (int bit = 0; bit < 8; ++bit) {
      uint64_t vector = (offset + byte) * 8 + bit;
      if (vector < entries_.size() && entries_[vector].pending) data[byte] |= 1u << bit;
    }
  }
}

void MsixVectors::SetControl(uint16_t control) {
  std::lock_guard lock(mu_);
  enabled_ = control & kMsixControlEnable;
  function_masked_ = control & kMsixControlFunctionMask;
  for (uint16_t v = 0; v < entries_.size(); ++v) Sync(v);
}

bool MsixVectors::enabled() {
  std::lock_guard lock(mu_);
  return enabled_;
}

bool MsixVectors::function_masked() {
  std::lock_guard lock(mu_);
  return function_masked_;
}

bool MsixVectors::Signal(uint16_t vector) {
  std::lock_guard lock(mu_);
  if (!enabled_) return false;
  if (vector < entries_.size()) {
    entries_[vector].pending = true;
    Sync(vector);
  }
  return true;
}

void MsixVectors::Reset() {
  std::lock_guard lock(mu_);
  enabled_ = function_masked_ = false;
  for (Entry& e : entries_) e = Entry{};
}

void MsixVectors::SaveState(StateWriter& out) {
  std::lock_guard lock(mu_);
  out.U16(static_cast<uint16_t>(entries_.size()));
  for (const Entry& e : entries_) {
    for (uint32_t word : e.words) out.U32(word);
    out.Bool(e.pending);
  }
  out.Bool(enabled_);
  out.Bool(function_masked_);
}

absl::Status MsixVectors::RestoreState(StateReader& in) {
  std::lock_guard lock(mu_);
  uint16_t count = in.U16();
  if (in.ok() && count != entries_.size()) {
    in.Fail(absl::StrFormat("%d MSI-X vectors, this function has %d", count, entries_.size()));
  }
  std::vector<Entry> entries(entries_.size());
  for (uint16_t v = 0; v < entries.size() && in.ok(); ++v) {
    for (uint32_t& word : entries[v].words) word = in.U32();
    entries[v].pending = in.Bool();
    // WriteTable keeps only the mask bit of vector control.
    if (entries[v].words[3] & ~kVectorControlMask) {
      in.Fail(absl::StrFormat("MSI-X vector %d: reserved vector-control bits set", v));
    }
  }
  bool enabled = in.Bool();
  bool function_masked = in.Bool();
  if (!in.ok()) return in.status(/*want_end=*/false);
  entries_ = std::move(entries);  // routed = false: the router has none of them
  enabled_ = enabled;
  function_masked_ = function_masked;
  for (uint16_t v = 0; v < entries_.size(); ++v) Sync(v);
  return absl::OkStatus();
}

}  // namespace mote::pci
