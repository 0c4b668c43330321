//! What artists and admins send to change the catalogue, and the rules over
//! it: field validation, partial updates, the publication state machine,
//! editions and sales, profiles, and opaque page cursors.

use super::fields::{ArtistName, Bio, Website};
use base64::Engine;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use uuid::Uuid;

use super::text::{self, Lines};
use super::{invalid, slugify, valid_slug, ArtworkStatus, Invalid};

/// Collects every problem of one input, so the client fixes them in one go.
#[derive(Default)]
pub struct Problems(Vec<Invalid>);

impl Problems {
    pub fn check<T>(&mut self, r: Result<T, Invalid>) -> Option<T> {
        r.map_err(|e| self.0.push(e)).ok()
    }

    pub fn push(&mut self, field: &'static str, message: impl Into<String>) {
        self.0.push(invalid(field, message));
    }

    pub fn finish<T>(self, value: impl FnOnce() -> T) -> Result<T, Vec<Invalid>> {
        if self.0.is_empty() {
            Ok(value())
        } else {
            Err(self.0)
        }
    }
}

/// `Some(None)` when the client sent `null` (clear the field), `None` when it
/// left the field out (keep it).
pub fn nullable<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// An artwork's editable fields, validated and normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtworkFields {
    pub title: String,
    pub slug: String,
    pub description: Option<String>,
    pub medium: Option<String>,
    pub year: Option<i32>,
    pub width_mm: Option<i32>,
    pub height_mm: Option<i32>,
}

/// Fields an artist sends to create an artwork.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewArtwork {
    /// 1 to 300 characters.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 300))]
    pub title: String,
    /// Lowercase letters and digits joined by single hyphens; derived from the title when absent.
    #[cfg_attr(
        feature = "openapi",
        schema(max_length = 120, pattern = "^[a-z0-9]+(-[a-z0-9]+)*$")
    )]
    pub slug: Option<String>,
    /// At most 20,000 characters; line breaks allowed.
    #[cfg_attr(feature = "openapi", schema(max_length = 20000))]
    pub description: Option<String>,
    /// At most 200 characters, e.g. "Etching".
    #[cfg_attr(feature = "openapi", schema(max_length = 200))]
    pub medium: Option<String>,
    /// 1000 to 3000.
    #[cfg_attr(feature = "openapi", schema(minimum = 1000, maximum = 3000))]
    pub year: Option<i32>,
    /// 1 to 100,000 millimetres.
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 100000))]
    pub width_mm: Option<i32>,
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 100000))]
    pub height_mm: Option<i32>,
}

const MAX_MM: i32 = 100_000;

fn check_year(p: &mut Problems, year: Option<i32>) {
    if year.is_some_and(|y| !(1000..=3000).contains(&y)) {
        p.push("year", "must be between 1000 and 3000");
    }
}

fn check_mm(p: &mut Problems, field: &'static str, v: Option<i32>) {
    if v.is_some_and(|v| !(1..=MAX_MM).contains(&v)) {
        p.push(field, format!("must be 1 to {MAX_MM} millimetres"));
    }
}

fn clean_slug(value: &str) -> Result<String, Invalid> {
    // NFC first, so a slug typed with combining marks is refused like any non-ASCII one.
    let slug = text::text("slug", value, 1, 120, Lines::One)?;
    if valid_slug(&slug) {
        Ok(slug)
    } else {
        Err(invalid("slug", "must be lowercase letters and digits separated by single hyphens, at most 120 characters"))
    }
}

impl NewArtwork {
    /// An artwork with a title and nothing else yet.
    pub fn titled(title: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            slug: None,
            description: None,
            medium: None,
            year: None,
            width_mm: None,
            height_mm: None,
        }
    }

    /// Checks every field and returns the cleaned values (the slug given, or derived from the title).
    pub fn validate(&self) -> Result<ArtworkFields, Vec<Invalid>> {
        let mut p = Problems::default();
        let title = p.check(text::text("title", &self.title, 1, 300, Lines::One));
        let slug = match (&self.slug, &title) {
            (Some(s), _) => p.check(clean_slug(s)),
            (None, Some(t)) => p.check(
                clean_slug(&slugify(t))
                    .map_err(|_| invalid("slug", "cannot be derived from this title; send one")),
            ),
            (None, None) => None,
        };
        let description = p.check(text::optional_text(
            "description",
            self.description.as_deref(),
            20_000,
            Lines::Many,
        ));
        let medium =
            p.check(text::optional_text("medium", self.medium.as_deref(), 200, Lines::One));
        check_year(&mut p, self.year);
        check_mm(&mut p, "width_mm", self.width_mm);
        check_mm(&mut p, "height_mm", self.height_mm);
        p.finish(|| ArtworkFields {
            title: title.unwrap_or_default(),
            slug: slug.unwrap_or_default(),
            description: description.flatten(),
            medium: medium.flatten(),
            year: self.year,
            width_mm: self.width_mm,
            height_mm: self.height_mm,
        })
    }
}

