// Sampled capture over the API (capture/store.h):
//   GET /api/v1/captures              newest first, paged: limit, after
//                                     (the cursor "next"); filters: source
//                                     (an IP or a CIDR), since, until
//                                     (Unix seconds or RFC 3339), sink
//   GET /api/v1/captures/{id}         one message, message/rfc822
//   GET /api/v1/captures.mbox         the same selection as one mboxrd
//                                     file (application/mbox), streamed
#include <nlohmann/json.hpp>

#include "api/handlers.h"
#include "capture/maildir.h"
#include "capture/store.h"
#include "ledger/query.h"

namespace api {

namespace {

using json = nlohmann::ordered_json;

// The query of /captures and /captures.mbox, or a 400 naming the bad
// parameter. max: the largest limit accepted.
base::Result<capture::ListQuery> CaptureQuery(const Request& r,
                                              uint64_t default_limit,
                                              uint64_t max) {
  capture::ListQuery q;
  q.limit = default_limit;
  for (const auto& [key, value] : r.params) {
    if (key == "limit") {
      char* end = nullptr;
      unsigned long long v = std::strtoull(value.c_str(), &end, 10);
      if (value.empty() || *end != '\0' || v == 0 || v > max) {
        return base::Status::Error("limit: a number from 1 to " +
                                   std::to_string(max));
      }
      q.limit = v;
    } else if (key == "after") {
      if (!capture::ValidId(value)) return base::Status::Error("after: bad id");
      q.after = value;
    } else if (key == "source") {
      auto net = base::Cidr::Parse(value);
      if (!net.ok()) {
        return base::Status::Error("source: not an IP address or a CIDR");
      }
      q.network = *net;
    } else if (key == "since" || key == "until") {
      auto t = ledger::ParseTime(value);
      if (!t.ok()) return base::Status::Error(key + ": not a time");
      (key == "since" ? q.since : q.until) = *t;
    } else if (key == "sink") {
      if (value.empty() || value.size() > 255) {
        return base::Status::Error("sink: 1 to 255 bytes");
      }
      q.sink = value;
    } else {
      return base::Status::Error("unknown parameter: " + key);
    }
  }
  return q;
}

std::string Iso(double t) { return ledger::FormatTime(t); }

}  // namespace

Response Api::Captures(const Request& r) const {
  if (capture_ == nullptr) return ErrorResponse(503, "capture off");
  auto q = CaptureQuery(r, options_.default_page, options_.max_page);
  if (!q.ok()) return ErrorResponse(400, q.error());
  capture::Page page = capture_->List(*q);
  json list = json::array();
  for (const auto& e : page.entries) {
    list.push_back({{"id", e.id},
                    {"time", Iso(e.time)},
                    {"source", e.source},
                    {"sink", e.sink},
                    {"bytes", e.bytes},
                    {"href", std::string(kCapturesPath) + "/" + e.id}});
  }
  capture::Usage u = capture_->GetUsage();
  json body = {{"captures", std::move(list)},
               {"next", page.next.empty() ? json(nullptr) : json(page.next)},
               {"total_messages", u.messages},
               {"total_bytes", u.bytes}};
  Response resp;
  resp.body = body.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
  return resp;
}

Response Api::Capture(const std::string& id) const {
  if (capture_ == nullptr) return ErrorResponse(503, "capture off");
  auto text = capture_->Read(id);
  if (!text.ok()) return ErrorResponse(404, "no such capture: " + id);
  Response resp;
  resp.content_type = "message/rfc822";
  resp.body = std::move(text).value();
  return resp;
}

Response Api::CapturesMbox(const Request& r) const {
  if (capture_ == nullptr) return ErrorResponse(503, "capture off");
  // An mbox may hold many messages: up to 100 times a page, streamed one
  // file at a time.
  auto q = CaptureQuery(r, options_.max_page * 100, options_.max_page * 100);
  if (!q.ok()) return ErrorResponse(400, q.error());
  Response resp;
  resp.content_type = "application/mbox";
  resp.headers.push_back(
      {"Content-Disposition", "attachment; filename=\"captures.mbox\""});
  resp.stream = [store = capture_,
                 query = *q](const ledger::Sink& sink) -> base::Status {
    capture::Page page = store->List(query);
    for (const auto& e : page.entries) {
      auto text = store->Read(e.id);
      if (!text.ok()) continue;  // deleted since (quota, retention)
      if (!sink(capture::MboxEntry(*text, e.time))) {
        return base::Status::Error("client gone");
      }
    }
    return base::Status();
  };
  return resp;
}

}  // namespace api
