#include "api/http_server.h"

#include <httplib.h>

#include <cerrno>
#include <cstring>

#include "api/token.h"
#include "base/endpoint.h"
#include "base/log.h"

namespace api {
namespace {

constexpr size_t kServerThreads = 4;

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
  server_ = std::make_unique<httplib::Server>();
  server_->new_task_queue = [] {
    return new httplib::ThreadPool(kServerThreads);
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
  server_->set_pre_routing_handler(
      [handle](const httplib::Request& req, httplib::Response& res) {
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
      .Kv("auth", auth ? "bearer" : "none");
  return {};
}

void HttpServer::Stop() {
  if (!server_) return;
  server_->stop();
  if (thread_.joinable()) thread_.join();
  server_.reset();
}

}  // namespace api
