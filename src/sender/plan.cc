#include "sender/plan.h"

#include <cstring>

namespace sender {

AddressPool::AddressPool(const base::Cidr& net) : net_(net) {
  // Cidr::prefix() counts bits of the 128-bit (IPv4-mapped) form.
  int host_bits = 128 - net.prefix();
  host_bits = std::min(host_bits, 24);
  size_ = uint64_t(1) << host_bits;
  first_ = 0;
  if (host_bits >= 2) {  // skip the network address itself
    first_ = 1;
    size_ -= 1;
  }
}

base::IpAddress AddressPool::At(uint64_t i) const {
  uint64_t offset = first_ + i % size_;
  auto bytes = net_.network().bytes();
  uint64_t carry = offset;
  for (int b = 15; b >= 0 && carry; --b) {
    uint64_t sum = bytes[b] + (carry & 0xff);
    bytes[b] = uint8_t(sum);
    carry = (carry >> 8) + (sum >> 8);
  }
  return base::IpAddress::FromV6(bytes);
}

void AppendProxyHeader(std::string* out, int version,
                       const base::IpAddress& src, uint16_t sport,
                       const base::IpAddress& dst, uint16_t dport) {
  bool v4 = src.is_v4() && dst.is_v4();
  if (version == 1) {
    auto text = [v4](const base::IpAddress& a) {
      if (v4 || !a.is_v4()) return a.ToString();
      return "::ffff:" + a.ToString();
    };
    *out += v4 ? "PROXY TCP4 " : "PROXY TCP6 ";
    *out += text(src) + " " + text(dst) + " " + std::to_string(sport) + " " +
            std::to_string(dport) + "\r\n";
    return;
  }
  static const char kSig[] = "\r\n\r\n\0\r\nQUIT\n";
  out->append(kSig, 12);
  out->push_back('\x21');                // version 2, PROXY command
  out->push_back(v4 ? '\x11' : '\x21');  // TCP over IPv4 / IPv6
  uint16_t len = v4 ? 12 : 36;
  out->push_back(char(len >> 8));
  out->push_back(char(len & 0xff));
  auto put_addr = [&](const base::IpAddress& a) {
    if (v4)
      out->append(reinterpret_cast<const char*>(a.bytes().data()) + 12, 4);
    else
      out->append(reinterpret_cast<const char*>(a.bytes().data()), 16);
  };
  put_addr(src);
  put_addr(dst);
  out->push_back(char(sport >> 8));
  out->push_back(char(sport & 0xff));
  out->push_back(char(dport >> 8));
  out->push_back(char(dport & 0xff));
}

}  // namespace sender
