#include "net/trap_server.h"

#include <asio.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <atomic>
#include <map>
#include <mutex>
#include <thread>

#include "base/endpoint.h"
#include "base/ip.h"
#include "base/log.h"
#include "conn/proxy.h"

namespace net {
namespace {

constexpr auto kTuple = asio::experimental::as_tuple(asio::use_awaitable);

// The figures of TrapSiteMetrics (process-wide).
std::atomic<int64_t> g_slow_clients{0};
std::atomic<uint64_t> g_pages_served{0};
std::atomic<uint64_t> g_pages_slowed{0};
enum Bound {
  kMaxClients,
  kMaxSlowClients,
  kMaxSlowPerClient,
  kProxyHeader,
  kBounds
};
constexpr const char* kBoundNames[kBounds] = {
    "max_clients", "max_slow_clients", "max_slow_per_client", "proxy_header"};
std::atomic<uint64_t> g_refused[kBounds] = {};
// A write (a whole page, or one trickled piece) the client does not take
// within this is the end of the connection.
constexpr double kWriteTimeout = 10;

asio::ip::address ToAsio(const base::IpAddress& ip) {
  if (ip.is_v4()) return asio::ip::address_v4(ip.v4());
  return asio::ip::address_v6(ip.bytes());
}

std::string PeerText(const asio::ip::address& a) {
  if (a.is_v6() && a.to_v6().is_v4_mapped()) {
    return asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6())
        .to_string();
  }
  return a.to_string();
}

int Hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The path of a request target: the query cut, %XX decoded (a bad escape is
// kept as it is); traps::Site judges what is left.
std::string DecodePath(std::string_view target) {
  target = target.substr(0, target.find('?'));
  std::string out;
  for (size_t i = 0; i < target.size(); ++i) {
    if (target[i] == '%' && i + 2 < target.size() && Hex(target[i + 1]) >= 0 &&
        Hex(target[i + 2]) >= 0) {
      out.push_back(char(Hex(target[i + 1]) * 16 + Hex(target[i + 2])));
      i += 2;
    } else {
      out.push_back(target[i]);
    }
  }
  return out;
}

bool IEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

struct Head {
  std::string method, target, user_agent, forwarded_for;
  bool ok = false;
};

// "GET /x HTTP/1.1\r\nName: value\r\n...\r\n\r\n"; ok is false for a
// malformed request line.
Head ParseHead(std::string_view text) {
  Head h;
  size_t eol = text.find("\r\n");
  std::string_view line = text.substr(0, eol);
  size_t s1 = line.find(' ');
  size_t s2 = s1 == std::string_view::npos ? s1 : line.find(' ', s1 + 1);
  if (s2 == std::string_view::npos ||
      line.substr(s2 + 1).substr(0, 5) != "HTTP/") {
    return h;
  }
  h.method = std::string(line.substr(0, s1));
  h.target = std::string(line.substr(s1 + 1, s2 - s1 - 1));
  h.ok = !h.target.empty() && h.target.front() == '/';
  while (eol != std::string_view::npos) {
    size_t start = eol + 2;
    eol = text.find("\r\n", start);
    std::string_view header = text.substr(start, eol - start);
    size_t colon = header.find(':');
    if (colon == std::string_view::npos) continue;
    std::string_view name = header.substr(0, colon);
    std::string_view value = Trim(header.substr(colon + 1));
    if (IEquals(name, "User-Agent")) {
      h.user_agent = std::string(value.substr(0, kMaxTrapUserAgent));
    } else if (IEquals(name, "X-Forwarded-For")) {
      if (!h.forwarded_for.empty()) h.forwarded_for += ",";
      h.forwarded_for += std::string(value.substr(0, kMaxTrapRequestHead));
    }
  }
  return h;
}

const char* Reason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 414:
      return "URI Too Long";
    case 431:
      return "Request Header Fields Too Large";
    default:
      return "Error";
  }
}

std::string ResponseHead(int status, const std::string& type, size_t length) {
  std::string h = "HTTP/1.1 " + std::to_string(status) + " " + Reason(status) +
                  "\r\nContent-Type: " + type +
                  "\r\nContent-Length: " + std::to_string(length) +
                  "\r\nCache-Control: no-store\r\nConnection: close\r\n";
  if (status == 405) h += "Allow: GET, HEAD\r\n";
  return h + "\r\n";
}

// Whether data starts with a PROXY v1 ("PROXY ") or v2 signature. Only
// called once ParseProxyHeader said kError: a signature there means a
// malformed header, none means the connection speaks HTTP at once.
bool ProxySigned(std::string_view data) {
  if (data.substr(0, 6) == "PROXY ") return true;
  conn::ProxyHeader h;
  size_t used = 0;
  return data.size() >= 12 && data[0] == '\r' &&
         conn::ParseProxyHeader(data.substr(0, 12), &h, &used) ==
             conn::ProxyParse::kNeedMore;
}

