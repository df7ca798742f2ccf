#include "traps/token.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <cctype>
#include <cstring>

namespace traps {
namespace {

// No 0/o, 1/l: the token survives being read aloud or retyped.
constexpr char kAlphabet[] = "abcdefghijkmnpqrstuvwxyz23456789";
constexpr int kMacBits = 40;
constexpr int64_t kMinuteSpan = int64_t{1} << 24;

int Digit(char c) {
  c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  const char* p = std::strchr(kAlphabet, c);
  return (p && c) ? static_cast<int>(p - kAlphabet) : -1;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

// The 40-bit MAC over the fields and the lower-cased name and domain.
uint64_t Mac(const Key& key, std::string_view name, std::string_view domain,
             uint32_t ref, uint32_t offset) {
  std::string data = "spamsink-trap-v1";
  data.push_back('\0');
  data.push_back(static_cast<char>(key.id));
  for (int i = 3; i >= 0; --i) data.push_back(char((offset >> (8 * i)) & 0xff));
  for (int i = 3; i >= 0; --i) data.push_back(char((ref >> (8 * i)) & 0xff));
  data += Lower(name);
  data.push_back('@');
  data += Lower(domain);
  auto h = Hmac(key.secret, data);
  uint64_t mac = 0;
  for (int i = 0; i < kMacBits / 8; ++i) mac = (mac << 8) | h[i];
  return mac;
}

// Bits, most significant first: key 4, minute 24, ref 32, mac 40.
struct Fields {
  uint32_t key = 0, offset = 0, ref = 0;
  uint64_t mac = 0;
};

std::string Encode(const Fields& f) {
  // 100 bits as hi (36 bits: key, minute, top 8 of ref) and lo (64 bits).
  uint64_t hi =
      (uint64_t{f.key} << 32) | (uint64_t{f.offset} << 8) | (f.ref >> 24);
  uint64_t lo = (uint64_t{f.ref & 0xffffff} << 40) | f.mac;
  std::string out(kTokenChars, 'a');
  for (int i = kTokenChars - 1; i >= 0; --i) {
    out[i] = kAlphabet[lo & 31];
    lo = (lo >> 5) | ((hi & 31) << 59);
    hi >>= 5;
  }
  return out;
}

std::optional<Fields> Decode(std::string_view token) {
  if (token.size() != kTokenChars) return std::nullopt;
  uint64_t hi = 0, lo = 0;
  for (char c : token) {
    int d = Digit(c);
    if (d < 0) return std::nullopt;
    hi = (hi << 5) | (lo >> 59);
    lo = (lo << 5) | uint64_t(d);
  }
  Fields f;
  f.mac = lo & ((uint64_t{1} << kMacBits) - 1);
  f.ref = uint32_t(((hi & 0xff) << 24) | (lo >> 40));
  f.offset = uint32_t((hi >> 8) & 0xffffff);
  f.key = uint32_t((hi >> 32) & 0xf);
  return f;
}

uint32_t Offset(int64_t minute) {
  return uint32_t(
      std::clamp<int64_t>(minute - kEpochMinute, 0, kMinuteSpan - 1));
}

}  // namespace

const char* VerdictName(Verdict v) {
  switch (v) {
    case Verdict::kValid:
      return "valid";
    case Verdict::kNoToken:
      return "no_token";
    case Verdict::kUnknownKey:
      return "unknown_key";
    case Verdict::kForged:
      return "forged";
  }
  return "?";
}

base::Result<KeyRing> KeyRing::Parse(const std::vector<std::string>& specs) {
  KeyRing ring;
  for (size_t i = 0; i < specs.size(); ++i) {
    const std::string& s = specs[i];
    std::string where = "traps.keys[" + std::to_string(i) + "]";
    size_t colon = s.find(':');
    if (colon == std::string::npos || colon == 0 || colon > 2) {
      return base::Status::Error(where + ": expected \"id:secret\"");
    }
    int id = 0;
    for (size_t k = 0; k < colon; ++k) {
      if (!std::isdigit(static_cast<unsigned char>(s[k]))) {
        return base::Status::Error(where + ": the id is not a number");
      }
      id = id * 10 + (s[k] - '0');
    }
    if (id > 15) return base::Status::Error(where + ": id must be 0..15");
    if (s.size() - colon - 1 < 16) {
      return base::Status::Error(where +
                                 ": the secret must be at least 16 bytes");
    }
    if (ring.Find(id)) {
      return base::Status::Error(where + ": id " + std::to_string(id) +
                                 " appears twice");
    }
    ring.keys_.push_back(Key{id, s.substr(colon + 1)});
  }
  if (ring.keys_.empty()) {
    return base::Status::Error("traps.keys: at least one key is needed");
  }
  return ring;
}

const Key* KeyRing::Find(int id) const {
  for (const Key& k : keys_) {
    if (k.id == id) return &k;
  }
  return nullptr;
}

std::string MakeToken(const Key& key, std::string_view name,
                      std::string_view domain, uint32_t ref, int64_t minute) {
  Fields f;
  f.key = uint32_t(key.id & 0xf);
  f.offset = Offset(minute);
  f.ref = ref;
  f.mac = Mac(key, name, domain, ref, f.offset);
  return Encode(f);
}

std::string MakeAddress(const Key& key, std::string_view name,
                        std::string_view domain, uint32_t ref, int64_t minute) {
  return std::string(name) + "." + MakeToken(key, name, domain, ref, minute) +
         "@" + std::string(domain);
}

Checked Verify(const KeyRing& keys, std::string_view address) {
  Checked out;
  size_t at = address.rfind('@');
  if (at == std::string_view::npos) return out;
  std::string_view local = address.substr(0, at);
  std::string_view domain = address.substr(at + 1);
  size_t dot = local.rfind('.');
  if (dot == std::string_view::npos || dot == 0) return out;
  auto fields = Decode(local.substr(dot + 1));
  if (!fields) return out;
  const Key* key = keys.Find(int(fields->key));
  if (!key) {
    out.verdict = Verdict::kUnknownKey;
    return out;
  }
  std::string_view name = local.substr(0, dot);
  uint64_t want = Mac(*key, name, domain, fields->ref, fields->offset);
  if (want != fields->mac) {
    out.verdict = Verdict::kForged;
    return out;
  }
  out.verdict = Verdict::kValid;
  out.attribution.key_id = key->id;
  out.attribution.minute = kEpochMinute + fields->offset;
  out.attribution.ref = fields->ref;
  return out;
}

uint32_t VisitorRef(const Key& key, std::string_view ip,
                    std::string_view user_agent, int64_t minute) {
  std::string data = "spamsink-visitor-v1";
  data.push_back('\0');
  data += ip;
  data.push_back('\0');
  data += user_agent;
  data.push_back('\0');
  data += std::to_string(minute);
  auto h = Hmac(key.secret, data);
  return (uint32_t(h[0]) << 24) | (uint32_t(h[1]) << 16) |
         (uint32_t(h[2]) << 8) | h[3];
}

std::array<uint8_t, 32> Hmac(std::string_view secret, std::string_view data) {
  std::array<uint8_t, 32> out{};
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(),
       out.data(), &len);
  return out;
}

}  // namespace traps
