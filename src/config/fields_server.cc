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
                     "until the RSS is under 90% of it. At least 16 MiB."),
      SPAMSINK_FIELD(server, sandbox, kBool,
                     "Once started, drop every capability (but CAP_NET_ADMIN "
                     "while a packet-drop rule is owned), set no_new_privs "
                     "and allow only the system calls the server uses "
                     "(seccomp); any other kills the process with an "
                     "event=sandbox_violation line."),
  };
  SetRange(&f, "server.memory_limit", 0, double(1ll << 50));
  auto last = std::find_if(out->rbegin(), out->rend(), [](const Field& x) {
    return x.section == "server";
  });
  out->insert(last.base(), f.begin(), f.end());
}

}  // namespace config
