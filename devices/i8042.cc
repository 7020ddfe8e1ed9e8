#include "devices/i8042.h"

#include "absl/strings/str_cat.h"

namespace mote {
namespace {

constexpr uint64_t kDataOffset = 0, kCommandOffset = 4;
constexpr uint8_t kStatusOutputFull = 0x01, kStatusSystemFlag = 0x04, kStatusCommand = 0x08;
constexpr uint8_t kCmdReadControl = 0x20, kCmdWriteControl = 0x60, kCmdDisableAux = 0xa7,
                  kCmdEnableAux = 0xa8, kCmdTestAux = 0xa9, kCmdSelfTest = 0xaa, kCmdTestKbd = 0xab,
                  kCmdDisableKbd = 0xad, kCmdEnableKbd = 0xae, kCmdReadOutputPort = 0xd0,
                  kCmdWriteOutputPort = 0xd1, kCmdPulseReset = 0xfe;
constexpr uint8_t kSelfTestOk = 0x55;

}  // namespace

void I8042::Reply(uint8_t byte) {
  output_ = byte;
  output_full_ = true;
}

void I8042::Command(uint8_t command) {
  switch (command) {
    case kCmdReadControl:
      Reply(control_);
      break;
    case kCmdWriteControl:
    case kCmdWriteOutputPort:
      pending_command_ = command;
      break;
    case kCmdSelfTest:
      Reply(kSelfTestOk);
      break;
    case kCmdTestAux:
    case kCmdTestKbd:
      Reply(0x00);  // interface OK
      break;
    case kCmdDisableAux:
      control_ |= 0x20;
      break;
    case kCmdEnableAux:
      control_ &= ~0x20;
      break;
    case kCmdDisableKbd:
      control_ |= 0x10;
      break;
    case kCmdEnableKbd:
      control_ &= ~0x10;
      break;
    case kCmdReadOutputPort:
      Reply(0x01);  // reset line high (inactive)
      break;
    case kCmdPulseReset:
      events_->OnGuestEvent(GuestEvent::kReset, 0);
      break;
    default:
      break;  // other commands have no effect without attached devices
  }
}

void I8042::Read(uint64_t offset, absl::Span<uint8_t> data) {
  if (data.empty()) return;
  MutexLock lock(&mu_);
  uint8_t value = 0xff;
  if (offset == kDataOffset) {
    value = output_;
    output_full_ = false;
  } else if (offset == kCommandOffset) {
    value = kStatusSystemFlag | kStatusCommand | (output_full_ ? kStatusOutputFull : 0);
  }
  data[0] = value;
  for (size_t i = 1; i < data.size(); ++i) data[i] = 0xff;
}

void I8042::Write(uint64_t offset, absl::Span<const uint8_t> data) {
  if (data.empty()) return;
  MutexLock lock(&mu_);
  if (offset == kCommandOffset) {
    pending_command_ = 0;
    Command(data[0]);
  } else if (offset == kDataOffset) {
    if (pending_command_ == kCmdWriteControl) control_ = data[0];
    // Output port bit 0 low is the CPU reset line.
    if (pending_command_ == kCmdWriteOutputPort && !(data[0] & 0x01)) {
      events_->OnGuestEvent(GuestEvent::kReset, 0);
    }
    pending_command_ = 0;
  }
}

void I8042::SaveState(StateWriter& out) {
  MutexLock lock(&mu_);
  out.U8(control_);
  out.U8(output_);
  out.Bool(output_full_);
  out.U8(pending_command_);
}

absl::Status I8042::RestoreState(StateReader& in) {
  uint8_t control = in.U8();
  uint8_t output = in.U8();
  uint8_t output_full = in.U8();
  uint8_t pending_command = in.U8();
  if (absl::Status s = in.status(); !s.ok()) return s;
  if (output_full > 1) in.Fail(absl::StrCat("output-full flag ", output_full, " is not 0 or 1"));
  if (pending_command != 0 && pending_command != kCmdWriteControl &&
      pending_command != kCmdWriteOutputPort) {
    in.Fail(absl::StrCat("pending command 0x", absl::Hex(pending_command), " takes no data byte"));
  }
  if (absl::Status s = in.status(); !s.ok()) return s;

  MutexLock lock(&mu_);
  control_ = control;
  output_ = output;
  output_full_ = output_full != 0;
  pending_command_ = pending_command;
  return absl::OkStatus();
}

}  // namespace mote
