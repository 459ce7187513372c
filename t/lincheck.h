/*
 * t/lincheck.h: a linearizability checker for a history of puts, gets and
 * removes of keys, each key a register (P-compositionality: a history is
 * linearizable iff the history of every key is).  The search is Wing &
 * Gong's with Lowe's just-in-time linearization and a memo of (operations
 * linearized, register state), as in Porcupine; a step limit turns an
 * exponential search into a clear "inconclusive".  Pure C, no kvnode
 * types: t/sim (virtual time) and t/linearize (real processes) both feed it.
 *
 * What the caller records per operation (struct lin_op):
 * - a call and a return time on one clock (t_call < t_ret; any unit);
 * - a put (LIN_WRITE) of a value that identifies its writer uniquely (for
 *   the key); a get (LIN_READ) of the value it returned, LIN_ABSENT for
 *   "not found"; a remove (LIN_REMOVE) of one named value or of whatever
 *   is there (LIN_ANYVAL), acknowledged as done.  A remove that answered
 *   "not found" is a read of LIN_ABSENT; a get that failed says nothing
 *   and is left out;
 * - a put or remove that failed or timed out after it may have reached a
 *   node MAY or may not have taken effect: t_ret = LIN_NEVER (it completes
 *   at +infinity, so it may also be left out);
 * - faults the design lets destroy or hide data (t/sim): LIN_LOSE (a node
 *   incarnation died: a value whose home it was is gone, unless it is the
 *   one the LOSE names as kept on disk: see to_home), LIN_HIDE and
 *   LIN_UNHIDE (a node declared dead: its values leave routing, and may
 *   come back when it re-attaches), LIN_REVIVE (a master crash lost a
 *   plain put not yet committed: the older value master.db still names may
 *   come back, with its home, into a key that has no value any more).  A
 *   write names its home (0: none).
 *   A fault whose instant is not known exactly is `optional` within the
 *   window it may have happened in.
 */
#ifndef KVN_T_LINCHECK_H
#define KVN_T_LINCHECK_H

#include <stddef.h>
#include <stdint.h>

enum lin_kind { LIN_WRITE = 1, LIN_READ, LIN_REMOVE, LIN_LOSE, LIN_HIDE, LIN_UNHIDE, LIN_REVIVE };

#define LIN_ABSENT 0              /* value: "not found" */
#define LIN_ANYVAL UINT64_MAX     /* LIN_REMOVE: of whatever value the key has */
#define LIN_NEVER UINT64_MAX      /* t_ret: may or may not have taken effect */

struct lin_op {
	int key;        /* histories are split by key */
	int kind;       /* enum lin_kind */
	int client;     /* for reports only (-1: a fault) */
	int status;     /* for reports only: what the call returned */
	uint64_t value; /* WRITE, READ, REMOVE: see above; != LIN_ABSENT for WRITE */
	uint64_t home;  /* WRITE: where the value lives; LOSE/HIDE/UNHIDE: which home */
	uint64_t t_call, t_ret;
	int optional;   /* may be left out, but takes effect within [t_call, t_ret]
			 * if at all (the fault windows of t/sim); t_ret ==
			 * LIN_NEVER implies it */
	/* LOSE: the value (!= LIN_ABSENT) that survives the death (it is on
	 * the node's disk): if it is the key's value, its home becomes
	 * to_home (the node's next incarnation; HIDE / UNHIDE of to_home
	 * then say when routing lost and found it again); any other value of
	 * the home is lost */
	uint64_t to_home;
};

enum lin_verdict { LIN_OK = 0, LIN_VIOLATION, LIN_INCONCLUSIVE };

/* Formats a value for reports (NULL: hex). */
typedef void (*lin_fmt_fn)(void *arg, uint64_t value, char *out, size_t cap);

struct lin_opts {
	uint64_t step_limit; /* per key; 0: LIN_DEFAULT_STEPS */
	lin_fmt_fn fmt;     /* values */
	lin_fmt_fn key_fmt; /* keys (NULL: the number) */
	void *fmt_arg;      /* of both */
	const char *unit; /* of the times in reports ("ms", "us") */
	uint64_t t_base;  /* subtracted from the times in reports */
	unsigned t_shift; /* then shifted right by this */
	const char *(*status_name)(int status); /* NULL: the number */
};

#define LIN_DEFAULT_STEPS 2000000u

struct lin_stats {
	uint64_t keys, ops, ambiguous; /* histories (keys) checked; their ops; ops with t_ret LIN_NEVER */
	uint64_t steps, max_steps;     /* search steps, in all and for the worst key */
	uint64_t violations, inconclusive; /* keys */
	/* impossible operations (the first of a key; then, each left out in
	 * turn, the next ones, up to 16 a key): a get (or remove) that read
	 * "not found"; a get of a value it cannot see any more (or not yet);
	 * anything else (a remove of a value no longer there) */
	uint64_t v_absent, v_value, v_other;
};

/* One key's history (ops[i].key is ignored): LIN_OK, LIN_VIOLATION or
 * LIN_INCONCLUSIVE (the step limit was reached).  *steps (may be NULL)
 * gets the steps taken.  ops is not changed. */
int lin_check_key(const struct lin_op *ops, size_t n, uint64_t step_limit, uint64_t *steps);

/* Every key of a history.  Adds to *st.  For each key that is not
 * linearizable, appends to report (cap bytes, always terminated; NULL: no
 * text) a paragraph: the key, the impossible operation (the first one, in
 * call order, that the operations before it cannot explain: usually a
 * stale or lost read), and the shortest window of operations ending there
 * that no starting value explains, after the operations called earlier
 * that still ran then (they may be what explains the others' results);
 * then, with that operation left out, the next impossible one, a line each.
 * Returns the number of keys that are
 * not linearizable (inconclusive ones are counted in st, not returned). */
int lin_check_history(const struct lin_op *ops, size_t n, const struct lin_opts *o, struct lin_stats *st,
		      char *report, size_t cap);

const char *lin_kind_name(int kind);

#endif
