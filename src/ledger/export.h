// Source records rendered for the tools that consume blocklists: plain and
// CIDR lists, CSV, JSON Lines, rbldnsd zone data, an nftables set, a Postfix
// cidr: access map and an OpenBSD spamd list. Pure functions of the records.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "ledger/query.h"
#include "ledger/source.h"
#include "ledger/store.h"

namespace ledger {

enum class Format {
  kPlain,           // one address per line
  kCidr,            // minimal set of networks covering the (widened) entries
  kCsv,             // every field, RFC 4180, header line
  kJsonl,           // one JSON object per line (the API's source object)
  kRbldnsd,         // combined dataset: ip4set + ip6trie, both at the zone
  kRbldnsdIp4set,   // IPv4 entries only
  kRbldnsdIp6trie,  // IPv6 entries only
  kNftables,        // nft -f script: sets <set>_v4 / <set>_v6, refilled
  kPostfix,         // cidr: table for check_client_access
  kSpamd,           // OpenBSD spamd.conf file:// list
  kStix,            // STIX 2.1 bundle of indicators (export_stix.h)
};
bool ParseFormat(std::string_view name, Format* out);
const char* FormatName(Format f);
std::string FormatNames();  // "plain, cidr, ..." for messages
const char* ContentType(Format f);

// What an export lists: the ledger's sources, or the IPs of the trap site's
// harvesters (TrapLedger::HarvesterIps; labels have no address).
enum class ExportList { kSources, kHarvesters };
bool ParseExportList(std::string_view name, ExportList* out);

struct ExportOptions {
  Format format = Format::kPlain;
  ExportList list = ExportList::kSources;  // parameter list=sources|harvesters
  // Entries are networks: each address widened to this prefix (then equal
  // networks merge). 32/128 list single addresses.
  int v4_prefix = 32;   // 8..32
  int v6_prefix = 128;  // 16..128
  // The ledger's ipv6_prefix: an IPv6 record stands for its network this
  // wide, so its entry is never narrower (a /64 record lists the /64, not
  // the network's first address).
  int record_v6_prefix = 128;
  // rbldnsd.
  int ttl = 3600;
  std::string ns = "localhost.";  // $NS and the SOA origin
  std::string hostmaster = "hostmaster.localhost.";
  std::string a = "127.0.0.2";  // A value of every listed entry
  // nftables.
  std::string table = "spamsink";  // table inet <table>
  std::string set = "sources";     // sets <set>_v4 and <set>_v6
  // Postfix.
  std::string action = "REJECT";  // result; a text naming the evidence follows
  double now = 0;                 // Unix seconds, for the header comments
  // Networks never listed (tarpit.exempt): their addresses are left out,
  // and an entry widened by v4_prefix / v6_prefix that would cover one of
  // them stays a single address instead.
  std::vector<base::Cidr> exempt;
};

// The query defaults every export shares (the API's and the command's):
// sorted by address unless sort is given, and only senders of at least one
// message unless min_messages is given (min_messages=0 lists connect-only
// scanners too).
void ExportQueryDefaults(const Params& params, SourceQuery* query);
// Parses tarpit.exempt's entries (checked by config/ already; a bad one is
// an error naming it).
base::Result<std::vector<base::Cidr>> ParseExempt(
    const std::vector<std::string>& networks);

// The parameter names ParseExportOptions reads (besides the query's).
const std::vector<std::string>& ExportOptionKeys();
// Reads format, list, v4_prefix, v6_prefix, ttl, ns, hostmaster, a, table,
// set, action from params; format is required.
base::Result<ExportOptions> ParseExportOptions(const Params& params);

// The API's JSON object for one source.
nlohmann::ordered_json SourceToJson(const SourceRecord& r);

// Renders records in memory: for tests and small pages.
std::string Export(const std::vector<SourceRecord>& records,
                   const ExportOptions& options);

// Where streamed export text goes, in pieces of about 64 KiB; returns false
// when the reader went away (the export then stops with an error).
using Sink = std::function<bool(std::string_view)>;
// Yields records to a visitor; may be called more than once (the formats
// whose header counts entries read twice or three times).
using RecordScan = std::function<base::Status(const Store::Visitor&)>;

// Writes the export of what scan yields to sink, holding one record and
// one entry at a time (cidr also holds the networks that may still merge
// with the next). plain (/32, /128), csv and jsonl keep scan's order; every
// other format REQUIRES records by ascending IP (SortedByIp).
base::Status ExportStream(const RecordScan& scan, const ExportOptions& options,
                          const Sink& sink);
// The export of what q selects from store, streamed through Store::Scan:
// constant memory unless the format aggregates and q sorts by something
// other than ascending IP (then q's page is read into memory; exports sort
// by IP unless told otherwise, ExportQueryDefaults).
base::Status ExportFromStore(Store* store, const SourceQuery& q,
                             const ExportOptions& options, const Sink& sink);
std::vector<SourceRecord> SortedByIp(std::vector<SourceRecord> records);
RecordScan VectorScan(std::vector<SourceRecord> records);

// The body of `spamsink export`: args are the export's own options,
// "--format F [--output FILE] [query and export options as --name value or
// --name=value, e.g. --min-messages 3 --v4-prefix 24]"; the database is
// db_path (the caller takes it from ledger.db_path / --db), opened
// read-only; exempt networks (tarpit.exempt) are never listed. Returns the
// process exit code (0 ok, 1 runtime error, 2 usage
// error), writing the data to out (or the file) and errors to err.
int RunExportCommand(const std::vector<std::string>& args,
                     const std::string& db_path,
                     const std::vector<base::Cidr>& exempt, std::ostream& out,
                     std::ostream& err, int record_v6_prefix = 128);
// The export options, for help texts.
const char* ExportUsage();

}  // namespace ledger
