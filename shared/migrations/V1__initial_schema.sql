-- Schema v1 of the gallery. The migration runs as the owning role; the functions
-- connect as `gallery_app`, which gets only the privileges granted at the end.

-- The application role is cluster-wide, so several databases (tests create one
-- each, in parallel) may race to create it: a duplicate is not an error.
-- Checking first lets an owner without CREATEROLE migrate once the role exists.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'gallery_app') THEN
        CREATE ROLE gallery_app NOLOGIN;
    END IF;
EXCEPTION
    WHEN duplicate_object OR unique_violation THEN NULL;
END
$$;

CREATE TABLE artists (
    id          uuid PRIMARY KEY,
    name        text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 200),
    -- The only personal data the gallery holds: kept out of logs and renditions.
    email       text NOT NULL CHECK (email ~ '^[^@\s]+@[^@\s]+\.[^@\s]+$' AND length(email) <= 320),
    bio         text CHECK (length(bio) <= 10000),
    website     text CHECK (website ~ '^https://' AND length(website) <= 2000),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX artists_email_key ON artists (lower(email));

CREATE TABLE artworks (
    id           uuid PRIMARY KEY,
    artist_id    uuid NOT NULL REFERENCES artists (id) ON DELETE RESTRICT,
    title        text NOT NULL CHECK (length(btrim(title)) BETWEEN 1 AND 300),
    slug         text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$' AND length(slug) <= 120),
    description  text CHECK (length(description) <= 20000),
    medium       text CHECK (length(medium) <= 200),
    year         integer CHECK (year BETWEEN 1000 AND 3000),
    width_mm     integer CHECK (width_mm > 0),
    height_mm    integer CHECK (height_mm > 0),
    status       text NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'published', 'archived')),
    deleted_at   timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX artworks_artist_idx ON artworks (artist_id);
-- The public gallery lists published, not-deleted artworks newest first.
CREATE INDEX artworks_public_idx ON artworks (created_at DESC) WHERE status = 'published' AND deleted_at IS NULL;
CREATE INDEX artworks_deleted_idx ON artworks (deleted_at) WHERE deleted_at IS NOT NULL;

CREATE TABLE print_editions (
    id              uuid PRIMARY KEY,
    artwork_id      uuid NOT NULL REFERENCES artworks (id) ON DELETE CASCADE,
    edition_size    integer NOT NULL CHECK (edition_size BETWEEN 1 AND 100000),
    paper           text NOT NULL CHECK (length(btrim(paper)) BETWEEN 1 AND 200),
    price_minor     bigint NOT NULL CHECK (price_minor >= 0),
    currency        char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    sold_count      integer NOT NULL DEFAULT 0 CHECK (sold_count >= 0),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT print_editions_not_oversold CHECK (sold_count <= edition_size)
);
CREATE INDEX print_editions_artwork_idx ON print_editions (artwork_id);

CREATE TABLE images (
    id              uuid PRIMARY KEY,
    artwork_id      uuid NOT NULL REFERENCES artworks (id) ON DELETE CASCADE,
    original_key    text NOT NULL UNIQUE CHECK (length(original_key) BETWEEN 1 AND 1024),
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'processing', 'ready', 'failed')),
    -- A JSON array of {format, long_edge, width, height, bytes, sha256, key}.
    renditions      jsonb NOT NULL DEFAULT '[]'::jsonb CHECK (jsonb_typeof(renditions) = 'array'),
    failure_reason  text,
    content_sha256  text CHECK (content_sha256 ~ '^[0-9a-f]{64}$'),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT images_failure_has_reason CHECK ((status = 'failed') = (failure_reason IS NOT NULL))
);
CREATE INDEX images_artwork_idx ON images (artwork_id);
CREATE INDEX images_status_idx ON images (status) WHERE status <> 'ready';

CREATE TABLE api_tokens (
    id            uuid PRIMARY KEY,
    artist_id     uuid REFERENCES artists (id) ON DELETE CASCADE,
    -- SHA-256 of the secret; the secret itself is shown once and never stored.
    token_sha256  text NOT NULL UNIQUE CHECK (token_sha256 ~ '^[0-9a-f]{64}$'),
    scope         text NOT NULL CHECK (scope IN ('artist', 'admin')),
    label         text NOT NULL DEFAULT '' CHECK (length(label) <= 200),
    expires_at    timestamptz NOT NULL,
    revoked_at    timestamptz,
    last_used_at  timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    -- An artist token always belongs to an artist; an admin token to nobody.
    CONSTRAINT api_tokens_scope_owner CHECK ((scope = 'artist') = (artist_id IS NOT NULL))
);
CREATE INDEX api_tokens_artist_idx ON api_tokens (artist_id);
CREATE INDEX api_tokens_expiry_idx ON api_tokens (expires_at);

CREATE TABLE audit_log (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    actor       text NOT NULL CHECK (length(actor) BETWEEN 1 AND 200),
    action      text NOT NULL CHECK (length(action) BETWEEN 1 AND 100),
    target      text NOT NULL CHECK (length(target) <= 300),
    request_id  text,
    detail      jsonb NOT NULL DEFAULT '{}'::jsonb,
    at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_log_at_idx ON audit_log (at);
CREATE INDEX audit_log_target_idx ON audit_log (target);

CREATE TABLE backups (
    id                uuid PRIMARY KEY,
    object_key        text NOT NULL UNIQUE,
    object_version    text,
    status            text NOT NULL CHECK (status IN ('running', 'succeeded', 'failed')),
    started_at        timestamptz NOT NULL DEFAULT now(),
    finished_at       timestamptz,
    bytes             bigint CHECK (bytes >= 0),
    plaintext_sha256  text CHECK (plaintext_sha256 ~ '^[0-9a-f]{64}$'),
    row_counts        jsonb,
    error             text,
    CONSTRAINT backups_finished CHECK ((status = 'running') = (finished_at IS NULL))
);
CREATE INDEX backups_started_idx ON backups (started_at DESC);

CREATE TABLE restore_drills (
    id           uuid PRIMARY KEY,
    backup_id    uuid REFERENCES backups (id) ON DELETE SET NULL,
    status       text NOT NULL CHECK (status IN ('running', 'succeeded', 'failed')),
    started_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    row_counts   jsonb,
    error        text,
    CONSTRAINT restore_drills_finished CHECK ((status = 'running') = (finished_at IS NULL))
);
CREATE INDEX restore_drills_started_idx ON restore_drills (started_at DESC);

-- Least privilege for the application role: data it manages, and an append-only audit log.
GRANT USAGE ON SCHEMA public TO gallery_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON artists, artworks, print_editions, images, api_tokens TO gallery_app;
GRANT SELECT, INSERT, UPDATE ON backups, restore_drills TO gallery_app;
GRANT SELECT, INSERT ON audit_log TO gallery_app;
REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM gallery_app;
