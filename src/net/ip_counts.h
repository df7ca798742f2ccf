// Open connections per client address (the per-IP cap), one entry per
// address with connections open. Kept compact because a server holding
// 10,000 idle connections from 10,000 addresses has 10,000 entries: an
// open-addressing table of (address, count) pairs, 20 bytes each at a load
// of 3/8 to 3/4 (an unordered_map node and bucket took ~64 bytes).
//
// Threading: safe from any thread (sharded, a mutex per shard).
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>

#include "base/ip.h"

namespace net {

// One shard: linear probing, no tombstones (a removal shifts the entries
// after it back), grows at 3/4 full and shrinks at 1/8 (never below
// kMinSlots). Not thread-safe.
class IpCountTable {
 public:
  // Adds one connection of ip; returns its count, this one included.
  int Add(const base::IpAddress& ip);
  // Removes one connection of ip (nothing if it has none).
  void Remove(const base::IpAddress& ip);
  int Count(const base::IpAddress& ip) const;
  size_t size() const { return used_; }
  size_t slots() const { return slots_; }

  static constexpr size_t kMinSlots = 16;

 private:
  struct Entry {
    std::array<uint8_t, 16> addr;
    int32_t count;  // 0: the slot is free
  };
  // The slot where the address's probe starts (the hash's low bits choose
  // the shard, so the table uses the others).
  size_t Home(const std::array<uint8_t, 16>& addr) const {
    return (std::hash<base::IpAddress>()(base::IpAddress::FromV6(addr)) >> 8) &
           (slots_ - 1);
  }
  // The slot holding ip, or the free slot where it would go.
  size_t Find(const base::IpAddress& ip) const;
  void Resize(size_t slots);

  std::unique_ptr<Entry[]> e_;
  size_t slots_ = 0;  // a power of two, or 0 before the first Add
  size_t used_ = 0;
};

class IpCounts {
 public:
  int Add(const base::IpAddress& ip) {
    auto& s = ShardOf(ip);
    std::lock_guard lock(s.mu);
    return s.table.Add(ip);
  }
  void Remove(const base::IpAddress& ip) {
    auto& s = ShardOf(ip);
    std::lock_guard lock(s.mu);
    s.table.Remove(ip);
  }
  int Count(const base::IpAddress& ip) {
    auto& s = ShardOf(ip);
    std::lock_guard lock(s.mu);
    return s.table.Count(ip);
  }

 private:
  static constexpr size_t kShards = 16;
  struct Shard {
    std::mutex mu;
    IpCountTable table;
  };
  Shard& ShardOf(const base::IpAddress& ip) {
    return shards_[std::hash<base::IpAddress>()(ip) % kShards];
  }
  std::array<Shard, kShards> shards_;
};

}  // namespace net
