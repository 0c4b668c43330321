-- Retention expires old backups: the object versions are deleted, the row stays
-- as the record that the backup existed and when it was removed.
ALTER TABLE backups ADD COLUMN expired_at timestamptz;
ALTER TABLE backups ADD CONSTRAINT backups_expired_after_finish CHECK (expired_at IS NULL OR finished_at IS NOT NULL);

-- Backups record the schema version they were taken at.
GRANT SELECT ON refinery_schema_history TO gallery_app;
