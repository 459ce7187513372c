-- 001-init: the master's metadata schema, version 1.
--
-- A migration step: kvnode runs it once, in one transaction that also sets
-- PRAGMA user_version = 1 (see docs/metadata.md).  Never edit a released
-- step; add sql/NNN-name.sql instead.  Views live in sql/views.sql.
--
-- Tables are STRICT so a wrong type is an error, not a silent conversion.
-- Integers are SQLite's signed 64 bits: generations stay below 2^63 because
-- epochs are capped at 2^31-1 (gen = epoch << 32 | counter).

-- One row per node that ever attached.  Capacities and usage come with each
-- heartbeat; last_seen_ms is wall-clock milliseconds.
CREATE TABLE nodes (
	node_id      TEXT PRIMARY KEY NOT NULL CHECK (length(node_id) BETWEEN 1 AND 64),
	role         TEXT NOT NULL CHECK (length(role) <= 15),
	addr         TEXT NOT NULL CHECK (length(addr) <= 127),
	dram_total   INTEGER NOT NULL DEFAULT 0 CHECK (dram_total >= 0),
	dram_used    INTEGER NOT NULL DEFAULT 0 CHECK (dram_used >= 0),
	disk_total   INTEGER NOT NULL DEFAULT 0 CHECK (disk_total >= 0),
	disk_used    INTEGER NOT NULL DEFAULT 0 CHECK (disk_used >= 0),
	last_seq     INTEGER NOT NULL DEFAULT 0 CHECK (last_seq >= 0),
	last_seen_ms INTEGER NOT NULL DEFAULT 0,
	state        TEXT NOT NULL DEFAULT 'alive' CHECK (state IN ('alive', 'dead'))
) STRICT;

-- The committed set: one row per live (key, gen).  commit_seq is the rowid;
-- AUTOINCREMENT keeps it from ever reusing the id of a deleted row, so
-- ORDER BY commit_seq is commit order for good (the lease queue's order).
-- A row updated in place (tier move, full sync) keeps its commit_seq.
CREATE TABLE objects (
	commit_seq   INTEGER PRIMARY KEY AUTOINCREMENT,
	key          BLOB NOT NULL CHECK (length(key) BETWEEN 1 AND 1024),
	gen          INTEGER NOT NULL CHECK (gen >= 1),
	node_id      TEXT NOT NULL REFERENCES nodes (node_id),
	tier         INTEGER NOT NULL CHECK (tier IN (0, 1)), -- 0 dram, 1 disk
	size         INTEGER NOT NULL CHECK (size >= 0),
	state        TEXT NOT NULL DEFAULT 'live' CHECK (state IN ('live', 'lost')),
	committed_ms INTEGER NOT NULL,
	-- Its index is also the "rows of this key" index (key is its prefix),
	-- so no separate index on key: one less b-tree to update per put.
	UNIQUE (key, gen)
) STRICT;
-- Rows of a node: full sync, dead-node marking, v_capacity.
CREATE INDEX objects_node ON objects (node_id, state);

-- Generation epochs, one row per master start.  The cap keeps
-- gen = epoch << 32 | counter inside a signed 64-bit integer.
CREATE TABLE epochs (
	epoch      INTEGER PRIMARY KEY CHECK (epoch BETWEEN 1 AND 2147483647),
	started_ms INTEGER NOT NULL
) STRICT;

-- Consumer leases (DESIGN.md section 8): at most one per (key, gen).
-- Deleting the object (release, supersede, lost in a full sync) ends its
-- lease.  deadline_ms is wall-clock milliseconds, so it survives a restart.
CREATE TABLE leases (
	key         BLOB NOT NULL,
	gen         INTEGER NOT NULL,
	holder      TEXT NOT NULL,
	part_i      INTEGER NOT NULL,
	part_n      INTEGER NOT NULL,
	deadline_ms INTEGER NOT NULL,
	PRIMARY KEY (key, gen),
	FOREIGN KEY (key, gen) REFERENCES objects (key, gen) ON DELETE CASCADE,
	CHECK (part_n >= 1 AND part_i >= 0 AND part_i < part_n)
) STRICT;
CREATE INDEX leases_deadline ON leases (deadline_ms);
