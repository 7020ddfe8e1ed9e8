// A VirtioDevice that records what its transport asks of it, for the
// transport tests (virtio-mmio and virtio-pci drive the same device).
#ifndef MOTE_TESTS_SUPPORT_FAKE_VIRTIO_DEVICE_H_
#define MOTE_TESTS_SUPPORT_FAKE_VIRTIO_DEVICE_H_

#include <atomic>

#include "virtio/virtio_device.h"

namespace mote::virtio::testing {

inline constexpr uint64_t kFakeFeatureBit0 = 1;

class FakeDevice : public VirtioDevice {
 public:
  uint32_t DeviceType() const override { return 42; }
  uint64_t AvailableFeatures() const override { return kFeatureVersion1 | kFakeFeatureBit0; }
  std::vector<uint16_t> QueueMaxSizes() const override { return {8, 16}; }
  // Byte i of the configuration reads 0xa0 + i.
  void ReadConfig(uint64_t offset, absl::Span<uint8_t> data) const override {
    for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(0xa0 + offset + i);
  }
  absl::Status Activate(const ActivationContext& ctx) override {
    ++activations;
    last = ctx;
    return fail_activation ? absl::InternalError("refused") : absl::OkStatus();
  }
  void ProcessQueue(uint16_t index) override {
    processed_queue = index;
    ++processed;
    if (signal_on_process) last.interrupt->SignalUsedBuffers(index);
  }
  void Reset() override { ++resets; }

  int activations = 0, resets = 0;
  std::atomic<int> processed{0};
  std::atomic<int> processed_queue{-1};
  bool fail_activation = false;
  bool signal_on_process = false;
  ActivationContext last;
};

}  // namespace mote::virtio::testing

#endif  // MOTE_TESTS_SUPPORT_FAKE_VIRTIO_DEVICE_H_
