#include "vmm/vcpu.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_format.h"
#include "arch/x86/vcpu_dump.h"
#include "vmm/base/logging.h"
#include "vmm/startup_timings.h"
#include "vmm/vcpu_exit.h"

namespace mote {
namespace {

int KickSignal() { return SIGRTMIN; }

void NoopHandler(int) {}

}  // namespace

void Vcpu::InstallKickSignalHandler() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction sa;
    std::memset(&sa, 0, sizeof(sa));
    sa.sa_handler = NoopHandler;  // no SA_RESTART: KVM_RUN must return EINTR
    sigemptyset(&sa.sa_mask);
    sigaction(KickSignal(), &sa, nullptr);
  });
}

Vcpu::Vcpu(VcpuFd fd, const Bus* pio_bus, const Bus* mmio_bus, const GuestMemory* mem,
           EndCallback on_end, DirtyRings* dirty_rings, SeccompMode seccomp)
    : fd_(std::move(fd)),
      pio_bus_(pio_bus),
      mmio_bus_(mmio_bus),
      mem_(mem),
      on_end_(std::move(on_end)),
      dirty_rings_(dirty_rings),
      seccomp_(seccomp) {}

Vcpu::~Vcpu() {
  Kick();
  Join();
}

void Vcpu::Start() {
  started_ = true;
  // Returns once the thread exists, so thread_id() is known (query-cpus-fast).
  absl::Cleanup wait_for_id = [this] {
    std::unique_lock lock(pause_mu_);
    pause_cv_.wait(lock, [this] { return thread_id_.load() != 0; });
  };
  thread_ = std::thread([this] {
    {
      std::lock_guard lock(pause_mu_);
      thread_id_.store(static_cast<int>(gettid()));
      pause_cv_.notify_all();
    }
    pthread_setname_np(pthread_self(), absl::StrFormat("mote-vcpu%d", fd_.id()).c_str());
    if (absl::Status s = InstallSeccompFilter(ThreadKind::kVcpu, seccomp_); s.ok()) {
      Loop();
    } else {
      on_end_({OutcomeKind::kHostError, 0, std::string(s.message())});
    }
    std::lock_guard lock(pause_mu_);
    ended_ = true;
    pause_cv_.notify_all();
  });
}

void Vcpu::Kick() {
  stop_.store(true);
  {
    std::lock_guard lock(pause_mu_);
    pause_cv_.notify_all();  // a parked thread must see stop_ too
  }
  Interrupt();
}

void Vcpu::Interrupt() {
  // immediate_exit covers the window before the thread enters KVM_RUN; the
  // signal interrupts a KVM_RUN already in progress (e.g. a halted vCPU).
  if (fd_.run() != nullptr) __atomic_store_n(&fd_.run()->immediate_exit, 1, __ATOMIC_SEQ_CST);
  if (started_ && thread_.joinable()) pthread_kill(thread_.native_handle(), KickSignal());
}

void Vcpu::Pause() {
  std::unique_lock lock(pause_mu_);
  pause_requested_ = true;
  pause_pending_.store(true);
  if (!started_) return;  // parks as soon as it starts
  lock.unlock();
  Interrupt();
  lock.lock();
  pause_cv_.wait(lock, [this] { return parked_ || ended_; });
}

void Vcpu::Resume() {
  std::lock_guard lock(pause_mu_);
  pause_requested_ = false;
  pause_pending_.store(false);
  pause_cv_.notify_all();
}

void Vcpu::ParkIfPaused() {
  std::unique_lock lock(pause_mu_);
  if (!pause_requested_ || stop_.load()) return;
  parked_ = true;
  pause_cv_.notify_all();
  pause_cv_.wait(lock, [this] { return !pause_requested_ || stop_.load(); });
  parked_ = false;
}

void Vcpu::Join() {
  if (thread_.joinable()) thread_.join();
}

uint64_t Vcpu::ExitCount(uint32_t reason) const {
  return reason < kExitReasons ? exit_counts_[reason].load(std::memory_order_relaxed) : 0;
}

void Vcpu::Loop() {
  // The kick signal is blocked in the process (for signalfd users); this
  // thread must receive it.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, KickSignal());
  pthread_sigmask(SIG_UNBLOCK, &set, nullptr);

  while (!stop_.load()) {
    if (pause_pending_.load()) {
      // KVM finishes an IN or MMIO read (the value into the register) only
      // on the next KVM_RUN: enter it once with immediate_exit, which runs
      // no guest instruction, so a stopped vCPU's registers are whole (a
      // snapshot reads them).
      __atomic_store_n(&fd_.run()->immediate_exit, 1, __ATOMIC_SEQ_CST);
      (void)fd_.Run();
      __atomic_store_n(&fd_.run()->immediate_exit, 0, __ATOMIC_SEQ_CST);
      ParkIfPaused();
      continue;  // re-checks stop_
    }
    startup::Mark(startup::Phase::kFirstKvmRun);
    int err = fd_.Run();
    if (err == EINTR || err == EAGAIN) {
      __atomic_store_n(&fd_.run()->immediate_exit, 0, __ATOMIC_SEQ_CST);
      continue;  // re-checks stop_
    }
    if (err != 0) {
      on_end_({OutcomeKind::kKvmError, 0,
               absl::StrFormat("KVM_RUN on vCPU %d failed: %s", fd_.id(), std::strerror(err))});
      return;
    }
    if (!HandleExit()) return;
  }
}

bool Vcpu::HandleExit() {
  kvm_run* run = fd_.run();
  uint32_t reason = run->exit_reason;
  if (reason < kExitReasons) exit_counts_[reason].fetch_add(1, std::memory_order_relaxed);
  if (reason == KVM_EXIT_DIRTY_RING_FULL && dirty_rings_ != nullptr) {
    // KVM lets the vCPU on once entries are handed back.
    absl::Status harvested = dirty_rings_->Harvest();
    if (harvested.ok()) return true;
    on_end_({OutcomeKind::kKvmError, 0,
             absl::StrFormat("vCPU %d: dirty ring: %s", fd_.id(), harvested.message())});
    return false;
  }
  std::optional<VmOutcome> end = DispatchExit(*run, fd_.id(), *pio_bus_, *mmio_bus_,
                                              [this] { return x86::DescribeVcpu(fd_, *mem_); });
  if (!end) return true;
  on_end_(std::move(*end));
  return false;
}

}  // namespace mote
