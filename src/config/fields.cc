#include "config/fields.h"

#include <charconv>
#include <cmath>

namespace config {
namespace {

#define SPAMSINK_FIELD(sec, name, kind, ...)            \
  Field {                                               \
#sec, #name, Kind::kind, __VA_ARGS__,               \
        [](Config & c) -> void* { return &c.sec.name; } \
  }

// Rows keep the order of config.h. Extra limits follow as designated fields.
std::vector<Field> MakeFields() {
  std::vector<Field> f = {
      SPAMSINK_FIELD(server, listen, kStrings,
                     "Addresses to listen on, \"host:port\" or \"[v6]:port\". "
                     "Use \"0.0.0.0:25\" and \"[::]:25\" for all addresses."),
      SPAMSINK_FIELD(server, hostname, kString,
                     "Host name in the banner and replies; empty means the "
                     "system host name."),
      SPAMSINK_FIELD(server, user, kString,
                     "Drop privileges to this user after binding (needed to "
                     "bind port 25 as root and then run unprivileged)."),
      SPAMSINK_FIELD(server, proxy_trusted, kStrings,
                     "Networks (CIDR) whose connections must start with a "
                     "PROXY v1 or v2 header; the address in it is then the "
                     "client's. Empty: PROXY protocol off."),
      SPAMSINK_FIELD(server, proxy_timeout, kDouble,
                     "Seconds a trusted peer has to send its PROXY header."),
      SPAMSINK_FIELD(server, threads, kInt,
                     "I/O threads, each with its own listeners (SO_REUSEPORT); "
                     "0 means one per core."),
      SPAMSINK_FIELD(server, backlog, kInt, "listen(2) backlog."),
      SPAMSINK_FIELD(server, max_connections, kInt,
                     "Open SMTP connections at most; more are answered "
                     "\"421 4.7.0\" and closed."),
      SPAMSINK_FIELD(server, max_connections_per_ip, kInt,
                     "Open connections per client IP at most; more are "
                     "answered \"421 4.7.0\" and closed."),
      SPAMSINK_FIELD(server, fd_reserve, kInt,
                     "File descriptors kept free; accepting pauses (never "
                     "spins) when fewer remain."),
      SPAMSINK_FIELD(smtp, persona, kString,
                     "Which real server to look like: banner, EHLO lines, "
                     "reply texts and queue ids."),
      SPAMSINK_FIELD(smtp, final_reply, kString,
                     "Answer to a complete message: accept (250 with a queue "
                     "id), tempfail (451) or reject (554)."),
      SPAMSINK_FIELD(smtp, max_line_length, kInt,
                     "Longest command line in octets, CRLF included "
                     "(RFC 5321: 512). Longer: \"500 5.5.2\"."),
      SPAMSINK_FIELD(smtp, max_text_line_length, kInt,
                     "Longest message text line in octets, CRLF included "
                     "(RFC 5321: 1000); 0 = no limit. Longer: the message is "
                     "answered \"500 5.5.2\"."),
      SPAMSINK_FIELD(smtp, max_recipients, kInt,
                     "Recipients per message; more are answered "
                     "\"452 4.5.3\"."),
      SPAMSINK_FIELD(smtp, max_message_size, kInt64,
                     "Largest message in octets, advertised as SIZE; larger "
                     "is answered \"552 5.3.4\"."),
      SPAMSINK_FIELD(smtp, max_commands, kInt,
                     "Commands per session; then \"421 4.7.0\" and close."),
      SPAMSINK_FIELD(smtp, max_junk_commands, kInt,
                     "NOOP, VRFY, EXPN, HELP and RSET per session; then "
                     "\"421 4.7.0\" and close."),
      SPAMSINK_FIELD(smtp, max_errors, kInt,
                     "Error replies per session; then \"421 4.7.0\" and "
                     "close."),
      SPAMSINK_FIELD(smtp, session_timeout, kDouble,
                     "Seconds a session may last; then \"421 4.4.2\" and "
                     "close."),
      SPAMSINK_FIELD(smtp, idle_timeout, kDouble,
                     "Seconds without input before \"421 4.4.2\" and close "
                     "(RFC 5321 asks for at least 300)."),
      SPAMSINK_FIELD(smtp, auth, kBool,
                     "Advertise AUTH PLAIN LOGIN; every attempt fails with "
                     "535 and is counted."),
      SPAMSINK_FIELD(smtp, starttls, kBool, "Offer STARTTLS."),
      SPAMSINK_FIELD(smtp, tls_cert, kString,
                     "PEM certificate chain for STARTTLS; empty: a "
                     "self-signed certificate is made at start-up."),
      SPAMSINK_FIELD(smtp, tls_key, kString, "PEM private key for tls_cert."),
      SPAMSINK_FIELD(smtp, custom_banner, kString,
                     "custom persona: banner text after \"220 <hostname> \"."),
      SPAMSINK_FIELD(smtp, custom_ehlo_greeting, kString,
                     "custom persona: text after the host name on the first "
                     "EHLO line."),
      SPAMSINK_FIELD(smtp, custom_ok, kString,
                     "custom persona: text of plain 250 replies."),
      SPAMSINK_FIELD(smtp, custom_queued, kString,
                     "custom persona: text of the 250 after DATA; %s is the "
                     "queue id."),
      SPAMSINK_FIELD(smtp, custom_bye, kString,
                     "custom persona: text of the 221 reply to QUIT."),
      SPAMSINK_FIELD(ledger, enabled, kBool,
                     "Record every client IP in the ledger."),
      SPAMSINK_FIELD(ledger, db_path, kString,
                     "SQLite database file of the ledger."),
      SPAMSINK_FIELD(ledger, flush_interval, kDouble,
                     "Seconds between batch commits; a crash loses at most "
                     "this much."),
      SPAMSINK_FIELD(ledger, retention_days, kDouble,
                     "Days after which a record not seen again expires."),
      SPAMSINK_FIELD(ledger, max_pending_bytes, kInt64,
                     "Memory kept for records the store could not take yet."),
      SPAMSINK_FIELD(api, enabled, kBool, "Serve the HTTP API."),
      SPAMSINK_FIELD(api, listen, kString,
                     "HTTP API address, \"host:port\"; a non-loopback address "
                     "requires a token."),
      SPAMSINK_FIELD(api, token, kString,
                     "Bearer token required by the API when set."),
      SPAMSINK_FIELD(log, level, kString, "debug, info, warning or error."),
      SPAMSINK_FIELD(log, sessions, kBool, "One summary line per session."),
  };
  auto set = [&](std::string_view name, auto fn) {
    for (auto& x : f) {
      if (x.Name() == name) fn(x);
    }
  };
  auto range = [&](std::string_view name, double lo, double hi) {
    set(name, [&](Field& x) {
      x.min = lo;
      x.max = hi;
    });
  };
  range("server.proxy_timeout", 0.1, 3600);
  range("server.threads", 0, 1024);
  range("server.backlog", 1, 1 << 20);
  range("server.max_connections", 1, 10000000);
  range("server.max_connections_per_ip", 1, 10000000);
  range("server.fd_reserve", 4, 100000);
  range("smtp.max_line_length", 64, 1 << 20);
  range("smtp.max_text_line_length", 0, 1 << 30);
  range("smtp.max_recipients", 1, 1000000);
  range("smtp.max_message_size", 1, 1ll << 40);
  range("smtp.max_commands", 1, 1e9);
  range("smtp.max_junk_commands", 1, 1e9);
  range("smtp.max_errors", 1, 1e9);
  range("smtp.session_timeout", 1, 86400 * 7);
  range("smtp.idle_timeout", 1, 86400);
  range("ledger.flush_interval", 0.01, 3600);
  range("ledger.retention_days", 0.001, 36500);
  range("ledger.max_pending_bytes", 1 << 16, 1ll << 40);
  set("smtp.persona", [](Field& x) {
    x.choices = "postfix|exim|sendmail|exchange|custom";
    x.alias = "--persona";
  });
  set("smtp.final_reply",
      [](Field& x) { x.choices = "accept|tempfail|reject"; });
  set("log.level", [](Field& x) { x.choices = "debug|info|warning|error"; });
  set("server.listen", [](Field& x) { x.alias = "--listen"; });
  set("server.user", [](Field& x) { x.alias = "--user"; });
  set("server.hostname", [](Field& x) { x.alias = "--hostname"; });
  set("ledger.db_path", [](Field& x) { x.alias = "--db"; });
  return f;
}

bool ParseInt64(std::string_view s, int64_t* out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && p == s.data() + s.size() && !s.empty();
}

base::Status CheckRange(const Field& f, double v) {
  if (std::isnan(v) || v < f.min || v > f.max) {
    char buf[128];
    std::snprintf(buf, sizeof buf, "%g is out of range [%g, %g]", v, f.min,
                  f.max);
    return base::Status::Error(buf);
  }
  return {};
}

std::string Quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out + "\"";
}

}  // namespace

