#include "api/http_server.h"

#include <arpa/inet.h>
#include <httplib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>

#include "api/token.h"
#include "base/endpoint.h"
#include "base/log.h"
#include "base/metrics.h"
#include "base/thread_kind.h"

namespace api {
namespace {

// Set while a connection the pool refused passes through
// process_and_close_socket: it is answered 503 and closed at once; the
// reason ("queue_full", "descriptors").
thread_local const char* t_refuse = nullptr;
// Descriptors the API leaves to the rest of the process at least: it may
// use server.fd_reserve (so /healthz answers while SMTP accepts pause on
// it), not the last few.
constexpr int64_t kApiFdMargin = 16;
// The connection this worker serves (for the routing and logger hooks).
thread_local int t_sock = -1;

void RefuseConnection(int sock, const char* why) {
  static constexpr char kBusy[] =
      "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
      "Connection: close\r\n\r\n";
  // Counted before the client can see the answer.
  base::Count(std::strcmp(why, "per_ip_limit") == 0
                  ? base::Counter::kApiRefusedPerIp
              : std::strcmp(why, "descriptors") == 0
                  ? base::Counter::kApiRefusedDescriptors
                  : base::Counter::kApiRefusedQueueFull);
  // Never blocks: a client that does not read gets nothing.
  (void)!send(sock, kBusy, sizeof kBusy - 1, MSG_DONTWAIT | MSG_NOSIGNAL);
  close(sock);
  base::LogLine(base::LogLevel::kWarning, "api_connection_refused")
      .Kv("reason", why);
}

// Whether the process is short of descriptors for one more API connection
// (SMTP connections and API connections counted against the limit).
bool DescriptorsShort() {
  int64_t limit = base::g_fd_limit.load(std::memory_order_relaxed);
  if (limit <= 0) return false;  // no SMTP server in this process
  return base::g_open_connections.load(std::memory_order_relaxed) +
             base::g_api_connections.load(std::memory_order_relaxed) +
             kApiFdMargin >=
         limit;
}

std::string PeerAddress(int sock) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (getpeername(sock, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
    return "";
  }
  char buf[INET6_ADDRSTRLEN] = {};
  if (ss.ss_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(&ss)->sin_addr, buf,
              sizeof buf);
  } else if (ss.ss_family == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(&ss)->sin6_addr, buf,
              sizeof buf);
  }
  return buf;
}

// httplib 0.11.4 (Debian 12) declares Server::process_and_close_socket
// private virtual: an override cannot call it by name. It is the library's
// exported function; this calls that definition by its symbol (Itanium C++
// ABI: the object is the first argument), which links only against a
// library that has it.
extern "C++" bool HttplibProcessAndCloseSocket(
    httplib::Server* server,
    socket_t sock) asm("_ZN7httplib6Server24process_and_close_socketEi");
// The same for SSLServer's override (the TLS handshake, then the above's
// request loop over the TLS stream).
extern "C++" bool HttplibSslProcessAndCloseSocket(
    httplib::SSLServer* server,
    socket_t sock) asm("_ZN7httplib9SSLServer24process_and_close_socketEi");
inline bool ProcessAndClose(httplib::Server* s, socket_t sock) {
  return HttplibProcessAndCloseSocket(s, sock);
}
inline bool ProcessAndClose(httplib::SSLServer* s, socket_t sock) {
  return HttplibSslProcessAndCloseSocket(s, sock);
}

