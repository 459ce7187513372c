-- Operator views of peer.db (docs/metadata.md, "peer.db"): re-created at every
-- open, never used by the code.  sqlite3 var/peer.db 'select * from v_disk'
CREATE VIEW v_disk AS
SELECT CAST(key AS TEXT) AS key, hex(key) AS key_hex, gen, size,
       printf('%016x', checksum) AS checksum,
       CASE WHEN expires_wall_ms = 0 THEN NULL
            ELSE strftime('%Y-%m-%dT%H:%M:%fZ', expires_wall_ms / 1000.0, 'unixepoch') END AS expires,
       flags, file
FROM disk_files;
CREATE VIEW v_disk_totals AS
SELECT count(*) AS files, coalesce(sum(size), 0) AS value_bytes,
       sum(flags & 1 != 0) AS queue_items
FROM disk_files;
