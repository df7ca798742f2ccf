// The DNSBL index's storage: an open-addressing hash table of packed keys
// (a 32-bit IPv4 address, or an IPv6 network as two 64-bit halves) and a
// 20-byte record of what the listing policy needs. No node per entry, no
// pointer, no text: the TXT is written at answer time from the record.
// Per IPv4 address: 24 bytes a slot at a load of 3/8..3/4, so 32..64 bytes
// (rbldnsd's ip4set: 92 measured in bench/dnsbl_bench.py).
//
// Not thread-safe: the Index guards each table with its shard's mutex.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

namespace dnsbl {

// What the index keeps of a source. Times in whole Unix seconds (2106 is
// far enough); counts saturate instead of wrapping.
struct Facts {
  uint32_t first_seen = 0, last_seen = 0;
  uint32_t messages = 0, connections = 0;
  uint16_t tarpitted = 0;
  uint16_t evidence = 0;  // ledger::Evidence bits (8 of them today)
};
static_assert(sizeof(Facts) == 20);

struct V6Key {
  uint64_t hi = 0, lo = 0;
  bool operator==(const V6Key&) const = default;
};

inline size_t HashKey(uint32_t k) {
  return size_t((uint64_t(k) * 0x9E3779B97F4A7C15ull) >> 32);
}
inline size_t HashKey(const V6Key& k) {
  uint64_t h = (k.hi ^ (k.lo * 0xC2B2AE3D27D4EB4Full)) * 0x9E3779B97F4A7C15ull;
  return size_t(h ^ (h >> 29));
}

// K's value-initialised key (0 or ::) marks an empty slot; that key itself
// (never a sender, but the table does not rely on it) lives beside the
// slots.
template <typename K>
class FlatTable {
 public:
  struct Slot {
    K key{};
    Facts facts;
  };

  Facts* Find(const K& k) {
    if (k == K{}) return zero_ ? &*zero_ : nullptr;
    if (slots_.empty()) return nullptr;
    for (size_t i = HashKey(k) & Mask();; i = (i + 1) & Mask()) {
      if (slots_[i].key == k) return &slots_[i].facts;
      if (slots_[i].key == K{}) return nullptr;
    }
  }

  // The record of k, made (zeroed) if absent.
  Facts* Insert(const K& k) {
    if (k == K{}) {
      if (!zero_) zero_.emplace();
      return &*zero_;
    }
    if (Facts* f = Find(k)) return f;
    if ((used_ + 1) * 4 > slots_.size() * 3)
      Rehash(std::max<size_t>(16, slots_.size() * 2));
    ++used_;
    return Place(k);
  }

  size_t size() const { return used_ + (zero_ ? 1 : 0); }
  size_t capacity() const { return slots_.size(); }

  template <typename F>  // F(const Facts&) -> bool
  void ForEach(F f) const {
    if (zero_) f(*zero_);
    for (const Slot& s : slots_) {
      if (!(s.key == K{})) f(s.facts);
    }
  }

  // Removes every record drop(facts) is true for; the table is rebuilt
  // (linear probing has no cheap single delete), shrinking if it can.
  template <typename F>
  void EraseIf(F drop) {
    if (zero_ && drop(*zero_)) zero_.reset();
    std::vector<Slot> old;
    old.swap(slots_);
    size_t keep = 0;
    for (const Slot& s : old) keep += !(s.key == K{}) && !drop(s.facts);
    size_t cap = 16;
    while (keep * 4 > cap * 3 / 2) cap *= 2;  // load at most 3/8 after
    slots_.assign(keep ? cap : 0, Slot{});
    used_ = 0;
    for (const Slot& s : old) {
      if (!(s.key == K{}) && !drop(s.facts)) {
        *Place(s.key) = s.facts;
        ++used_;
      }
    }
  }

 private:
  size_t Mask() const { return slots_.size() - 1; }
  Facts* Place(const K& k) {  // REQUIRES: k absent, a free slot
    size_t i = HashKey(k) & Mask();
    while (!(slots_[i].key == K{})) i = (i + 1) & Mask();
    slots_[i].key = k;
    slots_[i].facts = Facts{};
    return &slots_[i].facts;
  }
  void Rehash(size_t cap) {
    std::vector<Slot> old(cap);
    old.swap(slots_);
    for (const Slot& s : old) {
      if (!(s.key == K{})) *Place(s.key) = s.facts;
    }
  }

  std::vector<Slot> slots_;  // size 0 or a power of two
  size_t used_ = 0;          // occupied slots (zero_ apart)
  std::optional<Facts> zero_;
};

}  // namespace dnsbl