// httplib's ThreadPool queues without limit: this one holds max_queued
// connections, and runs the task of any beyond with t_refuse set.
class BoundedPool final : public httplib::TaskQueue {
 public:
  BoundedPool(int threads, int max_queued) : max_queued_(max_queued) {
    for (int i = 0; i < threads; ++i) {
      workers_.emplace_back([this] {
        base::SetThreadKind(base::ThreadKind::kApi);
        Work();
      });
    }
  }
  // fn owns an accepted socket and closes it: counted in
  // base::g_api_connections from here until fn has run.
  void enqueue(std::function<void()> fn) override {
    base::g_api_connections.fetch_add(1, std::memory_order_relaxed);
    const char* refuse = "queue_full";
    if (DescriptorsShort()) {
      refuse = "descriptors";
    } else {
      std::lock_guard lock(mu_);
      if (int(jobs_.size()) < max_queued_) {
        jobs_.push_back(std::move(fn));
        cv_.notify_one();
        return;
      }
    }
    t_refuse = refuse;
    fn();
    t_refuse = nullptr;
    base::g_api_connections.fetch_sub(1, std::memory_order_relaxed);
  }
  void shutdown() override {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : workers_) t.join();
  }

 private:
  void Work() {
    for (;;) {
      std::function<void()> fn;
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return stop_ || !jobs_.empty(); });
        if (jobs_.empty()) return;  // stopping, and nothing left
        fn = std::move(jobs_.front());
        jobs_.pop_front();
      }
      fn();
      base::g_api_connections.fetch_sub(1, std::memory_order_relaxed);
    }
  }

  const int max_queued_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  bool stop_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace

// Admission per client address and the header deadline, around httplib's
// handling of each connection (plain or TLS: the deadline also covers the
// handshake).
class HttpServer::Guard {
 public:
  explicit Guard(const api::Options& o) : o_(o) {}

  // Closes (shuts down) the connections whose header is overdue at now;
  // returns how many.
  int CutOverdue(base::SteadyTime now) {
    std::lock_guard lock(mu_);
    int n = 0;
    for (auto& [sock, c] : conns_) {
      if (!c.busy && !c.cut && now >= c.deadline) {
        shutdown(c.dup, SHUT_RDWR);  // the worker's read ends
        c.cut = true;
        ++n;
      }
    }
    if (n > 0) base::Count(base::Counter::kApiHeaderTimeouts, uint64_t(n));
    return n;
  }
  int connections() {
    std::lock_guard lock(mu_);
    return int(conns_.size());
  }

  // Runs process (httplib's own handling, which closes sock) inside the
  // admission and deadline bookkeeping; refuses instead when it must.
  template <class F>
  bool Process(socket_t sock, F process) {
    if (t_refuse != nullptr) {
      RefuseConnection(sock, t_refuse);
      return false;
    }
    std::string peer = PeerAddress(sock);
    {
      std::lock_guard lock(mu_);
      int& n = per_ip_[peer];
      if (n >= o_.max_connections_per_ip) {
        if (n == 0) per_ip_.erase(peer);
        RefuseConnection(sock, "per_ip_limit");
        return false;
      }
      ++n;
      // A descriptor of our own on the socket: the watchdog may shut it
      // down however late, never a number httplib closed and reused.
      conns_[sock] = {Deadline(), dup(sock), false, false};
      base::g_api_connections.fetch_add(1, std::memory_order_relaxed);
    }
    t_sock = sock;
    bool ok = process();
    t_sock = -1;
    std::lock_guard lock(mu_);
    if (auto it = conns_.find(sock); it != conns_.end()) {
      if (it->second.dup >= 0) close(it->second.dup);
      conns_.erase(it);
      base::g_api_connections.fetch_sub(1, std::memory_order_relaxed);
    }
    if (--per_ip_[peer] <= 0) per_ip_.erase(peer);
    return ok;
  }

  // A request is being handled (true, from routing) or was answered
  // (false: the next header is due within header_timeout).
  void SetBusy(bool busy) {
    std::lock_guard lock(mu_);
    auto it = conns_.find(t_sock);
    if (it == conns_.end()) return;
    it->second.busy = busy;
    if (!busy) it->second.deadline = Deadline();
  }

 private:
  struct Conn {
    base::SteadyTime deadline;
    int dup = -1;
    bool busy = false;  // a request is being handled or answered
    bool cut = false;
  };
  base::SteadyTime Deadline() const {
    return std::chrono::steady_clock::now() +
           std::chrono::duration_cast<base::Duration>(
               std::chrono::duration<double>(o_.header_timeout));
  }
  const api::Options o_;
  std::mutex mu_;
  std::map<int, Conn> conns_;  // by httplib's descriptor
  std::map<std::string, int> per_ip_;
};

