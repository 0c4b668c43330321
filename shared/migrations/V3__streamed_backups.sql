-- Backups v2: a streamed object sealed in chunks, with a manifest beside it.
-- The catalog keeps the manifest's facts so a drill can compare what it
-- restores with what was recorded when the backup was taken.
ALTER TABLE backups ADD COLUMN manifest_key text;
ALTER TABLE backups ADD COLUMN object_sha256 text CHECK (object_sha256 ~ '^[0-9a-f]{64}$');
ALTER TABLE backups ADD COLUMN schema_version integer;
ALTER TABLE backups ADD COLUMN manifest jsonb;

-- A drill records how long the restore took (the measured RTO) and the
-- checksums it computed from the restored database.
ALTER TABLE restore_drills ADD COLUMN restore_ms bigint CHECK (restore_ms >= 0);
ALTER TABLE restore_drills ADD COLUMN checksums jsonb;

-- The backup role reads one consistent snapshot of everything and writes
-- nothing: backups no longer need the schema owner's credentials. Like the
-- application role it is cluster-wide, created once, given its login by the
-- migrate task.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'gallery_backup') THEN
        CREATE ROLE gallery_backup NOLOGIN;
    END IF;
EXCEPTION
    WHEN duplicate_object OR unique_violation THEN NULL;
END
$$;
GRANT USAGE ON SCHEMA public TO gallery_backup;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO gallery_backup;
-- Tables later migrations create are readable by the backup role too.
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO gallery_backup;
