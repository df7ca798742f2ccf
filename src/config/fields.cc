#include "config/fields.h"

#include <algorithm>
#include <charconv>
#include <cmath>

#include "base/endpoint.h"
#include "base/ip.h"
#include "config/field_macros.h"
#include "tarpit/firewall.h"

namespace config {
namespace {

// kEnum fields are read and written as int.
static_assert(sizeof(tarpit::Mode) == sizeof(int));
static_assert(sizeof(tarpit::Verdict) == sizeof(int));

}  // namespace

base::Status CheckEndpoint(std::string_view v) {
  return base::Endpoint::Parse(v).status();
}

base::Status CheckNetwork(std::string_view v) {
  if (base::Cidr::Parse(v).ok()) return {};
  return base::Status::Error("\"" + std::string(v) +
                             "\" is not a network; e.g. 10.0.0.0/8, "
                             "2001:db8::/32 or 192.0.2.7");
}

namespace {

base::Status CheckNftTable(std::string_view v) {
  return tarpit::CheckTableName(v);
}

// Rows keep the order of config.h. Extra limits follow as designated fields.
std::vector<Field> MakeFields() {
  std::vector<Field> f = {
      SPAMSINK_FIELD(server, listen, kStrings,
                     "Addresses to listen on, \"host:port\" or \"[v6]:port\"; "
                     "the host is numeric or localhost, the port a number or "
                     "smtp, submission, submissions, smtps. Use "
                     "\"0.0.0.0:25\" and \"[::]:25\" for all addresses."),
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
      SPAMSINK_FIELD(server, executor, kString,
                     "How connections are served: io_uring (batched system "
                     "calls, no read buffer per idle connection), asio "
                     "(epoll) or auto (io_uring where the kernel allows it, "
                     "else asio; the choice and why are logged at start)."),
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
                     "(RFC 5321: 512; Postfix: 2048). Longer: cut there, "
                     "the rest skipped (postfix persona, as Postfix does), or "
                     "answered \"500\" (the others)."),
      SPAMSINK_FIELD(smtp, max_text_line_length, kInt,
                     "Longest message text line in octets, CRLF included "
                     "(RFC 5321: 1000); 0 = no limit (as Postfix). Longer: "
                     "the message is answered \"500 5.5.2\"."),
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
                     "\"421 4.7.0\" and close. The postfix persona "
                     "counts HELO, EHLO, RSET, NOOP, VRFY and ETRN as "
                     "Postfix's smtpd_junk_command_limit does: each one "
                     "past the limit is answered and counts as an error "
                     "(smtp.max_errors closes)."),
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
      SPAMSINK_FIELD(ledger, store, kString,
                     "Where the ledger lives: sqlite (a local file) or "
                     "postgresql (a database shared by a fleet of sinks)."),
      SPAMSINK_FIELD(ledger, db_path, kString,
                     "SQLite database file of the ledger."),
      SPAMSINK_FIELD(ledger, postgresql_url, kString,
                     "libpq connection string or postgresql:// URI of the "
                     "shared ledger (store = postgresql); no password here."),
      SPAMSINK_FIELD(ledger, postgresql_password_file, kString,
                     "File holding the PostgreSQL password (else PGPASSWORD "
                     "or ~/.pgpass); never logged."),
      SPAMSINK_FIELD(ledger, sink_id, kString,
                     "This sink's name in the shared ledger; empty: the host "
                     "name. Unique per running sink."),
      SPAMSINK_FIELD(ledger, flush_interval, kDouble,
                     "Seconds between batch commits; a crash loses at most "
                     "this much while a commit takes under half of it, and "
                     "at most twice the commit time when commits are "
                     "slower."),
      SPAMSINK_FIELD(ledger, retention_days, kDouble,
                     "Days after which a record not seen again expires."),
      SPAMSINK_FIELD(ledger, max_pending_bytes, kInt64,
                     "Memory kept for records the store could not take yet; "
                     "-1: server.memory_limit / 8 (256 MiB without a "
                     "limit)."),
      SPAMSINK_FIELD(tarpit, enabled, kBool,
                     "Tarpit: delay, stutter and slow-read senders (see "
                     "docs/TARPIT.md). Off: every reply is prompt."),
      SPAMSINK_FIELD(tarpit, mode, kEnum,
                     "keep_talking: delays stay below client timeouts so the "
                     "sender reaches the verdict; give_up: above them; "
                     "escalate: keep_talking until give_up_level."),
      SPAMSINK_FIELD(tarpit, give_up_level, kDouble,
                     "Reputation level (0..1) at which escalate switches to "
                     "give_up."),
      SPAMSINK_FIELD(tarpit, exempt, kStrings,
                     "Networks (CIDR or addresses) never tarpitted, shed, "
                     "dropped by the nftables rule or exported: monitoring, "
                     "your own test hosts, secondary MXes. Counted in "
                     "spamsink_tarpit_exempt_sessions_total."),
      SPAMSINK_FIELD(tarpit, max_delay, kDouble,
                     "Longest single wait in seconds (any delay, stutter "
                     "interval or slow-reader pause), whatever the "
                     "reputation; 0 = only the mode's per-stage ceilings."),
      SPAMSINK_DELAY(greeting, "the banner"),
      SPAMSINK_DELAY(helo, "the HELO/EHLO reply"),
      SPAMSINK_DELAY(mail, "the MAIL reply"),
      SPAMSINK_DELAY(rcpt, "each RCPT reply"),
      SPAMSINK_DELAY(data, "the 354 reply"),
      SPAMSINK_DELAY(data_end, "the reply to the end of a message"),
      SPAMSINK_DELAY(reply, "any other reply"),
      SPAMSINK_FIELD(tarpit, keep_talking_fraction, kDouble,
                     "keep_talking ceiling: this fraction of the RFC 5321 "
                     "client timeout of each stage."),
      SPAMSINK_FIELD(tarpit, give_up_factor, kDouble,
                     "give_up ceiling: this multiple of the RFC 5321 client "
                     "timeout of each stage."),
      SPAMSINK_FIELD(tarpit, jitter, kDouble,
                     "Escalated delays are drawn from [ceiling*(1-jitter), "
                     "ceiling]."),
      SPAMSINK_FIELD(tarpit, hold_budget, kDouble,
                     "keep_talking: seconds after which replies are prompt "
                     "(keep below smtp.session_timeout)."),
      SPAMSINK_FIELD(tarpit, weight_connection, kDouble,
                     "Reputation weight per prior connection."),
      SPAMSINK_FIELD(tarpit, weight_message, kDouble,
                     "Reputation weight per message sent."),
      SPAMSINK_FIELD(tarpit, weight_early_talk, kDouble,
                     "Reputation weight per session that spoke first."),
      SPAMSINK_FIELD(tarpit, weight_bare_lf, kDouble,
                     "Reputation weight per bare LF."),
      SPAMSINK_FIELD(tarpit, weight_protocol_error, kDouble,
                     "Reputation weight per protocol error."),
      SPAMSINK_FIELD(tarpit, weight_second_held, kDouble,
                     "Reputation weight per second held before."),
      SPAMSINK_FIELD(tarpit, full_level_score, kDouble,
                     "Score at which the reputation level reaches 1."),
      SPAMSINK_FIELD(tarpit, bot_score, kDouble,
                     "Evidence score (early talk, bare LF, protocol errors) "
                     "from which a sender is of class bot."),
      SPAMSINK_FIELD(tarpit, stutter, kBool,
                     "Send replies a few bytes at a time."),
      SPAMSINK_FIELD(tarpit, stutter_bytes, kInt,
                     "Bytes per stutter chunk (OpenBSD spamd: 1)."),
      SPAMSINK_FIELD(tarpit, stutter_interval, kDouble,
                     "Seconds between stutter chunks."),
      SPAMSINK_FIELD(tarpit, stutter_for, kDouble,
                     "Stutter only during the first seconds of a session; "
                     "0 = always."),
      SPAMSINK_FIELD(tarpit, data_window, kInt,
                     "Receive window in bytes during DATA (SO_RCVBUF and "
                     "TCP_WINDOW_CLAMP); 0 = kernel default."),
      SPAMSINK_FIELD(tarpit, data_read_bytes, kInt,
                     "Slow reader: bytes taken per read during DATA."),
      SPAMSINK_FIELD(tarpit, data_read_interval, kDouble,
                     "Slow reader: seconds between reads at level 0."),
      SPAMSINK_FIELD(tarpit, reject_early_talkers, kBool,
                     "Greet a client that speaks before the banner with 554 "
                     "(then only QUIT)."),
      SPAMSINK_FIELD(tarpit, verdict_new, kEnum,
                     "Final reply to a sender never seen before."),
      SPAMSINK_FIELD(tarpit, verdict_returning, kEnum,
                     "Final reply to a returning sender without bot "
                     "evidence."),
      SPAMSINK_FIELD(tarpit, verdict_bot, kEnum,
                     "Final reply to a sender with bot evidence."),
      SPAMSINK_FIELD(tarpit, max_held, kInt,
                     "Connections the tarpit may hold at once; past it, "
                     "prompt service."),
      SPAMSINK_FIELD(tarpit, max_stuttering, kInt,
                     "Connections that may be stuttered at once."),
      SPAMSINK_FIELD(tarpit, degrade_at, kDouble,
                     "Load (share of max_connections) from which delays "
                     "shrink and stutter stops."),
      SPAMSINK_FIELD(tarpit, shed_at, kDouble,
                     "Load from which new sessions get 421 at once."),
      SPAMSINK_FIELD(tarpit, drop_percent, kDouble,
                     "Percentage of incoming packets to the SMTP ports to "
                     "drop with nftables (spamsink firewall --print)."),
      SPAMSINK_FIELD(tarpit, drop_data_only, kBool,
                     "Drop only packets carrying data (pure ACKs pass)."),
      SPAMSINK_FIELD(tarpit, nft_table, kString,
                     "nftables table (family inet) owned by spamsink: a "
                     "letter or _, then letters, digits, _ and -, at most 32."),
      SPAMSINK_FIELD(log, level, kString, "debug, info, warning or error."),
      SPAMSINK_FIELD(log, sessions, kBool, "One summary line per session."),
  };
  AppendApiFields(&f);
  AppendCaptureFields(&f);
  AppendDnsblFields(&f);
  AppendLedgerFields(&f);
  AppendServerFields(&f);
  AppendTrapsFields(&f);
  // Sections appended from their own files come before [log], which stays
  // last in the reference as it always was.
  std::stable_partition(f.begin(), f.end(),
                        [](const Field& x) { return x.section != "log"; });
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
  range("ledger.max_pending_bytes", -1, 1ll << 40);
  set("smtp.persona", [](Field& x) {
    x.choices = "postfix|exim|sendmail|exchange|custom";
    x.alias = "--persona";
  });
  set("server.executor", [](Field& x) { x.choices = "auto|io_uring|asio"; });
  set("smtp.final_reply",
      [](Field& x) { x.choices = "accept|tempfail|reject"; });
  set("log.level", [](Field& x) { x.choices = "debug|info|warning|error"; });
  set("tarpit.mode",
      [](Field& x) { x.choices = "keep_talking|give_up|escalate"; });
  for (auto v : {"tarpit.verdict_new", "tarpit.verdict_returning",
                 "tarpit.verdict_bot"}) {
    set(v, [](Field& x) { x.choices = "default|accept|tempfail|reject"; });
  }
  for (auto& x : f) {
    if (x.section == "tarpit" && x.kind == Kind::kDouble) x.max = 1e6;
  }
  range("tarpit.give_up_level", 0, 1);
  range("tarpit.keep_talking_fraction", 0, 1);
  range("tarpit.jitter", 0, 1);
  range("tarpit.degrade_at", 0, 1);
  range("tarpit.shed_at", 0, 1);
  range("tarpit.drop_percent", 0, 100);
  range("tarpit.stutter_bytes", 1, 65536);
  range("tarpit.data_window", 0, 1 << 24);
  range("tarpit.data_read_bytes", 1, 1 << 24);
  range("tarpit.max_held", 0, 10000000);
  range("tarpit.max_stuttering", 0, 10000000);
  range("tarpit.full_level_score", 0.001, 1e12);
  set("server.listen", [](Field& x) {
    x.alias = "--listen";
    x.check = CheckEndpoint;
  });
  set("server.proxy_trusted", [](Field& x) { x.check = CheckNetwork; });
  set("tarpit.exempt", [](Field& x) { x.check = CheckNetwork; });
  set("tarpit.nft_table", [](Field& x) { x.check = CheckNftTable; });
  set("server.user", [](Field& x) { x.alias = "--user"; });
  set("server.hostname", [](Field& x) { x.alias = "--hostname"; });
  set("ledger.db_path", [](Field& x) { x.alias = "--db"; });
  set("ledger.store", [](Field& x) { x.choices = "sqlite|postgresql"; });
  return f;
}

