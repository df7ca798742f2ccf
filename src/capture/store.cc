#include "capture/store.h"

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "base/log.h"
#include "base/metrics.h"
#include "capture/maildir.h"

namespace capture {

namespace fs = std::filesystem;

Store::Store(Options options, std::string sink_id, const base::Clock* clock)
    : options_(std::move(options)),
      sink_id_(std::move(sink_id)),
      clock_(clock),
      pid_(int(getpid())) {
  // config/ validated both lists; a bad entry here is skipped.
  for (const auto& s : options_.senders) {
    if (auto c = base::Cidr::Parse(s); c.ok()) senders_.push_back(*c);
  }
  for (const auto& e : options_.evidence) evidence_ |= EvidenceBits(e);
}

Store::~Store() { Stop(); }

base::Status Store::Start(bool run_writer) {
  std::error_code ec;
  for (const char* sub : {"tmp", "new", "cur"}) {
    fs::create_directories(fs::path(options_.dir) / sub, ec);
    if (ec) {
      return base::Status::Error("capture.dir: cannot create " +
                                 (fs::path(options_.dir) / sub).string() +
                                 ": " + ec.message());
    }
  }
  std::map<std::string, Entry> found;
  uint64_t bytes = 0;
  for (const auto& de :
       fs::directory_iterator(fs::path(options_.dir) / "new", ec)) {
    std::string name = de.path().filename().string();
    int64_t sec = NameSeconds(name);
    if (!ValidId(name) || sec < 0 || !de.is_regular_file(ec)) continue;
    Entry e{name, double(sec), uint64_t(de.file_size(ec)), ""};
    std::ifstream in(de.path(), std::ios::binary);
    std::string head(4096, '\0');
    in.read(head.data(), std::streamsize(head.size()));
    head.resize(size_t(in.gcount()));
    e.source = HeaderValue(head, "X-Spamsink-Source");
    e.sink = HeaderValue(head, "X-Spamsink-Sink");
    bytes += e.bytes;
    found.emplace(name, std::move(e));
  }
  {
    std::lock_guard lock(mu_);
    index_ = std::move(found);
    total_bytes_ = bytes;
    EnforceQuotaLocked();
    started_ = true;
  }
  Expire();
  if (run_writer) writer_ = std::thread([this] { Run(); });
  return base::Status();
}

void Store::Stop() {
  {
    std::lock_guard lock(mu_);
    if (!started_) return;
    stopping_ = true;
  }
  wake_.notify_all();
  if (writer_.joinable()) writer_.join();
  std::unique_lock lock(mu_);
  while (!queue_.empty()) {  // without a writer (tests), written here
    smtp::CapturedMessage m = std::move(queue_.front());
    queue_.pop_front();
    queue_bytes_ -= m.raw.size();
    lock.unlock();
    Write(std::move(m));
    lock.lock();
    ++done_;
  }
  started_ = false;
  written_.notify_all();
}

bool Store::Matches(const smtp::SenderView& v) const {
  if (evidence_ != 0) {
    uint32_t have =
        (v.early_talker ? kEarlyTalker : 0) | (v.tarpitted ? kTarpitted : 0);
    if (const peer::ProtocolFacts* f = v.facts) {
      have |= (f->pipelined_without_ehlo ? kPipelining : 0) |
              (f->bare_lf ? kBareLf : 0) | (f->bare_cr ? kBareCr : 0) |
              (f->unknown_commands ? kUnknownCommands : 0) |
              (f->protocol_errors ? kProtocolErrors : 0);
    }
    if (have & evidence_) return true;
  }
  if (!senders_.empty()) {
    auto ip = base::IpAddress::Parse(v.client_ip);
    if (!ip.ok()) return false;
    for (const auto& c : senders_) {
      if (c.Contains(*ip)) return true;
    }
  }
  return false;
}

bool Store::Sample(const smtp::SenderView& sender) {
  if (Matches(sender)) {
    base::Count(base::Counter::kCaptureMatched);
    return true;
  }
  if (options_.sample_every <= 0) return false;
  thread_local uint64_t mails = 0;
  return ++mails % uint64_t(options_.sample_every) == 0;
}

void Store::Deliver(smtp::CapturedMessage&& m) {
  {
    std::lock_guard lock(mu_);
    if (!started_ || stopping_ ||
        queue_.size() >= size_t(options_.queue_messages) ||
        queue_bytes_ + m.raw.size() > uint64_t(options_.queue_bytes)) {
      base::Count(base::Counter::kCaptureDropped);
      return;
    }
    queue_bytes_ += m.raw.size();
    queue_.push_back(std::move(m));
    ++delivered_;
  }
  base::Count(base::Counter::kCaptureSampled);
  wake_.notify_one();
}

void Store::Flush() {
  std::unique_lock lock(mu_);
  uint64_t target = delivered_;
  written_.wait(lock, [&] { return done_ >= target || !started_; });
}

void Store::Run() {
  using namespace std::chrono;
  auto next_expiry = steady_clock::now() + minutes(1);
  std::unique_lock lock(mu_);
  for (;;) {
    wake_.wait_until(lock, next_expiry,
                     [&] { return stopping_ || !queue_.empty(); });
    while (!queue_.empty()) {
      smtp::CapturedMessage m = std::move(queue_.front());
      queue_.pop_front();
      queue_bytes_ -= m.raw.size();
      lock.unlock();
      Write(std::move(m));
      lock.lock();
      ++done_;
      written_.notify_all();
    }
    if (stopping_) return;
    if (steady_clock::now() >= next_expiry) {
      lock.unlock();
      Expire();
      lock.lock();
      next_expiry = steady_clock::now() + minutes(1);
    }
  }
}

std::string Store::PathOf(const std::string& id) const {
  return (fs::path(options_.dir) / "new" / id).string();
}

void Store::Write(smtp::CapturedMessage&& m) {
  std::string text = FormatMessage(m, sink_id_);
  std::string name;
  {
    std::lock_guard lock(mu_);
    name = MakeName(m.wall, pid_, ++seq_, sink_id_);
  }
  fs::path tmp = fs::path(options_.dir) / "tmp" / name;
  bool ok = false;
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out.write(text.data(), std::streamsize(text.size()));
    out.close();
    ok = bool(out);
  }
  std::error_code ec;
  if (ok) {
    fs::rename(tmp, PathOf(name), ec);
    ok = !ec;
  }
  if (!ok) {
    fs::remove(tmp, ec);
    base::Count(base::Counter::kCaptureWriteErrors);
    base::LogLine(base::LogLevel::kWarning, "capture_write_failed")
        .Kv("dir", options_.dir);
    return;
  }
  base::Count(base::Counter::kCaptureWritten);
  std::lock_guard lock(mu_);
  total_bytes_ += text.size();
  index_[name] = Entry{name, m.wall, text.size(), m.client_ip, sink_id_};
  EnforceQuotaLocked();
}

