//! The fields people and scripts name things with, one rule each: the API's
//! routes and the operator's tasks both parse through these types, so a name
//! the API refuses cannot enter through the operator tool (or the other way).

use uuid::Uuid;

use super::text::{self, Lines};
use super::{invalid, Invalid, Problems, Scope};

/// The longest a token may live, in days.
pub const MAX_TOKEN_DAYS: u32 = 365;

macro_rules! text_field {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }
    };
}

text_field!(
    /// 1 to 200 characters on one line, NFC.
    ArtistName
);
text_field!(
    /// A plausible address of at most 320 characters.
    Email
);
text_field!(
    /// At most 10,000 characters; line breaks allowed.
    Bio
);
text_field!(
    /// An `https://` URL with a host, at most 2,000 characters.
    Website
);
text_field!(
    /// What a token is for ("Ada's phone"): 1 to 200 characters on one line.
    TokenLabel
);

impl ArtistName {
    pub fn parse(value: &str) -> Result<Self, Invalid> {
        text::text("name", value, 1, 200, Lines::One).map(Self)
    }
}

impl Email {
    pub fn parse(value: &str) -> Result<Self, Invalid> {
        text::email("email", value).map(Self)
    }
}

impl Bio {
    /// `None` for absent or empty.
    pub fn parse(value: Option<&str>) -> Result<Option<Self>, Invalid> {
        Ok(text::optional_text("bio", value, 10_000, Lines::Many)?.map(Self))
    }
}

impl Website {
    /// `None` for absent or empty.
    pub fn parse(value: Option<&str>) -> Result<Option<Self>, Invalid> {
        Ok(text::website("website", value)?.map(Self))
    }
}

impl TokenLabel {
    pub fn parse(value: &str) -> Result<Self, Invalid> {
        text::text("label", value, 1, 200, Lines::One).map(Self)
    }
}

/// How long a new token lives: 1 to [`MAX_TOKEN_DAYS`] days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenLifetime(u32);

impl TokenLifetime {
    pub fn parse(days: i64) -> Result<Self, Invalid> {
        match u32::try_from(days) {
            Ok(d) if (1..=MAX_TOKEN_DAYS).contains(&d) => Ok(Self(d)),
            _ => Err(invalid("expires_in_days", format!("must be 1 to {MAX_TOKEN_DAYS}"))),
        }
    }

    pub fn days(self) -> u32 {
        self.0
    }

    pub fn duration(self) -> chrono::Duration {
        chrono::Duration::days(i64::from(self.0))
    }
}

/// Whom a token belongs to: an artist token names its artist, an admin token none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenHolder {
    Admin,
    Artist(Uuid),
}

/// Why a scope and an artist do not make a holder (each interface words it
/// in its own terms: a JSON field, a command-line flag).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HolderMismatch {
    ArtistTokenWithoutArtist,
    AdminTokenWithArtist,
}

impl TokenHolder {
    pub fn parse(scope: Scope, artist_id: Option<Uuid>) -> Result<Self, HolderMismatch> {
        match (scope, artist_id) {
            (Scope::Admin, None) => Ok(Self::Admin),
            (Scope::Artist, Some(id)) => Ok(Self::Artist(id)),
            (Scope::Artist, None) => Err(HolderMismatch::ArtistTokenWithoutArtist),
            (Scope::Admin, Some(_)) => Err(HolderMismatch::AdminTokenWithArtist),
        }
    }

    pub fn scope(self) -> Scope {
        match self {
            Self::Admin => Scope::Admin,
            Self::Artist(_) => Scope::Artist,
        }
    }

    pub fn artist_id(self) -> Option<Uuid> {
        match self {
            Self::Admin => None,
            Self::Artist(id) => Some(id),
        }
    }
}

/// A new artist's fields, every one checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewArtistFields {
    pub name: ArtistName,
    pub email: Email,
    pub bio: Option<Bio>,
    pub website: Option<Website>,
}

impl NewArtistFields {
    pub fn parse(
        name: &str,
        email: &str,
        bio: Option<&str>,
        website: Option<&str>,
    ) -> Result<Self, Vec<Invalid>> {
        let mut problems = Problems::default();
        let name = problems.check(ArtistName::parse(name));
        let email = problems.check(Email::parse(email));
        let bio = problems.check(Bio::parse(bio));
        let website = problems.check(Website::parse(website));
        match problems.finish(|| (name, email, bio, website))? {
            (Some(name), Some(email), Some(bio), Some(website)) => {
                Ok(Self { name, email, bio, website })
            }
            // `finish` fails whenever a field did.
            _ => Err(Vec::new()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_rule_for_every_interface() {
        assert!(ArtistName::parse("Ada\u{202E}").is_err(), "bidi overrides are refused");
        assert_eq!(
            ArtistName::parse("  Cafe\u{301} ").unwrap().as_str(),
            "Caf\u{e9}",
            "trimmed and NFC"
        );
        assert!(Website::parse(Some("https://")).is_err(), "a URL needs a host");
        assert!(Website::parse(Some("http://ada.example")).is_err());
        assert_eq!(Website::parse(Some("")).unwrap(), None);
        assert!(Email::parse("ada@example").is_err());
        assert_eq!(TokenLifetime::parse(365).unwrap().days(), 365);
        for days in [0, 366, -1, i64::from(u32::MAX) + 1] {
            assert!(TokenLifetime::parse(days).is_err(), "{days}");
        }
        assert_eq!(
            TokenHolder::parse(Scope::Artist, None),
            Err(HolderMismatch::ArtistTokenWithoutArtist)
        );
        assert_eq!(
            TokenHolder::parse(Scope::Admin, Some(Uuid::nil())),
            Err(HolderMismatch::AdminTokenWithArtist)
        );
        let many = NewArtistFields::parse("", "nope", None, Some("ftp://x")).unwrap_err();
        assert_eq!(many.iter().map(|i| i.field).collect::<Vec<_>>(), ["name", "email", "website"]);
    }
}
