#include "net/ip_counts.h"

namespace net {

template <>
size_t OpenCountTable<uint32_t>::Home(const uint32_t& k) const {
  return (std::hash<base::IpAddress>()(base::IpAddress::FromV4(k)) >> 8) &
         (slots_ - 1);
}

template <>
size_t OpenCountTable<std::array<uint8_t, 16>>::Home(
    const std::array<uint8_t, 16>& k) const {
  return (std::hash<base::IpAddress>()(base::IpAddress::FromV6(k)) >> 8) &
         (slots_ - 1);
}

template <typename Key>
size_t OpenCountTable<Key>::Find(const Key& k) const {
  const size_t mask = slots_ - 1;
  for (size_t i = Home(k);; i = (i + 1) & mask) {
    // Terminates: the table is never full (at most 3/4).
    const Entry& x = e_[i];
    if (x.count == 0 || x.addr == k) return i;
  }
}

template <typename Key>
void OpenCountTable<Key>::Resize(size_t slots) {
  std::unique_ptr<Entry[]> old = std::move(e_);
  size_t old_slots = slots_;
  e_ = std::make_unique<Entry[]>(slots);  // zeroed: all free
  slots_ = slots;
  const size_t mask = slots_ - 1;
  for (size_t j = 0; j < old_slots; ++j) {
    if (old[j].count == 0) continue;
    size_t i = Home(old[j].addr);
    while (e_[i].count != 0) i = (i + 1) & mask;
    e_[i] = old[j];
  }
}

template <typename Key>
int OpenCountTable<Key>::Add(const Key& k) {
  if (slots_ == 0) Resize(kMinSlots);
  size_t i = Find(k);
  if (e_[i].count > 0) return ++e_[i].count;
  if ((used_ + 1) * 4 > slots_ * 3) {
    Resize(slots_ * 2);
    i = Find(k);
  }
  e_[i].addr = k;
  e_[i].count = 1;
  ++used_;
  return 1;
}

template <typename Key>
int OpenCountTable<Key>::Count(const Key& k) const {
  if (slots_ == 0) return 0;
  return e_[Find(k)].count;
}

template <typename Key>
void OpenCountTable<Key>::Remove(const Key& k) {
  if (slots_ == 0) return;
  size_t i = Find(k);
  if (e_[i].count == 0 || --e_[i].count > 0) return;
  --used_;
  // Backward-shift deletion: move later entries of the probe run into the
  // hole when their home slot does not lie between the hole and them.
  const size_t mask = slots_ - 1;
  for (size_t j = (i + 1) & mask; e_[j].count != 0; j = (j + 1) & mask) {
    size_t home = Home(e_[j].addr);
    // j may move to i if home is not in (i, j] (cyclically).
    bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
    if (stays) continue;
    e_[i] = e_[j];
    i = j;
  }
  e_[i].count = 0;
  if (slots_ > kMinSlots && used_ * 8 < slots_) Resize(slots_ / 2);
}

template class OpenCountTable<uint32_t>;
template class OpenCountTable<std::array<uint8_t, 16>>;

}  // namespace net
