"""Replies are flow-controlled: a client that pipelines a flood of commands
and never reads its replies cannot make the server hold them all.

Before the connection machine, one 64 KiB read of pipelined `EHLO x` lines
made about 1.27 MB of replies, which the tarpit copied and held for the
rest of the session (40 tarpitted connections took RSS from 12.7 to 62.3
MB). Now a connection holds at most one read of input and about 16 KiB of
replies (smtp max_output) while its replies wait to be sent."""
import os
import socket
import time
import unittest

from harness import Sink

CONNECTIONS = 40
FLOOD = b"EHLO x\r\n" * 8192  # 64 KiB
# Stated bound: what a held connection may add to the process's RSS with
# its replies unread (one 64 KiB read, 16 KiB of replies, kernel-side
# buffers are not in RSS; the rest is slack for the allocator).
BOUND_PER_CONNECTION = 160 * 1024


def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


class Flood(unittest.TestCase):
    def test_pipelined_ehlo_flood_with_tarpit_is_bounded(self):
        sink = Sink("--tarpit-enabled", "true",
                    "--tarpit-greeting-min", "0.05",
                    "--tarpit-greeting-max", "0.05",
                    "--tarpit-reject-early-talkers", "false",
                    "--tarpit-stutter", "false")
        try:
            pid = sink.proc.pid
            time.sleep(0.3)  # started: the ledger and threads are up
            before = rss_bytes(pid)
            socks = []
            for _ in range(CONNECTIONS):
                s = socket.create_connection(("127.0.0.1", sink.port), 5)
                # A small receive buffer: the client's kernel takes little.
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                socks.append(s)
            for s in socks:
                s.sendall(FLOOD)
            # Let the server read, answer and stall on every connection
            # (bounded wait).
            deadline = time.monotonic() + 3
            peak = before
            while time.monotonic() < deadline:
                peak = max(peak, rss_bytes(pid))
                time.sleep(0.1)
            grown = peak - before
            print(f"RSS {before / 2**20:.1f} MiB -> {peak / 2**20:.1f} MiB "
                  f"with {CONNECTIONS} flooded connections: "
                  f"{grown / CONNECTIONS / 1024:.1f} KiB each")
            self.assertLess(grown, CONNECTIONS * BOUND_PER_CONNECTION)
            for s in socks:
                s.close()
            self.assertIsNone(sink.proc.poll(), "server died")
        finally:
            code = sink.stop()
            log = sink.stderr()
            sink.close()
        self.assertEqual(code, 0, log)


if __name__ == "__main__":
    unittest.main()
