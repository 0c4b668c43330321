-- API v1: publication times for stable public pagination, suspension, retired
-- editions, ordered and removable images, idempotent POSTs, and a narrower
-- application role.

-- Publication is a point in time: the public list is ordered by it, with the
-- id breaking ties, so equal timestamps are neither skipped nor repeated.
ALTER TABLE artworks ADD COLUMN published_at timestamptz;
UPDATE artworks SET published_at = updated_at WHERE status = 'published';
ALTER TABLE artworks ADD CONSTRAINT artworks_published_has_time CHECK ((status = 'published') = (published_at IS NOT NULL));
DROP INDEX artworks_public_idx;
CREATE INDEX artworks_public_idx ON artworks (published_at DESC, id DESC) WHERE status = 'published' AND deleted_at IS NULL;

-- A slug is unique among live artworks only: a soft-deleted work does not
-- hold its slug hostage (undoing the delete re-checks it).
ALTER TABLE artworks DROP CONSTRAINT artworks_slug_key;
CREATE UNIQUE INDEX artworks_live_slug_key ON artworks (slug) WHERE deleted_at IS NULL;

-- A suspended artist's works leave the public gallery and their tokens stop working.
ALTER TABLE artists ADD COLUMN suspended_at timestamptz;
ALTER TABLE artists ADD COLUMN suspension_reason text CHECK (length(suspension_reason) <= 500);

-- A retired edition is no longer sold; its sales stay on record.
ALTER TABLE print_editions ADD COLUMN retired_at timestamptz;

-- Images have an order (the first is the primary image) and are removed by
-- marking them; retention deletes their objects, then the row.
ALTER TABLE images ADD COLUMN position integer NOT NULL DEFAULT 0 CHECK (position >= 0);
ALTER TABLE images ADD COLUMN deleted_at timestamptz;
UPDATE images i SET position = n.rank - 1
  FROM (SELECT id, row_number() OVER (PARTITION BY artwork_id ORDER BY created_at, id) AS rank FROM images) n
 WHERE n.id = i.id;
CREATE INDEX images_order_idx ON images (artwork_id, position, id) WHERE deleted_at IS NULL;

CREATE INDEX audit_log_actor_idx ON audit_log (actor, at);
CREATE INDEX audit_log_request_idx ON audit_log (request_id) WHERE request_id IS NOT NULL;

-- A POST retried with the same Idempotency-Key gets the first answer back.
-- The row commits in the same transaction as the write it records, so a
-- failed write leaves no key behind and a concurrent retry waits on the
-- unique index instead of writing twice. Not backed up: keys live a day.
CREATE TABLE idempotency_keys (
    token_id        uuid NOT NULL REFERENCES api_tokens (id) ON DELETE CASCADE,
    key             text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    request_sha256  text NOT NULL CHECK (request_sha256 ~ '^[0-9a-f]{64}$'),
    status          smallint,
    location        text,
    -- The exact bytes first answered, so a replay is byte-identical (and so is its ETag).
    body            text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (token_id, key)
);
CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);

-- A revoked token stays revoked, whoever asks; and a token's identity
-- (digest, scope, owner) never changes after it is issued.
CREATE FUNCTION api_tokens_stay_revoked() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.revoked_at IS NOT NULL AND NEW.revoked_at IS DISTINCT FROM OLD.revoked_at THEN
        RAISE EXCEPTION 'a revoked token cannot be changed back' USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER api_tokens_stay_revoked BEFORE UPDATE ON api_tokens FOR EACH ROW EXECUTE FUNCTION api_tokens_stay_revoked();

-- Least privilege: the application role soft-deletes; hard deletion is the
-- retention policy's, and only of rows the policy allows, through functions
-- that run as the owner and check the row's state themselves.
REVOKE DELETE ON artists, artworks, print_editions, images, api_tokens FROM gallery_app;
REVOKE UPDATE ON api_tokens FROM gallery_app;
GRANT UPDATE (last_used_at, revoked_at) ON api_tokens TO gallery_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON idempotency_keys TO gallery_app;

CREATE FUNCTION purge_deleted_artwork(artwork uuid, deleted_before timestamptz) RETURNS boolean
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    WITH gone AS (DELETE FROM artworks WHERE id = artwork AND deleted_at < deleted_before RETURNING 1)
    SELECT EXISTS (SELECT 1 FROM gone)
$$;

-- Only an image nobody can see any more: removed, failed, or an upload never made.
CREATE FUNCTION purge_image(image uuid) RETURNS boolean
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    WITH gone AS (
        DELETE FROM images WHERE id = image AND (deleted_at IS NOT NULL OR status IN ('failed', 'pending')) RETURNING 1
    )
    SELECT EXISTS (SELECT 1 FROM gone)
$$;

CREATE FUNCTION purge_dead_tokens(dead_before timestamptz) RETURNS bigint
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    WITH gone AS (DELETE FROM api_tokens WHERE expires_at < dead_before OR revoked_at < dead_before RETURNING 1)
    SELECT count(*) FROM gone
$$;

REVOKE ALL ON FUNCTION purge_deleted_artwork(uuid, timestamptz), purge_image(uuid), purge_dead_tokens(timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION purge_deleted_artwork(uuid, timestamptz), purge_image(uuid), purge_dead_tokens(timestamptz) TO gallery_app;