/// A partial update: fields left out keep their value, `null` clears an optional one.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ArtworkPatch {
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 300))]
    pub title: Option<String>,
    #[cfg_attr(
        feature = "openapi",
        schema(max_length = 120, pattern = "^[a-z0-9]+(-[a-z0-9]+)*$")
    )]
    pub slug: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub description: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub medium: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<i32>))]
    pub year: Option<Option<i32>>,
    #[serde(default, deserialize_with = "nullable")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<i32>))]
    pub width_mm: Option<Option<i32>>,
    #[serde(default, deserialize_with = "nullable")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<i32>))]
    pub height_mm: Option<Option<i32>>,
}

impl ArtworkPatch {
    /// The fields after the update. Equal to `current` when nothing changes,
    /// which is how a no-op update is recognised (and not audited).
    pub fn apply(&self, current: &ArtworkFields) -> Result<ArtworkFields, Vec<Invalid>> {
        let mut p = Problems::default();
        let title = match &self.title {
            Some(t) => p.check(text::text("title", t, 1, 300, Lines::One)),
            None => Some(current.title.clone()),
        };
        let slug = match &self.slug {
            Some(s) => p.check(clean_slug(s)),
            None => Some(current.slug.clone()),
        };
        let optional = |p: &mut Problems,
                        field,
                        v: &Option<Option<String>>,
                        max,
                        lines,
                        now: &Option<String>| match v {
            None => now.clone(),
            Some(None) => None,
            Some(Some(s)) => p.check(text::optional_text(field, Some(s), max, lines)).flatten(),
        };
        let description = optional(
            &mut p,
            "description",
            &self.description,
            20_000,
            Lines::Many,
            &current.description,
        );
        let medium = optional(&mut p, "medium", &self.medium, 200, Lines::One, &current.medium);
        let year = self.year.unwrap_or(current.year);
        let width_mm = self.width_mm.unwrap_or(current.width_mm);
        let height_mm = self.height_mm.unwrap_or(current.height_mm);
        check_year(&mut p, year);
        check_mm(&mut p, "width_mm", width_mm);
        check_mm(&mut p, "height_mm", height_mm);
        p.finish(|| ArtworkFields {
            title: title.unwrap_or_default(),
            slug: slug.unwrap_or_default(),
            description,
            medium,
            year,
            width_mm,
            height_mm,
        })
    }
}

/// What an artist does to an artwork's publication.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "kebab-case")]
pub enum Transition {
    Publish,
    Unpublish,
    Archive,
}

impl Transition {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Publish => "publish",
            Self::Unpublish => "unpublish",
            Self::Archive => "archive",
        }
    }
}

/// What publishing needs: something to show, something to sell, and a
/// description of every image for visitors who cannot see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Readiness {
    pub ready_images: i64,
    pub live_editions: i64,
    /// Live images (not failed) without alt text.
    pub undescribed_images: i64,
}

/// The publication state machine.
///
/// ```text
///   draft ──publish──▶ published ──archive──▶ archived
///     ▲ ◀──unpublish──┘    ▲                    │
///     │                     └──────publish──────┘
///     └──archive──▶ archived (never back to draft)
/// ```
/// Publishing (from draft or archived) needs a ready image and a live edition.
/// Archiving an archived work, or publishing a published one, is refused as a
/// conflict rather than silently accepted, so the client learns the real state.
pub fn transition(
    from: ArtworkStatus,
    action: Transition,
    readiness: Readiness,
) -> Result<ArtworkStatus, String> {
    use ArtworkStatus::*;
    let to = match (from, action) {
        (Draft | Archived, Transition::Publish) => Published,
        (Published, Transition::Unpublish) => Draft,
        (Draft | Published, Transition::Archive) => Archived,
        (from, action) => {
            return Err(format!("a {} artwork cannot {}", from.as_str(), action.as_str()))
        }
    };
    if to == Published {
        let mut missing = Vec::new();
        if readiness.ready_images == 0 {
            missing.push("a ready image");
        }
        if readiness.live_editions == 0 {
            missing.push("an edition on sale");
        }
        if readiness.undescribed_images > 0 {
            missing.push("alt text on every image");
        }
        if !missing.is_empty() {
            return Err(format!("publishing needs {}", missing.join(" and ")));
        }
    }
    Ok(to)
}

