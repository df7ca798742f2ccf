#include "base/ip.h"

#include <arpa/inet.h>

#include <cstring>

namespace base {
namespace {
constexpr std::array<uint8_t, 12> kV4Prefix = {0, 0, 0, 0, 0,    0,
                                               0, 0, 0, 0, 0xff, 0xff};
}  // namespace

Result<IpAddress> IpAddress::Parse(std::string_view text) {
  if (text.size() >= 2 && text.front() == '[' && text.back() == ']') {
    text = text.substr(1, text.size() - 2);
  }
  if (text.empty() || text.size() > 64) {
    return Status::Error("not an IP address: '" + std::string(text) + "'");
  }
  std::string s(text);
  in_addr v4;
  if (inet_pton(AF_INET, s.c_str(), &v4) == 1) {
    return FromV4(ntohl(v4.s_addr));
  }
  std::array<uint8_t, 16> v6;
  if (inet_pton(AF_INET6, s.c_str(), v6.data()) == 1) return FromV6(v6);
  return Status::Error("not an IP address: '" + s + "'");
}

IpAddress IpAddress::FromV4(uint32_t host_order) {
  IpAddress ip;
  std::memcpy(ip.bytes_.data(), kV4Prefix.data(), 12);
  ip.bytes_[12] = host_order >> 24;
  ip.bytes_[13] = host_order >> 16;
  ip.bytes_[14] = host_order >> 8;
  ip.bytes_[15] = host_order;
  return ip;
}

IpAddress IpAddress::FromV6(const std::array<uint8_t, 16>& bytes) {
  IpAddress ip;
  ip.bytes_ = bytes;
  return ip;
}

bool IpAddress::is_v4() const {
  return std::memcmp(bytes_.data(), kV4Prefix.data(), 12) == 0;
}

uint32_t IpAddress::v4() const {
  return uint32_t(bytes_[12]) << 24 | uint32_t(bytes_[13]) << 16 |
         uint32_t(bytes_[14]) << 8 | bytes_[15];
}

IpAddress PrefixKey(const IpAddress& ip, int v6_bits) {
  if (ip.is_v4() || v6_bits >= 128 || v6_bits < 0) return ip;
  std::array<uint8_t, 16> b = ip.bytes();
  for (int i = 0; i < 16; ++i) {
    const int keep = v6_bits - i * 8;
    if (keep >= 8) continue;
    b[i] &= keep <= 0 ? 0 : uint8_t(0xff << (8 - keep));
  }
  return IpAddress::FromV6(b);
}

bool IpAddress::IsLoopback() const {
  if (is_v4()) return bytes_[12] == 127;
  static constexpr std::array<uint8_t, 16> kV6Loopback = {
      0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  return bytes_ == kV6Loopback;
}

std::string IpAddress::ToString() const {
  char buf[INET6_ADDRSTRLEN];
  if (is_v4()) {
    in_addr a;
    a.s_addr = htonl(v4());
    inet_ntop(AF_INET, &a, buf, sizeof buf);
  } else {
    inet_ntop(AF_INET6, bytes_.data(), buf, sizeof buf);
  }
  return buf;
}

Result<Cidr> Cidr::Parse(std::string_view text) {
  auto slash = text.find('/');
  auto ip = IpAddress::Parse(text.substr(0, slash));
  if (!ip.ok()) return Status::Error("bad network '" + std::string(text) + "'");
  int max_bits = ip->is_v4() ? 32 : 128;
  int bits = max_bits;
  if (slash != std::string_view::npos) {
    std::string_view p = text.substr(slash + 1);
    if (p.empty() || p.size() > 3) {
      return Status::Error("bad prefix length in '" + std::string(text) + "'");
    }
    bits = 0;
    for (char c : p) {
      if (c < '0' || c > '9') {
        return Status::Error("bad prefix length in '" + std::string(text) +
                             "'");
      }
      bits = bits * 10 + (c - '0');
    }
    if (bits > max_bits) {
      return Status::Error("prefix length out of range in '" +
                           std::string(text) + "'");
    }
  }
  Cidr c;
  c.prefix_ = bits + (max_bits == 32 ? 96 : 0);
  std::array<uint8_t, 16> b = ip->bytes();
  for (int i = 0; i < 16; ++i) {
    int keep = c.prefix_ - i * 8;
    if (keep >= 8) continue;
    b[i] &= keep <= 0 ? 0 : uint8_t(0xff << (8 - keep));
  }
  c.network_ = IpAddress::FromV6(b);
  return c;
}

bool Cidr::Contains(const IpAddress& ip) const {
  const auto& a = ip.bytes();
  const auto& n = network_.bytes();
  int full = prefix_ / 8;
  if (std::memcmp(a.data(), n.data(), full) != 0) return false;
  int rest = prefix_ % 8;
  if (rest == 0) return true;
  uint8_t mask = uint8_t(0xff << (8 - rest));
  return (a[full] & mask) == n[full];
}

std::string Cidr::ToString() const {
  return network_.ToString() + "/" +
         std::to_string(network_.is_v4() ? prefix_ - 96 : prefix_);
}

}  // namespace base
