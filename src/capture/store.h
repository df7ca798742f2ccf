// Sampled capture: keeps 1 message in sample_every as an .eml file in a
// Maildir (capture/maildir.h), within a total size (oldest deleted first)
// and a retention time, and lists and reads them for the API.
//
// The SMTP path never waits on the disk: the session copies only a sampled
// message's body (smtp::MessageTap), Deliver() puts it on a bounded queue
// under a lock taken only for sampled messages, and one writer thread
// writes it (tmp/ then rename into new/, the Maildir rule). A full queue
// drops the sample (capture_dropped_total), never a reply.
//
// Threading: every public member is thread-safe.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "base/clock.h"
#include "base/ip.h"
#include "base/status.h"
#include "capture/options.h"
#include "smtp/message_tap.h"

namespace capture {

// One kept message. id is its file name in new/ (ValidId).
struct Entry {
  std::string id;
  double time = 0;  // Unix seconds it was received
  uint64_t bytes = 0;
  std::string source;  // X-Spamsink-Source
  std::string sink;    // X-Spamsink-Sink
};

struct ListQuery {
  std::string source;  // only this source address; empty: all
  std::string after;   // the cursor: entries older than this id
  size_t limit = 100;
  std::optional<base::Cidr> network;  // only sources in it
  double since = 0, until = 0;        // time >= since, < until (0: open)
  std::string sink;                   // only this X-Spamsink-Sink
};

struct Page {
  std::vector<Entry> entries;  // newest first
  std::string next;            // cursor for the next page; empty: the end
};

struct Usage {
  uint64_t messages = 0;
  uint64_t bytes = 0;
  uint64_t queued = 0;
};

class Store final : public smtp::MessageTap {
 public:
  // sink_id names this sink in the added headers and the file names.
  // REQUIRES: clock outlives the store.
  Store(Options options, std::string sink_id, const base::Clock* clock);
  ~Store() override;  // Stop()
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Makes dir/{tmp,new,cur}, indexes the files in new/, applies retention
  // and the quota, and starts the writer (run_writer false: none, for
  // tests of a full queue; Stop then writes the queue). Until then Deliver
  // drops.
  base::Status Start(bool run_writer = true);
  // Writes what is queued, then stops the writer.
  void Stop();

  // smtp::MessageTap. Every transaction of a sender matching senders or
  // evidence is kept (capture_matched_total); of the others, sampling is
  // deterministic per thread: the n-th such MAIL of a thread is sampled
  // when n is a multiple of sample_every.
  bool Sample(const smtp::SenderView& sender) override;
  bool Matches(const smtp::SenderView& sender) const;
  void Deliver(smtp::CapturedMessage&& message) override;

  // Returns once everything queued before the call is written.
  // REQUIRES: the writer runs.
  void Flush();
  // Deletes files older than retention_days (the writer calls it every
  // minute). Returns how many went.
  size_t Expire();

  Page List(const ListQuery& q) const;
  // The file's bytes; an error for an unknown or invalid id.
  base::Result<std::string> Read(const std::string& id) const;
  Entry Find(const std::string& id) const;  // id empty when unknown
  Usage GetUsage() const;
  const Options& options() const { return options_; }

 private:
  void Run();
  void Write(smtp::CapturedMessage&& m);
  // REQUIRES: mu_ held. Deletes oldest-first until within max_bytes.
  void EnforceQuotaLocked();
  void RemoveLocked(std::map<std::string, Entry>::iterator it);
  std::string PathOf(const std::string& id) const;

  const Options options_;
  const std::string sink_id_;
  const base::Clock* clock_;
  const int pid_;
  std::vector<base::Cidr> senders_;  // options_.senders, parsed
  uint32_t evidence_ = 0;            // options_.evidence, as bits

  mutable std::mutex mu_;
  std::condition_variable wake_;     // the writer: work or stop
  std::condition_variable written_;  // Flush: the writer caught up
  std::deque<smtp::CapturedMessage> queue_;
  uint64_t queue_bytes_ = 0;
  uint64_t delivered_ = 0;  // messages ever queued
  uint64_t done_ = 0;       // of those, written or failed
  bool started_ = false;
  bool stopping_ = false;
  std::map<std::string, Entry> index_;  // by id: oldest first
  uint64_t total_bytes_ = 0;
  uint64_t seq_ = 0;
  std::thread writer_;
};

}  // namespace capture
