#include "traps/token.h"

#include <gtest/gtest.h>

#include <set>

namespace traps {
namespace {

constexpr int64_t kMinute = 29000000;  // 2025-02-20

KeyRing Ring(std::vector<std::string> specs) {
  auto r = KeyRing::Parse(specs);
  EXPECT_TRUE(r.ok()) << r.error();
  return r.value();
}

TEST(KeyRing, RejectsBadSpecsWithoutEchoingTheSecret) {
  EXPECT_FALSE(KeyRing::Parse({}).ok());
  EXPECT_FALSE(KeyRing::Parse({"nocolon-but-long-enough"}).ok());
  EXPECT_FALSE(KeyRing::Parse({"16:0123456789abcdef"}).ok());
  EXPECT_FALSE(KeyRing::Parse({"x:0123456789abcdef"}).ok());
  auto shortkey = KeyRing::Parse({"1:sekrit-value"});
  ASSERT_FALSE(shortkey.ok());
  EXPECT_EQ(shortkey.error().find("sekrit"), std::string::npos);
  EXPECT_FALSE(
      KeyRing::Parse({"1:0123456789abcdef", "1:fedcba9876543210"}).ok());
  auto ok = KeyRing::Parse({"3:0123456789abcdef", "1:fedcba9876543210"});
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->current().id, 3);
  EXPECT_NE(ok->Find(1), nullptr);
  EXPECT_EQ(ok->Find(2), nullptr);
}

TEST(Token, RoundTripsAndIsDeterministic) {
  KeyRing ring = Ring({"7:the-site-secret-key"});
  std::string a = MakeAddress(ring.current(), "ann.lee", "trap.example",
                              0xdeadbeef, kMinute);
  EXPECT_EQ(a, MakeAddress(ring.current(), "ann.lee", "trap.example",
                           0xdeadbeef, kMinute));
  EXPECT_EQ(a.size(),
            std::string("ann.lee.@trap.example").size() + size_t(kTokenChars));
  Checked c = Verify(ring, a);
  ASSERT_EQ(c.verdict, Verdict::kValid);
  EXPECT_EQ(c.attribution.ref, 0xdeadbeefu);
  EXPECT_EQ(c.attribution.minute, kMinute);
  EXPECT_EQ(c.attribution.key_id, 7);
  // Harvesters and MTAs may change case.
  std::string upper = a;
  for (char& ch : upper) ch = char(std::toupper((unsigned char)ch));
  EXPECT_EQ(Verify(ring, upper).verdict, Verdict::kValid);
}

TEST(Token, EveryFieldValueRoundTrips) {
  KeyRing ring = Ring({"15:the-site-secret-key"});
  for (uint32_t ref : {0u, 1u, 0x80000000u, 0xffffffffu, 0x12345678u}) {
    for (int64_t m :
         {kEpochMinute, kEpochMinute + (int64_t{1} << 24) - 1, kMinute}) {
      Checked c =
          Verify(ring, MakeAddress(ring.current(), "a.b", "d.example", ref, m));
      ASSERT_EQ(c.verdict, Verdict::kValid) << ref << " " << m;
      EXPECT_EQ(c.attribution.ref, ref);
      EXPECT_EQ(c.attribution.minute, m);
    }
  }
}

TEST(Token, ForgedTruncatedMovedAndUnknownAreNotValid) {
  KeyRing ring = Ring({"2:the-site-secret-key"});
  std::string name = "ann.lee";
  std::string token =
      MakeToken(ring.current(), name, "trap.example", 42, kMinute);
  std::string a = name + "." + token + "@trap.example";
  ASSERT_EQ(Verify(ring, a).verdict, Verdict::kValid);

  // Every single-character change of the token is caught.
  for (size_t i = 0; i < token.size(); ++i) {
    std::string t = token;
    t[i] = t[i] == 'a' ? 'b' : 'a';
    Verdict v = Verify(ring, name + "." + t + "@trap.example").verdict;
    EXPECT_TRUE(v == Verdict::kForged || v == Verdict::kUnknownKey) << i;
  }
  // Truncated or extended: not token-shaped, a plain trap hit.
  EXPECT_EQ(Verify(ring, name + "." + token.substr(0, kTokenChars - 1) +
                             "@trap.example")
                .verdict,
            Verdict::kNoToken);
  EXPECT_EQ(Verify(ring, name + "." + token + "x@trap.example").verdict,
            Verdict::kNoToken);
  // Replayed onto another name or another trap domain.
  EXPECT_EQ(Verify(ring, "bob.ray." + token + "@trap.example").verdict,
            Verdict::kForged);
  EXPECT_EQ(Verify(ring, a.substr(0, a.find('@')) + "@other.example").verdict,
            Verdict::kForged);
  // No token at all.
  EXPECT_EQ(Verify(ring, "ann.lee@trap.example").verdict, Verdict::kNoToken);
  EXPECT_EQ(Verify(ring, "postmaster@trap.example").verdict, Verdict::kNoToken);
  EXPECT_EQ(Verify(ring, "").verdict, Verdict::kNoToken);
  EXPECT_EQ(Verify(ring, "@").verdict, Verdict::kNoToken);
  EXPECT_EQ(Verify(ring, "." + token + "@trap.example").verdict,
            Verdict::kNoToken);
  // Signed with a key that is not on this ring (same secret, other id, or
  // an id the ring does not have).
  KeyRing other = Ring({"9:another-secret-key!"});
  EXPECT_EQ(Verify(ring, MakeAddress(other.current(), name, "trap.example", 42,
                                     kMinute))
                .verdict,
            Verdict::kUnknownKey);
  KeyRing same_id = Ring({"2:another-secret-key!"});
  EXPECT_EQ(Verify(ring, MakeAddress(same_id.current(), name, "trap.example",
                                     42, kMinute))
                .verdict,
            Verdict::kForged);
}

TEST(Token, RotationKeepsOldAddressesValid) {
  KeyRing old_ring = Ring({"1:the-old-secret-key"});
  std::string a =
      MakeAddress(old_ring.current(), "ann.lee", "t.example", 5, kMinute);
  KeyRing rotated = Ring({"2:the-new-secret-key", "1:the-old-secret-key"});
  EXPECT_EQ(rotated.current().id, 2);
  Checked c = Verify(rotated, a);
  EXPECT_EQ(c.verdict, Verdict::kValid);
  EXPECT_EQ(c.attribution.key_id, 1);
  // Once the old key is dropped, its addresses are unknown-key hits.
  KeyRing dropped = Ring({"2:the-new-secret-key"});
  EXPECT_EQ(Verify(dropped, a).verdict, Verdict::kUnknownKey);
}

TEST(Token, DifferentVisitorsGetDifferentReferences) {
  KeyRing ring = Ring({"1:the-site-secret-key"});
  const Key& k = ring.current();
  std::set<uint32_t> refs;
  for (int i = 0; i < 1000; ++i) {
    refs.insert(VisitorRef(k, "192.0.2." + std::to_string(i % 250),
                           "ua" + std::to_string(i / 250), kMinute));
  }
  EXPECT_EQ(refs.size(), 1000u);
  EXPECT_EQ(VisitorRef(k, "192.0.2.1", "wget", kMinute),
            VisitorRef(k, "192.0.2.1", "wget", kMinute));
  EXPECT_NE(VisitorRef(k, "192.0.2.1", "wget", kMinute),
            VisitorRef(k, "192.0.2.1", "wget", kMinute + 1));
  KeyRing other = Ring({"1:another-secret-key!"});
  EXPECT_NE(VisitorRef(k, "192.0.2.1", "wget", kMinute),
            VisitorRef(other.current(), "192.0.2.1", "wget", kMinute));
}

TEST(Token, HmacMatchesRfc4231) {
  // RFC 4231 test case 2.
  auto h = Hmac("Jefe", "what do ya want for nothing?");
  EXPECT_EQ(h[0], 0x5b);
  EXPECT_EQ(h[1], 0xdc);
  EXPECT_EQ(h[31], 0x43);
}

}  // namespace
}  // namespace traps
