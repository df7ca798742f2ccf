// The kernel's TCP retransmission count of a socket (TCP_INFO), for the
// tarpit's cost to senders: a held session whose segments are lost is
// retransmitted by this sink, and the sender's stack keeps the connection,
// its buffers and timers for as long.
#pragma once

#include <cstdint>

namespace net {

// tcpi_total_retrans of the connected TCP socket fd: segments this side
// retransmitted over the connection's life. 0 when fd is not a TCP socket
// or the kernel does not say.
uint64_t TcpRetransmissions(int fd);

// At the close of a session: adds fd's retransmissions to
// base::g_tarpit_retransmissions when the session was tarpitted (held);
// returns what it added.
uint64_t CountTarpitRetransmissions(int fd, bool tarpitted);

}  // namespace net
