#include "net/tcp_retrans.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "base/tarpit_cost.h"

namespace net {

uint64_t TcpRetransmissions(int fd) {
  tcp_info info{};
  socklen_t len = sizeof info;
  if (fd < 0 || getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) != 0) {
    return 0;
  }
  return info.tcpi_total_retrans;
}

uint64_t CountTarpitRetransmissions(int fd, bool tarpitted) {
  if (!tarpitted) return 0;
  uint64_t n = TcpRetransmissions(fd);
  if (n != 0)
    base::g_tarpit_retransmissions.fetch_add(n, std::memory_order_relaxed);
  return n;
}

}  // namespace net
