-- 003-queue: the consumer queue (DESIGN.md section 8), schema version 3.
--
-- A migration step (see 001-init.sql): run once, in one transaction that
-- also sets PRAGMA user_version = 3.
--
-- qflags: 1 a queue sample still in the pool (waiting or leased), 2 kept on
-- release (put with retain), 4 consumed and kept (released with retain or
-- put with retain: no longer in the pool, still readable).  part_hash: the
-- sample's kvn_hash64(key) (XXH64, seed 0) as a signed 64-bit integer, so
-- the plain sqlite3 shell can compute partitions (views.sql); NULL for a
-- value that never was a sample.
ALTER TABLE objects ADD COLUMN qflags INTEGER NOT NULL DEFAULT 0 CHECK (qflags BETWEEN 0 AND 7);
ALTER TABLE objects ADD COLUMN part_hash INTEGER;
-- The queue, in commit order, without reading the rest of the set.
CREATE INDEX objects_queue ON objects (commit_seq) WHERE qflags & 1;

-- Schema 1's leases table had no lease id, and nothing ever wrote it.
DROP TABLE leases;
-- Consumer leases: at most one per sample (key, gen), enforced by UNIQUE.
-- Deleting the object (release, supersede, remove) ends its lease.
-- deadline_ms is wall-clock milliseconds, so it survives a restart; an
-- expired row stays until the sample is leased again or released, or the
-- master's next start drops it.  lease_id = epoch << 32 | counter: unique
-- across master restarts.
CREATE TABLE leases (
	lease_id    INTEGER PRIMARY KEY CHECK (lease_id >= 1),
	key         BLOB NOT NULL,
	gen         INTEGER NOT NULL,
	holder      TEXT NOT NULL CHECK (length(holder) <= 64),
	part_i      INTEGER NOT NULL,
	part_n      INTEGER NOT NULL,
	deadline_ms INTEGER NOT NULL,
	UNIQUE (key, gen),
	FOREIGN KEY (key, gen) REFERENCES objects (key, gen) ON DELETE CASCADE,
	CHECK (part_n >= 1 AND part_i >= 0 AND part_i < part_n)
) STRICT;
CREATE INDEX leases_deadline ON leases (deadline_ms);

-- Floors (002-floors.sql) remember when their key's last row went: the
-- master empties only floors older than its keep window (master_floor.c),
-- because a node that removed a value itself may lose that removal in a
-- crash before its disk tier made it durable, and bring the value back
-- after a master restart; a young floor still refuses it.
ALTER TABLE floors ADD COLUMN removed_ms INTEGER NOT NULL DEFAULT 0;
DROP TRIGGER objects_floor;
CREATE TRIGGER objects_floor AFTER DELETE ON objects
WHEN NOT EXISTS (SELECT 1 FROM objects WHERE key = old.key)
BEGIN
	INSERT INTO floors (key, gen, removed_ms)
	VALUES (old.key, old.gen + 1, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER))
	ON CONFLICT (key) DO UPDATE SET gen = max(gen, excluded.gen), removed_ms = excluded.removed_ms;
END;

-- Partition counts consumers used lately (the last 8), for v_queue.
CREATE TABLE queue_parts (
	part_n  INTEGER PRIMARY KEY CHECK (part_n >= 1),
	first_ms INTEGER NOT NULL,
	last_ms INTEGER NOT NULL
) STRICT;

-- Samples consumed (released, not returned), per partition of every count
-- in queue_parts, counted from when that count was first used.
CREATE TABLE queue_consumed (
	part_n   INTEGER NOT NULL,
	part_i   INTEGER NOT NULL,
	consumed INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (part_n, part_i)
) STRICT, WITHOUT ROWID;
