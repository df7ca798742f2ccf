// The run's budget and the helpers that spread sessions over addresses.
// Pure code, safe to share between driver threads where noted.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <string>

#include "base/ip.h"
#include "sender/client_session.h"

namespace sender {

// How many messages the run may still start. Thread-safe: every driver
// thread claims from the same plan.
class LoadPlan final : public MessageSource {
 public:
  // total_messages == 0: unbounded (a timed run ends by Stop()).
  explicit LoadPlan(int64_t total_messages) : total_(total_messages) {}

  bool Claim() override {
    if (stopped_.load(std::memory_order_relaxed)) return false;
    if (total_ <= 0) {
      claimed_.fetch_add(1, std::memory_order_relaxed);
      return true;
    }
    // Counts only claims that succeed, so that Unclaim() reopens exactly
    // one.
    int64_t n = claimed_.load(std::memory_order_relaxed);
    do {
      if (n >= total_) return false;
    } while (
        !claimed_.compare_exchange_weak(n, n + 1, std::memory_order_relaxed));
    return true;
  }
  // A failed message is tried again in its place, so that total_messages
  // counts accepted ones; at most total_messages such retries, so that a
  // server refusing everything still ends the run.
  void Unclaim() override {
    if (total_ <= 0) return;
    if (retries_.fetch_add(1, std::memory_order_relaxed) < total_) {
      claimed_.fetch_sub(1, std::memory_order_relaxed);
    }
  }
  // Ends the run: no further claims succeed (messages in flight finish).
  void Stop() { stopped_.store(true, std::memory_order_relaxed); }
  bool stopped() const { return stopped_.load(std::memory_order_relaxed); }
  bool exhausted() const {
    return stopped() ||
           (total_ > 0 && claimed_.load(std::memory_order_relaxed) >= total_);
  }
  int64_t total() const { return total_; }
  int64_t claimed() const {
    int64_t c = claimed_.load(std::memory_order_relaxed);
    return total_ > 0 ? std::min(c, total_) : c;
  }

 private:
  const int64_t total_;
  std::atomic<int64_t> claimed_{0};
  std::atomic<int64_t> retries_{0};
  std::atomic<bool> stopped_{false};
};

// The addresses of a network, handed out round-robin: index i maps to the
// (i mod size)-th host address (the all-zero host part is skipped for
// prefixes shorter than /31). At most 2^24 distinct addresses.
class AddressPool {
 public:
  AddressPool() = default;
  explicit AddressPool(const base::Cidr& net);
  bool empty() const { return size_ == 0; }
  uint64_t size() const { return size_; }
  base::IpAddress At(uint64_t i) const;

 private:
  base::Cidr net_;
  uint64_t size_ = 0;
  uint64_t first_ = 0;
};

// Appends a PROXY protocol header (version 1 text or version 2 binary) for
// a TCP connection src:sport -> dst:dport. Mixed families are sent as IPv6
// (IPv4-mapped).
void AppendProxyHeader(std::string* out, int version,
                       const base::IpAddress& src, uint16_t sport,
                       const base::IpAddress& dst, uint16_t dport);

}  // namespace sender