std::string Field::Name() const {
  return std::string(section) + "." + std::string(key);
}

std::string Field::Flag() const {
  std::string flag = "--" + std::string(section) + "-" + std::string(key);
  for (char& c : flag) {
    if (c == '_') c = '-';
  }
  return flag;
}

const std::vector<Field>& Fields() {
  static const std::vector<Field> fields = MakeFields();
  return fields;
}

const Field* FindField(std::string_view section, std::string_view key) {
  for (const auto& f : Fields()) {
    if (f.section == section && f.key == key) return &f;
  }
  return nullptr;
}

base::Status SetFromStrings(Config* config, const Field& f,
                            const std::vector<std::string>& values) {
  void* p = f.get(*config);
  if (f.kind == Kind::kStrings) {
    *static_cast<std::vector<std::string>*>(p) = values;
    return {};
  }
  if (values.size() != 1) {
    return base::Status::Error("expects exactly one value");
  }
  const std::string& v = values[0];
  switch (f.kind) {
    case Kind::kString: {
      if (!f.choices.empty()) {
        std::string_view rest = f.choices;
        bool found = false;
        while (!rest.empty()) {
          auto bar = rest.find('|');
          if (rest.substr(0, bar) == v) found = true;
          rest = bar == std::string_view::npos ? "" : rest.substr(bar + 1);
        }
        if (!found) {
          return base::Status::Error("\"" + v + "\" is not one of " +
                                     std::string(f.choices));
        }
      }
      *static_cast<std::string*>(p) = v;
      return {};
    }
    case Kind::kInt:
    case Kind::kInt64: {
      int64_t n;
      if (!ParseInt64(v, &n)) {
        return base::Status::Error("\"" + v + "\" is not an integer");
      }
      if (auto s = CheckRange(f, double(n)); !s.ok()) return s;
      if (f.kind == Kind::kInt) {
        *static_cast<int*>(p) = int(n);
      } else {
        *static_cast<int64_t*>(p) = n;
      }
      return {};
    }
    case Kind::kDouble: {
      char* end = nullptr;
      double d = std::strtod(v.c_str(), &end);
      if (v.empty() || end != v.c_str() + v.size()) {
        return base::Status::Error("\"" + v + "\" is not a number");
      }
      if (auto s = CheckRange(f, d); !s.ok()) return s;
      *static_cast<double*>(p) = d;
      return {};
    }
    case Kind::kBool:
      if (v == "true" || v == "1" || v == "yes") {
        *static_cast<bool*>(p) = true;
      } else if (v == "false" || v == "0" || v == "no") {
        *static_cast<bool*>(p) = false;
      } else {
        return base::Status::Error("\"" + v + "\" is not true or false");
      }
      return {};
    case Kind::kStrings:
      break;
  }
  return {};
}

std::string ValueToToml(Config& config, const Field& f) {
  void* p = f.get(config);
  switch (f.kind) {
    case Kind::kString:
      return Quote(*static_cast<std::string*>(p));
    case Kind::kInt:
      return std::to_string(*static_cast<int*>(p));
    case Kind::kInt64:
      return std::to_string(*static_cast<int64_t*>(p));
    case Kind::kDouble: {
      char buf[64];
      std::snprintf(buf, sizeof buf, "%.17g", *static_cast<double*>(p));
      std::string s = buf;
      if (s.find_first_of(".e") == std::string::npos) s += ".0";
      return s;
    }
    case Kind::kBool:
      return *static_cast<bool*>(p) ? "true" : "false";
    case Kind::kStrings: {
      std::string out = "[";
      for (const auto& s : *static_cast<std::vector<std::string>*>(p)) {
        if (out.size() > 1) out += ", ";
        out += Quote(s);
      }
      return out + "]";
    }
  }
  return "";
}

}  // namespace config
