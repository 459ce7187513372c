-- views: read-only views for operators, e.g. while kvnode runs:
--   sqlite3 var/master.db 'select * from v_capacity'
--
-- Not a migration: at every open kvnode drops every view named v_* and runs
-- this file in one transaction, so changing a view needs no schema version.
-- Runs standalone too: sqlite3 var/master.db < sql/views.sql
--
-- Keys are shown as text when every byte is printable ASCII (0x20-0x7e),
-- else as 'hex:' || lower(hex(key)), the form log lines use; a printable key
-- that itself starts with 'hex:' is shown in hex too, so forms never collide.

DROP VIEW IF EXISTS v_capacity;
DROP VIEW IF EXISTS v_objects;
DROP VIEW IF EXISTS v_leases;
DROP VIEW IF EXISTS v_queue;

-- Per node: DRAM and disk capacity, usage and free space (as the node last
-- reported them), and what the committed set holds there (live rows only;
-- lost rows belong to a dead node, or one that left): every live object,
-- then those on its disk tier (tier 1), which are the ones that come back
-- when a stopped or crashed node restarts.
CREATE VIEW v_capacity AS
SELECT n.node_id,
       n.state,
       n.dram_total,
       n.dram_used,
       max(n.dram_total - n.dram_used, 0) AS dram_free,
       n.disk_total,
       n.disk_used,
       max(n.disk_total - n.disk_used, 0) AS disk_free,
       (SELECT count(*) FROM objects o
         WHERE o.node_id = n.node_id AND o.state = 'live') AS live_objects,
       (SELECT coalesce(sum(o.size), 0) FROM objects o
         WHERE o.node_id = n.node_id AND o.state = 'live') AS live_bytes,
       (SELECT count(*) FROM objects o
         WHERE o.node_id = n.node_id AND o.state = 'live' AND o.tier = 1) AS disk_objects,
       (SELECT coalesce(sum(o.size), 0) FROM objects o
         WHERE o.node_id = n.node_id AND o.state = 'live' AND o.tier = 1) AS disk_bytes
  FROM nodes n
 ORDER BY n.node_id;

-- The committed set in commit order (the lease queue's order).
CREATE VIEW v_objects AS
SELECT CASE WHEN instr(o.key, x'00') = 0
             AND CAST(o.key AS TEXT) NOT GLOB '*[^ -~]*'
             AND CAST(o.key AS TEXT) NOT GLOB 'hex:*'
            THEN CAST(o.key AS TEXT)
            ELSE 'hex:' || lower(hex(o.key)) END AS key,
       o.gen,
       o.node_id,
       CASE o.tier WHEN 0 THEN 'dram' WHEN 1 THEN 'disk' END AS tier,
       o.size,
       o.state,
       o.commit_seq,
       o.committed_ms
  FROM objects o
 ORDER BY o.commit_seq;

-- Consumer leases, soonest deadline first; expired = deadline passed
-- (wall clock): the sample is back in the pool, the row waits to be
-- replaced by its next lease, its release, or the master's next start.
CREATE VIEW v_leases AS
SELECT l.lease_id,
       CASE WHEN instr(l.key, x'00') = 0
             AND CAST(l.key AS TEXT) NOT GLOB '*[^ -~]*'
             AND CAST(l.key AS TEXT) NOT GLOB 'hex:*'
            THEN CAST(l.key AS TEXT)
            ELSE 'hex:' || lower(hex(l.key)) END AS key,
       l.gen,
       l.holder,
       l.part_i,
       l.part_n,
       l.deadline_ms,
       l.deadline_ms <= CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER) AS expired
  FROM leases l
 ORDER BY l.deadline_ms;

-- The queue per partition, for every partition count consumers used lately
-- (queue_parts): committed = samples in the pool on a live node (waiting
-- or leased), leased = of those, under a lease that has not expired,
-- consumed = released (not returned) since that count was first used,
-- lost = samples whose node is dead or no longer holds them.  A sample's
-- partition is kvn_hash64(key) % part_n, computed from part_hash as an
-- unsigned 64-bit number.  Partitions of counts up to 4096 are all listed.
CREATE VIEW v_queue AS
WITH RECURSIVE
  parts (part_n, part_i) AS (
    SELECT part_n, 0 FROM queue_parts
    UNION ALL
    SELECT part_n, part_i + 1 FROM parts WHERE part_i + 1 < part_n AND part_i + 1 < 4096
  ),
  now (ms) AS (SELECT CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)),
  q (part_n, part_i, state, leased) AS (
    SELECT p.part_n,
           CASE WHEN o.part_hash >= 0 THEN o.part_hash % p.part_n
                ELSE ((o.part_hash & 9223372036854775807) % p.part_n
                      + (9223372036854775807 % p.part_n + 1) % p.part_n) % p.part_n END,
           o.state,
           EXISTS (SELECT 1 FROM leases l, now
                    WHERE l.key = o.key AND l.gen = o.gen AND l.deadline_ms > now.ms)
      FROM objects o, queue_parts p
     WHERE o.qflags & 1
  ),
  agg (part_n, part_i, committed, leased, lost) AS (
    SELECT part_n, part_i,
           sum(state = 'live'), sum(state = 'live' AND leased), sum(state = 'lost')
      FROM q GROUP BY part_n, part_i
  ),
  keys (part_n, part_i) AS (
    SELECT part_n, part_i FROM parts
    UNION SELECT part_n, part_i FROM agg
    UNION SELECT part_n, part_i FROM queue_consumed
     WHERE part_n IN (SELECT part_n FROM queue_parts)
  )
SELECT k.part_n,
       k.part_i,
       coalesce(a.committed, 0) AS committed,
       coalesce(a.leased, 0) AS leased,
       coalesce(c.consumed, 0) AS consumed,
       coalesce(a.lost, 0) AS lost
  FROM keys k
  LEFT JOIN agg a ON a.part_n = k.part_n AND a.part_i = k.part_i
  LEFT JOIN queue_consumed c ON c.part_n = k.part_n AND c.part_i = k.part_i
 ORDER BY k.part_n, k.part_i;
