// The self-signed certificate looks like Debian's snakeoil, is kept next
// to the ledger, and the context offers what stock Postfix offers.
#include "net/tls.h"

#include <gtest/gtest.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <filesystem>
#include <string>
#include <vector>

namespace net {
namespace {

TEST(Tls, SnakeoilShape) {
  auto ctx = MakeTlsContext("", "", "mx.test.example");
  ASSERT_TRUE(ctx.ok());
  X509* x = SSL_CTX_get0_certificate((*ctx)->native_handle());
  ASSERT_NE(x, nullptr);
  EVP_PKEY* k = X509_get0_pubkey(x);
  EXPECT_EQ(EVP_PKEY_base_id(k), EVP_PKEY_RSA);
  EXPECT_EQ(EVP_PKEY_bits(k), 2048);
  EXPECT_EQ(X509_get_signature_nid(x), NID_sha256WithRSAEncryption);
  int days = 0, secs = 0;
  ASSERT_EQ(ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(x),
                           X509_get0_notAfter(x)),
            1);
  EXPECT_EQ(days, 3650);
  // basicConstraints, subjectAltName, subjectKeyIdentifier, in that order.
  ASSERT_EQ(X509_get_ext_count(x), 3);
  EXPECT_EQ(OBJ_obj2nid(X509_EXTENSION_get_object(X509_get_ext(x, 0))),
            NID_basic_constraints);
  EXPECT_EQ(OBJ_obj2nid(X509_EXTENSION_get_object(X509_get_ext(x, 1))),
            NID_subject_alt_name);
  EXPECT_EQ(OBJ_obj2nid(X509_EXTENSION_get_object(X509_get_ext(x, 2))),
            NID_subject_key_identifier);
  char cn[128] = {};
  X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn,
                            sizeof cn);
  EXPECT_STREQ(cn, "mx.test.example");
  EXPECT_EQ(X509_NAME_cmp(X509_get_subject_name(x), X509_get_issuer_name(x)),
            0);
  // 20 serial octets, positive, as openssl req draws them.
  const ASN1_INTEGER* sn = X509_get0_serialNumber(x);
  EXPECT_GE(ASN1_STRING_length(sn), 19);
}

TEST(Tls, KeptCertificateIsReused) {
  auto dir = std::filesystem::temp_directory_path() /
             ("spamsink-tls-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto der = [&] {
    auto ctx = MakeTlsContext("", "", "mx.test.example", dir.string());
    EXPECT_TRUE(ctx.ok());
    X509* x = SSL_CTX_get0_certificate((*ctx)->native_handle());
    unsigned char* buf = nullptr;
    int n = i2d_X509(x, &buf);
    std::string s(reinterpret_cast<char*>(buf), n);
    OPENSSL_free(buf);
    return s;
  };
  std::string a = der(), b = der();
  EXPECT_EQ(a, b);
  EXPECT_EQ(std::filesystem::status(dir / "snakeoil.key").permissions() &
                std::filesystem::perms::group_all,
            std::filesystem::perms::none);
  std::filesystem::remove_all(dir);
}

TEST(Tls, OffersTls10AndPostfixCiphers) {
  auto ctx = MakeTlsContext("", "", "mx.test.example");
  ASSERT_TRUE(ctx.ok());
  SSL_CTX* h = (*ctx)->native_handle();
  EXPECT_EQ(SSL_CTX_get_min_proto_version(h), TLS1_VERSION);
  SSL* ssl = SSL_new(h);
  STACK_OF(SSL_CIPHER)* list = SSL_get_ciphers(ssl);
  bool aria = false, camellia = false, ccm = false, plain_rsa = false;
  for (int i = 0; i < sk_SSL_CIPHER_num(list); ++i) {
    std::string n = SSL_CIPHER_get_name(sk_SSL_CIPHER_value(list, i));
    aria |= n.find("ARIA") != std::string::npos;
    camellia |= n.find("CAMELLIA") != std::string::npos;
    ccm |= n.find("CCM") != std::string::npos;
    plain_rsa |= n == "AES128-SHA";
  }
  SSL_free(ssl);
  EXPECT_TRUE(aria && camellia && ccm && plain_rsa);
}

// The exim persona's context plays GnuTLS's NORMAL: none of ARIA,
// Camellia, anonymous or SHA-384 CBC suites; TLS 1.3 CCM; no tickets.
TEST(Tls, GnuTlsStackOffersWhatDebiansEximOffers) {
  auto ctx = MakeTlsContext("", "", "mx.test.example", "", TlsStack::kGnuTls);
  ASSERT_TRUE(ctx.ok());
  SSL_CTX* h = (*ctx)->native_handle();
  EXPECT_EQ(SSL_CTX_get_min_proto_version(h), TLS1_VERSION);
  EXPECT_NE(SSL_CTX_get_options(h) & SSL_OP_NO_TICKET, 0u);
  EXPECT_EQ(SSL_CTX_get_num_tickets(h), 0u);
  SSL* ssl = SSL_new(h);
  STACK_OF(SSL_CIPHER)* list = SSL_get_ciphers(ssl);
  std::vector<std::string> names;
  for (int i = 0; i < sk_SSL_CIPHER_num(list); ++i) {
    names.push_back(SSL_CIPHER_get_name(sk_SSL_CIPHER_value(list, i)));
  }
  SSL_free(ssl);
  auto has = [&](std::string_view part) {
    for (const auto& n : names) {
      if (n.find(part) != std::string::npos) return true;
    }
    return false;
  };
  EXPECT_FALSE(has("ARIA"));
  EXPECT_FALSE(has("CAMELLIA"));
  EXPECT_FALSE(has("ADH"));
  EXPECT_FALSE(has("AECDH"));
  EXPECT_FALSE(has("ECDHE-RSA-AES256-SHA384"));
  EXPECT_TRUE(has("TLS_AES_128_CCM_SHA256"));
  EXPECT_TRUE(has("DHE-RSA-AES128-CCM"));
  EXPECT_TRUE(has("ECDHE-RSA-AES128-SHA"));
}

}  // namespace
}  // namespace net
