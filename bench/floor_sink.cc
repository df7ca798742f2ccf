// floor_sink: the least CPU any SMTP sink can spend per message, as a
// yardstick for bench/run.py. Not a server anyone should run: no limits, no
// timeouts, no parsing beyond finding line ends, no TLS, no records.
//
// One thread, one epoll set, every socket registered once (edge-triggered,
// never modified), every read drained into one shared buffer, and every
// read's replies sent in one write. Commands get canned replies (DATA: 354;
// QUIT: 221 and close; anything else: 250); in DATA, "\r\n.\r\n" ends the
// message (250). That is the syscall floor of the protocol: per round trip
// one recv, one send and a share of one epoll_wait.
//
// Usage: floor_sink PORT   (listens on 127.0.0.1 only)
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace {

struct Conn {
  int fd = -1;
  bool in_data = false;
  std::string carry;  // a partial line, or the tail of a body (up to 4 bytes)
};

constexpr std::string_view kBanner = "220 floor ESMTP\r\n";
constexpr std::string_view kEhlo =
    "250-floor\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250 8BITMIME\r\n";

// Consumes input; appends replies to out. Returns false to close.
bool Feed(Conn& c, std::string_view in, std::string& out) {
  std::string joined;
  if (!c.carry.empty()) {
    joined = c.carry;
    joined.append(in);
    in = joined;
    c.carry.clear();
  }
  size_t pos = 0;
  while (pos < in.size()) {
    if (c.in_data) {
      // The body ends at CRLF.CRLF; the 354 came right after a CRLF.
      size_t end = in.find("\r\n.\r\n", pos);
      if (end == std::string_view::npos) {
        size_t keep = std::min<size_t>(4, in.size() - pos);
        c.carry.assign(in.substr(in.size() - keep));
        return true;
      }
      pos = end + 5;
      c.in_data = false;
      out.append("250 2.0.0 Ok: queued\r\n");
      continue;
    }
    size_t eol = in.find("\r\n", pos);
    if (eol == std::string_view::npos) {
      c.carry.assign(in.substr(pos));
      return true;
    }
    std::string_view line = in.substr(pos, eol - pos);
    pos = eol + 2;
    auto is = [&](std::string_view cmd) {
      return line.size() >= cmd.size() &&
             strncasecmp(line.data(), cmd.data(), cmd.size()) == 0;
    };
    if (is("EHLO")) {
      out.append(kEhlo);
    } else if (is("DATA")) {
      out.append("354 End data with <CR><LF>.<CR><LF>\r\n");
      c.in_data = true;
      // The body's first line may itself be ".": keep the CRLF before it.
      c.carry = "\r\n";
      if (pos < in.size()) {
        std::string rest = c.carry + std::string(in.substr(pos));
        c.carry.clear();
        return Feed(c, rest, out);
      }
      return true;
    } else if (is("QUIT")) {
      out.append("221 2.0.0 Bye\r\n");
      return false;
    } else {
      out.append("250 2.0.0 Ok\r\n");
    }
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: floor_sink PORT\n");
    return 2;
  }
  std::signal(SIGPIPE, SIG_IGN);
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  setsockopt(lfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(uint16_t(std::atoi(argv[1])));
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(lfd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 ||
      listen(lfd, 4096) != 0) {
    std::perror("floor_sink: bind/listen");
    return 1;
  }
  int ep = epoll_create1(0);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = nullptr;  // the listener
  epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
  static char buf[65536];
  std::string out;
  epoll_event events[256];
  for (;;) {
    int n = epoll_wait(ep, events, 256, -1);
    for (int i = 0; i < n; ++i) {
      if (events[i].data.ptr == nullptr) {
        for (;;) {
          int fd = accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK);
          if (fd < 0) break;
          auto* c = new Conn;
          c->fd = fd;
          epoll_event cev{};
          cev.events = EPOLLIN | EPOLLRDHUP | EPOLLET;
          cev.data.ptr = c;
          epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev);
          send(fd, kBanner.data(), kBanner.size(), MSG_NOSIGNAL);
        }
        continue;
      }
      auto* c = static_cast<Conn*>(events[i].data.ptr);
      bool open = true;
      out.clear();
      for (;;) {
        ssize_t r = recv(c->fd, buf, sizeof buf, 0);
        if (r > 0) {
          open = Feed(*c, std::string_view(buf, size_t(r)), out);
          if (!open || size_t(r) < sizeof buf) break;
          continue;
        }
        if (r == 0 || (errno != EAGAIN && errno != EINTR)) open = false;
        break;
      }
      if (!out.empty()) send(c->fd, out.data(), out.size(), MSG_NOSIGNAL);
      if (!open) {
        close(c->fd);  // also leaves the epoll set
        delete c;
      }
    }
  }
}