// A PROXY header is at most 16 + 65535 bytes; a client sending more than
// this before deciding is not a proxy we want.
constexpr size_t kMaxProxyHeader = 4096;

std::chrono::milliseconds Millis(double seconds) {
  return std::chrono::milliseconds(int64_t(seconds * 1000));
}

}  // namespace

base::IpAddress ForwardedClient(const base::IpAddress& peer,
                                std::string_view forwarded,
                                const std::vector<base::Cidr>& trusted) {
  auto is_trusted = [&](const base::IpAddress& ip) {
    for (const auto& c : trusted) {
      if (c.Contains(ip)) return true;
    }
    return false;
  };
  if (!is_trusted(peer)) return peer;
  base::IpAddress client = peer;
  while (!forwarded.empty()) {
    size_t comma = forwarded.rfind(',');
    std::string_view entry =
        Trim(comma == std::string_view::npos ? forwarded
                                             : forwarded.substr(comma + 1));
    forwarded = comma == std::string_view::npos ? std::string_view()
                                                : forwarded.substr(0, comma);
    auto ip = base::IpAddress::Parse(entry);
    if (!ip.ok()) return peer;  // a forged or garbled chain: the proxy
    client = *ip;
    if (!is_trusted(client)) return client;
  }
  return client;
}

std::vector<base::Metric> TrapSiteMetrics() {
  std::vector<base::Metric> out;
  auto add = [&](const char* name, const char* help, base::Metric::Type type,
                 double v, std::string labels = "") {
    base::Metric m;
    m.name = name;
    m.help = help;
    m.type = type;
    m.value = v;
    m.labels = std::move(labels);
    out.push_back(std::move(m));
  };
  using T = base::Metric::Type;
  add("trap_slow_clients",
      "trap site connections held by a slow page now (traps.page_delay)",
      T::kGauge, double(g_slow_clients.load()));
  add("trap_pages_served_total", "trap site pages that showed addresses",
      T::kCounter, double(g_pages_served.load()));
  add("trap_pages_slowed_total",
      "trap site pages trickled over traps.page_delay", T::kCounter,
      double(g_pages_slowed.load()));
  for (int b = 0; b < kBounds; ++b) {
    add("trap_clients_refused_total",
        "trap site clients refused at a bound: max_clients (closed at once), "
        "max_slow_clients and max_slow_per_client (not held: the page went "
        "out at once)",
        T::kCounter, double(g_refused[b].load()),
        std::string("bound=\"") + kBoundNames[b] + "\"");
  }
  return out;
}

std::vector<TrickleStep> TrickleSchedule(size_t bytes, double delay) {
  std::vector<TrickleStep> out;
  if (bytes == 0) return out;
  size_t steps = std::min<size_t>(bytes, kTrickleChunks);
  size_t size = bytes / steps;
  for (size_t i = 0; i < steps; ++i) {
    TrickleStep s;
    s.offset = i * size;
    s.size = i + 1 == steps ? bytes - s.offset : size;
    s.at = delay * double(i) / double(steps);
    out.push_back(s);
  }
  return out;
}

struct TrapServer::Impl {
  traps::Options options;
  const traps::Site* site;
  HarvestSink sink;
  const base::Clock* clock;
  asio::io_context io;
  asio::ip::tcp::acceptor acceptor{io};
  std::vector<std::thread> threads;
  int port = 0;
  bool started = false;
  std::vector<base::Cidr> trusted;  // traps.trusted_proxies
  std::atomic<int> clients{0};
  std::mutex mu;                          // guards slow and slow_by_ip
  int slow = 0;                           // connections being trickled to
  std::map<std::string, int> slow_by_ip;  // at most max_slow_clients keys

  bool AdmitSlow(const std::string& ip) {
    std::lock_guard<std::mutex> lock(mu);
    if (slow >= options.max_slow_clients) {
      ++g_refused[kMaxSlowClients];
      return false;
    }
    auto it = slow_by_ip.find(ip);
    if (it != slow_by_ip.end() && it->second >= options.max_slow_per_client) {
      ++g_refused[kMaxSlowPerClient];
      return false;
    }
    ++slow_by_ip[ip];
    ++slow;
    ++g_slow_clients;
    ++g_pages_slowed;
    return true;
  }
  void ReleaseSlow(const std::string& ip) {
    std::lock_guard<std::mutex> lock(mu);
    --slow;
    --g_slow_clients;
    if (--slow_by_ip[ip] <= 0) slow_by_ip.erase(ip);
  }

