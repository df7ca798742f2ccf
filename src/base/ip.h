// IPv4/IPv6 addresses and CIDR networks as plain values (no sockets).
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "base/status.h"

namespace base {

// An IPv4 or IPv6 address. IPv4 is stored as an IPv4-mapped IPv6 address so
// that one type orders and hashes both families.
class IpAddress {
 public:
  IpAddress() = default;
  static Result<IpAddress> Parse(std::string_view text);
  static IpAddress FromV4(uint32_t host_order);
  static IpAddress FromV6(const std::array<uint8_t, 16>& bytes);

  bool is_v4() const;
  // REQUIRES: is_v4()
  uint32_t v4() const;
  const std::array<uint8_t, 16>& bytes() const { return bytes_; }
  bool IsLoopback() const;
  // Canonical text: dotted quad for IPv4, RFC 5952 for IPv6.
  std::string ToString() const;

  auto operator<=>(const IpAddress&) const = default;

 private:
  std::array<uint8_t, 16> bytes_{};
};

// The key a client is counted under (per-IP caps, reputation, the ledger):
// ip itself for IPv4, its network of v6_bits bits for IPv6 (128 or more:
// the address itself). One host holds a whole IPv6 /64; keying it per
// address would let it rotate past every per-IP bound.
IpAddress PrefixKey(const IpAddress& ip, int v6_bits);

// A network: address plus prefix length (in the address's own family).
class Cidr {
 public:
  Cidr() = default;
  // Accepts "10.0.0.0/8", "2001:db8::/32", or a bare address (host route).
  static Result<Cidr> Parse(std::string_view text);
  bool Contains(const IpAddress& ip) const;
  const IpAddress& network() const { return network_; }
  // Bits of the 128-bit (IPv4-mapped) form that must match: 96..128 for
  // an IPv4 network, 0..128 for IPv6. ToString() shows the family's own.
  int prefix() const { return prefix_; }
  std::string ToString() const;

 private:
  IpAddress network_;
  int prefix_ = 0;  // Bits of the 128-bit form that must match.
};

}  // namespace base

template <>
struct std::hash<base::IpAddress> {
  size_t operator()(const base::IpAddress& ip) const noexcept {
    uint64_t a, b;
    __builtin_memcpy(&a, ip.bytes().data(), 8);
    __builtin_memcpy(&b, ip.bytes().data() + 8, 8);
    // Mixed (MurmurHash3's finaliser) so that every bit of the address
    // reaches the low bits: callers shard and bucket by hash % n, and the
    // plain product left every IPv4 address with the same low byte.
    uint64_t x = a * 0x9E3779B97F4A7C15ull ^ b;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return size_t(x);
  }
};
