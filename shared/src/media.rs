//! What the edge may serve, and keeping S3 in step with the catalogue.
//!
//! CloudFront reads renditions through an origin access control, and the
//! processed bucket's policy lets it read only objects tagged
//! `gallery-visibility=public` (an `s3:ExistingObjectTag` condition). So S3
//! itself refuses a draft's rendition, even at a guessed key, and the local
//! server applies the same rule ([`servable`]). Tags rather than a public
//! prefix that publishing copies into: one set of objects to delete, no copies
//! to keep in step. Rather than signed URLs: a published image keeps one
//! stable, cacheable URL, and withdrawing it needs no key rotation.
//!
//! The catalogue decides (`db::artwork_edge`): an image is public when it is
//! ready and not removed, its artwork published and not deleted, and its artist
//! not suspended. `images.edge_visibility` records the tag its renditions
//! carry. A settle holds the artwork's advisory lock from reading the catalogue
//! to recording the tags, so of two racing settles the later one reads the
//! later state. Withdrawals reach the CDN through S3 itself: every tag change
//! and every deletion under `renditions/` is an S3 event, which the edge
//! function batches into invalidations (`crate::edge`).

use std::time::Duration;

use deadpool_postgres::Pool;
use futures_util::stream::{self, StreamExt, TryStreamExt};
use uuid::Uuid;

use crate::aws::storage::{ObjectStore, StorageError};
use crate::db::{self, DbError};
use crate::domain::Visibility;

/// The object tag the processed bucket's policy reads.
pub const VISIBILITY_TAG: &str = "gallery-visibility";

/// Renditions never change under a key (a new upload is a new image id), so
/// browsers and the CDN may keep them for a year without asking again.
pub const RENDITION_CACHE_CONTROL: &str = "public, max-age=31536000, immutable";

/// How long an artist's preview URL of a draft image works.
pub const PREVIEW_TTL: Duration = Duration::from_secs(600);

/// A preview is the artist's alone: no shared cache keeps it.
pub const PREVIEW_CACHE_CONTROL: &str = "private, max-age=600";

/// The `x-amz-tagging` value a new rendition is written with: private until
/// a settle finds its artwork public.
pub fn initial_tagging() -> String {
    format!("{VISIBILITY_TAG}={}", Visibility::Private.as_str())
}

/// The bucket policy's rule, for the local server that stands in for it:
/// only an object tagged public is served.
pub fn servable(tag: Option<&str>) -> bool {
    tag == Some(Visibility::Public.as_str())
}

#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<deadpool_postgres::PoolError> for MediaError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        Self::Db(e.into())
    }
}

impl From<tokio_postgres::Error> for MediaError {
    fn from(e: tokio_postgres::Error) -> Self {
        Self::Db(e.into())
    }
}

/// What a settle changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settled {
    /// Renditions now servable.
    pub published: Vec<String>,
    /// Renditions no longer servable (their CDN copies are invalidated by the
    /// edge function on the tag event).
    pub withdrawn: Vec<String>,
}

impl Settled {
    fn add(&mut self, other: Settled) {
        self.published.extend(other.published);
        self.withdrawn.extend(other.withdrawn);
    }
}

/// The processed bucket's renditions and the catalogue that governs them.
#[derive(Clone)]
pub struct EdgeMedia {
    pub pool: Pool,
    pub store: ObjectStore,
    pub bucket: String,
}

/// Tag requests in flight at once for one settle.
const TAGS_IN_FLIGHT: usize = 16;

impl EdgeMedia {
    /// Brings the artwork's rendition tags in line with the catalogue.
    /// Idempotent: a second call changes nothing.
    pub async fn settle_artwork(&self, artwork_id: Uuid) -> Result<Settled, MediaError> {
        self.settle(artwork_id, None).await
    }

    /// The same, after the processor (re)wrote an image's renditions: new
    /// object versions start private, whatever the row recorded for the ones
    /// they replaced (two invocations of one upload may overlap, the later
    /// writing after the earlier one's settle).
    pub async fn settle_rewritten(
        &self,
        artwork_id: Uuid,
        image_id: Uuid,
    ) -> Result<Settled, MediaError> {
        self.settle(artwork_id, Some(image_id)).await
    }

    async fn settle(
        &self,
        artwork_id: Uuid,
        rewritten: Option<Uuid>,
    ) -> Result<Settled, MediaError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        db::lock_artwork_media(&tx, artwork_id).await?;
        if let Some(image_id) = rewritten {
            db::set_edge_visibility(&tx, image_id, Visibility::Private).await?;
        }
        let mut settled = Settled::default();
        for image in db::artwork_edge(&tx, artwork_id).await? {
            if image.applied == Some(image.wanted) {
                continue;
            }
            let value = image.wanted.as_str();
            stream::iter(image.keys.iter().map(Ok::<_, StorageError>))
                .try_for_each_concurrent(TAGS_IN_FLIGHT, |key| async move {
                    // A rendition already purged has nothing left to serve.
                    self.store.set_tag(&self.bucket, key, VISIBILITY_TAG, value).await.map(|_| ())
                })
                .await?;
            db::set_edge_visibility(&tx, image.image_id, image.wanted).await?;
            match image.wanted {
                Visibility::Public => settled.published.extend(image.keys),
                Visibility::Private => settled.withdrawn.extend(image.keys),
            }
        }
        tx.commit().await?;
        Ok(settled)
    }

    /// Every artwork of the artist (a suspension or reinstatement).
    pub async fn settle_artist(&self, artist_id: Uuid) -> Result<Settled, MediaError> {
        let artworks = db::artworks_of_artist(&self.pool.get().await?, artist_id).await?;
        let mut settled = Settled::default();
        for artwork in artworks {
            settled.add(self.settle_artwork(artwork).await?);
        }
        Ok(settled)
    }

    /// Settles every artwork whose tags drifted from the catalogue or are
    /// unknown, `page` at a time (a restored gallery has all of them). One
    /// failing artwork does not stop the others; the errors come back beside
    /// the result, and the next run tries them again.
    pub async fn reconcile(
        &self,
        page: i64,
    ) -> Result<(Settled, Vec<(Uuid, MediaError)>), MediaError> {
        let mut settled = Settled::default();
        let mut failed = Vec::new();
        let mut after = None;
        loop {
            let drifted =
                db::artworks_with_edge_drift(&self.pool.get().await?, after, page).await?;
            let Some(last) = drifted.last().copied() else { break };
            let full = drifted.len() as i64 == page;
            let results: Vec<_> = stream::iter(drifted)
                .map(|id| async move { (id, self.settle_artwork(id).await) })
                .buffer_unordered(4)
                .collect()
                .await;
            for (id, result) in results {
                match result {
                    Ok(s) => settled.add(s),
                    Err(e) => failed.push((id, e)),
                }
            }
            if !full {
                break;
            }
            after = Some(last);
        }
        Ok((settled, failed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_public_tag_is_servable() {
        assert!(servable(Some("public")));
        for tag in [None, Some("private"), Some("Public"), Some(""), Some("public ")] {
            assert!(!servable(tag), "{tag:?}");
        }
        assert_eq!(initial_tagging(), "gallery-visibility=private");
    }
}