/// ISO 4217 codes the gallery prices in: the active currencies, without
/// funds, precious metals and testing codes.
/// How many digits a currency's minor unit has (ISO 4217): a price of
/// `price_minor` is `price_minor / 10^exponent` in the major unit. Clients need
/// it to show 5000 JPY as ¥5,000 and 5000 EUR as €50.00.
pub fn currency_exponent(code: &str) -> u8 {
    match code {
        "BIF" | "CLP" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "PYG" | "RWF" | "UGX"
        | "UYI" | "VND" | "VUV" | "XAF" | "XOF" | "XPF" => 0,
        "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
        _ => 2,
    }
}

pub const CURRENCIES: &[&str] = &[
    "AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT",
    "BGN", "BHD", "BIF", "BMD", "BND", "BOB", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD", "CAD",
    "CDF", "CHF", "CLP", "CNY", "COP", "CRC", "CUP", "CVE", "CZK", "DJF", "DKK", "DOP", "DZD",
    "EGP", "ERN", "ETB", "EUR", "FJD", "FKP", "GBP", "GEL", "GHS", "GIP", "GMD", "GNF", "GTQ",
    "GYD", "HKD", "HNL", "HTG", "HUF", "IDR", "ILS", "INR", "IQD", "IRR", "ISK", "JMD", "JOD",
    "JPY", "KES", "KGS", "KHR", "KMF", "KPW", "KRW", "KWD", "KYD", "KZT", "LAK", "LBP", "LKR",
    "LRD", "LSL", "LYD", "MAD", "MDL", "MGA", "MKD", "MMK", "MNT", "MOP", "MRU", "MUR", "MVR",
    "MWK", "MXN", "MYR", "MZN", "NAD", "NGN", "NIO", "NOK", "NPR", "NZD", "OMR", "PAB", "PEN",
    "PGK", "PHP", "PKR", "PLN", "PYG", "QAR", "RON", "RSD", "RUB", "RWF", "SAR", "SBD", "SCR",
    "SDG", "SEK", "SGD", "SHP", "SLE", "SOS", "SRD", "SSP", "STN", "SVC", "SYP", "SZL", "THB",
    "TJS", "TMT", "TND", "TOP", "TRY", "TTD", "TWD", "TZS", "UAH", "UGX", "USD", "UYU", "UZS",
    "VES", "VND", "VUV", "WST", "XAF", "XCD", "XOF", "XPF", "YER", "ZAR", "ZMW", "ZWG",
];

/// The highest price in minor units (a hundred million in a two-decimal currency).
pub const MAX_PRICE_MINOR: i64 = 10_000_000_000;
pub const MAX_EDITION_SIZE: i32 = 100_000;

fn check_currency(code: &str) -> Result<String, Invalid> {
    if CURRENCIES.binary_search(&code).is_ok() {
        Ok(code.to_owned())
    } else {
        Err(invalid("currency", "must be an ISO 4217 currency code such as EUR"))
    }
}

fn check_price(p: &mut Problems, price: i64) {
    if !(0..=MAX_PRICE_MINOR).contains(&price) {
        p.push("price_minor", format!("must be 0 to {MAX_PRICE_MINOR} (minor units, e.g. cents)"));
    }
}

fn check_size(p: &mut Problems, size: i32) {
    if !(1..=MAX_EDITION_SIZE).contains(&size) {
        p.push("edition_size", format!("must be between 1 and {MAX_EDITION_SIZE}"));
    }
}

/// An edition's editable fields, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EditionFields {
    pub edition_size: i32,
    pub paper: String,
    pub price_minor: i64,
    pub currency: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewEdition {
    /// How many prints the edition has: 1 to 100,000.
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 100000))]
    pub edition_size: i32,
    /// 1 to 200 characters.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 200))]
    pub paper: String,
    /// Price of one print in minor units (cents), 0 to 10,000,000,000.
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 10000000000_i64))]
    pub price_minor: i64,
    /// ISO 4217, e.g. EUR.
    #[cfg_attr(feature = "openapi", schema(pattern = "^[A-Z]{3}$"))]
    pub currency: String,
}

