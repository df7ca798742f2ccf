// Open connections per client address (the per-IP cap), one entry per
// address with connections open. Kept compact because a server holding
// 10,000 idle connections from 10,000 addresses has 10,000 entries: an
// open-addressing table of (address, count) pairs, 8 bytes each for IPv4
// and 20 for IPv6, at a load of 3/8 to 3/4 (an unordered_map node and
// bucket took ~64 bytes).
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

// One table of one address kind: linear probing, no tombstones (a removal
// shifts the entries after it back), grows at 3/4 full and shrinks at 1/8
// (never below kMinSlots). Key: uint32_t (IPv4: 8-byte entries) or 16
// bytes (IPv6: 20-byte entries). Not thread-safe.
template <typename Key>
class OpenCountTable {
 public:
  int Add(const Key& k);
  void Remove(const Key& k);
  int Count(const Key& k) const;
  size_t size() const { return used_; }
  size_t slots() const { return slots_; }

  static constexpr size_t kMinSlots = 16;

 private:
  struct Entry {
    Key addr;
    int32_t count;  // 0: the slot is free
  };
  // The slot where the address's probe starts (the hash's low bits choose
  // the shard, so the table uses the others).
  size_t Home(const Key& k) const;
  // The slot holding k, or the free slot where it would go.
  size_t Find(const Key& k) const;
  void Resize(size_t slots);

  std::unique_ptr<Entry[]> e_;
  size_t slots_ = 0;  // a power of two, or 0 before the first Add
  size_t used_ = 0;
};

// One shard: IPv4 addresses (nearly all clients) in 8-byte entries, IPv6
// ones in 20-byte entries (one table of 20-byte entries for both took ~33 B
// per address at 10,000 addresses; the IPv4 table ~13 B).
class IpCountTable {
 public:
  // Adds one connection of ip; returns its count, this one included.
  int Add(const base::IpAddress& ip) {
    return ip.is_v4() ? v4_.Add(ip.v4()) : v6_.Add(ip.bytes());
  }
  // Removes one connection of ip (nothing if it has none).
  void Remove(const base::IpAddress& ip) {
    if (ip.is_v4()) return v4_.Remove(ip.v4());
    v6_.Remove(ip.bytes());
  }
  int Count(const base::IpAddress& ip) const {
    return ip.is_v4() ? v4_.Count(ip.v4()) : v6_.Count(ip.bytes());
  }
  size_t size() const { return v4_.size() + v6_.size(); }
  // Both tables' slots (each at least kMinSlots once used).
  size_t slots() const { return v4_.slots() + v6_.slots(); }

  static constexpr size_t kMinSlots = 16;

 private:
  OpenCountTable<uint32_t> v4_;
  OpenCountTable<std::array<uint8_t, 16>> v6_;
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
