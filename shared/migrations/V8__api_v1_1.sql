-- API v1.1: retired slugs that still lead to their work, sales as rows,
-- full-text search, alt text, and one database role per function.

-- Search folds accents ("Zoë" is found by "zoe"). unaccent is a trusted
-- extension: the database's owner may create it.
CREATE EXTENSION IF NOT EXISTS unaccent WITH SCHEMA public;
CREATE TEXT SEARCH CONFIGURATION gallery_search (COPY = pg_catalog.english);
ALTER TEXT SEARCH CONFIGURATION gallery_search
    ALTER MAPPING FOR hword, hword_part, word WITH public.unaccent, english_stem;

-- ---------------------------------------------------------------------------
-- Retired slugs. A published work whose slug changes keeps its old one: the
-- public read answers 301 to the current slug, so shared links survive, and
-- no other work may take it (a link must not start showing someone else's
-- work). The work may take its own old slug back.
CREATE TABLE artwork_slugs (
    slug        text PRIMARY KEY CHECK (slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$' AND length(slug) <= 120),
    artwork_id  uuid NOT NULL REFERENCES artworks (id) ON DELETE CASCADE,
    retired_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX artwork_slugs_artwork_idx ON artwork_slugs (artwork_id);

CREATE FUNCTION artworks_keep_retired_slugs() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.deleted_at IS NULL AND EXISTS (SELECT 1 FROM artwork_slugs WHERE slug = NEW.slug AND artwork_id <> NEW.id) THEN
        RAISE EXCEPTION 'the slug % is reserved for the work that used it', NEW.slug
            USING ERRCODE = 'unique_violation', CONSTRAINT = 'artworks_live_slug_key';
    END IF;
    DELETE FROM artwork_slugs WHERE slug = NEW.slug AND artwork_id = NEW.id;
    -- Only a slug the public has seen is kept, and only while no live work holds it.
    IF TG_OP = 'UPDATE' AND OLD.slug <> NEW.slug AND OLD.status = 'published'
       AND NOT EXISTS (SELECT 1 FROM artworks WHERE slug = OLD.slug AND id <> NEW.id AND deleted_at IS NULL) THEN
        INSERT INTO artwork_slugs (slug, artwork_id) VALUES (OLD.slug, NEW.id)
        ON CONFLICT (slug) DO NOTHING;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER artworks_keep_retired_slugs BEFORE INSERT OR UPDATE OF slug, deleted_at ON artworks
    FOR EACH ROW EXECUTE FUNCTION artworks_keep_retired_slugs();

-- ---------------------------------------------------------------------------
-- Sales as rows: each print sold has its number in the edition (7/50), the
-- price it sold at, and optionally the shop's order reference. No buyer data:
-- the gallery keeps none. A mistaken sale is voided with a reason, never
-- deleted; its number is free again. `print_editions.sold_count` stays the
-- count of live sales, kept in the same transaction.
CREATE TABLE print_sales (
    id            uuid PRIMARY KEY,
    edition_id    uuid NOT NULL REFERENCES print_editions (id) ON DELETE CASCADE,
    print_number  integer NOT NULL CHECK (print_number BETWEEN 1 AND 100000),
    price_minor   bigint NOT NULL CHECK (price_minor >= 0),
    currency      char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    external_ref  text CHECK (length(external_ref) BETWEEN 1 AND 200),
    sold_at       timestamptz NOT NULL DEFAULT now(),
    voided_at     timestamptz,
    void_reason   text CHECK (length(btrim(void_reason)) BETWEEN 1 AND 500),
    CONSTRAINT print_sales_void_has_reason CHECK ((voided_at IS NULL) = (void_reason IS NULL))
);
CREATE UNIQUE INDEX print_sales_live_number ON print_sales (edition_id, print_number) WHERE voided_at IS NULL;
CREATE INDEX print_sales_edition_idx ON print_sales (edition_id, print_number, sold_at);

-- Sales recorded before this version were counts: they become rows numbered
-- 1..n at the edition's current price, dated when the edition last changed.
INSERT INTO print_sales (id, edition_id, print_number, price_minor, currency, sold_at)
SELECT gen_random_uuid(), e.id, n, e.price_minor, e.currency, e.updated_at
  FROM print_editions e, generate_series(1, e.sold_count) n
 WHERE e.sold_count > 0;

-- ---------------------------------------------------------------------------
-- Alt text: every image a published work shows must describe itself.
ALTER TABLE images ADD COLUMN alt_text text CHECK (length(btrim(alt_text)) BETWEEN 1 AND 1000);

-- ---------------------------------------------------------------------------
-- Full-text search over title, artist name, medium and description (in that
-- weight), kept by triggers because the artist's name lives in another table.
ALTER TABLE artworks ADD COLUMN search tsvector;

CREATE FUNCTION artwork_search_document(title text, artist text, medium text, description text)
RETURNS tsvector LANGUAGE sql STABLE SET search_path = public, pg_temp AS $$
    SELECT setweight(to_tsvector('gallery_search', coalesce(title, '')), 'A')
        || setweight(to_tsvector('gallery_search', coalesce(artist, '')), 'A')
        || setweight(to_tsvector('gallery_search', coalesce(medium, '')), 'B')
        || setweight(to_tsvector('gallery_search', coalesce(description, '')), 'C')
$$;

CREATE FUNCTION artworks_search_document() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.search := artwork_search_document(NEW.title, (SELECT name FROM artists WHERE id = NEW.artist_id), NEW.medium, NEW.description);
    RETURN NEW;
END
$$;
CREATE TRIGGER artworks_search_document BEFORE INSERT OR UPDATE OF title, medium, description, artist_id ON artworks
    FOR EACH ROW EXECUTE FUNCTION artworks_search_document();

CREATE FUNCTION artists_search_document() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE artworks SET search = artwork_search_document(title, NEW.name, medium, description) WHERE artist_id = NEW.id;
    RETURN NULL;
END
$$;
CREATE TRIGGER artists_search_document AFTER UPDATE OF name ON artists
    FOR EACH ROW WHEN (OLD.name IS DISTINCT FROM NEW.name) EXECUTE FUNCTION artists_search_document();

UPDATE artworks a SET search = artwork_search_document(a.title, ar.name, a.medium, a.description)
  FROM artists ar WHERE ar.id = a.artist_id;

CREATE INDEX artworks_search_idx ON artworks USING gin (search) WHERE status = 'published' AND deleted_at IS NULL;
-- The other public orders (price is computed per currency and sorted in memory).
CREATE INDEX artworks_public_title_idx ON artworks (lower(title), id) WHERE status = 'published' AND deleted_at IS NULL;
CREATE INDEX artworks_public_year_idx ON artworks (year, id) WHERE status = 'published' AND deleted_at IS NULL;

-- ---------------------------------------------------------------------------
-- Audit entries leave only by age, and never younger than a year (the
-- security decision's log retention), whoever calls the owner's function.
CREATE OR REPLACE FUNCTION purge_audit_before(cutoff timestamptz) RETURNS bigint
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    WITH gone AS (DELETE FROM audit_log WHERE at < least(cutoff, now() - interval '365 days')
                                          AND action NOT LIKE '%eras%' RETURNING 1)
    SELECT count(*) FROM gone
$$;

-- ---------------------------------------------------------------------------
-- One role per function, each granted exactly what its code runs (a test per
-- role tries what it must not do: tests/it/database.rs). The audit log is
-- append-only for all of them; only the owner's functions, which retention
-- alone may call, remove (by age) or redact (an erasure) entries.
DO $$
DECLARE r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['gallery_api', 'gallery_processor', 'gallery_retention', 'gallery_backup_records'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
            EXECUTE format('CREATE ROLE %I NOLOGIN', r);
        END IF;
    END LOOP;
EXCEPTION
    WHEN duplicate_object OR unique_violation THEN NULL;
END
$$;

-- The shared application role of v1 loses everything here.
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM gallery_app;
REVOKE ALL ON FUNCTION purge_deleted_artwork(uuid, timestamptz), purge_image(uuid), purge_dead_tokens(timestamptz),
    erase_artist(uuid), purge_audit_before(timestamptz), purge_backup_records_before(timestamptz) FROM gallery_app;
REVOKE USAGE ON SCHEMA public FROM gallery_app;
-- No function may be called by a role it was not granted to.
REVOKE ALL ON FUNCTION artwork_search_document(text, text, text, text) FROM PUBLIC;

GRANT USAGE ON SCHEMA public TO gallery_api, gallery_processor, gallery_retention, gallery_backup_records;
-- Every function appends to the audit log; the API (admins' audit page) and
-- retention (its dry run counts) also read it.
GRANT INSERT ON audit_log TO gallery_api, gallery_processor, gallery_retention, gallery_backup_records;
GRANT SELECT ON audit_log TO gallery_api, gallery_retention;
-- Operator tasks run in the API, backup and retention functions; a proof is spent once.
GRANT SELECT, INSERT, DELETE ON operator_proofs TO gallery_api, gallery_retention, gallery_backup_records;

-- The API: the catalogue, tokens, idempotent answers, erasure requests.
-- Soft deletes only; no purge, no erasure, no audit removal.
GRANT SELECT, INSERT, UPDATE ON artists, artworks, print_editions, images TO gallery_api;
GRANT SELECT, INSERT ON print_sales TO gallery_api;
GRANT UPDATE (voided_at, void_reason) ON print_sales TO gallery_api;
GRANT SELECT, INSERT, DELETE ON artwork_slugs TO gallery_api;
GRANT SELECT, INSERT ON api_tokens TO gallery_api;
GRANT UPDATE (last_used_at, revoked_at) ON api_tokens TO gallery_api;
GRANT SELECT, INSERT, UPDATE ON idempotency_keys TO gallery_api;
GRANT SELECT, INSERT ON erasures TO gallery_api;
GRANT EXECUTE ON FUNCTION artwork_search_document(text, text, text, text) TO gallery_api;

-- The image processor: an image's processing state, and the edge visibility
-- of its work's renditions.
-- Never an artist's email or bio: only the name a rendition is credited to.
GRANT SELECT (id, name, suspended_at) ON artists TO gallery_processor;
GRANT SELECT ON artworks, images TO gallery_processor;
GRANT UPDATE (status, renditions, failure_reason, content_sha256, updated_at, edge_visibility) ON images TO gallery_processor;

-- Retention: reads what it sweeps, calls the owner's purge and erasure
-- functions (which check each row's state themselves), and fails stuck images.
GRANT SELECT (id, name, suspended_at, created_at) ON artists TO gallery_retention;
GRANT SELECT ON artworks, print_editions, images, api_tokens, backups, restore_drills, erasures, idempotency_keys TO gallery_retention;
GRANT INSERT, UPDATE ON erasures TO gallery_retention;
GRANT UPDATE (status, failure_reason, updated_at, edge_visibility) ON images TO gallery_retention;
-- An erasure requested by an operator suspends the artist and revokes their tokens.
GRANT UPDATE (suspended_at, suspension_reason) ON artists TO gallery_retention;
GRANT UPDATE (revoked_at) ON api_tokens TO gallery_retention;
GRANT UPDATE (expired_at) ON backups TO gallery_retention;
GRANT DELETE ON idempotency_keys TO gallery_retention;
GRANT EXECUTE ON FUNCTION purge_deleted_artwork(uuid, timestamptz), purge_image(uuid), purge_dead_tokens(timestamptz),
    erase_artist(uuid), purge_audit_before(timestamptz), purge_backup_records_before(timestamptz) TO gallery_retention;

-- The backup function's own records: backups and drills. The snapshot is read
-- by the read-only gallery_backup; restores run as the owner.
GRANT SELECT, INSERT, UPDATE ON backups, restore_drills TO gallery_backup_records;
-- A backup records the schema version it was taken at.
GRANT SELECT ON refinery_schema_history TO gallery_backup_records;
GRANT SELECT ON erasures TO gallery_backup_records;
