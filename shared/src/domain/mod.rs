//! The gallery's vocabulary: plain data and the pure rules over it.
//!
//! Nothing here performs I/O; `db` persists these types and the functions
//! translate their events into them.

use chrono::{DateTime, Datelike, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub mod catalog;
pub mod fields;
pub mod listing;
pub mod text;

pub use catalog::*;
pub use listing::{PageCursor, Sort, SortKey};

/// A rule the input broke, phrased for the person who sent it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct Invalid {
    pub field: &'static str,
    pub message: String,
}

pub(crate) fn invalid(field: &'static str, message: impl Into<String>) -> Invalid {
    Invalid { field, message: message.into() }
}

macro_rules! string_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[serde(rename_all = "kebab-case")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }
        }

        impl std::str::FromStr for $name {
            type Err = Invalid;
            fn from_str(s: &str) -> Result<Self, Invalid> {
                match s {
                    $($text => Ok(Self::$variant),)+
                    other => Err(invalid(stringify!($name), format!("unknown value {other:?}"))),
                }
            }
        }
    };
}

string_enum!(
    /// Where an artwork is in its life; only `published` artworks are public.
    ArtworkStatus { Draft => "draft", Published => "published", Archived => "archived" }
);
string_enum!(
    /// Processing state of an uploaded original.
    ImageStatus { Pending => "pending", Processing => "processing", Ready => "ready", Failed => "failed" }
);
string_enum!(
    /// Whether the edge may serve an image's renditions: the value of their
    /// `gallery-visibility` object tag, which the processed bucket's policy reads.
    Visibility { Public => "public", Private => "private" }
);
string_enum!(
    /// What a token may do: an artist manages their own work, an admin anything.
    Scope { Artist => "artist", Admin => "admin" }
);

/// An artist as the public sees them.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Artist {
    pub id: Uuid,
    pub name: String,
    pub bio: Option<String>,
    pub website: Option<String>,
}

/// An artwork as its artist and admins see it (any status).
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Artwork {
    pub id: Uuid,
    pub artist_id: Uuid,
    pub artist_name: String,
    pub title: String,
    pub slug: String,
    pub description: Option<String>,
    pub medium: Option<String>,
    pub year: Option<i32>,
    pub width_mm: Option<i32>,
    pub height_mm: Option<i32>,
    pub status: ArtworkStatus,
    /// When it was last published; set exactly while `status` is `published`.
    pub published_at: Option<DateTime<Utc>>,
    /// Set while the artwork is deleted but still restorable.
    pub deleted_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Artwork {
    pub fn fields(&self) -> ArtworkFields {
        ArtworkFields {
            title: self.title.clone(),
            slug: self.slug.clone(),
            description: self.description.clone(),
            medium: self.medium.clone(),
            year: self.year,
            width_mm: self.width_mm,
            height_mm: self.height_mm,
        }
    }
}

/// A limited edition of prints of one artwork.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PrintEdition {
    pub id: Uuid,
    pub artwork_id: Uuid,
    pub edition_size: i32,
    pub paper: String,
    pub price_minor: i64,
    pub currency: String,
    /// The digits of `currency`'s minor unit (`currency_exponent`).
    pub currency_exponent: u8,
    pub sold_count: i32,
    /// The highest number of a print sold (0 before any sale): the size never
    /// goes below it.
    pub highest_print: i32,
    /// Set once the edition is no longer sold.
    pub retired_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One print sold: its number in the edition (7 of 50), the price it sold at,
/// and the shop's order reference. A voided sale stays on record with its reason.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SaleRecord {
    pub id: Uuid,
    pub edition_id: Uuid,
    pub print_number: i32,
    pub price_minor: i64,
    pub currency: String,
    pub currency_exponent: u8,
    pub external_ref: Option<String>,
    pub sold_at: DateTime<Utc>,
    pub voided_at: Option<DateTime<Utc>>,
    pub void_reason: Option<String>,
}

impl PrintEdition {
    pub fn fields(&self) -> EditionFields {
        EditionFields {
            edition_size: self.edition_size,
            paper: self.paper.clone(),
            price_minor: self.price_minor,
            currency: self.currency.clone(),
        }
    }

    /// Prints still for sale.
    pub fn available(&self) -> i32 {
        if self.retired_at.is_some() {
            0
        } else {
            self.edition_size - self.sold_count
        }
    }
}

