// libFuzzer target: the DNSBL's wire parser and responder (dnsbl/), fed as
// a UDP datagram from a client. Any response must be a well-formed header
// for the same ID with QR set, fit the UDP limit (1232 octets at most), and
// the parser must agree with the responder on what gets no answer.
#include <cstdint>
#include <cstdlib>
#include <memory>

#include "dnsbl/responder.h"
#include "dnsbl/wire.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static dnsbl::Index index(1000);
  static std::unique_ptr<dnsbl::Responder> responder = [] {
    dnsbl::Options o;
    o.zone = "bl.example.net";
    o.rate_limit = 0;
    return std::move(dnsbl::Responder::Create(o, &index)).value();
  }();
  dnsbl::Query q = dnsbl::ParseQuery(data, size);
  std::string out = responder->Answer(
      data, size, base::IpAddress::FromV4(0xc0000201), false, 1.8e9);
  if (q.result == dnsbl::Query::Result::kDrop) {
    if (!out.empty()) std::abort();
    return 0;
  }
  if (out.size() < 12 || out.size() > dnsbl::kEdnsUdpSize) std::abort();
  if (uint8_t(out[0]) != data[0] || uint8_t(out[1]) != data[1]) std::abort();
  if (!(uint8_t(out[2]) & 0x80)) std::abort();
  // What we send parses as a message (not as a query: QR is set).
  if (dnsbl::ParseQuery(reinterpret_cast<const uint8_t*>(out.data()),
                        out.size())
          .result != dnsbl::Query::Result::kDrop) {
    std::abort();
  }
  return 0;
}
