//! What the public sees: artworks with image URLs a browser can load, and
//! nothing internal (no object keys, no hashes, no email, no drafts).

use chrono::{DateTime, Utc};
use serde::Serialize;
use shared::db::GalleryCard;
use shared::domain::{Artist, Artwork, Image, PrintEdition, RenditionRecord};
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Serialize, ToSchema)]
pub struct ArtistRef {
    pub id: Uuid,
    pub name: String,
}

#[derive(Serialize, ToSchema)]
pub struct PublicRendition {
    /// `jpeg` or `webp`.
    pub format: String,
    pub long_edge: u32,
    pub width: u32,
    pub height: u32,
    pub bytes: u64,
    /// Where a browser loads it; relative URLs resolve against the API's host.
    pub url: String,
}

#[derive(Serialize, ToSchema)]
pub struct PublicImage {
    pub id: Uuid,
    pub renditions: Vec<PublicRendition>,
}

#[derive(Serialize, ToSchema)]
pub struct Price {
    pub minor: i64,
    pub currency: String,
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
    /// The cheapest print still on sale; absent when everything is sold.
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

impl Media<'_> {
    pub fn renditions(&self, records: &[RenditionRecord]) -> Vec<PublicRendition> {
        records
            .iter()
            .map(|r| PublicRendition {
                format: r.format.clone(),
                long_edge: r.long_edge,
                width: r.width,
                height: r.height,
                bytes: r.bytes,
                url: format!("{}/{}", self.0, r.key),
            })
            .collect()
    }

    pub fn image(&self, image: &Image) -> PublicImage {
        PublicImage { id: image.id, renditions: self.renditions(&image.renditions) }
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
            image: c.primary_image.map(|(id, r)| PublicImage { id, renditions: self.renditions(&r) }),
            price_from: c.price_from.map(|(minor, currency)| Price { minor, currency }),
        }
    }

    pub fn artwork(&self, a: Artwork, editions: &[PrintEdition], images: &[Image]) -> PublicArtwork {
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
                    available: e.available(),
                })
                .collect(),
            images: images.iter().map(|i| self.image(i)).collect(),
        }
    }
}