impl NewEdition {
    pub fn validate(&self) -> Result<EditionFields, Vec<Invalid>> {
        let mut p = Problems::default();
        check_size(&mut p, self.edition_size);
        let paper = p.check(text::text("paper", &self.paper, 1, 200, Lines::One));
        check_price(&mut p, self.price_minor);
        let currency = p.check(check_currency(&self.currency));
        p.finish(|| EditionFields {
            edition_size: self.edition_size,
            paper: paper.unwrap_or_default(),
            price_minor: self.price_minor,
            currency: currency.unwrap_or_default(),
        })
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct EditionPatch {
    /// Never below the prints already sold, and fixed once one is sold (a
    /// limited edition stays limited) unless `correction_reason` says why.
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 100000))]
    pub edition_size: Option<i32>,
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 200))]
    pub paper: Option<String>,
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 10000000000_i64))]
    pub price_minor: Option<i64>,
    #[cfg_attr(feature = "openapi", schema(pattern = "^[A-Z]{3}$"))]
    pub currency: Option<String>,
    /// Why the size of an edition with sales changes (a miscount): 1 to 500
    /// characters, kept in the audit log.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 500))]
    pub correction_reason: Option<String>,
}

impl EditionPatch {
    /// `sold` is the highest print number sold (0 before any sale): the
    /// edition never shrinks below a print that exists.
    pub fn apply(&self, current: &EditionFields, sold: i32) -> Result<EditionFields, Vec<Invalid>> {
        let mut p = Problems::default();
        let edition_size = self.edition_size.unwrap_or(current.edition_size);
        check_size(&mut p, edition_size);
        if edition_size < sold {
            p.push(
                "edition_size",
                format!("must be at least {sold}, the highest print number sold"),
            );
        } else if edition_size != current.edition_size && sold > 0 {
            match &self.correction_reason {
                Some(reason) => {
                    p.check(text::text("correction_reason", reason, 1, 500, Lines::One));
                }
                None => p.push(
                    "edition_size",
                    "is fixed once a print is sold; a correction needs a correction_reason",
                ),
            }
        }
        let paper = match &self.paper {
            Some(s) => p.check(text::text("paper", s, 1, 200, Lines::One)),
            None => Some(current.paper.clone()),
        };
        let price_minor = self.price_minor.unwrap_or(current.price_minor);
        check_price(&mut p, price_minor);
        let currency = match &self.currency {
            Some(c) => p.check(check_currency(c)),
            None => Some(current.currency.clone()),
        };
        p.finish(|| EditionFields {
            edition_size,
            paper: paper.unwrap_or_default(),
            price_minor,
            currency: currency.unwrap_or_default(),
        })
    }
}

/// Prints sold in one sale. The gallery keeps no buyer data.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Sale {
    /// 1 to 1,000; defaults to 1. Each print gets the lowest free number.
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 1000))]
    #[serde(default = "one")]
    pub count: i32,
    /// The shop's order reference (1 to 200 characters, one line), so a sale
    /// can be matched with its order. Never a buyer's name or address.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 200))]
    pub external_ref: Option<String>,
}

/// Why a recorded sale is voided (a mistake, a returned print).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SaleVoid {
    /// 1 to 500 characters, one line; kept with the sale and in the audit log.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 500))]
    pub reason: String,
}

impl SaleVoid {
    pub fn validate(&self) -> Result<String, Vec<Invalid>> {
        text::text("reason", &self.reason, 1, 500, Lines::One).map_err(|e| vec![e])
    }
}

fn one() -> i32 {
    1
}

impl Sale {
    /// The count and the order reference.
    pub fn validate(&self) -> Result<(i32, Option<String>), Vec<Invalid>> {
        let mut p = Problems::default();
        if !(1..=1000).contains(&self.count) {
            p.push("count", "must be 1 to 1000");
        }
        let external_ref = match &self.external_ref {
            Some(r) => p.check(text::text("external_ref", r, 1, 200, Lines::One)),
            None => None,
        };
        p.finish(|| (self.count, external_ref))
    }
}

