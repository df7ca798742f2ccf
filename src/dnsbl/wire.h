// DNS wire format (RFC 1035, RFC 6891) for what a DNSBL needs: parsing one
// question and an OPT record out of a query, and writing a response. Pure
// code over bytes; every read is bounds-checked and every name walk is
// bounded (compression hops, 255 octets), so hostile packets give an error,
// never a crash or a loop (fuzz/dns_fuzz.cc).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace dnsbl {

inline constexpr uint16_t kTypeA = 1, kTypeNs = 2, kTypeSoa = 6, kTypeTxt = 16,
                          kTypeAaaa = 28, kTypeOpt = 41, kTypeAny = 255;
inline constexpr uint16_t kClassIn = 1, kClassAny = 255;
inline constexpr int kRcodeNoError = 0, kRcodeFormErr = 1, kRcodeServFail = 2,
                     kRcodeNxDomain = 3, kRcodeNotImp = 4, kRcodeRefused = 5,
                     kRcodeBadVers = 16;
// The largest UDP payload we send with EDNS0 (the 2020 DNS flag day value)
// and without it (RFC 1035).
inline constexpr size_t kEdnsUdpSize = 1232, kPlainUdpSize = 512;

struct Query {
  enum class Result {
    kOk,
    kDrop,     // not worth an answer: shorter than a header, or a response
    kFormErr,  // a header we can answer with FORMERR
    kNotImp,   // an opcode other than QUERY
  };
  Result result = Result::kDrop;
  uint16_t id = 0;
  uint16_t flags = 0;  // as received (RD is echoed)
  // The question: labels in lower case, wire bytes of the question as sent
  // (echoed in the response so the client sees its own 0x20 case).
  std::vector<std::string> labels;
  uint16_t qtype = 0, qclass = 0;
  std::string question_wire;
  bool name_compressed = false;  // the question name used a pointer
  // EDNS0.
  bool edns = false;
  uint16_t udp_size = 0;
  uint8_t edns_version = 0;
  bool dnssec_ok = false;
};

Query ParseQuery(const uint8_t* data, size_t size);

// Encodes a name ("a.b.c" or labels) uncompressed; false if a label is
// empty, over 63 octets, or the name over 255.
bool EncodeName(const std::vector<std::string>& labels, std::string* out);
// Lower-case labels of a dotted name (a trailing dot is ignored).
std::vector<std::string> SplitName(std::string_view name);

// Writes a response: header, the question echoed, then records section by
// section (answers, then authority, then additional: call in that order).
class ResponseWriter {
 public:
  ResponseWriter(const Query& q, int rcode, bool authoritative);
  // A record whose owner is the question name (a pointer to it).
  void AddAtQuestion(int section, uint16_t type, uint32_t ttl,
                     const std::string& rdata);
  // A record whose owner is given in wire form.
  void Add(int section, const std::string& owner_wire, uint16_t type,
           uint32_t ttl, const std::string& rdata);
  // An OPT record (last, in the additional section); ext_rcode is the
  // upper 8 bits of a 12-bit RCODE.
  void AddOpt(uint16_t udp_size, uint8_t ext_rcode, bool dnssec_ok);
  void SetTruncated();
  const std::string& bytes() const { return out_; }

  static constexpr int kAnswer = 0, kAuthority = 1, kAdditional = 2;

 private:
  void Bump(int section);
  std::string out_;
  bool question_ = false;
};

// RDATA helpers.
std::string ARdata(uint32_t host_order);
// One or more <character-string>s of at most 255 octets each.
std::string TxtRdata(std::string_view text);
std::string SoaRdata(const std::string& mname_wire,
                     const std::string& rname_wire, uint32_t serial,
                     uint32_t refresh, uint32_t retry, uint32_t expire,
                     uint32_t minimum);

}  // namespace dnsbl
