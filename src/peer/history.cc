#include "peer/history.h"

namespace peer {

void Merge(History* h, const SessionSummary& s) {
  h->connections += 1;
  h->messages += s.messages;
  h->early_talker += s.early_talker ? 1 : 0;
  h->bare_lf += s.bare_lf;
  h->protocol_errors += s.protocol_errors;
  h->seconds_held += s.duration_seconds;
}

void Add(History* h, const History& d) {
  h->connections += d.connections;
  h->messages += d.messages;
  h->early_talker += d.early_talker;
  h->bare_lf += d.bare_lf;
  h->protocol_errors += d.protocol_errors;
  h->seconds_held += d.seconds_held;
}

}  // namespace peer
