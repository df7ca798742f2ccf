#include "net/tls.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

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

// Adds an X.509v3 extension from its OpenSSL config text.
void AddExt(X509* x, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, x, x, nullptr, nullptr, 0);
  Ptr<X509_EXTENSION> ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value));
  if (ext) X509_add_ext(x, ext.get(), -1);
}

bool ReadFile(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream ss;
  ss << in.rdbuf();
  *out = ss.str();
  return !out->empty();
}

}  // namespace

base::Status MakeSnakeoil(const std::string& hostname, std::string* cert_pem,
                          std::string* key_pem) {
  Ptr<EVP_PKEY> key(EVP_RSA_gen(2048));
  if (!key) return base::Status::Error("cannot generate an RSA key");
  Ptr<X509> x(X509_new());
  X509_set_version(x.get(), 2);
  // A random serial per certificate, as "openssl req -x509" draws it (159
  // bits, positive): a fixed one would identify spamsink anywhere.
  unsigned char serial[20];
  if (RAND_bytes(serial, sizeof serial) != 1) {
    return base::Status::Error("cannot draw a certificate serial number");
  }
  serial[0] &= 0x7f;
  ASN1_INTEGER* sn = X509_get_serialNumber(x.get());
  BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
  BN_to_ASN1_INTEGER(bn, sn);
  BN_free(bn);
  X509_gmtime_adj(X509_getm_notBefore(x.get()), 0);
  X509_gmtime_adj(X509_getm_notAfter(x.get()), 3650L * 86400);
  X509_set_pubkey(x.get(), key.get());
  X509_NAME* name = X509_get_subject_name(x.get());
  std::string cn = hostname.substr(0, 64);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(cn.c_str()),
                             -1, -1, 0);
  X509_set_issuer_name(x.get(), name);
  // ssl-cert's template (v3_req) and what openssl req adds, in its order.
  AddExt(x.get(), NID_basic_constraints, "CA:FALSE");
  std::string san = "DNS:" + cn;
  AddExt(x.get(), NID_subject_alt_name, san.c_str());
  AddExt(x.get(), NID_subject_key_identifier, "hash");
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

namespace {

// The kept certificate, or a new one written there (key mode 0600).
base::Status KeptSnakeoil(const std::string& dir, const std::string& hostname,
                          std::string* cert, std::string* key) {
  std::string cert_path = dir + "/snakeoil.pem",
              key_path = dir + "/snakeoil.key";
  if (!dir.empty() && ReadFile(cert_path, cert) && ReadFile(key_path, key)) {
    return {};
  }
  if (auto s = MakeSnakeoil(hostname, cert, key); !s.ok()) return s;
  if (dir.empty()) return {};
  int fd = ::open(key_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0 || ::write(fd, key->data(), key->size()) != ssize_t(key->size())) {
    if (fd >= 0) ::close(fd);
    return base::Status::Error("cannot write " + key_path);
  }
  ::close(fd);
  std::ofstream out(cert_path, std::ios::binary | std::ios::trunc);
  out << *cert;
  if (!out) return base::Status::Error("cannot write " + cert_path);
  return {};
}

}  // namespace

base::Result<std::shared_ptr<asio::ssl::context>> MakeTlsContext(
    const std::string& cert_file, const std::string& key_file,
    const std::string& hostname, const std::string& keep_dir, TlsStack stack) {
  auto ctx =
      std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
  ctx->set_options(asio::ssl::context::default_workarounds |
                   asio::ssl::context::no_sslv2 | asio::ssl::context::no_sslv3 |
                   asio::ssl::context::single_dh_use |
                   asio::ssl::context::no_compression);
  SSL_CTX* h = ctx->native_handle();
  // Postfix's choices override Debian's openssl.cnf (TLS 1.2 and security
  // level 2 at least): TLS 1.0 and up, the "medium" grade, security level
  // 0 (TLS 1.0/1.1 and the anonymous suites need it), its curves, DH
  // groups sized for the key, the client's order.
  SSL_CTX_set_min_proto_version(h, TLS1_VERSION);
  SSL_CTX_set_security_level(h, 0);
  if (SSL_CTX_set_cipher_list(h, "aNULL:-aNULL:HIGH:MEDIUM:+RC4:@STRENGTH") !=
      1) {
    return base::Status::Error("TLS set-up failed: cipher list");
  }
  if (stack == TlsStack::kGnuTls) {
    // GnuTLS 3.7 NORMAL, RSA key: ECDHE, plain RSA and DHE with AES-GCM,
    // ChaCha20, AES-CBC with SHA-1 and AES-CCM (the client's order, as
    // Exim leaves GnuTLS's). Checked by tls_probe.py exim.
    if (SSL_CTX_set_cipher_list(
            h,
            "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-CHACHA20-POLY1305:"
            "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-SHA:"
            "ECDHE-RSA-AES128-SHA:AES256-GCM-SHA384:AES128-GCM-SHA256:"
            "AES256-SHA:AES128-SHA:AES256-CCM:AES128-CCM:"
            "DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305:"
            "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-SHA:DHE-RSA-AES128-SHA:"
            "DHE-RSA-AES256-CCM:DHE-RSA-AES128-CCM") != 1 ||
        SSL_CTX_set_ciphersuites(
            h,
            "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:"
            "TLS_AES_128_GCM_SHA256:TLS_AES_128_CCM_SHA256") != 1) {
      return base::Status::Error("TLS set-up failed: GnuTLS cipher list");
    }
    SSL_CTX_set_options(h, SSL_OP_NO_TICKET);
    SSL_CTX_set_num_tickets(h, 0);
  }
  SSL_CTX_set1_groups_list(h, "X25519:X448:P-256:P-521:P-384");
  SSL_CTX_set_dh_auto(h, 1);
  asio::error_code ec;
  if (cert_file.empty()) {
    std::string cert, key;
    if (auto s = KeptSnakeoil(keep_dir, hostname, &cert, &key); !s.ok()) {
      return s;
    }
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
