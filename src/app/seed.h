// Start-up seeds from the ledger (app/seed.cc).
#ifndef SPAMSINK_APP_SEED_H_
#define SPAMSINK_APP_SEED_H_

#include <cstdint>

#include "dnsbl/listing.h"
#include "dnsbl/options.h"
#include "ledger/ledger.h"
#include "net/server.h"

namespace app {

// Loads the ledger's most recent senders into the server's reputation until
// it holds seed_bytes or the reputation's byte budget is full, one record at
// a time; returns the bytes the seed took.
int64_t SeedReputation(ledger::Ledger* ledger, net::Server* server,
                       int64_t seed_bytes);

// Seeds the DNSBL index from the sources seen within its window, most
// recent first, up to o.max_entries, and gives it the ledger as its
// fallback for the sources it forgot.
void SeedDnsbl(ledger::Ledger* ledger, dnsbl::Index* index,
               const dnsbl::Options& o);

}  // namespace app

#endif  // SPAMSINK_APP_SEED_H_