  using Socket = std::shared_ptr<asio::ip::tcp::socket>;

  // Arms the watchdog: unless re-armed or cancelled first, it closes the
  // socket after `seconds`, which ends the pending read or write. It holds
  // the socket weakly, so a late expiry after the connection ended is a
  // no-op (both run on the connection's strand).
  static void Arm(asio::steady_timer& watchdog, const Socket& s,
                  double seconds) {
    watchdog.expires_after(Millis(seconds));
    watchdog.async_wait([w = std::weak_ptr<asio::ip::tcp::socket>(s)](
                            const asio::error_code& e) {
      auto s = w.lock();
      if (e || !s) return;
      asio::error_code ig;
      s->close(ig);
    });
  }

  // Writes all of `data`; a client that does not take it within
  // kWriteTimeout is closed.
  static asio::awaitable<bool> Write(const Socket& s,
                                     asio::steady_timer& watchdog,
                                     std::string_view data) {
    Arm(watchdog, s, kWriteTimeout);
    auto [ec, n] = co_await asio::async_write(
        *s, asio::buffer(data.data(), data.size()), kTuple);
    co_return !ec;
  }

  bool Trusted(const std::string& ip) const {
    auto a = base::IpAddress::Parse(ip);
    if (!a.ok()) return false;
    for (const auto& c : trusted) {
      if (c.Contains(*a)) return true;
    }
    return false;
  }

  // Reads what the connection starts with until it is clearly not a PROXY
  // header (the bytes stay in *buf for the HTTP request) or a whole header
  // (taken out of *buf; *ip becomes the client it names, unless it is a
  // LOCAL one). False: close at once (malformed, from an untrusted peer,
  // too long, or the peer went away).
  static asio::awaitable<bool> ReadProxy(const Socket& s, std::string* buf,
                                         std::string* ip, bool trusted_peer) {
    char chunk[512];
    while (buf->size() < kMaxProxyHeader) {  // bounded: grows each turn
      if (!buf->empty()) {
        conn::ProxyHeader h;
        size_t used = 0;
        auto r = conn::ParseProxyHeader(*buf, &h, &used);
        if (r == conn::ProxyParse::kDone) {
          if (!trusted_peer) co_return false;
          if (!h.local) *ip = h.source.ToString();
          buf->erase(0, used);
          co_return true;
        }
        if (r == conn::ProxyParse::kError) {
          co_return !ProxySigned(*buf);
        }
      }
      auto [ec, n] = co_await s->async_read_some(asio::buffer(chunk), kTuple);
      if (ec) co_return false;
      buf->append(chunk, n);
    }
    co_return false;
  }

  asio::awaitable<void> Serve(Socket s) {
    asio::error_code ig;
    auto peer = s->remote_endpoint(ig);
    std::string ip = PeerText(peer.address());
    asio::steady_timer watchdog(s->get_executor());
    Arm(watchdog, s, options.read_timeout);
    std::string buf;
    // PROXY headers are looked for only where one may be honoured; from
    // anyone else one is refused below all the same (never mistaken for
    // the request).
    if (!co_await ReadProxy(s, &buf, &ip, Trusted(ip))) {
      ++g_refused[kProxyHeader];
      watchdog.cancel();
      s->close(ig);
      --clients;
      co_return;
    }
    auto [ec, n] = co_await asio::async_read_until(
        *s, asio::dynamic_buffer(buf, kMaxTrapRequestHead), "\r\n\r\n", kTuple);
    std::string out;
    std::string body;
    bool trickle = false;
    if (ec == asio::error::not_found) {
      int status = buf.find("\r\n") == std::string::npos ? 414 : 431;
      out = ResponseHead(status, "text/plain", 0);
    } else if (!ec) {
      Head h = ParseHead(std::string_view(buf).substr(0, n));
      std::string().swap(buf);
      if (!h.ok) {
        out = ResponseHead(400, "text/plain", 0);
      } else if (h.method != "GET" && h.method != "HEAD") {
        out = ResponseHead(405, "text/plain", 0);
      } else {
        if (!trusted.empty()) {
          auto peer_ip = base::IpAddress::Parse(ip);
          if (peer_ip.ok()) {
            ip = ForwardedClient(*peer_ip, h.forwarded_for, trusted).ToString();
          }
        }
        traps::Response r = site->Serve(
            {DecodePath(h.target), ip, h.user_agent, clock->WallSeconds()});
        if (r.harvest) {
          ++g_pages_served;
          if (sink) sink(*r.harvest);
        }
        out = ResponseHead(r.status, r.content_type, r.body.size());
        if (h.method == "GET") body = std::move(r.body);
        trickle = options.page_delay > 0 && r.harvest && !body.empty() &&
                  AdmitSlow(ip);
      }
    }
    if (!out.empty() && !trickle) {
      out += body;
      std::string().swap(body);
      co_await Write(s, watchdog, out);
    } else if (trickle) {
      // Headers at once, then the body piece by piece on a timer: the
      // connection holds no thread while it waits.
      if (co_await Write(s, watchdog, out)) {
        std::string().swap(out);
        asio::steady_timer pace(s->get_executor());
        auto start = std::chrono::steady_clock::now();
        for (const auto& step :
             TrickleSchedule(body.size(), options.page_delay)) {
          pace.expires_at(start + Millis(step.at));
          auto [pe] = co_await pace.async_wait(kTuple);
          if (pe || !s->is_open()) break;
          auto piece = std::string_view(body).substr(step.offset, step.size);
          if (!co_await Write(s, watchdog, piece)) break;
        }
      }
      ReleaseSlow(ip);
    }
    watchdog.cancel();
    s->shutdown(asio::socket_base::shutdown_send, ig);
    s->close(ig);
    --clients;
  }