/// An artist's public profile fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileFields {
    pub name: String,
    pub bio: Option<String>,
    pub website: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ProfilePatch {
    /// 1 to 200 characters.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 200))]
    pub name: Option<String>,
    /// At most 10,000 characters; `null` clears it.
    #[serde(default, deserialize_with = "nullable")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub bio: Option<Option<String>>,
    /// An https:// address; `null` clears it.
    #[serde(default, deserialize_with = "nullable")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub website: Option<Option<String>>,
}

impl ProfilePatch {
    pub fn apply(&self, current: &ProfileFields) -> Result<ProfileFields, Vec<Invalid>> {
        let mut p = Problems::default();
        let name = match &self.name {
            Some(n) => p.check(ArtistName::parse(n)).map(ArtistName::into_string),
            None => Some(current.name.clone()),
        };
        let bio = match &self.bio {
            None => current.bio.clone(),
            Some(None) => None,
            Some(Some(b)) => p.check(Bio::parse(Some(b))).flatten().map(Bio::into_string),
        };
        let website = match &self.website {
            None => current.website.clone(),
            Some(None) => None,
            Some(Some(w)) => p.check(Website::parse(Some(w))).flatten().map(Website::into_string),
        };
        p.finish(|| ProfileFields { name: name.unwrap_or_default(), bio, website })
    }
}

/// Where the next page starts: the last row's sort time and id, so rows with
/// equal times are neither skipped nor repeated. Opaque to clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub at: DateTime<Utc>,
    pub id: Uuid,
}

impl Cursor {
    pub fn encode(&self) -> String {
        let raw = format!("{}.{}", self.at.timestamp_micros(), self.id.simple());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
    }

    pub fn decode(field: &'static str, s: &str) -> Result<Self, Invalid> {
        let bad = || invalid(field, "is not a cursor this API returned");
        if s.len() > 100 {
            return Err(bad());
        }
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s).map_err(|_| bad())?;
        let raw = std::str::from_utf8(&raw).map_err(|_| bad())?;
        let (micros, id) = raw.split_once('.').ok_or_else(bad)?;
        let at = DateTime::from_timestamp_micros(micros.parse().map_err(|_| bad())?)
            .filter(|t| super::storable_time(*t))
            .ok_or_else(bad)?;
        Ok(Self { at, id: Uuid::parse_str(id).map_err(|_| bad())? })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn fields() -> ArtworkFields {
        NewArtwork {
            medium: Some("Etching".into()),
            year: Some(2020),
            ..NewArtwork::titled("Copper Sunrise")
        }
        .validate()
        .unwrap()
    }

    #[test]
    fn new_artwork_reports_every_problem() {
        let a = NewArtwork {
            title: " ".into(),
            slug: Some("Bad Slug".into()),
            description: Some("nul\u{0}".into()),
            medium: Some("m".repeat(201)),
            year: Some(99),
            width_mm: Some(0),
            height_mm: Some(i32::MAX),
        };
        let fields: Vec<_> = a.validate().unwrap_err().into_iter().map(|p| p.field).collect();
        assert_eq!(
            fields,
            ["title", "slug", "description", "medium", "year", "width_mm", "height_mm"]
        );
    }

    #[test]
    fn slugs_are_derived_or_checked() {
        assert_eq!(fields().slug, "copper-sunrise");
        assert!(NewArtwork::titled("!!!").validate().is_err());
        assert!(NewArtwork { slug: Some("cafe\u{301}".into()), ..NewArtwork::titled("x") }
            .validate()
            .is_err());
    }

    #[test]
    fn a_patch_changes_only_what_it_names() {
        let now = fields();
        assert_eq!(ArtworkPatch::default().apply(&now).unwrap(), now, "empty patch is a no-op");
        let same = ArtworkPatch { title: Some(" Copper Sunrise ".into()), ..Default::default() };
        assert_eq!(same.apply(&now).unwrap(), now, "same value after cleaning is a no-op");
        let cleared =
            ArtworkPatch { medium: Some(None), year: Some(Some(2021)), ..Default::default() }
                .apply(&now)
                .unwrap();
        assert_eq!(
            (cleared.medium, cleared.year, cleared.title),
            (None, Some(2021), now.title.clone())
        );
        let bad =
            ArtworkPatch { title: Some("".into()), width_mm: Some(Some(-1)), ..Default::default() };
        assert_eq!(bad.apply(&now).unwrap_err().len(), 2);
    }

