//! What the public sees: artworks with image URLs a browser can load, and
//! nothing internal (no object keys, no hashes, no email, no drafts).

use chrono::{DateTime, Utc};
use serde::Serialize;
use shared::db::GalleryCard;
use shared::domain::{
    Artist, Artwork, Image, ImageStatus, PrintEdition, RenditionRecord, Visibility,
};
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Serialize, ToSchema)]
pub struct ArtistRef {
    pub id: Uuid,
    pub name: String,
}

#[derive(Serialize, ToSchema)]
pub struct PublicRendition {
    /// `jpg` or `webp` (the file extension; types image/jpeg and image/webp).
    pub format: String,
    pub long_edge: u32,
    pub width: u32,
    pub height: u32,
    pub bytes: u64,
    /// Where a browser loads it: the gallery's CDN (`/renditions/…` on the
    /// API's own host), absolute when the gallery's public origin is configured.
    pub url: String,
}

/// One of the artist's images, as they manage it: no storage keys. Its
/// renditions have public URLs once the edge serves them; a draft's are
/// previewed through `preview`.
#[derive(Serialize, ToSchema)]
pub struct ManagedImage {
    pub id: Uuid,
    pub artwork_id: Uuid,
    pub status: ImageStatus,
    /// Display order; the image at position 0 is the primary image.
    pub position: i32,
    /// `public` once the artwork is published and the edge serves these renditions.
    pub visibility: Visibility,
    pub renditions: Vec<ManagedRendition>,
    pub failure_reason: Option<String>,
    /// SHA-256 of the uploaded original, once processed.
    pub content_sha256: Option<String>,
    /// What the image shows, for visitors who cannot see it; every image needs
    /// one before its work is published.
    pub alt_text: Option<String>,
    pub updated_at: DateTime<Utc>,
    /// Short-lived URLs of every rendition, for the artist's eyes only.
    pub preview: String,
}

#[derive(Serialize, ToSchema)]
pub struct ManagedRendition {
    pub format: String,
    pub long_edge: u32,
    pub width: u32,
    pub height: u32,
    pub bytes: u64,
    /// The public URL; absent while the image is not public.
    pub url: Option<String>,
}

/// Presigned URLs of an image's renditions: they work until `expires_at` for
/// whoever holds them, so they are never cached or shared.
#[derive(Serialize, ToSchema)]
pub struct Preview {
    pub expires_at: DateTime<Utc>,
    pub renditions: Vec<PublicRendition>,
}

#[derive(Serialize, ToSchema)]
pub struct PublicImage {
    pub id: Uuid,
    /// What the image shows (the `alt` of an `<img>`); absent only on works
    /// published before alt text was required.
    pub alt: Option<String>,
    pub renditions: Vec<PublicRendition>,
}

#[derive(Serialize, ToSchema)]
pub struct Price {
    pub minor: i64,
    pub currency: String,
    /// Digits of the currency's minor unit: `minor / 10^exponent` in the major unit.
    pub exponent: u8,
}

/// One work in the public list.
#[derive(Serialize, ToSchema)]
pub struct GalleryItem {
    pub slug: String,
    pub title: String,
    pub artist: ArtistRef,
    pub medium: Option<String>,
    pub year: Option<i32>,
    pub published_at: DateTime<Utc>,
    /// The primary image, once processed.
    pub image: Option<PublicImage>,
    /// The cheapest print still on sale, in the requested `currency`, else in
    /// the currency of the work's first edition; absent when nothing is for sale.
    pub price_from: Option<Price>,
    /// This work's own page in the API.
    pub href: String,
}

