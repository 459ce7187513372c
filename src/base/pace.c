/*
 * pace: how often something may happen.  Retry and reconnect loops take
 * their next delay from kvn_backoff (exponential, full jitter, capped), so
 * a fleet of peers that lost their master does not come back in lock-step;
 * repeated warnings go through kvn_ratelimit, which lets a burst through
 * and then counts what it suppressed, so a flood becomes one summary line.
 * Neither locks: each instance belongs to one actor (one loop thread).
 */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include "base.h"

void kvn_backoff_init(struct kvn_backoff *b, uint64_t min_ms, uint64_t max_ms)
{
	memset(b, 0, sizeof *b);
	b->min_ms = min_ms ? min_ms : 1;
	b->max_ms = max_ms < b->min_ms ? b->min_ms : max_ms;
	b->cur_ms = b->min_ms;
}

void kvn_backoff_reset(struct kvn_backoff *b)
{
	b->cur_ms = b->min_ms;
	b->attempts = 0;
}

/* Delay before the next attempt: uniform in [cur/2, cur] ("equal jitter":
 * never less than half the step, so a loop cannot spin at the floor), then
 * the step doubles up to max_ms. */
/* Tests only (the simulation): a seeded, reproducible jitter source, so a
 * seed replays the same schedule.  0: back to getrandom.  The simulation
 * runs on one thread, like kvn_clock_virtual. */
static uint64_t jitter_state;

void kvn_jitter_seed(uint64_t seed)
{
	__atomic_store_n(&jitter_state, seed, __ATOMIC_RELAXED);
}

uint64_t kvn_jitter_u64(void)
{
	uint64_t x = __atomic_load_n(&jitter_state, __ATOMIC_RELAXED), r = 0;
	if (x) { /* xorshift64 */
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		__atomic_store_n(&jitter_state, x, __ATOMIC_RELAXED);
		return x;
	}
	if (kvn_random(&r, sizeof r) != 0)
		r = kvn_now_ns(); /* jitter only, not a secret */
	return r;
}

uint64_t kvn_backoff_next(struct kvn_backoff *b)
{
	uint64_t r = kvn_jitter_u64(), cur = b->cur_ms, half = cur / 2;
	uint64_t d = half + (cur - half ? r % (cur - half + 1) : 0);
	b->cur_ms = cur > b->max_ms / 2 ? b->max_ms : cur * 2;
	b->attempts++;
	return d ? d : 1;
}

void kvn_ratelimit_init(struct kvn_ratelimit *rl, uint64_t interval_ms, uint32_t burst)
{
	memset(rl, 0, sizeof *rl);
	rl->interval_ms = interval_ms;
	rl->burst = burst ? burst : 1;
}

/* 1: log now (*suppressed gets how many were dropped since the last line
 * that was let through, for a "(N more suppressed)" suffix); 0: drop. */
int kvn_ratelimit_ok(struct kvn_ratelimit *rl, uint64_t *suppressed)
{
	uint64_t now = kvn_now_ms();
	if (rl->window_start_ms == 0 || now - rl->window_start_ms >= rl->interval_ms) {
		rl->window_start_ms = now ? now : 1;
		rl->used = 0;
	}
	if (rl->used < rl->burst) {
		rl->used++;
		if (suppressed)
			*suppressed = rl->suppressed;
		rl->suppressed = 0;
		return 1;
	}
	rl->suppressed++;
	return 0;
}
