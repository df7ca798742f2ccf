#include "net/dns_server.h"

#include <array>
#include <asio.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <atomic>
#include <thread>

#include "base/endpoint.h"
#include "base/log.h"
#include "base/metrics.h"

namespace net {
namespace {

constexpr auto kTuple = asio::experimental::as_tuple(asio::use_awaitable);

asio::ip::address ToAsio(const base::IpAddress& ip) {
  if (ip.is_v4()) return asio::ip::address_v4(ip.v4());
  return asio::ip::address_v6(ip.bytes());
}

base::IpAddress FromAsio(const asio::ip::address& a) {
  if (a.is_v4()) return base::IpAddress::FromV4(a.to_v4().to_uint());
  auto v6 = a.to_v6();
  if (v6.is_v4_mapped()) {
    return base::IpAddress::FromV4(
        asio::ip::make_address_v4(asio::ip::v4_mapped, v6).to_uint());
  }
  return base::IpAddress::FromV6(v6.to_bytes());
}

}  // namespace

struct DnsServer::Impl {
  dnsbl::Options options;
  dnsbl::Responder* responder;
  const base::Clock* clock;
  asio::io_context io{1};
  asio::ip::udp::socket udp{io};
  asio::ip::tcp::acceptor tcp{io};
  std::thread thread;
  int tcp_clients = 0;  // only touched on the thread
  bool started = false;

  asio::awaitable<void> ServeUdp() {
    std::array<uint8_t, 65536> buf;
    for (;;) {
      asio::ip::udp::endpoint from;
      auto [ec, n] =
          co_await udp.async_receive_from(asio::buffer(buf), from, kTuple);
      if (ec == asio::error::operation_aborted || !udp.is_open()) co_return;
      if (ec) continue;  // ICMP errors from earlier sends, and the like
      std::string out = responder->Answer(
          buf.data(), n, FromAsio(from.address()), false, clock->WallSeconds());
      if (out.empty()) continue;
      // UDP sends do not block for long; an error (a full buffer) drops
      // this answer only.
      asio::error_code send_ec;
      udp.send_to(asio::buffer(out), from, 0, send_ec);
    }
  }

  asio::awaitable<void> ServeTcpClient(asio::ip::tcp::socket s) {
    ++tcp_clients;
    asio::error_code ignored;
    auto peer = s.remote_endpoint(ignored);
    auto source = FromAsio(peer.address());
    asio::steady_timer idle(io);
    std::array<uint8_t, 65537> buf;
    for (;;) {
      // The watchdog: closing the socket ends the pending read.
      idle.expires_after(
          std::chrono::milliseconds(int64_t(options.tcp_idle_timeout * 1000)));
      idle.async_wait([&s](const asio::error_code& e) {
        if (!e) {
          asio::error_code ig;
          s.close(ig);
        }
      });
      auto [ec, n] =
          co_await asio::async_read(s, asio::buffer(buf.data(), 2), kTuple);
      if (ec) break;
      size_t len = size_t(buf[0]) << 8 | buf[1];
      auto [ec2, m] =
          co_await asio::async_read(s, asio::buffer(buf.data(), len), kTuple);
      if (ec2) break;
      std::string out = responder->Answer(buf.data(), len, source, true,
                                          clock->WallSeconds());
      if (out.empty()) break;  // not a query: nothing more to say
      std::string framed;
      framed.push_back(char(out.size() >> 8));
      framed.push_back(char(out.size() & 0xff));
      framed += out;
      auto [ec3, w] =
          co_await asio::async_write(s, asio::buffer(framed), kTuple);
      if (ec3) break;
    }
    idle.cancel();
    s.close(ignored);
    --tcp_clients;
  }

  asio::awaitable<void> ServeTcp() {
    for (;;) {
      auto [ec, s] = co_await tcp.async_accept(kTuple);
      if (ec == asio::error::operation_aborted || !tcp.is_open()) co_return;
      if (ec) {
        // Out of descriptors and the like: back off, never spin.
        asio::steady_timer t(io, std::chrono::milliseconds(50));
        co_await t.async_wait(kTuple);
        continue;
      }
      if (tcp_clients >= options.max_tcp_clients) {
        base::Count(base::Counter::kDnsblTcpRefused);
        asio::error_code ig;
        s.close(ig);
        continue;
      }
      asio::co_spawn(io, ServeTcpClient(std::move(s)), asio::detached);
    }
  }
};

DnsServer::DnsServer(const dnsbl::Options& options, dnsbl::Responder* responder,
                     const base::Clock* clock)
    : impl_(new Impl{options, responder, clock}) {}

DnsServer::~DnsServer() { Stop(); }

base::Status DnsServer::Start() {
  auto ep = base::Endpoint::Parse(impl_->options.listen);
  if (!ep.ok()) return base::Status::Error("dnsbl.listen: " + ep.error());
  asio::ip::tcp::endpoint tcp_ep(ToAsio(ep->address), ep->port);
  asio::error_code ec;
  auto fail = [&](const char* what) {
    return base::Status::Error("dnsbl.listen: cannot bind " +
                               std::string(what) + " " + impl_->options.listen +
                               ": " + ec.message() +
                               (ep->port < 1024 ? " (a port below 1024 needs "
                                                  "CAP_NET_BIND_SERVICE)"
                                                : ""));
  };
  auto& tcp = impl_->tcp;
  tcp.open(tcp_ep.protocol(), ec);
  if (!ec) tcp.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) tcp.bind(tcp_ep, ec);
  if (!ec) tcp.listen(128, ec);
  if (ec) return fail("TCP");
  uint16_t port = tcp.local_endpoint().port();
  asio::ip::udp::endpoint udp_ep(ToAsio(ep->address), port);
  impl_->udp.open(udp_ep.protocol(), ec);
  if (!ec) impl_->udp.bind(udp_ep, ec);
  if (ec) return fail("UDP");
  asio::co_spawn(impl_->io, impl_->ServeUdp(), asio::detached);
  asio::co_spawn(impl_->io, impl_->ServeTcp(), asio::detached);
  impl_->started = true;
  impl_->thread = std::thread([this] { impl_->io.run(); });
  return {};
}

std::string DnsServer::LocalAddress() const {
  asio::error_code ec;
  auto ep = impl_->tcp.local_endpoint(ec);
  if (ec) return "";
  base::Endpoint e{FromAsio(ep.address()), ep.port()};
  return e.ToString();
}

void DnsServer::Stop() {
  if (!impl_->started) return;
  impl_->started = false;
  impl_->io.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
  asio::error_code ig;
  impl_->udp.close(ig);
  impl_->tcp.close(ig);
}

}  // namespace net
