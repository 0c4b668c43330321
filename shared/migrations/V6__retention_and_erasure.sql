-- Retention v2: artist erasure with a record that proves it, and owner
-- functions for the rules that remove catalogue history (audit entries,
-- expired backup records, drills).

-- An erasure: requested (by an admin through the API, or an operator), then
-- completed by retention. The record keeps no personal data: the artist's id
-- is a random UUID that names nobody once their rows are gone, and the counts
-- say what was removed. There is no foreign key: the artist row goes.
CREATE TABLE erasures (
    id                  uuid PRIMARY KEY,
    artist_id           uuid NOT NULL,
    requested_at        timestamptz NOT NULL DEFAULT now(),
    requested_by        text NOT NULL CHECK (length(requested_by) BETWEEN 1 AND 200),
    request_id          text CHECK (length(request_id) <= 200),
    completed_at        timestamptz,
    -- {"artists": 1, "artworks": n, "print_editions": n, "images": n, "api_tokens": n, ...}
    rows_deleted        jsonb,
    -- {"<bucket>": {"versions": n, "delete_markers": n}, ...}
    objects_deleted     jsonb,
    -- The gallery's backups that still held the artist when the erasure
    -- completed, with the day the rotation removes each.
    backups_containing  jsonb,
    -- Set when a restore re-applied this erasure to an older backup's data.
    replayed_at         timestamptz,
    CONSTRAINT erasures_complete CHECK ((completed_at IS NULL) = (rows_deleted IS NULL))
);
-- One open erasure per artist: asking twice returns the first.
CREATE UNIQUE INDEX erasures_open_artist ON erasures (artist_id) WHERE completed_at IS NULL;
CREATE INDEX erasures_requested_idx ON erasures (requested_at DESC, id DESC);
GRANT SELECT, INSERT, UPDATE ON erasures TO gallery_app;

-- Retention pages through images in a stable order.
CREATE INDEX images_retention_idx ON images (updated_at, id) WHERE deleted_at IS NOT NULL OR status <> 'ready';

-- Removes an artist and everything that is theirs, in one statement's
-- transaction: their works (editions and images cascade), their tokens (and
-- those tokens' idempotent answers), stored answers that carry their profile,
-- and the free text of audit entries about them (a suspension's reason). The
-- audit entries themselves stay: who did what, when, to which id.
-- Retention calls it after the artist's objects are gone; a restore calls it
-- to re-apply an erasure made after its backup. Returns what it removed.
CREATE FUNCTION erase_artist(artist uuid) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    n_answers bigint; n_audit bigint; n_editions bigint; n_images bigint;
    n_artworks bigint; n_tokens bigint; n_artists bigint;
BEGIN
    WITH gone AS (DELETE FROM idempotency_keys WHERE body LIKE '%' || artist::text || '%' RETURNING 1)
        SELECT count(*) INTO n_answers FROM gone;
    WITH changed AS (
        UPDATE audit_log SET detail = (detail - 'reason') || '{"erased": true}'::jsonb
         WHERE target = 'artist:' || artist::text AND detail ? 'reason' RETURNING 1
    ) SELECT count(*) INTO n_audit FROM changed;
    SELECT count(*) INTO n_editions FROM print_editions e JOIN artworks a ON a.id = e.artwork_id WHERE a.artist_id = artist;
    SELECT count(*) INTO n_images FROM images i JOIN artworks a ON a.id = i.artwork_id WHERE a.artist_id = artist;
    WITH gone AS (DELETE FROM artworks WHERE artist_id = artist RETURNING 1) SELECT count(*) INTO n_artworks FROM gone;
    WITH gone AS (DELETE FROM api_tokens WHERE artist_id = artist RETURNING 1) SELECT count(*) INTO n_tokens FROM gone;
    WITH gone AS (DELETE FROM artists WHERE id = artist RETURNING 1) SELECT count(*) INTO n_artists FROM gone;
    RETURN jsonb_build_object(
        'artists', n_artists, 'artworks', n_artworks, 'print_editions', n_editions, 'images', n_images,
        'api_tokens', n_tokens, 'idempotency_keys', n_answers, 'audit_entries_redacted', n_audit);
END
$$;

-- Audit entries older than the policy keeps them (never an erasure's entry:
-- those are the proof, and hold no personal data).
CREATE FUNCTION purge_audit_before(cutoff timestamptz) RETURNS bigint
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    WITH gone AS (DELETE FROM audit_log WHERE at < cutoff AND action NOT LIKE '%eras%' RETURNING 1)
    SELECT count(*) FROM gone
$$;

-- Records of backups whose objects expired, and drills, older than the policy keeps them.
CREATE FUNCTION purge_backup_records_before(cutoff timestamptz) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE n_drills bigint; n_backups bigint;
BEGIN
    WITH gone AS (DELETE FROM restore_drills WHERE finished_at < cutoff RETURNING 1) SELECT count(*) INTO n_drills FROM gone;
    WITH gone AS (DELETE FROM backups WHERE expired_at < cutoff RETURNING 1) SELECT count(*) INTO n_backups FROM gone;
    RETURN n_drills + n_backups;
END
$$;

REVOKE ALL ON FUNCTION erase_artist(uuid), purge_audit_before(timestamptz), purge_backup_records_before(timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION erase_artist(uuid), purge_audit_before(timestamptz), purge_backup_records_before(timestamptz) TO gallery_app;