    #[test]
    fn nullable_tells_null_from_absent() {
        let p: ArtworkPatch = serde_json::from_str(r#"{"medium": null}"#).unwrap();
        assert_eq!((p.medium, p.description), (Some(None), None));
        assert!(
            serde_json::from_str::<ArtworkPatch>(r#"{"status": "published"}"#).is_err(),
            "unknown fields are refused"
        );
    }

    #[test]
    fn the_state_machine() {
        use ArtworkStatus::*;
        let ready = Readiness { ready_images: 1, live_editions: 1, undescribed_images: 0 };
        assert_eq!(transition(Draft, Transition::Publish, ready), Ok(Published));
        assert_eq!(transition(Published, Transition::Unpublish, ready), Ok(Draft));
        assert_eq!(transition(Published, Transition::Archive, ready), Ok(Archived));
        assert_eq!(transition(Archived, Transition::Publish, ready), Ok(Published));
        assert!(
            transition(Archived, Transition::Unpublish, ready).is_err(),
            "archived never goes back to draft"
        );
        assert!(transition(Published, Transition::Publish, ready).is_err());
        let none = Readiness { ready_images: 0, live_editions: 0, undescribed_images: 1 };
        let e = transition(Draft, Transition::Publish, none).unwrap_err();
        assert!(
            e.contains("ready image") && e.contains("edition") && e.contains("alt text"),
            "{e}"
        );
    }

    #[test]
    fn edition_rules() {
        let ok = NewEdition {
            edition_size: 50,
            paper: "Hahnemühle Photo Rag".into(),
            price_minor: 12_000,
            currency: "EUR".into(),
        };
        let fields = ok.validate().unwrap();
        let bad = NewEdition {
            edition_size: 0,
            paper: "".into(),
            price_minor: -1,
            currency: "XXX".into(),
        };
        assert_eq!(bad.validate().unwrap_err().len(), 4);
        let huge = NewEdition { price_minor: i64::MAX, ..ok.clone() };
        assert_eq!(huge.validate().unwrap_err()[0].field, "price_minor");
        let shrink = EditionPatch { edition_size: Some(10), ..Default::default() };
        assert!(shrink.apply(&fields, 11).is_err(), "never below what is sold");
        assert_eq!(shrink.apply(&fields, 0).unwrap().edition_size, 10, "free before any sale");
        let fixed = shrink.apply(&fields, 10).unwrap_err();
        assert_eq!(fixed[0].field, "edition_size", "fixed once a print is sold");
        let corrected =
            EditionPatch { correction_reason: Some("miscounted".into()), ..shrink.clone() };
        assert_eq!(corrected.apply(&fields, 10).unwrap().edition_size, 10);
        let raised =
            EditionPatch { edition_size: Some(fields.edition_size + 5), ..Default::default() };
        assert!(
            raised.apply(&fields, fields.edition_size).is_err(),
            "a sold-out edition stays sold out"
        );
        assert!(Sale { count: 0, external_ref: None }.validate().is_err());
        let sale = Sale { count: 1, external_ref: Some("order\u{2028}42".into()) };
        assert!(sale.validate().is_err(), "an order reference is one line");
        assert!(SaleVoid { reason: " ".into() }.validate().is_err(), "a void says why");
    }

    #[test]
    fn currencies_are_sorted_for_binary_search() {
        assert!(CURRENCIES.windows(2).all(|w| w[0] < w[1]));
        assert!(check_currency("JPY").is_ok());
        assert!(check_currency("eur").is_err());
    }

    #[test]
    fn profile_patch() {
        let now = ProfileFields { name: "Ada".into(), bio: None, website: None };
        let p = ProfilePatch { bio: Some(Some("Prints\nsince 1990".into())), ..Default::default() }
            .apply(&now)
            .unwrap();
        assert_eq!(p.bio.as_deref(), Some("Prints\nsince 1990"));
        assert!(ProfilePatch {
            website: Some(Some("http://x.example".into())),
            ..Default::default()
        }
        .apply(&now)
        .is_err());
    }

    #[test]
    fn bad_cursors_are_refused() {
        for bad in ["", "!!!", "bm90LWEtY3Vyc29y", &"A".repeat(200)] {
            assert!(Cursor::decode("cursor", bad).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn cursors_round_trip(micros in 0i64..4_102_444_800_000_000, id in any::<u128>()) {
            let c = Cursor { at: DateTime::from_timestamp_micros(micros).unwrap(), id: Uuid::from_u128(id) };
            prop_assert_eq!(Cursor::decode("cursor", &c.encode()).unwrap(), c);
        }
    }
}
