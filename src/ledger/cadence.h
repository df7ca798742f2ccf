// When the ledger's writer cuts its next batch (issue 13, item 7).
//
// A record is lost at a kill -9 until the commit of the batch holding it
// returns. A record taken by the cut at cut[k+1] arrived after cut[k], and
// is safe at cut[k+1] + commit[k+1]: its exposure is at most
//   cut[k+1] - cut[k] + commit[k+1].
// Cutting at cut[k] + interval - commit[k] (the last commit time as the
// estimate of the next) makes that exactly one interval while commit times
// are steady, instead of interval + 2 x commit when the writer waits an
// interval after each commit ends. Commits are serial, so a cut never comes
// before the previous step's work has ended: with commits longer than half
// an interval the writer commits back to back and the exposure is two
// commit times, the least one writer can do.
#pragma once

#include <algorithm>

#include "base/clock.h"

namespace ledger {

// cut: when the last batch was taken; commit: how long committing it took;
// work_end: when the writer's step (commit, expiry) ended.
inline base::SteadyTime NextCut(base::SteadyTime cut, base::Duration commit,
                                base::SteadyTime work_end,
                                base::Duration interval) {
  return std::max(work_end, cut + interval - commit);
}

// The first cut after start: no commit time is known yet, so assume the
// longest the cadence absorbs (half an interval).
inline base::SteadyTime FirstCut(base::SteadyTime start,
                                 base::Duration interval) {
  return start + interval / 2;
}

}  // namespace ledger
