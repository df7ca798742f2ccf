#include "net/tls.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

namespace net {
namespace {

struct Deleter {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(X509* p) const { X509_free(p); }
  void operator()(BIO* p) const { BIO_free(p); }
  void operator()(X509_EXTENSION* p) const { X509_EXTENSION_free(p); }
};
template <typename T>
using Ptr = std::unique_ptr<T, Deleter>;

// Makes a self-signed certificate and key, returned as PEM text.
base::Status SelfSigned(const std::string& hostname, std::string* cert_pem,
                        std::string* key_pem) {
  Ptr<EVP_PKEY> key(EVP_EC_gen("P-256"));
  if (!key) return base::Status::Error("cannot generate an EC key");
  Ptr<X509> x(X509_new());
  X509_set_version(x.get(), 2);
  // A random serial per certificate (RFC 5280 4.1.2.2: positive, at most
  // 20 octets): a fixed one would identify spamsink anywhere on the net.
  unsigned char serial[16];
  if (RAND_bytes(serial, sizeof serial) != 1) {
    return base::Status::Error("cannot draw a certificate serial number");
  }
  serial[0] &= 0x7f;
  ASN1_INTEGER* sn = X509_get_serialNumber(x.get());
  BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
  BN_to_ASN1_INTEGER(bn, sn);
  BN_free(bn);
  X509_gmtime_adj(X509_getm_notBefore(x.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(x.get()), 10L * 365 * 86400);
  X509_set_pubkey(x.get(), key.get());
  X509_NAME* name = X509_get_subject_name(x.get());
  std::string cn = hostname.substr(0, 64);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(cn.c_str()),
                             -1, -1, 0);
  X509_set_issuer_name(x.get(), name);
  std::string san = "DNS:" + cn;
  Ptr<X509_EXTENSION> ext(
      X509V3_EXT_conf_nid(nullptr, nullptr, NID_subject_alt_name, san.c_str()));
  if (ext) X509_add_ext(x.get(), ext.get(), -1);
  if (!X509_sign(x.get(), key.get(), EVP_sha256())) {
    return base::Status::Error("cannot sign the self-signed certificate");
  }
  Ptr<BIO> cb(BIO_new(BIO_s_mem())), kb(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509(cb.get(), x.get());
  PEM_write_bio_PrivateKey(kb.get(), key.get(), nullptr, nullptr, 0, nullptr,
                           nullptr);
  char* p;
  long n = BIO_get_mem_data(cb.get(), &p);
  cert_pem->assign(p, n);
  n = BIO_get_mem_data(kb.get(), &p);
  key_pem->assign(p, n);
  return {};
}

}  // namespace

base::Result<std::shared_ptr<asio::ssl::context>> MakeTlsContext(
    const std::string& cert_file, const std::string& key_file,
    const std::string& hostname) {
  auto ctx =
      std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
  ctx->set_options(asio::ssl::context::default_workarounds |
                   asio::ssl::context::no_sslv2 | asio::ssl::context::no_sslv3 |
                   asio::ssl::context::single_dh_use);
  asio::error_code ec;
  if (cert_file.empty()) {
    std::string cert, key;
    if (auto s = SelfSigned(hostname, &cert, &key); !s.ok()) return s;
    ctx->use_certificate_chain(asio::buffer(cert), ec);
    if (!ec)
      ctx->use_private_key(asio::buffer(key), asio::ssl::context::pem, ec);
  } else {
    ctx->use_certificate_chain_file(cert_file, ec);
    if (ec) {
      return base::Status::Error("smtp.tls_cert: " + cert_file + ": " +
                                 ec.message());
    }
    ctx->use_private_key_file(key_file, asio::ssl::context::pem, ec);
    if (ec) {
      return base::Status::Error("smtp.tls_key: " + key_file + ": " +
                                 ec.message());
    }
  }
  if (ec) return base::Status::Error("TLS set-up failed: " + ec.message());
  return ctx;
}

}  // namespace net
