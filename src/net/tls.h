// The TLS server context for STARTTLS: the configured certificate, or a
// self-signed one made at start-up so that STARTTLS works out of the box.
#pragma once

#include <asio/ssl.hpp>
#include <memory>
#include <string>

#include "base/status.h"

namespace net {

// cert_file and key_file are PEM files; both empty means self-signed for
// hostname (an EC P-256 key, valid ten years, made fresh at each start).
base::Result<std::shared_ptr<asio::ssl::context>> MakeTlsContext(
    const std::string& cert_file, const std::string& key_file,
    const std::string& hostname);

}  // namespace net
