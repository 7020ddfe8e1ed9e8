#include "devices/serial.h"

#include <vector>

#include "absl/strings/str_cat.h"

namespace mote {
namespace {

// Register offsets (DLAB selects the divisor latch at 0 and 1).
constexpr uint64_t kData = 0, kIer = 1, kIirFcr = 2, kLcr = 3, kMcr = 4, kLsr = 5, kMsr = 6,
                   kScr = 7;
constexpr uint8_t kLcrDlab = 0x80;
constexpr uint8_t kIerRxAvailable = 0x01, kIerThrEmpty = 0x02;
constexpr uint8_t kIirNone = 0x01, kIirThrEmpty = 0x02, kIirRxAvailable = 0x04,
                  kIirFifoEnabled = 0xc0;
constexpr uint8_t kLsrDataReady = 0x01, kLsrThrEmpty = 0x20, kLsrIdle = 0x40;
constexpr uint8_t kMcrLoop = 0x10;
constexpr uint8_t kFcrEnable = 0x01, kFcrClearRx = 0x02;
// Modem status with carrier, data-set-ready and clear-to-send: a line that is up.
constexpr uint8_t kMsrLineUp = 0xb0;
// The bits IER and MCR keep (the rest read as 0).
constexpr uint8_t kIerMask = 0x0f, kMcrMask = 0x1f;

}  // namespace

void Serial16550::Read(uint64_t offset, absl::Span<uint8_t> data) {
  MutexLock lock(&mu_);
  // Registers are 8 bits wide; a wider access reads the first and pads with 0.
  for (size_t i = 0; i < data.size(); ++i) {
    data[i] = (i == 0 && offset < kRegisterCount) ? ReadRegister(offset) : 0;
  }
  UpdateIrq();
}

void Serial16550::Write(uint64_t offset, absl::Span<const uint8_t> data) {
  if (data.empty() || offset >= kRegisterCount) return;
  MutexLock lock(&mu_);
  WriteRegister(offset, data[0]);
  UpdateIrq();
}

uint8_t Serial16550::ReadRegister(uint64_t reg) {
  bool dlab = lcr_ & kLcrDlab;
  switch (reg) {
    case kData:
      if (dlab) return dll_;
      if (rx_.empty()) return 0;
      {
        uint8_t byte = rx_.front();
        rx_.pop_front();
        return byte;
      }
    case kIer:
      return dlab ? dlm_ : ier_;
    case kIirFcr: {
      uint8_t iir = InterruptId();
      // Reading IIR acknowledges a THR-empty interrupt it reports.
      if (iir == kIirThrEmpty) thr_empty_pending_ = false;
      return iir | ((fcr_ & kFcrEnable) ? kIirFifoEnabled : 0);
    }
    case kLcr:
      return lcr_;
    case kMcr:
      return mcr_;
    case kLsr:
      return (rx_.empty() ? 0 : kLsrDataReady) | kLsrThrEmpty | kLsrIdle;
    case kMsr:
      if (mcr_ & kMcrLoop) {
        // Loopback wires DTR->DSR, RTS->CTS, OUT1->RI, OUT2->DCD (Linux probes this).
        return static_cast<uint8_t>(((mcr_ & 0x01) << 5) | ((mcr_ & 0x02) << 3) |
                                    ((mcr_ & 0x04) << 4) | ((mcr_ & 0x08) << 4));
      }
      return kMsrLineUp;
    case kScr:
      return scr_;
  }
  return 0xff;
}

void Serial16550::WriteRegister(uint64_t reg, uint8_t value) {
  bool dlab = lcr_ & kLcrDlab;
  switch (reg) {
    case kData:
      if (dlab) {
        dll_ = value;
      } else if (mcr_ & kMcrLoop) {
        if (rx_.size() < kInputCapacity) rx_.push_back(value);
        thr_empty_pending_ = true;
      } else {
        out_->Write(absl::Span<const uint8_t>(&value, 1));
        thr_empty_pending_ = true;  // transmission is instant
      }
      break;
    case kIer:
      if (dlab) {
        dlm_ = value;
      } else {
        // Enabling the THR-empty interrupt while THR is empty raises it at once.
        if ((value & kIerThrEmpty) && !(ier_ & kIerThrEmpty)) thr_empty_pending_ = true;
        ier_ = value & kIerMask;
      }
      break;
    case kIirFcr:
      fcr_ = value;
      if (value & kFcrClearRx) rx_.clear();
      break;
    case kLcr:
      lcr_ = value;
      break;
    case kMcr:
      mcr_ = value & kMcrMask;
      break;
    case kScr:
      scr_ = value;
      break;
    default:
      break;  // LSR and MSR are read-only
  }
}

uint8_t Serial16550::InterruptId() const {
  if ((ier_ & kIerRxAvailable) && !rx_.empty()) return kIirRxAvailable;
  if ((ier_ & kIerThrEmpty) && thr_empty_pending_) return kIirThrEmpty;
  return kIirNone;
}

void Serial16550::UpdateIrq() {
  bool level = InterruptId() != kIirNone;
  if (level != irq_level_) {
    irq_level_ = level;
    if (irq_ != nullptr) irq_->SetLevel(level);
  }
}

size_t Serial16550::EnqueueInput(absl::Span<const uint8_t> bytes) {
  MutexLock lock(&mu_);
  size_t room = kInputCapacity - rx_.size();
  size_t n = bytes.size() < room ? bytes.size() : room;
  rx_.insert(rx_.end(), bytes.begin(), bytes.begin() + n);
  UpdateIrq();
  return n;
}

size_t Serial16550::InputRoom() {
  MutexLock lock(&mu_);
  return kInputCapacity - rx_.size();
}

void Serial16550::SaveState(StateWriter& out) {
  MutexLock lock(&mu_);
  out.U8(ier_);
  out.U8(lcr_);
  out.U8(mcr_);
  out.U8(fcr_);
  out.U8(scr_);
  out.U8(dll_);
  out.U8(dlm_);
  out.Bool(thr_empty_pending_);
  std::vector<uint8_t> rx(rx_.begin(), rx_.end());
  out.Bytes(rx);
}

absl::Status Serial16550::RestoreState(StateReader& in) {
  uint8_t ier = in.U8();
  uint8_t lcr = in.U8();
  uint8_t mcr = in.U8();
  uint8_t fcr = in.U8();
  uint8_t scr = in.U8();
  uint8_t dll = in.U8();
  uint8_t dlm = in.U8();
  uint8_t thr_empty_pending = in.U8();
  // Any length that is there; the capacity is checked below, by name.
  std::vector<uint8_t> rx = in.Bytes(in.remaining());
  if (absl::Status s = in.status(); !s.ok()) return s;
  if (ier & ~kIerMask) in.Fail(absl::StrCat("IER 0x", absl::Hex(ier), " has reserved bits set"));
  if (mcr & ~kMcrMask) in.Fail(absl::StrCat("MCR 0x", absl::Hex(mcr), " has reserved bits set"));
  if (thr_empty_pending > 1) {
    in.Fail(absl::StrCat("THR-empty pending flag ", thr_empty_pending, " is not 0 or 1"));
  }
  if (rx.size() > kInputCapacity) {
    in.Fail(absl::StrCat("receive FIFO of ", rx.size(), " bytes, capacity ", kInputCapacity));
  }
  if (absl::Status s = in.status(); !s.ok()) return s;

  MutexLock lock(&mu_);
  ier_ = ier;
  lcr_ = lcr;
  mcr_ = mcr;
  fcr_ = fcr;
  scr_ = scr;
  dll_ = dll;
  dlm_ = dlm;
  thr_empty_pending_ = thr_empty_pending != 0;
  rx_.assign(rx.begin(), rx.end());
  // Drive the line whatever level was cached: the restored VM's interrupt
  // controller starts from its own saved state, not from this device's past.
  irq_level_ = InterruptId() != kIirNone;
  if (irq_ != nullptr) irq_->SetLevel(irq_level_);
  return absl::OkStatus();
}

}  // namespace mote
