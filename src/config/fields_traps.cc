#include "config/field_macros.h"

namespace config {
namespace {

// A trap domain: letters, digits, '-' and '.', not starting with '.'.
base::Status CheckDomain(std::string_view v) {
  if (v.empty() || v.size() > 253 || v.front() == '.' || v.back() == '.') {
    return base::Status::Error("not a domain name: \"" + std::string(v) + "\"");
  }
  for (char c : v) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
              c == '.';
    if (!ok) {
      return base::Status::Error(
          "a trap domain is lower-case letters, "
          "digits, '-' and '.': \"" +
          std::string(v) + "\"");
    }
  }
  return {};
}

base::Status CheckTree(std::string_view v) {
  if (v.size() < 3 || v.front() != '/' || v.back() != '/') {
    return base::Status::Error("the tree is a path like \"/people/\"");
  }
  for (char c : v.substr(1, v.size() - 2)) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) {
      return base::Status::Error(
          "one segment of lower-case letters, digits and '-'");
    }
  }
  return {};
}

}  // namespace

void AppendTrapsFields(std::vector<Field>* out) {
  std::vector<Field> f = {
      SPAMSINK_FIELD(traps, enabled, kBool,
                     "Serve the trap site: endless pages of addresses that "
                     "attribute spam to the harvester that took them; see "
                     "docs/TRAPS.md."),
      SPAMSINK_FIELD(traps, listen, kString,
                     "HTTP address of the trap site, \"host:port\" (meant "
                     "to be public; separate from the API)."),
      SPAMSINK_FIELD(traps, domains, kStrings,
                     "Trap domains (MX to the sink): the site's addresses "
                     "use them; recipients there are counted per domain."),
      SPAMSINK_FIELD(traps, keys, kStrings,
                     "Signing keys \"id:secret\" (id 0..15, secret at least "
                     "16 bytes); the first signs, the others still verify "
                     "(rotation). Keep the file private; `spamsink config` "
                     "prints them as <redacted>."),
      SPAMSINK_FIELD(traps, tree, kString,
                     "Root path of the page tree; robots.txt disallows it."),
      SPAMSINK_FIELD(traps, words, kString,
                     "Word list for the pages' text (wamerican's); missing: "
                     "a small built-in list."),
      SPAMSINK_FIELD(traps, addresses_per_page, kInt,
                     "Addresses on each page, half as mailto: links."),
      SPAMSINK_FIELD(traps, links_per_page, kInt,
                     "Links to deeper pages on each page."),
      SPAMSINK_FIELD(traps, threads, kInt,
                     "Threads running the trap site's event loop (a client "
                     "held by a slow response costs no thread)."),
      SPAMSINK_FIELD(traps, read_timeout, kDouble,
                     "Seconds a client may take to send its request."),
      SPAMSINK_FIELD(traps, max_clients, kInt,
                     "Connections to the trap site at once; more are closed "
                     "at once."),
      SPAMSINK_FIELD(traps, page_delay, kDouble,
                     "Slow responses: seconds over which a tree page's body "
                     "trickles out (headers at once); 0: no delay."),
      SPAMSINK_FIELD(traps, max_slow_clients, kInt,
                     "Connections held by slow responses at once; beyond it "
                     "pages go out at once."),
      SPAMSINK_FIELD(traps, max_slow_per_client, kInt,
                     "Connections held by slow responses per client "
                     "address; beyond it that client's pages go out at once."),
      SPAMSINK_FIELD(traps, trusted_proxies, kStrings,
                     "Reverse proxies (CIDR) whose X-Forwarded-For names the "
                     "client (the rightmost address not itself trusted); "
                     "from others the header is ignored."),
  };
  SetRange(&f, "traps.addresses_per_page", 1, 50);
  SetRange(&f, "traps.links_per_page", 0, 50);
  SetRange(&f, "traps.threads", 1, 256);
  SetRange(&f, "traps.read_timeout", 0.1, 300);
  SetRange(&f, "traps.max_clients", 1, 1000000);
  SetRange(&f, "traps.page_delay", 0, 600);
  SetRange(&f, "traps.max_slow_clients", 0, 1000000);
  SetRange(&f, "traps.max_slow_per_client", 0, 1000);
  SetField(&f, "traps.listen", [](Field& x) { x.check = CheckEndpoint; });
  SetField(&f, "traps.domains", [](Field& x) { x.check = CheckDomain; });
  SetField(&f, "traps.tree", [](Field& x) { x.check = CheckTree; });
  SetField(&f, "traps.keys", [](Field& x) { x.secret = true; });
  SetField(&f, "traps.trusted_proxies",
           [](Field& x) { x.check = CheckNetwork; });
  out->insert(out->end(), f.begin(), f.end());
}

}  // namespace config