/// One stored rendition of an image, as recorded on the image row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RenditionRecord {
    pub format: String,
    pub long_edge: u32,
    pub width: u32,
    pub height: u32,
    pub bytes: u64,
    pub sha256: String,
    pub key: String,
}

/// An uploaded image as its artist sees it: processing state and renditions.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Image {
    pub id: Uuid,
    pub artwork_id: Uuid,
    pub original_key: String,
    pub status: ImageStatus,
    /// Display order; the image at position 0 is the primary image.
    pub position: i32,
    pub renditions: Vec<RenditionRecord>,
    pub failure_reason: Option<String>,
    pub content_sha256: Option<String>,
    /// What the image shows, for visitors who cannot see it.
    pub alt_text: Option<String>,
    /// Whether the edge serves its renditions now (the tag they carry).
    pub edge_visibility: Visibility,
    pub updated_at: DateTime<Utc>,
}

/// Who is making a request, once their token checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub token_id: Uuid,
    pub scope: Scope,
    /// Set for artist tokens: the only artist whose work they may change.
    pub artist_id: Option<Uuid>,
}

impl Principal {
    pub fn may_manage(&self, artist_id: Uuid) -> bool {
        self.scope == Scope::Admin || self.artist_id == Some(artist_id)
    }

    /// How the audit log names this actor.
    pub fn actor(&self) -> String {
        format!("token:{}", self.token_id)
    }
}

/// A URL slug from a title: lowercase ASCII letters and digits joined by
/// single hyphens. Accents are dropped from their letters ("Été" → "ete")
/// rather than the letters themselves.
pub fn slugify(title: &str) -> String {
    use unicode_normalization::{char::is_combining_mark, UnicodeNormalization};
    let mut slug = String::with_capacity(title.len());
    for c in title.nfd().filter(|c| !is_combining_mark(*c)).flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let trimmed = slug.trim_end_matches('-');
    trimmed.chars().take(120).collect::<String>().trim_end_matches('-').to_owned()
}

/// Whether a time a client sent can be stored and compared by PostgreSQL
/// (`timestamptz` stops at year 294276, chrono goes further): years 1 to 9999.
pub fn storable_time(t: DateTime<Utc>) -> bool {
    (1..=9999).contains(&t.year())
}