void Store::RemoveLocked(std::map<std::string, Entry>::iterator it) {
  std::error_code ec;
  fs::remove(PathOf(it->first), ec);
  total_bytes_ -= it->second.bytes;
  index_.erase(it);
  base::Count(base::Counter::kCaptureEvicted);
}

void Store::EnforceQuotaLocked() {
  while (!index_.empty() && total_bytes_ > uint64_t(options_.max_bytes)) {
    RemoveLocked(index_.begin());
  }
}

size_t Store::Expire() {
  if (options_.retention_days <= 0) return 0;
  double cutoff = clock_->WallSeconds() - options_.retention_days * 86400;
  std::lock_guard lock(mu_);
  size_t n = 0;
  while (!index_.empty() && index_.begin()->second.time < cutoff) {
    RemoveLocked(index_.begin());
    ++n;
  }
  return n;
}

Page Store::List(const ListQuery& q) const {
  Page page;
  std::lock_guard lock(mu_);
  auto it = q.after.empty() ? index_.end() : index_.lower_bound(q.after);
  while (it != index_.begin() && page.entries.size() < q.limit) {
    --it;
    const Entry& e = it->second;
    if (!q.source.empty() && e.source != q.source) continue;
    if (q.since > 0 && e.time < q.since) continue;
    if (q.until > 0 && e.time >= q.until) continue;
    if (!q.sink.empty() && e.sink != q.sink) continue;
    if (q.network) {
      auto ip = base::IpAddress::Parse(e.source);
      if (!ip.ok() || !q.network->Contains(*ip)) continue;
    }
    page.entries.push_back(it->second);
  }
  if (page.entries.size() == q.limit && it != index_.begin()) {
    page.next = page.entries.back().id;
  }
  return page;
}

Entry Store::Find(const std::string& id) const {
  std::lock_guard lock(mu_);
  auto it = index_.find(id);
  return it == index_.end() ? Entry{} : it->second;
}

base::Result<std::string> Store::Read(const std::string& id) const {
  if (!ValidId(id) || Find(id).id.empty()) {
    return base::Status::Error("no such capture");
  }
  std::ifstream in(PathOf(id), std::ios::binary);
  if (!in) return base::Status::Error("no such capture");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

Usage Store::GetUsage() const {
  std::lock_guard lock(mu_);
  return Usage{index_.size(), total_bytes_, queue_.size()};
}

}  // namespace capture
