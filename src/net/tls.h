// The TLS server context for STARTTLS: the configured certificate, or a
// self-signed one made at start-up so that STARTTLS works out of the box.
#pragma once

#include <asio/ssl.hpp>
#include <memory>
#include <string>

#include "base/status.h"

namespace net {

// cert_file and key_file are PEM files; both empty means a self-signed
// certificate for hostname shaped like Debian's snakeoil (ssl-cert's
// make-ssl-cert: RSA 2048, SHA-256, ten years, CN and SAN the host name,
// a random 159-bit serial). With keep_dir set it is kept there
// (snakeoil.pem, snakeoil.key) and reused by later starts, as a real
// server's would be; otherwise it is made fresh at each start.
//
// Protocols and ciphers are those of Postfix 3.7 on Debian 12 with its
// defaults (smtpd_tls_protocols >=TLSv1, smtpd_tls_ciphers medium, the
// client's preference, anonymous suites offered): any TLS fingerprint of
// the handshake then matches stock Postfix, and old clients (TLS 1.0)
// still get in and are recorded.
//
// TlsStack::kGnuTls plays Debian's Exim 4.96, built with GnuTLS 3.7 and
// its "NORMAL" priorities: no ARIA, Camellia, anonymous or SHA-256/384 CBC
// suites, TLS_AES_128_CCM_SHA256 offered with TLS 1.3, no session tickets
// (TLS 1.2 or 1.3). What OpenSSL cannot do like GnuTLS is in
// docs/PERSONAS.md (TLS, Exim).
enum class TlsStack { kPostfix, kGnuTls };
base::Result<std::shared_ptr<asio::ssl::context>> MakeTlsContext(
    const std::string& cert_file, const std::string& key_file,
    const std::string& hostname, const std::string& keep_dir = "",
    TlsStack stack = TlsStack::kPostfix);

// What a self-signed certificate looks like, for tests.
base::Status MakeSnakeoil(const std::string& hostname, std::string* cert_pem,
                          std::string* key_pem);

}  // namespace net
