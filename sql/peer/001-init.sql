-- peer.db schema version 1: the index of a peer's disk tier (docs/disk-tier.md).
-- One row per file {disk_dir}/{file}; a row is written only after its file
-- is durable (fsynced, renamed, directory fsynced), so a row always names a
-- whole file, and recovery drops rows whose file is missing or of the wrong
-- size.  Applied by the same migration code as master.db (meta_open.c),
-- from its own table (disk_sql_files).
CREATE TABLE disk_files (
	key BLOB NOT NULL,              -- the key's bytes
	gen INTEGER NOT NULL,           -- its generation (uint64 stored as int64)
	size INTEGER NOT NULL,          -- value bytes (the file is header + size)
	checksum INTEGER NOT NULL,      -- XXH3-64 of the value (uint64 as int64)
	expires_wall_ms INTEGER NOT NULL DEFAULT 0, -- 0: never expires
	flags INTEGER NOT NULL DEFAULT 0, -- DISK_F_* (1: durable work-queue item)
	file TEXT NOT NULL,             -- "{2 hex}/{keyhash}.g{gen}" under disk_dir
	PRIMARY KEY (key, gen)
) STRICT, WITHOUT ROWID;
