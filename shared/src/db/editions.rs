//! Print editions and their sales.

use deadpool_postgres::GenericClient;
use tokio_postgres::Row;
use uuid::Uuid;

use super::DbError;
use crate::domain::{EditionFields, PrintEdition};

fn edition_from_row(row: &Row) -> Result<PrintEdition, DbError> {
    Ok(PrintEdition {
        id: row.try_get("id")?,
        artwork_id: row.try_get("artwork_id")?,
        edition_size: row.try_get("edition_size")?,
        paper: row.try_get("paper")?,
        price_minor: row.try_get("price_minor")?,
        currency_exponent: crate::domain::currency_exponent(row.try_get("currency")?),
        currency: row.try_get("currency")?,
        sold_count: row.try_get("sold_count")?,
        retired_at: row.try_get("retired_at")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

const COLUMNS: &str =
    "id, artwork_id, edition_size, paper, price_minor, currency::text AS currency, sold_count, retired_at, created_at, updated_at";

pub async fn insert_edition(
    db: &impl GenericClient,
    artwork_id: Uuid,
    f: &EditionFields,
) -> Result<PrintEdition, DbError> {
    let id = Uuid::new_v4();
    let sql = format!(
        "INSERT INTO print_editions (id, artwork_id, edition_size, paper, price_minor, currency) \
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING {COLUMNS}"
    );
    let row = db
        .query_one(
            &sql,
            &[&id, &artwork_id, &f.edition_size, &f.paper, &f.price_minor, &f.currency],
        )
        .await?;
    edition_from_row(&row)
}

pub async fn editions_of(
    db: &impl GenericClient,
    artwork_id: Uuid,
) -> Result<Vec<PrintEdition>, DbError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM print_editions WHERE artwork_id = $1 ORDER BY created_at, id"
    );
    db.query(&sql, &[&artwork_id]).await?.iter().map(edition_from_row).collect()
}

/// An edition, locked for the rest of the transaction, with its artwork's id.
pub async fn lock_edition(
    db: &impl GenericClient,
    id: Uuid,
) -> Result<Option<PrintEdition>, DbError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM print_editions e WHERE id = $1 \
           AND EXISTS (SELECT 1 FROM artworks a WHERE a.id = e.artwork_id AND a.deleted_at IS NULL) FOR UPDATE"
    );
    db.query_opt(&sql, &[&id]).await?.as_ref().map(edition_from_row).transpose()
}

pub async fn edition_by_id(
    db: &impl GenericClient,
    id: Uuid,
) -> Result<Option<PrintEdition>, DbError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM print_editions e WHERE id = $1 \
           AND EXISTS (SELECT 1 FROM artworks a WHERE a.id = e.artwork_id AND a.deleted_at IS NULL)"
    );
    db.query_opt(&sql, &[&id]).await?.as_ref().map(edition_from_row).transpose()
}

pub async fn update_edition(
    db: &impl GenericClient,
    id: Uuid,
    f: &EditionFields,
) -> Result<PrintEdition, DbError> {
    let sql = format!(
        "UPDATE print_editions SET edition_size = $2, paper = $3, price_minor = $4, currency = $5, updated_at = now() \
         WHERE id = $1 RETURNING {COLUMNS}"
    );
    edition_from_row(
        &db.query_one(&sql, &[&id, &f.edition_size, &f.paper, &f.price_minor, &f.currency]).await?,
    )
}

pub async fn retire_edition(db: &impl GenericClient, id: Uuid) -> Result<PrintEdition, DbError> {
    let sql = format!("UPDATE print_editions SET retired_at = now(), updated_at = now() WHERE id = $1 RETURNING {COLUMNS}");
    edition_from_row(&db.query_one(&sql, &[&id]).await?)
}

/// Records `count` sales if that many prints are left and the edition is on
/// sale; `None` otherwise. One statement, so concurrent sales of the last
/// print serialise on the row and exactly one wins (the schema's CHECK is the
/// second line of defence).
pub async fn record_sale(
    db: &impl GenericClient,
    edition_id: Uuid,
    count: i32,
) -> Result<Option<PrintEdition>, DbError> {
    let sql = format!(
        "UPDATE print_editions SET sold_count = sold_count + $2, updated_at = now() \
         WHERE id = $1 AND retired_at IS NULL AND sold_count + $2 <= edition_size RETURNING {COLUMNS}"
    );
    db.query_opt(&sql, &[&edition_id, &count]).await?.as_ref().map(edition_from_row).transpose()
}
