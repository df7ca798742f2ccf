#include <algorithm>

#include "config/field_macros.h"

namespace config {

// The [server] table's bounds on the process itself. Inserted after the
// [server] rows of fields.cc, so the reference keeps one [server] table.
void AppendServerFields(std::vector<Field>* out) {
  std::vector<Field> f = {
      SPAMSINK_FIELD(server, memory_limit, kInt64,
                     "Resident memory ceiling in bytes (0: none). Above it, "
                     "checked every sweep, accepting pauses and the oldest "
                     "sessions the tarpit holds are answered 421 and closed, "
                     "until the RSS is under 90% of it. At least 16 MiB. "
                     "-1: 3/4 of the cgroup's memory.max, else 1/2 of "
                     "MemTotal (the log's memory_budgets line and /healthz "
                     "say which); it also sizes the budgets left unset."),
      SPAMSINK_FIELD(server, reputation_bytes, kInt64,
                     "Byte budget of the in-memory reputation (about 112 "
                     "bytes a sender); at the budget a new sender replaces "
                     "the least valuable of a sample. 0: memory_limit / 4 "
                     "(64 MiB without a limit)."),
      SPAMSINK_FIELD(server, seed_bytes, kInt64,
                     "Reputation loaded from the ledger at start (most "
                     "recent senders first), at most, in bytes. 0: "
                     "reputation_bytes / 2."),
      SPAMSINK_FIELD(server, sandbox, kBool,
                     "Once started, drop every capability (but CAP_NET_ADMIN "
                     "while a packet-drop rule is owned), set no_new_privs "
                     "and allow only the system calls the server uses "
                     "(seccomp); any other kills the process with an "
                     "event=sandbox_violation line."),
  };
  SetRange(&f, "server.memory_limit", -1, double(1ll << 50));
  SetRange(&f, "server.reputation_bytes", 0, double(1ll << 50));
  SetRange(&f, "server.seed_bytes", 0, double(1ll << 50));
  auto last = std::find_if(out->rbegin(), out->rend(), [](const Field& x) {
    return x.section == "server";
  });
  out->insert(last.base(), f.begin(), f.end());
}

}  // namespace config