bool ParseInt64(std::string_view s, int64_t* out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && p == s.data() + s.size() && !s.empty();
}

base::Status CheckRange(const Field& f, double v) {
  if (std::isnan(v) || v < f.min || v > f.max) {
    auto num = [](double x) {
      std::string s = FormatNumber(x);
      if (s.size() > 2 && s.ends_with(".0")) s.resize(s.size() - 2);
      return s;
    };
    return base::Status::Error(num(v) + " is out of range [" + num(f.min) +
                               ", " + num(f.max) + "]");
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

void SetField(std::vector<Field>* f, std::string_view name,
              void (*fn)(Field&)) {
  for (auto& x : *f) {
    if (x.Name() == name) fn(x);
  }
}

void SetRange(std::vector<Field>* f, std::string_view name, double lo,
              double hi) {
  for (auto& x : *f) {
    if (x.Name() == name) {
      x.min = lo;
      x.max = hi;
    }
  }
}

std::string FormatNumber(double v) {
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  if (std::isnan(v)) return "nan";
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  std::string s(buf, ec == std::errc() ? end : buf);
  if (s.find_first_of(".en") == std::string::npos) s += ".0";
  return s;
}

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
  if (f.check != nullptr) {
    for (const auto& v : values) {
      if (auto s = f.check(v); !s.ok()) return s;
    }
  }
  if (f.kind == Kind::kStrings) {
    *static_cast<std::vector<std::string>*>(p) = values;
    return {};
  }
  if (values.size() != 1) {
    return base::Status::Error("expects exactly one value");
  }
  const std::string& v = values[0];
  switch (f.kind) {
    case Kind::kEnum:
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
          std::string choices(f.choices);
          for (size_t i; (i = choices.find('|')) != std::string::npos;) {
            choices.replace(i, 1, ", ");
          }
          return base::Status::Error("\"" + v + "\" is not one of " + choices);
        }
      }
      if (f.kind == Kind::kEnum) {
        int index = 0;
        std::string_view rest = f.choices;
        while (rest.substr(0, rest.find('|')) != v) {
          rest.remove_prefix(rest.find('|') + 1);
          ++index;
        }
        *static_cast<int*>(p) = index;
      } else {
        *static_cast<std::string*>(p) = v;
      }
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
    case Kind::kEnum: {
      int index = *static_cast<int*>(p);
      std::string_view rest = f.choices;
      for (int i = 0; i < index; ++i) rest.remove_prefix(rest.find('|') + 1);
      return Quote(std::string(rest.substr(0, rest.find('|'))));
    }
    case Kind::kString:
      return Quote(*static_cast<std::string*>(p));
    case Kind::kInt:
      return std::to_string(*static_cast<int*>(p));
    case Kind::kInt64:
      return std::to_string(*static_cast<int64_t*>(p));
    case Kind::kDouble:
      return FormatNumber(*static_cast<double*>(p));
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