pub fn valid_slug(slug: &str) -> bool {
    !slug.is_empty()
        && slug.len() <= 120
        && slug.split('-').all(|part| {
            !part.is_empty() && part.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}

/// The key an original is uploaded to: the artwork and image ids, then the
/// artist's file name (kept only so operators recognise the upload; any
/// characters, which is why S3 events must be decoded with care).
pub fn original_key(artwork_id: Uuid, image_id: Uuid, file_name: &str) -> String {
    format!("originals/{artwork_id}/{image_id}/{file_name}")
}

/// The image id in an original's key, if the key is one of ours.
pub fn image_id_from_original_key(key: &str) -> Option<Uuid> {
    let mut parts = key.strip_prefix("originals/")?.splitn(3, '/');
    Uuid::parse_str(parts.next()?).ok()?;
    let image = Uuid::parse_str(parts.next()?).ok()?;
    parts.next().filter(|name| !name.is_empty())?;
    Some(image)
}

/// A file name safe to put in a key: the last path segment, control characters
/// dropped, at most 200 characters; `original` if nothing is left.
pub fn clean_file_name(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = last.chars().filter(|c| !c.is_control()).take(200).collect();
    let cleaned = cleaned.trim();
    if cleaned.is_empty() || cleaned == "." || cleaned == ".." {
        "original".to_owned()
    } else {
        cleaned.to_owned()
    }
}

/// The image types the processor reads, by the names browsers give them.
pub const UPLOAD_TYPES: [(&str, &[&str]); 5] = [
    ("image/jpeg", &["jpg", "jpeg", "jpe"]),
    ("image/png", &["png"]),
    ("image/webp", &["webp"]),
    ("image/tiff", &["tif", "tiff"]),
    ("image/gif", &["gif"]),
];

/// The `Content-Type` an upload's POST policy pins: the one the client
/// declares, or else the one its file name implies; never a non-image type.
pub fn upload_content_type(
    file_name: &str,
    declared: Option<&str>,
) -> Result<&'static str, Invalid> {
    let known = || UPLOAD_TYPES.iter().map(|(t, _)| *t).collect::<Vec<_>>().join(", ");
    if let Some(declared) = declared {
        let declared = declared.trim().to_ascii_lowercase();
        let declared = if declared == "image/jpg" { "image/jpeg".to_owned() } else { declared };
        return UPLOAD_TYPES
            .iter()
            .find(|(t, _)| *t == declared)
            .map(|(t, _)| *t)
            .ok_or_else(|| invalid("content_type", format!("must be one of {}", known())));
    }
    let extension =
        file_name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
    UPLOAD_TYPES
        .iter()
        .find(|(_, exts)| exts.contains(&extension.as_str()))
        .map(|(t, _)| *t)
        .ok_or_else(|| {
            invalid(
                "content_type",
                format!("cannot be told from the file name; send one of {}", known()),
            )
        })
}

/// Deterministic key of a rendition, so a retried event overwrites rather than duplicates.
pub fn rendition_key(artwork_id: Uuid, image_id: Uuid, long_edge: u32, extension: &str) -> String {
    format!("renditions/{artwork_id}/{image_id}/{long_edge}.{extension}")
}

/// Decodes an S3 event key: `+` is a space and `%XX` an escaped byte.
/// Invalid UTF-8 escapes are kept lossily rather than dropping the event.
pub fn decode_event_key(raw: &str) -> String {
    let spaced = raw.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced).decode_utf8_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_keys_decode_plus_percent_and_unicode() {
        assert_eq!(
            decode_event_key("originals/a/b/My+Sunrise.jpg"),
            "originals/a/b/My Sunrise.jpg"
        );
        assert_eq!(decode_event_key("originals/a/b/1%2B1.jpg"), "originals/a/b/1+1.jpg");
        assert_eq!(decode_event_key("originals/a/b/%C3%89t%C3%A9.png"), "originals/a/b/Été.png");
        assert_eq!(decode_event_key("plain"), "plain");
    }

    #[test]
    fn upload_types_are_images_only() {
        assert_eq!(upload_content_type("IMG_0001.JPG", None).unwrap(), "image/jpeg");
        assert_eq!(upload_content_type("scan.tiff", None).unwrap(), "image/tiff");
        assert_eq!(upload_content_type("x", Some("image/jpg")).unwrap(), "image/jpeg");
        assert_eq!(upload_content_type("x.png", Some(" Image/WebP ")).unwrap(), "image/webp");
        assert!(upload_content_type("notes.txt", None).is_err());
        assert!(upload_content_type("page.html", Some("text/html")).is_err());
        assert!(
            upload_content_type("x.jpg", Some("image/svg+xml")).is_err(),
            "SVG can carry script"
        );
    }

    #[test]
    fn slugify_makes_valid_slugs() {
        assert_eq!(slugify("  Copper Sunrise, No. 3! "), "copper-sunrise-no-3");
        assert_eq!(slugify("Été à Paris"), "ete-a-paris");
        assert!(valid_slug(&slugify("A -- B")));
        assert_eq!(slugify("!!!"), "");
        assert!(slugify(&"x".repeat(500)).len() <= 120);
    }

    #[test]
    fn slug_rules() {
        assert!(valid_slug("a-b-3"));
        for bad in ["", "-a", "a-", "a--b", "A", "a_b", "é"] {
            assert!(!valid_slug(bad), "{bad}");
        }
    }

    #[test]
    fn original_keys_round_trip() {
        let (a, i) = (Uuid::new_v4(), Uuid::new_v4());
        assert_eq!(image_id_from_original_key(&original_key(a, i, "Été + 100%.jpg")), Some(i));
        assert_eq!(image_id_from_original_key(&format!("originals/{a}/{i}/")), None);
        assert_eq!(image_id_from_original_key("originals/x/y/z"), None);
        assert_eq!(image_id_from_original_key("elsewhere/file.jpg"), None);
    }

    #[test]
    fn file_names_are_cleaned() {
        assert_eq!(clean_file_name("C:\\photos\\sunrise.jpg"), "sunrise.jpg");
        assert_eq!(clean_file_name("../../etc/passwd"), "passwd");
        assert_eq!(clean_file_name("a\nb.png"), "ab.png");
        assert_eq!(clean_file_name(".."), "original");
        assert_eq!(clean_file_name("Été à Paris + 1.tif"), "Été à Paris + 1.tif");
    }

    #[test]
    fn principals() {
        let artist = Uuid::new_v4();
        let p =
            Principal { token_id: Uuid::new_v4(), scope: Scope::Artist, artist_id: Some(artist) };
        assert!(p.may_manage(artist));
        assert!(!p.may_manage(Uuid::new_v4()));
        let admin = Principal { token_id: Uuid::new_v4(), scope: Scope::Admin, artist_id: None };
        assert!(admin.may_manage(artist));
        assert_eq!(admin.actor(), format!("token:{}", admin.token_id));
    }

    #[test]
    fn only_years_postgres_can_hold_are_storable() {
        use chrono::TimeZone;
        let year = |y: i32| Utc.with_ymd_and_hms(y, 6, 1, 0, 0, 0).unwrap();
        assert!(storable_time(year(1)) && storable_time(year(2026)) && storable_time(year(9999)));
        assert!(
            !storable_time(year(0)) && !storable_time(year(10_000)) && !storable_time(year(-44))
        );
    }

    #[test]
    fn rendition_keys_are_deterministic_per_image_and_size() {
        let (artwork, image) = (Uuid::nil(), Uuid::max());
        assert_eq!(
            rendition_key(artwork, image, 800, "webp"),
            format!("renditions/{artwork}/{image}/800.webp")
        );
    }

    #[test]
    fn an_edition_has_its_unsold_prints_until_retired() {
        let now = Utc::now();
        let mut edition = PrintEdition {
            id: Uuid::new_v4(),
            artwork_id: Uuid::new_v4(),
            edition_size: 50,
            paper: "Hahnemühle".into(),
            price_minor: 12_000,
            currency: "EUR".into(),
            currency_exponent: 2,
            sold_count: 7,
            highest_print: 9,
            retired_at: None,
            created_at: now,
            updated_at: now,
        };
        assert_eq!(edition.available(), 43);
        edition.retired_at = Some(now);
        assert_eq!(edition.available(), 0);
    }

    proptest::proptest! {
        /// Whatever an artist names a file, its original's key stays one
        /// segment under the artwork's and image's prefix, and gives the
        /// image back.
        #[test]
        fn any_file_name_keeps_its_key_under_the_prefix(name in "\\PC{0,40}|[./\\\\a-z]{0,12}") {
            let (artwork, image) = (Uuid::new_v4(), Uuid::new_v4());
            let key = original_key(artwork, image, &clean_file_name(&name));
            let prefix = format!("originals/{artwork}/{image}/");
            let rest = key.strip_prefix(&prefix).unwrap();
            proptest::prop_assert!(!rest.is_empty() && !rest.contains(['/', '\\']), "{key}");
            proptest::prop_assert!(rest != "." && rest != "..", "{key}");
            proptest::prop_assert_eq!(image_id_from_original_key(&key), Some(image));
        }
    }

    #[test]
    fn statuses_parse_their_own_text() {
        for s in
            [ImageStatus::Pending, ImageStatus::Processing, ImageStatus::Ready, ImageStatus::Failed]
        {
            assert_eq!(s.as_str().parse::<ImageStatus>().unwrap(), s);
        }
        assert!("deleted".parse::<ArtworkStatus>().is_err());
    }
}

/// Prefix of every API token, so leaked tokens are recognisable by scanners.
pub const TOKEN_PREFIX: &str = "cpg_";

/// A new random token secret (256 bits) to show once, and the digest to store.
pub fn new_token() -> (String, String) {
    use base64::Engine;
    let bytes: [u8; 32] = rand::random();
    let secret =
        format!("{TOKEN_PREFIX}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes));
    let digest = token_digest(&secret);
    (secret, digest)
}

/// The stored form of a token. Secrets are 256 random bits, so a plain SHA-256
/// (not a slow password hash) already makes the stored digest useless to a thief.
pub fn token_digest(secret: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(secret.as_bytes()))
}

#[cfg(test)]
mod token_tests {
    use super::*;

    #[test]
    fn tokens_are_unique_and_digests_stable() {
        let (a, da) = new_token();
        let (b, _) = new_token();
        assert_ne!(a, b);
        assert!(a.starts_with(TOKEN_PREFIX));
        assert_eq!(token_digest(&a), da);
        assert_eq!(da.len(), 64);
    }
}
