#include "api/trap_site.h"

#include <httplib.h>

#include <cerrno>
#include <cmath>
#include <cstring>

#include "base/endpoint.h"
#include "base/log.h"

namespace api {

TrapSite::TrapSite(const traps::Options& options, const traps::Site* site,
                   HarvestSink sink, const base::Clock* clock)
    : options_(options), site_(site), sink_(std::move(sink)), clock_(clock) {}

TrapSite::~TrapSite() { Stop(); }

base::Status TrapSite::Start() {
  auto endpoint = base::Endpoint::Parse(options_.listen);
  if (!endpoint.ok()) {
    return base::Status::Error("traps.listen: " + endpoint.error());
  }
  const std::string host = endpoint->address.ToString();
  const int port = endpoint->port;
  server_ = std::make_unique<httplib::Server>();
  server_->new_task_queue = [n = size_t(options_.threads)] {
    return new httplib::ThreadPool(n);
  };
  server_->set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  // A slow client holds a thread at most read_timeout per request; a
  // request line or header line over 8 KiB is refused by cpp-httplib
  // (CPPHTTPLIB_REQUEST_URI_MAX_LENGTH, CPPHTTPLIB_HEADER_MAX_LENGTH).
  double whole = std::floor(options_.read_timeout);
  server_->set_read_timeout(time_t(whole),
                            time_t((options_.read_timeout - whole) * 1e6));
  server_->set_write_timeout(10, 0);
  server_->set_keep_alive_max_count(50);
  server_->set_keep_alive_timeout(5);
  server_->set_payload_max_length(0);
  auto handle = [this](const httplib::Request& req, httplib::Response& res) {
    std::string ua = req.get_header_value("User-Agent");
    if (ua.size() > kMaxUserAgent) ua.resize(kMaxUserAgent);
    traps::Response out =
        site_->Serve({req.path, req.remote_addr, ua, clock_->WallSeconds()});
    res.status = out.status;
    res.set_header("Cache-Control", "no-store");
    res.set_content(std::move(out.body), out.content_type);
    if (out.harvest && sink_) sink_(*out.harvest);
  };
  server_->Get(".*", handle);  // HEAD too; other methods: 400/404
  errno = 0;
  int bound = port == 0 ? server_->bind_to_any_port(host)
                        : (server_->bind_to_port(host, port) ? port : -1);
  if (bound <= 0) {
    server_.reset();
    return base::Status::Error("traps.listen: cannot listen on " +
                               options_.listen + ": " +
                               (errno ? std::strerror(errno) : "bind failed"));
  }
  port_ = bound;
  thread_ = std::thread([s = server_.get()] { s->listen_after_bind(); });
  for (int i = 0; i < 5000 && !server_->is_running(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  std::string shown =
      host.find(':') != std::string::npos ? "[" + host + "]" : host;
  base::LogLine(base::LogLevel::kInfo, "traps_listening")
      .Kv("address", shown + ":" + std::to_string(port_))
      .Kv("tree", options_.tree);
  return {};
}

void TrapSite::Stop() {
  if (!server_) return;
  server_->stop();
  if (thread_.joinable()) thread_.join();
  server_.reset();
}

}  // namespace api