  asio::awaitable<void> Accept() {
    for (;;) {
      // Each connection on a strand of its own: its watchdog and its
      // coroutine never run at once, whatever traps.threads is.
      auto [ec, s] = co_await acceptor.async_accept(
          asio::any_io_executor(asio::make_strand(io)), kTuple);
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) {
        co_return;
      }
      if (ec) {
        // Out of descriptors and the like: back off, never spin.
        asio::steady_timer t(io, std::chrono::milliseconds(50));
        co_await t.async_wait(kTuple);
        continue;
      }
      if (clients.load() >= options.max_clients) {
        ++g_refused[kMaxClients];
        asio::error_code ig;
        s.close(ig);
        continue;
      }
      ++clients;
      auto ex = s.get_executor();
      asio::co_spawn(
          ex, Serve(std::make_shared<asio::ip::tcp::socket>(std::move(s))),
          asio::detached);
    }
  }
};

TrapServer::TrapServer(const traps::Options& options, const traps::Site* site,
                       HarvestSink sink, const base::Clock* clock)
    : impl_(new Impl{options, site, std::move(sink), clock}) {}

TrapServer::~TrapServer() { Stop(); }

int TrapServer::port() const { return impl_->port; }

int TrapServer::slow_clients() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->slow;
}

base::Status TrapServer::Start() {
  auto ep = base::Endpoint::Parse(impl_->options.listen);
  if (!ep.ok()) return base::Status::Error("traps.listen: " + ep.error());
  impl_->trusted.clear();
  for (const auto& text : impl_->options.trusted_proxies) {
    auto c = base::Cidr::Parse(text);
    if (!c.ok()) {
      return base::Status::Error("traps.trusted_proxies: " + c.error());
    }
    impl_->trusted.push_back(*c);
  }
  asio::ip::tcp::endpoint at(ToAsio(ep->address), ep->port);
  asio::error_code ec;
  auto& a = impl_->acceptor;
  a.open(at.protocol(), ec);
  if (!ec) a.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) a.bind(at, ec);
  if (!ec) a.listen(1024, ec);
  if (ec) {
    asio::error_code ig;
    a.close(ig);
    return base::Status::Error("traps.listen: cannot listen on " +
                               impl_->options.listen + ": " + ec.message());
  }
  impl_->port = a.local_endpoint().port();
  asio::co_spawn(impl_->io, impl_->Accept(), asio::detached);
  impl_->started = true;
  for (int i = 0; i < std::max(1, impl_->options.threads); ++i) {
    impl_->threads.emplace_back([this] { impl_->io.run(); });
  }
  std::string host = ep->address.ToString();
  std::string shown =
      host.find(':') != std::string::npos ? "[" + host + "]" : host;
  base::LogLine(base::LogLevel::kInfo, "traps_listening")
      .Kv("address", shown + ":" + std::to_string(impl_->port))
      .Kv("tree", impl_->options.tree)
      .Kv("page_delay", impl_->options.page_delay);
  return {};
}

void TrapServer::Stop() {
  if (!impl_->started) return;
  impl_->started = false;
  impl_->io.stop();
  for (auto& t : impl_->threads) t.join();
  impl_->threads.clear();
  asio::error_code ig;
  impl_->acceptor.close(ig);
  // Held connections end with the loop, without their ReleaseSlow: the
  // process-wide gauge forgets them here.
  std::lock_guard<std::mutex> lock(impl_->mu);
  g_slow_clients -= impl_->slow;
  impl_->slow = 0;
  impl_->slow_by_ip.clear();
}

}  // namespace net
