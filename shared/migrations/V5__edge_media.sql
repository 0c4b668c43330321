-- What the edge may serve. CloudFront reads a rendition only when its object
-- carries the tag `gallery-visibility=public` (the processed bucket's policy);
-- this column records the tag last applied to an image's renditions, so the
-- catalogue and S3 can be compared and any drift settled.
ALTER TABLE images
    ADD COLUMN edge_visibility text NOT NULL DEFAULT 'private'
        CHECK (edge_visibility IN ('public', 'private'));

-- The reconcile sweep looks for public renditions first: those are the ones
-- that must never outlive their publication.
CREATE INDEX images_edge_public_idx ON images (artwork_id) WHERE edge_visibility = 'public';
