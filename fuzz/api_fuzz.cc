// libFuzzer target: the API's request handling (path and query parameters,
// authorization header) over an in-memory ledger. Every request gets a
// response with a status from the documented set; none crashes.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "api/handlers.h"
#include "ledger/store.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static base::FakeClock clock;
  static ledger::Ledger* led =
      ledger::Ledger::Create(ledger::NewMemoryStore(), {}, &clock, false)
          .release();
  static api::Api* api = new api::Api(led, {"", nullptr, 100, 1000}, &clock);
  // Lines: the path, then key=value parameters; a line "M x" sets the
  // method, "A x" the Authorization header.
  std::string_view in(reinterpret_cast<const char*>(data), size);
  api::Request r;
  bool first = true;
  while (!in.empty()) {
    size_t nl = in.find('\n');
    std::string_view line = in.substr(0, nl);
    in = nl == std::string_view::npos ? std::string_view() : in.substr(nl + 1);
    if (first) {
      r.path = std::string(line);
      first = false;
    } else if (line.starts_with("M ")) {
      r.method = std::string(line.substr(2));
    } else if (line.starts_with("A ")) {
      r.authorization = std::string(line.substr(2));
    } else {
      size_t eq = line.find('=');
      r.params.emplace(std::string(line.substr(0, eq)),
                       eq == std::string_view::npos
                           ? std::string()
                           : std::string(line.substr(eq + 1)));
    }
  }
  api::Response resp = api->Handle(r);
  switch (resp.status) {
    case 200:
    case 400:
    case 401:
    case 404:
    case 405:
    case 503:
      break;
    default:
      std::abort();
  }
  return 0;
}
