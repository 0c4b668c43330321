-- What each restore drill proved besides the newest backup: the DR replica
-- (verified end to end through the DR Region with the replica key, and its
-- age) and, once a week, an older backup restored with erasure replay.
ALTER TABLE restore_drills ADD COLUMN copies jsonb;