namespace {
// httplib's Server or SSLServer with each connection run through the
// Guard.
template <class Base>
class Guarded final : public Base {
 public:
  template <class... Args>
  explicit Guarded(HttpServer::Guard* guard, Args&&... args)
      : Base(std::forward<Args>(args)...), guard_(guard) {}

 protected:
  bool process_and_close_socket(socket_t sock) override {
    return guard_->Process(sock, [&] { return ProcessAndClose(this, sock); });
  }

 private:
  HttpServer::Guard* guard_;
};
}  // namespace

namespace {
ApiOptions MakeApiOptions(
    const Options& config, std::vector<base::Cidr> exempt,
    std::vector<std::pair<std::string, std::string>> server_info) {
  ApiOptions o;
  o.server_info = std::move(server_info);
  o.token = config.token;
  o.exempt = std::move(exempt);
  return o;
}
}  // namespace

HttpServer::HttpServer(
    const Options& config, ledger::Ledger* ledger,
    std::vector<base::Cidr> exempt,
    std::vector<std::pair<std::string, std::string>> server_info)
    : config_(config),
      api_(ledger,
           MakeApiOptions(config, std::move(exempt), std::move(server_info)),
           &base::SystemClock::Get()) {}

HttpServer::~HttpServer() { Stop(); }

