#include <algorithm>

#include "config/field_macros.h"

namespace config {

// The API's abuse bounds. Inserted after the [api] rows of fields.cc, so
// the reference keeps one [api] table.
void AppendApiFields(std::vector<Field>* out) {
  std::vector<Field> f = {
      SPAMSINK_FIELD(api, threads, kInt, "Workers serving API requests."),
      SPAMSINK_FIELD(api, max_queued, kInt,
                     "API connections waiting for a worker at most; more "
                     "get an immediate 503."),
      SPAMSINK_FIELD(api, max_connections_per_ip, kInt,
                     "API connections one client address may have in the "
                     "workers' hands; more get an immediate 503."),
      SPAMSINK_FIELD(api, header_timeout, kDouble,
                     "Seconds an API connection has to send a whole request "
                     "header (from its start or its previous response); "
                     "then it is closed (slowloris)."),
  };
  SetRange(&f, "api.threads", 1, 256);
  SetRange(&f, "api.max_queued", 0, 100000);
  SetRange(&f, "api.max_connections_per_ip", 1, 100000);
  SetRange(&f, "api.header_timeout", 0.1, 3600);
  auto last = std::find_if(out->rbegin(), out->rend(),
                           [](const Field& x) { return x.section == "api"; });
  out->insert(last.base(), f.begin(), f.end());
}

}  // namespace config
