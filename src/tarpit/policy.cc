#include "tarpit/policy.h"

#include <algorithm>
#include <cmath>

namespace tarpit {
namespace {

base::Duration Seconds(double s) {
  return std::chrono::duration_cast<base::Duration>(
      std::chrono::duration<double>(s));
}

double ToSeconds(base::Duration d) {
  return std::chrono::duration<double>(d).count();
}

// Negative, NaN and infinite settings count as 0: a bad value must not turn
// into an unbounded delay.
double NonNegative(double v) { return std::isfinite(v) && v > 0 ? v : 0; }

double Load(const Capacity& c) {
  double load = 0;
  if (c.max_connections > 0) {
    load = std::max(load, static_cast<double>(c.open_connections) /
                              static_cast<double>(c.max_connections));
  }
  if (c.memory_limit > 0) {
    load = std::max(load, static_cast<double>(c.memory_bytes) /
                              static_cast<double>(c.memory_limit));
  }
  return load;
}

// A slot (held, stuttering) is granted if the session already owns one or
// the cap has room.
bool SlotFree(bool owned, int64_t in_use, int cap) {
  return owned || (cap > 0 && in_use < cap);
}

Verdict VerdictFor(const Options& o, SenderClass c) {
  switch (c) {
    case SenderClass::kNew:
      return o.verdict_new;
    case SenderClass::kReturning:
      return o.verdict_returning;
    case SenderClass::kBot:
      return o.verdict_bot;
  }
  return Verdict::kDefault;
}

}  // namespace

const char* SenderClassName(SenderClass c) {
  switch (c) {
    case SenderClass::kNew:
      return "new";
    case SenderClass::kReturning:
      return "returning";
    case SenderClass::kBot:
      return "bot";
  }
  return "?";
}

uint64_t SplitMixRandom::Next() {
  uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

double SplitMixRandom::Uniform() {
  return static_cast<double>(Next() >> 11) * 0x1.0p-53;
}

double EvidenceScore(const Options& o, const PeerHistory& h,
                     const SessionCounters& s) {
  double early = static_cast<double>(h.early_talker) + (s.early_talker ? 1 : 0);
  double bare = static_cast<double>(h.bare_lf + s.bare_lf);
  double errors = static_cast<double>(h.protocol_errors + s.protocol_errors);
  return NonNegative(early * o.weight_early_talk) +
         NonNegative(bare * o.weight_bare_lf) +
         NonNegative(errors * o.weight_protocol_error);
}

double Score(const Options& o, const PeerHistory& h, const SessionCounters& s) {
  return EvidenceScore(o, h, s) +
         NonNegative(static_cast<double>(h.connections) * o.weight_connection) +
         NonNegative(static_cast<double>(h.messages + s.messages) *
                     o.weight_message) +
         NonNegative(h.seconds_held * o.weight_second_held);
}

double LevelFromScore(const Options& o, double score) {
  score = NonNegative(score);
  double full = NonNegative(o.full_level_score);
  if (full == 0) return score > 0 ? 1 : 0;
  return std::min(1.0, std::log1p(score) / std::log1p(full));
}

Plan Decide(const Options& o, const PeerHistory& history,
            const SessionCounters& session, const Capacity& capacity,
            base::SteadyTime now) {
  Plan p;
  p.score = Score(o, history, session);
  p.level = LevelFromScore(o, p.score);
  double bot = NonNegative(o.bot_score);
  if (bot > 0 && EvidenceScore(o, history, session) >= bot) {
    p.sender_class = SenderClass::kBot;
  } else if (history.connections > 0) {
    p.sender_class = SenderClass::kReturning;
  }
  p.verdict = VerdictFor(o, p.sender_class);
  p.reject_early_talker = o.reject_early_talkers;

  p.mode = o.mode;
  if (p.mode == Mode::kEscalate) {
    p.mode = p.level >= o.give_up_level ? Mode::kGiveUp : Mode::kKeepTalking;
  }
  const bool keep = p.mode == Mode::kKeepTalking;
  const double scale = keep
                           ? std::min(1.0, NonNegative(o.keep_talking_fraction))
                           : NonNegative(o.give_up_factor);
  const double cap = NonNegative(o.max_delay);
  for (int i = 0; i < kStageCount; ++i) {
    p.ceilings[i] = kClientTimeout[i] * scale;
    if (cap > 0) p.ceilings[i] = std::min(p.ceilings[i], cap);
  }

  const double load = Load(capacity);
  const double shed_at = NonNegative(o.shed_at);
  const double degrade_at = std::min(NonNegative(o.degrade_at), shed_at);
  if (shed_at > 0 && load >= shed_at) {
    p.shed = true;
    p.degraded = true;
    return p;
  }
  p.degraded = load >= degrade_at;
  // Delays shrink linearly from full at degrade_at to none at shed_at.
  double squeeze = 1;
  if (p.degraded) {
    squeeze =
        shed_at > degrade_at ? (shed_at - load) / (shed_at - degrade_at) : 0;
  }

  if (keep)
    p.hold_deadline = session.started + Seconds(NonNegative(o.hold_budget));
  p.held = o.enabled && squeeze > 0 && (!keep || now < p.hold_deadline) &&
           SlotFree(session.held, capacity.held, o.max_held);
  if (!p.held) return p;

  const std::array<const DelayRange*, kStageCount> bases = {
      &o.greeting, &o.helo, &o.mail, &o.rcpt, &o.data, &o.data_end, &o.reply};
  const double jitter = std::min(1.0, NonNegative(o.jitter));
  const double level = p.level;
  for (int i = 0; i < kStageCount; ++i) {
    double ceil = p.ceilings[i];
    double bmin = NonNegative(bases[i]->min);
    double bmax = std::max(bmin, NonNegative(bases[i]->max));
    double lo = bmin + level * (ceil * (1 - jitter) - bmin);
    double hi = bmax + level * (ceil - bmax);
    hi = std::min(hi, ceil);
    lo = std::min(lo, hi);
    p.delays[i] = {lo * squeeze, hi * squeeze};
  }

  if (o.stutter_for > 0) {
    p.stutter_until = session.started + Seconds(NonNegative(o.stutter_for));
  }
  p.stutter =
      o.stutter && !p.degraded && o.stutter_bytes > 0 &&
      NonNegative(o.stutter_interval) > 0 && now < p.stutter_until &&
      SlotFree(session.stuttering, capacity.stuttering, o.max_stuttering);
  if (p.stutter) {
    p.stutter_bytes = o.stutter_bytes;
    double iv = NonNegative(o.stutter_interval);
    p.stutter_interval = Seconds(cap > 0 ? std::min(iv, cap) : iv);
  }

  if (!p.degraded) {
    p.receive_window = std::max(0, o.data_window);
    if (o.data_read_bytes > 0) {
      p.data_read_bytes = o.data_read_bytes;
      double base = NonNegative(o.data_read_interval);
      double ceil = kDataBlockTimeout * scale;
      if (cap > 0) ceil = std::min(ceil, cap);
      double interval = std::min(base + level * (ceil - base), ceil);
      p.data_read_interval = Seconds(std::max(0.0, interval));
    }
  }
  return p;
}

Pacing Plan::Pace(Stage stage, size_t reply_bytes, base::SteadyTime now,
                  Random& random) const {
  Pacing out;
  if (!held) return out;
  const bool keep = mode == Mode::kKeepTalking;
  if (keep && now >= hold_deadline) return out;
  const int i = static_cast<int>(stage);
  double limit = ceilings[i];
  if (keep && hold_deadline != base::SteadyTime::max()) {
    limit = std::min(limit, ToSeconds(hold_deadline - now));
  }
  const DelayRange& r = delays[i];
  double d = r.min;
  if (r.max > r.min) d += (r.max - r.min) * random.Uniform();
  d = std::min(d, limit);

  if (stutter && now < stutter_until && stutter_bytes > 0 &&
      reply_bytes > static_cast<size_t>(stutter_bytes)) {
    const double iv = ToSeconds(stutter_interval);
    size_t chunk = static_cast<size_t>(stutter_bytes);
    auto stutter_time = [&](size_t c) {
      return static_cast<double>((reply_bytes + c - 1) / c - 1) * iv;
    };
    if (keep && stutter_time(chunk) > limit) {
      // Speed up: at most floor(limit / iv) + 1 chunks fit.
      size_t max_chunks = static_cast<size_t>(std::floor(limit / iv)) + 1;
      chunk = (reply_bytes + max_chunks - 1) / max_chunks;
    }
    if (chunk < reply_bytes) {
      out.chunk_bytes = static_cast<int>(chunk);
      out.interval = stutter_interval;
      if (keep) d = std::max(0.0, std::min(d, limit - stutter_time(chunk)));
    }
  }
  out.delay = Seconds(d);
  return out;
}

Plan::ReadPacing Plan::DataRead(base::SteadyTime now) const {
  if (!held || data_read_bytes <= 0) return {};
  if (mode == Mode::kKeepTalking && now >= hold_deadline) return {};
  return {data_read_bytes, data_read_interval};
}

}  // namespace tarpit
