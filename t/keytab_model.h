/*
 * t/keytab_model.h: what the key table's model (t/keytab_model_m.c: its
 * state, each call's predicted answer, the tier steps) and the random run
 * that checks the table against it (t/keytab_model.c) share.
 */
#ifndef KVN_T_KEYTAB_MODEL_H
#define KVN_T_KEYTAB_MODEL_H

#include "keytab_env.h"

#define MK 6    /* keys */
#define MS 512   /* model slots */
#define ML 512   /* model leases */
#define MPAGES 96
#define MEXT 16

enum { M_FREE = 0, M_PENDING, M_COMMITTED, M_DOOMED };

struct mslot {
	int state, key, leases, pins, in_dram, on_disk, offloading, promoting, queue;
	uint64_t gen, size, pages, deadline, touch, expires, pin_dl, doomseq, pinseq;
	int next;
	struct alloc_extent ext[MEXT]; /* its pages, while it has them */
};
struct mlease {
	int active, slot;
	uint64_t id, deadline;
};

/* Values seen by a keytab_evict / keytab_expire callback. */
struct victims {
	int n;
	int key[16];
	uint64_t gen[16];
};

extern struct mslot ms[MS];
extern struct mlease ml[ML];
extern int nml;
extern uint64_t now, m_maxgen[MK], m_touch, m_doomseq, m_pinseq;
extern struct keytab_stats mst; /* the model's counters, named as the stats */
/* tombstones (keytab_supersede): gen (0 none) and deadline per key; one TTL,
 * as the peer uses, so deadlines follow the order they were set in */
#define TOMB_TTL 40
extern uint64_t m_tomb[MK], m_tomb_dl[MK];
extern uint64_t hk_want[64], hk_got[64];
extern int nhk_want, nhk_got, bad_hook_committed, bad_queue;

uint64_t rnd(void);
uint8_t seed_of(int i);
int m_find(int key, int state, uint64_t gen);
int m_busy(int key, uint64_t gen, int promoting);
uint64_t m_held(int i);
uint64_t m_used(void);
int m_expired(int i);
int m_lru(int i);
int m_expect(int k, int c, uint64_t gen);
void m_free(int i);
void m_retire(int i);
void m_doomed_check(int i);
void m_lease_drop(int j);
void mkey(char *buf, int k);
int key_of(const void *key, size_t klen);
void on_disk_free(void *arg, const void *key, size_t klen, uint64_t gen, uint64_t size);
void rec_victim(void *arg, const void *key, size_t klen, uint64_t gen, uint64_t size);
int m_pages_intact(struct alloc_arena *a, int i);
void m_take_ext(int i, const struct keytab_view *v);
int m_evict_one(int k, uint64_t gen);
int m_offload_begin(int k, uint64_t gen);
int m_drop_dram(int k, uint64_t gen);
/* One step of the tier calls (ops 10..19); returns want, sets *got. */
int tier_step(struct keytab *kt, struct alloc_arena *a, int op, int k, char *key, int *got,
	      int *bad_pick, int *bad_expire);

#endif
