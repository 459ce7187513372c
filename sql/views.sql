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
-- (wall clock), waiting for the master's reaper.
CREATE VIEW v_leases AS
SELECT CASE WHEN instr(l.key, x'00') = 0
             AND CAST(l.key AS TEXT) NOT GLOB '*[^ -~]*'
             AND CAST(l.key AS TEXT) NOT GLOB 'hex:*'
            THEN CAST(l.key AS TEXT)
            ELSE 'hex:' || lower(hex(l.key)) END AS key,
       l.gen,
       l.holder,
       l.part_i,
       l.part_n,
       l.deadline_ms,
       l.deadline_ms < CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER) AS expired
  FROM leases l
 ORDER BY l.deadline_ms;