#[derive(Serialize, ToSchema)]
pub struct GalleryPage {
    pub artworks: Vec<GalleryItem>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct PublicEdition {
    pub id: Uuid,
    pub edition_size: i32,
    pub paper: String,
    pub price_minor: i64,
    pub currency: String,
    /// Digits of the currency's minor unit.
    pub currency_exponent: u8,
    /// Prints still for sale.
    pub available: i32,
}

/// One published artwork, as its public page shows it.
#[derive(Serialize, ToSchema)]
pub struct PublicArtwork {
    pub slug: String,
    pub title: String,
    pub artist: ArtistRef,
    pub description: Option<String>,
    pub medium: Option<String>,
    pub year: Option<i32>,
    pub width_mm: Option<i32>,
    pub height_mm: Option<i32>,
    pub published_at: Option<DateTime<Utc>>,
    pub editions: Vec<PublicEdition>,
    /// In display order; the first is the primary image.
    pub images: Vec<PublicImage>,
}

#[derive(Serialize, ToSchema)]
pub struct ArtistProfile {
    pub artist: Artist,
    /// The artist's published works, newest first.
    pub artworks: GalleryPage,
}

/// Builds URLs under the configured media prefix.
pub struct Media<'a>(pub &'a str);

impl PublicRendition {
    /// A stored rendition, loaded from `url`.
    pub fn at(r: &RenditionRecord, url: String) -> Self {
        Self {
            format: r.format.clone(),
            long_edge: r.long_edge,
            width: r.width,
            height: r.height,
            bytes: r.bytes,
            url,
        }
    }
}

impl Media<'_> {
    /// Where the distribution serves a rendition key.
    pub(crate) fn url(&self, key: &str) -> String {
        format!("{}/{key}", self.0)
    }

    pub fn renditions(&self, records: &[RenditionRecord]) -> Vec<PublicRendition> {
        records.iter().map(|r| PublicRendition::at(r, self.url(&r.key))).collect()
    }

    pub fn image(&self, image: &Image) -> PublicImage {
        PublicImage {
            id: image.id,
            alt: image.alt_text.clone(),
            renditions: self.renditions(&image.renditions),
        }
    }

    pub fn managed(&self, image: Image) -> ManagedImage {
        let public = image.edge_visibility == Visibility::Public;
        ManagedImage {
            preview: format!("/v1/manage/images/{}/preview", image.id),
            id: image.id,
            artwork_id: image.artwork_id,
            status: image.status,
            position: image.position,
            visibility: image.edge_visibility,
            renditions: image
                .renditions
                .into_iter()
                .map(|r| ManagedRendition {
                    url: public.then(|| self.url(&r.key)),
                    format: r.format,
                    long_edge: r.long_edge,
                    width: r.width,
                    height: r.height,
                    bytes: r.bytes,
                })
                .collect(),
            failure_reason: image.failure_reason,
            content_sha256: image.content_sha256,
            alt_text: image.alt_text,
            updated_at: image.updated_at,
        }
    }

    pub fn card(&self, c: GalleryCard) -> GalleryItem {
        GalleryItem {
            href: format!("/v1/artworks/{}", c.slug),
            slug: c.slug,
            title: c.title,
            artist: ArtistRef { id: c.artist_id, name: c.artist_name },
            medium: c.medium,
            year: c.year,
            published_at: c.published_at,
            image: c.primary_image.map(|(id, r, alt)| PublicImage {
                id,
                alt,
                renditions: self.renditions(&r),
            }),
            price_from: c.price_from.map(|(minor, currency)| Price {
                minor,
                exponent: shared::domain::currency_exponent(&currency),
                currency,
            }),
        }
    }

    pub fn artwork(
        &self,
        a: Artwork,
        editions: &[PrintEdition],
        images: &[Image],
    ) -> PublicArtwork {
        PublicArtwork {
            slug: a.slug,
            title: a.title,
            artist: ArtistRef { id: a.artist_id, name: a.artist_name },
            description: a.description,
            medium: a.medium,
            year: a.year,
            width_mm: a.width_mm,
            height_mm: a.height_mm,
            published_at: a.published_at,
            editions: editions
                .iter()
                .filter(|e| e.retired_at.is_none())
                .map(|e| PublicEdition {
                    id: e.id,
                    edition_size: e.edition_size,
                    paper: e.paper.clone(),
                    price_minor: e.price_minor,
                    currency: e.currency.clone(),
                    currency_exponent: e.currency_exponent,
                    available: e.available(),
                })
                .collect(),
            images: images.iter().map(|i| self.image(i)).collect(),
        }
    }
}
