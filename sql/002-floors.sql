-- 002-floors: generation floors, schema version 2.
--
-- A migration step (see 001-init.sql): run once, in one transaction that
-- also sets PRAGMA user_version = 2.
--
-- When the last row of a key leaves objects (a remove, or a full sync its
-- node no longer reports), a floor remembers it: gen is the lowest
-- generation of the key the master may index again.  A node that missed the
-- DROP_GEN of an older generation (the notice is one-way, the master keeps
-- unconfirmed ones in memory only), or was declared dead while a newer put
-- went elsewhere, may re-sync that generation after a master restart; with
-- no row left, only the floor tells the master it is old
-- (docs/architecture.md, Restart).  The trigger writes it in the transaction
-- of the delete: a committed remove is never without its floor.  The master
-- empties the table when no node can hold an unknown older generation (every
-- node re-synced, every DROP_GEN confirmed), so it holds at most one row per
-- key removed since then.
CREATE TABLE floors (
	key  BLOB PRIMARY KEY NOT NULL CHECK (length(key) BETWEEN 1 AND 1024),
	gen  INTEGER NOT NULL CHECK (gen >= 1)
) STRICT, WITHOUT ROWID;

-- A put writes its row before it deletes the older ones (meta.c, put_row):
-- a superseded row leaves no floor, the newer row is one.
CREATE TRIGGER objects_floor AFTER DELETE ON objects
WHEN NOT EXISTS (SELECT 1 FROM objects WHERE key = old.key)
BEGIN
	INSERT INTO floors (key, gen) VALUES (old.key, old.gen + 1)
	ON CONFLICT (key) DO UPDATE SET gen = max(gen, excluded.gen);
END;
