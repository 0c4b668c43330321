//! The orders of the public list and the keyset cursors that page through
//! them. A cursor carries the last row's sort key and id, so rows with equal
//! keys are neither skipped nor repeated; it is checked here, before any of it
//! reaches SQL, so a forged cursor is a 400, never a database error.

use base64::Engine;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{invalid, Cursor, Invalid};

/// How the public list is ordered. `relevance` needs a search (`q`); the price
/// orders need a `currency` (minor units of different currencies do not
/// compare) and list only works with a print on sale in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Sort {
    Newest,
    PriceAsc,
    PriceDesc,
    YearDesc,
    YearAsc,
    Title,
    Relevance,
}

impl Sort {
    pub fn as_str(self) -> &'static str {
        match self {
            Sort::Newest => "newest",
            Sort::PriceAsc => "price_asc",
            Sort::PriceDesc => "price_desc",
            Sort::YearDesc => "year_desc",
            Sort::YearAsc => "year_asc",
            Sort::Title => "title",
            Sort::Relevance => "relevance",
        }
    }

    /// Every order.
    pub const ALL: [Sort; 7] = [
        Sort::Newest,
        Sort::PriceAsc,
        Sort::PriceDesc,
        Sort::YearDesc,
        Sort::YearAsc,
        Sort::Title,
        Sort::Relevance,
    ];

    fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.as_str() == s)
    }

    /// Whether the list runs from the largest key down.
    pub fn descending(self) -> bool {
        matches!(self, Sort::Newest | Sort::PriceDesc | Sort::YearDesc | Sort::Relevance)
    }

    pub fn needs_currency(self) -> bool {
        matches!(self, Sort::PriceAsc | Sort::PriceDesc)
    }
}

/// The last row's value of the sort key.
#[derive(Debug, Clone, PartialEq)]
pub enum SortKey {
    Time(DateTime<Utc>),
    /// A price in minor units, or a year (unknown years sort last).
    Number(i64),
    /// A lower-cased title.
    Text(String),
    /// A search rank.
    Rank(f64),
}

impl SortKey {
    /// The key as PostgreSQL reads it back exactly (`$n::text::<type>`): a
    /// float's shortest round-trip decimal, a time to the microsecond.
    pub fn to_sql_text(&self) -> String {
        match self {
            SortKey::Time(t) => t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            SortKey::Number(n) => n.to_string(),
            SortKey::Text(s) => s.clone(),
            SortKey::Rank(r) => r.to_string(),
        }
    }
}

/// Where the next page of a sorted list starts. Opaque to clients.
#[derive(Debug, Clone, PartialEq)]
pub struct PageCursor {
    pub sort: Sort,
    pub key: SortKey,
    pub id: Uuid,
}

/// Titles are at most 300 characters (1,200 bytes); nothing longer is ours.
const MAX_KEY_BYTES: usize = 1_200;

impl PageCursor {
    pub fn encode(&self) -> String {
        match (&self.sort, &self.key) {
            // The v1 cursor of the default order, unchanged for clients holding one.
            (Sort::Newest, SortKey::Time(at)) => Cursor { at: *at, id: self.id }.encode(),
            _ => {
                let raw = format!(
                    "{}.{}.{}",
                    self.sort.as_str(),
                    self.id.simple(),
                    self.key.to_sql_text()
                );
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
            }
        }
    }

    /// A cursor this API returned for a list in `sort` order.
    pub fn decode(field: &'static str, s: &str, sort: Sort) -> Result<Self, Invalid> {
        if sort == Sort::Newest {
            let c = Cursor::decode(field, s)?;
            return Ok(Self { sort, key: SortKey::Time(c.at), id: c.id });
        }
        let bad = || invalid(field, "is not a cursor this API returned for this sort");
        if s.len() > 2 * MAX_KEY_BYTES {
            return Err(bad());
        }
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s).map_err(|_| bad())?;
        let raw = String::from_utf8(raw).map_err(|_| bad())?;
        let (name, rest) = raw.split_once('.').ok_or_else(bad)?;
        let (id, key) = rest.split_once('.').ok_or_else(bad)?;
        if Sort::parse(name) != Some(sort) {
            return Err(bad());
        }
        let id = Uuid::parse_str(id).map_err(|_| bad())?;
        let key = match sort {
            Sort::Newest => unreachable!("decoded above"),
            Sort::PriceAsc | Sort::PriceDesc | Sort::YearAsc | Sort::YearDesc => {
                SortKey::Number(key.parse().map_err(|_| bad())?)
            }
            Sort::Relevance => {
                let r: f64 = key.parse().map_err(|_| bad())?;
                if !r.is_finite() || r < 0.0 {
                    return Err(bad());
                }
                SortKey::Rank(r)
            }
            // PostgreSQL text holds no NUL; a title never has one.
            Sort::Title if key.len() <= MAX_KEY_BYTES && !key.contains('\0') => {
                SortKey::Text(key.to_owned())
            }
            Sort::Title => return Err(bad()),
        };
        Ok(Self { sort, key, id })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_cursor_is_for_one_order_only() {
        let c = PageCursor { sort: Sort::Title, key: SortKey::Text("a.b".into()), id: Uuid::nil() };
        let s = c.encode();
        assert_eq!(PageCursor::decode("cursor", &s, Sort::Title).unwrap(), c);
        assert!(PageCursor::decode("cursor", &s, Sort::YearAsc).is_err());
        assert!(PageCursor::decode("cursor", &s, Sort::Newest).is_err());
        let nul = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(format!("title.{}.a\0b", Uuid::nil().simple()));
        assert!(PageCursor::decode("cursor", &nul, Sort::Title).is_err());
        let nan = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(format!("relevance.{}.NaN", Uuid::nil().simple()));
        assert!(PageCursor::decode("cursor", &nan, Sort::Relevance).is_err());
    }

    proptest! {
        #[test]
        fn cursors_round_trip(rank in 0.0f64..1e6, n in any::<i64>(), title in "\\PC{0,300}", id in any::<u128>()) {
            let id = Uuid::from_u128(id);
            let title = title.replace('\0', "");
            for (sort, key) in [
                (Sort::Relevance, SortKey::Rank(rank)),
                (Sort::PriceDesc, SortKey::Number(n)),
                (Sort::Title, SortKey::Text(title.clone())),
            ] {
                let c = PageCursor { sort, key, id };
                prop_assert_eq!(PageCursor::decode("cursor", &c.encode(), sort).unwrap(), c);
            }
        }

        #[test]
        fn a_rank_survives_the_text_round_trip(rank in 0.0f64..1e6) {
            prop_assert_eq!(SortKey::Rank(rank).to_sql_text().parse::<f64>().unwrap(), rank);
        }
    }
}
