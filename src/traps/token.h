// Trap addresses that carry their own attribution: "first.last.TOKEN@domain"
// where TOKEN (20 characters of a 32-letter alphabet, 100 bits) holds the
// signing key's id (4 bits), the visit time in minutes since 2024-01-01
// (24 bits, until 2055), a reference to a harvest record (32 bits) and a
// truncated HMAC-SHA256 (40 bits) over those and the lower-cased name and
// domain. A token moved to another name or domain no longer verifies, and
// the reference is itself a keyed hash, so an address tells a sender nothing
// about any visitor. Pure code: no clock, no store.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace traps {

struct Key {
  int id = 0;          // 0..15, carried in the token
  std::string secret;  // at least 16 bytes
};

// The signing key and the older keys kept for verification.
class KeyRing {
 public:
  // specs: "id:secret", the first signs. Errors name the bad entry (never
  // its secret).
  static base::Result<KeyRing> Parse(const std::vector<std::string>& specs);
  // REQUIRES: built by Parse (at least one key).
  const Key& current() const { return keys_.front(); }
  const Key* Find(int id) const;

 private:
  std::vector<Key> keys_;
};

// What a token says, once verified.
struct Attribution {
  int key_id = 0;
  int64_t minute = 0;  // minutes since the Unix epoch
  uint32_t ref = 0;    // the harvest record (with minute: its key)
};

enum class Verdict {
  kValid,       // signed by a known key for this name and domain
  kNoToken,     // no token-shaped last label: a plain trap hit
  kUnknownKey,  // well-formed, but its key id is not on the ring
  kForged,      // the MAC does not match (forged, altered or moved)
};
const char* VerdictName(Verdict v);

struct Checked {
  Verdict verdict = Verdict::kNoToken;
  Attribution attribution;  // meaningful when verdict == kValid
};

constexpr int kTokenChars = 20;
// Minutes since the Unix epoch that a token can carry: [kEpochMinute,
// kEpochMinute + 2^24).
constexpr int64_t kEpochMinute = 1704067200 / 60;  // 2024-01-01T00:00Z

// The token for name@domain (name without the token, e.g. "ann.lee").
// minute is clamped to the range a token carries.
std::string MakeToken(const Key& key, std::string_view name,
                      std::string_view domain, uint32_t ref, int64_t minute);
// "name.TOKEN@domain".
std::string MakeAddress(const Key& key, std::string_view name,
                        std::string_view domain, uint32_t ref, int64_t minute);

// Checks an address ("local@domain", any case). Never throws; any input.
Checked Verify(const KeyRing& keys, std::string_view address);

// The harvest-record reference of one visitor in one minute: a keyed hash,
// so the same visitor in the same minute sees the same addresses and
// different visitors see different ones.
uint32_t VisitorRef(const Key& key, std::string_view ip,
                    std::string_view user_agent, int64_t minute);

// HMAC-SHA256(secret, data). The only call into libcrypto.
std::array<uint8_t, 32> Hmac(std::string_view secret, std::string_view data);

}  // namespace traps
