#include "config/field_macros.h"

namespace config {

void AppendCaptureFields(std::vector<Field>* out) {
  std::vector<Field> f = {
      SPAMSINK_FIELD(capture, sample_every, kInt,
                     "Keep 1 message in this many as an .eml file in "
                     "capture.dir (deterministic per worker thread); 0: "
                     "off. See docs/OPERATIONS.md."),
      SPAMSINK_FIELD(capture, dir, kString,
                     "Maildir of the sampled messages (tmp/, new/, cur/ "
                     "made at start); needed when sample_every > 0."),
      SPAMSINK_FIELD(capture, senders, kStrings,
                     "Networks (CIDR) whose every message is kept, beside "
                     "the 1 in sample_every."),
      SPAMSINK_FIELD(capture, evidence, kStrings,
                     "Evidence that keeps every message of a sender: bot "
                     "(any of early_talker, pipelining, bare_lf, bare_cr), "
                     "early_talker, pipelining, bare_lf, bare_cr, tarpitted, "
                     "unknown_commands, protocol_errors. Decided at each MAIL "
                     "from what the session has shown so far."),
      SPAMSINK_FIELD(capture, max_bytes, kInt64,
                     "Total bytes of sampled messages kept; the oldest are "
                     "deleted first."),
      SPAMSINK_FIELD(capture, retention_days, kDouble,
                     "Sampled messages older than this many days are "
                     "deleted (checked every minute); 0: kept."),
      SPAMSINK_FIELD(capture, queue_messages, kInt,
                     "Sampled messages waiting for the writer thread at "
                     "most; more are dropped (capture_dropped_total), never "
                     "delaying a reply."),
      SPAMSINK_FIELD(capture, queue_bytes, kInt64,
                     "Bytes of sampled messages waiting for the writer at "
                     "most; more are dropped."),
  };
  SetRange(&f, "capture.sample_every", 0, 1e9);
  SetRange(&f, "capture.max_bytes", 0, 1ll << 50);
  SetRange(&f, "capture.retention_days", 0, 36500);
  SetRange(&f, "capture.queue_messages", 1, 1e6);
  SetRange(&f, "capture.queue_bytes", 1 << 20, 1ll << 40);
  SetField(&f, "capture.senders", [](Field& x) { x.check = CheckNetwork; });
  SetField(&f, "capture.evidence", [](Field& x) {
    x.check = [](std::string_view v) {
      return capture::EvidenceBits(v) != 0
                 ? base::Status()
                 : base::Status::Error("unknown evidence \"" + std::string(v) +
                                       "\"");
    };
  });
  out->insert(out->end(), f.begin(), f.end());
}

}  // namespace config