base::Status HttpServer::Start() {
  auto endpoint = base::Endpoint::Parse(config_.listen);
  if (!endpoint.ok()) {
    return base::Status::Error("api.listen: " + endpoint.error());
  }
  auto token = ResolveToken(config_);
  if (!token.ok()) return token.status();
  if (!endpoint->address.IsLoopback() && token->empty()) {
    return base::Status::Error(
        "api.token: required because api.listen (" + config_.listen +
        ") is not a loopback address; set a bearer token (api.token_file) "
        "to expose the API");
  }
  const bool auth = !token->empty();
  api_.SetToken(std::move(token).value());
  const std::string host = endpoint->address.ToString();
  const int port = endpoint->port;
  const bool tls = !config_.tls_cert.empty() || !config_.tls_key.empty();
  guard_ = std::make_unique<Guard>(config_);
  if (tls) {
    if (config_.tls_cert.empty() || config_.tls_key.empty()) {
      return base::Status::Error(
          "api.tls_cert and api.tls_key must be given together");
    }
    // Readable as the server's user (the message names the file; OpenSSL's
    // own says less).
    for (const auto& [key, path] : {std::pair{"api.tls_cert", config_.tls_cert},
                                    {"api.tls_key", config_.tls_key}}) {
      if (access(path.c_str(), R_OK) != 0) {
        return base::Status::Error(std::string(key) + ": \"" + path +
                                   "\": " + std::strerror(errno));
      }
    }
    auto ssl = std::make_unique<Guarded<httplib::SSLServer>>(
        guard_.get(), config_.tls_cert.c_str(), config_.tls_key.c_str());
    if (!ssl->is_valid()) {
      return base::Status::Error(
          "api.tls_cert / api.tls_key: not a PEM certificate and its "
          "private key (" +
          config_.tls_cert + ", " + config_.tls_key + ")");
    }
    server_ = std::move(ssl);
  } else {
    server_ = std::make_unique<Guarded<httplib::Server>>(guard_.get());
  }
  // Called once a response is written: the next request's header is due
  // within header_timeout.
  server_->set_logger(
      [g = guard_.get()](const httplib::Request&, const httplib::Response&) {
        g->SetBusy(false);
      });
  server_->new_task_queue = [t = config_.threads, q = config_.max_queued] {
    return new BoundedPool(t, q);
  };
  // httplib's default also sets SO_REUSEPORT, which would let a second
  // instance share the port silently: SO_REUSEADDR only.
  server_->set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  server_->set_read_timeout(10, 0);
  server_->set_write_timeout(30, 0);
  server_->set_keep_alive_max_count(100);
  server_->set_payload_max_length(64 * 1024);
  auto handle = [this](const httplib::Request& req, httplib::Response& res) {
    Request r;
    r.method = req.method;
    r.path = req.path;
    r.params = req.params;
    r.authorization = req.get_header_value("Authorization");
    r.host = req.get_header_value("Host");
    r.cookie = req.get_header_value("Cookie");
    r.content_type = req.get_header_value("Content-Type");
    r.body = req.body;
    Response out = api_.Handle(r);
    res.status = out.status;
    for (const auto& [k, v] : out.headers) res.set_header(k, v);
    if (!out.stream) {
      res.set_content(std::move(out.body), out.content_type);
      return;
    }
    res.set_chunked_content_provider(
        out.content_type,
        [stream = std::move(out.stream)](size_t, httplib::DataSink& sink) {
          auto s = stream([&sink](std::string_view text) {
            return sink.write(text.data(), text.size());
          });
          if (!s.ok()) {
            // Headers are gone: ending without the last chunk tells the
            // client the body is incomplete.
            base::LogLine(base::LogLevel::kWarning, "api_export_failed")
                .Kv("error", s.message());
            return false;
          }
          sink.done();
          return true;
        });
  };
  // httplib reads a POST/PUT/DELETE body before routing, and without
  // Content-Length it reads until the peer closes (an empty 400 after the
  // read timeout). A request without a body has none to read (RFC 9112
  // 6.3): it is answered at once (405 for a known path). One with a body
  // is read (bounded above) and then answered by the same handler.
  // It is also where a request starts being handled: from here until its
  // response is written the connection owes no header (never cut).
  server_->set_pre_routing_handler(
      [handle, g = guard_.get()](const httplib::Request& req,
                                 httplib::Response& res) {
        g->SetBusy(true);
        using R = httplib::Server::HandlerResponse;
        if (req.method == "GET" || req.method == "HEAD") return R::Unhandled;
        if (req.has_header("Content-Length") &&
            req.get_header_value("Content-Length") != "0") {
          return R::Unhandled;
        }
        if (req.has_header("Transfer-Encoding")) return R::Unhandled;
        handle(req, res);
        return R::Handled;
      });
  const char* kAll = ".*";
  server_->Get(kAll, handle);
  server_->Post(kAll, handle);
  server_->Put(kAll, handle);
  server_->Delete(kAll, handle);
  server_->Patch(kAll, handle);
  server_->Options(kAll, handle);
  errno = 0;
  int bound = port == 0 ? server_->bind_to_any_port(host)
                        : (server_->bind_to_port(host, port) ? port : -1);
  if (bound <= 0) {
    server_.reset();
    return base::Status::Error(
        "cannot listen on " + config_.listen +
        " for the API: " + (errno ? std::strerror(errno) : "bind failed"));
  }
  port_ = bound;
  thread_ = std::thread([s = server_.get()] { s->listen_after_bind(); });
  watchdog_ = std::thread([this] {
    std::unique_lock lock(watch_mu_);
    while (!watch_stop_) {
      watch_cv_.wait_for(lock, std::chrono::milliseconds(250));
      int n = guard_->CutOverdue(std::chrono::steady_clock::now());
      if (n > 0) {
        base::LogLine(base::LogLevel::kWarning, "api_header_timeout")
            .Kv("connections", n);
      }
    }
  });
  // stop() is a no-op until the server runs: wait for it (bounded) so that
  // an early Stop() cannot leave the thread listening forever.
  for (int i = 0; i < 5000 && !server_->is_running(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  // One address format in every log line: host:port, [v6]:port.
  std::string shown =
      host.find(':') != std::string::npos ? "[" + host + "]" : host;
  base::LogLine(base::LogLevel::kInfo, "api_listening")
      .Kv("address", shown + ":" + std::to_string(port_))
      .Kv("auth", auth ? "bearer" : "none")
      .Kv("tls", tls ? "on" : "off");
  return {};
}

void HttpServer::Stop() {
  if (!server_) return;
  {
    std::lock_guard lock(watch_mu_);
    watch_stop_ = true;
  }
  watch_cv_.notify_all();
  if (watchdog_.joinable()) watchdog_.join();
  server_->stop();
  if (thread_.joinable()) thread_.join();
  server_.reset();
}

int HttpServer::CutOverdue(base::SteadyTime now) {
  return guard_ ? guard_->CutOverdue(now) : 0;
}

int HttpServer::connections() { return guard_ ? guard_->connections() : 0; }

}  // namespace api
