-- What the edge may serve. CloudFront reads a rendition only when its object
-- carries the tag `gallery-visibility=public` (the processed bucket's policy);
-- this column records the tag last applied to an image's renditions, so the
-- catalogue and S3 can be compared and any drift settled. NULL is unknown: a
-- restored database cannot know what the bucket's objects carry, so a restore
-- forgets it and the next settle tags those renditions either way.
ALTER TABLE images
    ADD COLUMN edge_visibility text DEFAULT 'private'
        CHECK (edge_visibility IN ('public', 'private'));
