//! Print editions and their sales.

use deadpool_postgres::GenericClient;
use tokio_postgres::Row;
use uuid::Uuid;

use super::DbError;
use crate::domain::{EditionFields, PrintEdition, SaleRecord};

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
        highest_print: row.try_get("highest_print")?,
        retired_at: row.try_get("retired_at")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

const COLUMNS: &str =
    "id, artwork_id, edition_size, paper, price_minor, currency::text AS currency, sold_count, retired_at, created_at, updated_at, \
     (SELECT coalesce(max(s.print_number), 0) FROM print_sales s \
       WHERE s.edition_id = print_editions.id AND s.voided_at IS NULL) AS highest_print";

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
        "SELECT {COLUMNS} FROM print_editions WHERE id = $1 \
           AND EXISTS (SELECT 1 FROM artworks a WHERE a.id = print_editions.artwork_id AND a.deleted_at IS NULL) FOR UPDATE"
    );
    db.query_opt(&sql, &[&id]).await?.as_ref().map(edition_from_row).transpose()
}

pub async fn edition_by_id(
    db: &impl GenericClient,
    id: Uuid,
) -> Result<Option<PrintEdition>, DbError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM print_editions WHERE id = $1 \
           AND EXISTS (SELECT 1 FROM artworks a WHERE a.id = print_editions.artwork_id AND a.deleted_at IS NULL)"
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

/// Records `count` prints sold if that many are left and the edition is on
/// sale; `None` otherwise. The first statement serialises concurrent sales on
/// the edition's row, so exactly one of them sells the last print; the second,
/// a new statement and so a new snapshot, sees every sale committed before it
/// and numbers the prints from the lowest free number. Each print keeps the
/// price of the moment.
pub async fn record_sale(
    db: &impl GenericClient,
    edition_id: Uuid,
    count: i32,
    external_ref: Option<&str>,
) -> Result<Option<(PrintEdition, Vec<SaleRecord>)>, DbError> {
    let sql = format!(
        "UPDATE print_editions SET sold_count = sold_count + $2, updated_at = now() \
         WHERE id = $1 AND retired_at IS NULL AND sold_count + $2 <= edition_size RETURNING {COLUMNS}"
    );
    let Some(mut edition) = db
        .query_opt(&sql, &[&edition_id, &count])
        .await?
        .as_ref()
        .map(edition_from_row)
        .transpose()?
    else {
        return Ok(None);
    };
    let sold_before = edition.sold_count - count;
    // A new statement, so a new snapshot: it sees every sale committed before
    // this one took the edition's row. Live sales hold distinct numbers from
    // 1: as many as the highest means no gaps, and the next numbers follow it
    // (one index lookup); a void left a gap, and every number is searched
    // for the lowest free ones.
    let sql = format!(
        "WITH top AS (SELECT coalesce(max(print_number), 0) AS n FROM print_sales \
                       WHERE edition_id = $1 AND voided_at IS NULL), \
              span AS (SELECT CASE WHEN top.n = $4 THEN top.n + 1 ELSE 1 END AS first, \
                              CASE WHEN top.n = $4 THEN top.n + $2 ELSE 2147483647 END AS last FROM top) \
         INSERT INTO print_sales (id, edition_id, print_number, price_minor, currency, external_ref) \
         SELECT gen_random_uuid(), e.id, n, e.price_minor, e.currency, $3 \
           FROM print_editions e, span, generate_series(span.first, least(e.edition_size, span.last)) n \
          WHERE e.id = $1 AND NOT EXISTS (SELECT 1 FROM print_sales s WHERE s.edition_id = e.id \
                                             AND s.print_number = n AND s.voided_at IS NULL) \
          ORDER BY n LIMIT $2 RETURNING {SALE_COLUMNS}"
    );
    let mut sales: Vec<SaleRecord> = db
        .query(&sql, &[&edition_id, &count, &external_ref, &sold_before])
        .await?
        .iter()
        .map(sale_from_row)
        .collect::<Result<_, _>>()?;
    sales.sort_by_key(|s| s.print_number);
    // The row returned by the UPDATE, whose highest number predates these sales.
    edition.highest_print =
        sales.iter().map(|s| s.print_number).fold(edition.highest_print, i32::max);
    Ok(Some((edition, sales)))
}

const SALE_COLUMNS: &str =
    "id, edition_id, print_number, price_minor, currency::text AS currency, external_ref, \
     sold_at, voided_at, void_reason";

fn sale_from_row(row: &Row) -> Result<SaleRecord, DbError> {
    let currency: String = row.try_get("currency")?;
    Ok(SaleRecord {
        id: row.try_get("id")?,
        edition_id: row.try_get("edition_id")?,
        print_number: row.try_get("print_number")?,
        price_minor: row.try_get("price_minor")?,
        currency_exponent: crate::domain::currency_exponent(&currency),
        currency,
        external_ref: row.try_get("external_ref")?,
        sold_at: row.try_get("sold_at")?,
        voided_at: row.try_get("voided_at")?,
        void_reason: row.try_get("void_reason")?,
    })
}

/// Every sale of an edition, voided ones included, by print number then time.
pub async fn sales_of(
    db: &impl GenericClient,
    edition_id: Uuid,
) -> Result<Vec<SaleRecord>, DbError> {
    let sql = format!(
        "SELECT {SALE_COLUMNS} FROM print_sales WHERE edition_id = $1 ORDER BY print_number, sold_at, id"
    );
    db.query(&sql, &[&edition_id]).await?.iter().map(sale_from_row).collect()
}

pub async fn sale_by_id(db: &impl GenericClient, id: Uuid) -> Result<Option<SaleRecord>, DbError> {
    let sql = format!("SELECT {SALE_COLUMNS} FROM print_sales WHERE id = $1");
    db.query_opt(&sql, &[&id]).await?.as_ref().map(sale_from_row).transpose()
}

/// Voids a live sale and gives its print back to the edition. Callers hold
/// the edition's lock; `None` when the sale was already voided.
pub async fn void_sale(
    db: &impl GenericClient,
    id: Uuid,
    reason: &str,
) -> Result<Option<SaleRecord>, DbError> {
    let sql = format!(
        "UPDATE print_sales SET voided_at = now(), void_reason = $2 WHERE id = $1 AND voided_at IS NULL \
         RETURNING {SALE_COLUMNS}"
    );
    let Some(sale) =
        db.query_opt(&sql, &[&id, &reason]).await?.as_ref().map(sale_from_row).transpose()?
    else {
        return Ok(None);
    };
    db.execute(
        "UPDATE print_editions SET sold_count = sold_count - 1, updated_at = now() WHERE id = $1",
        &[&sale.edition_id],
    )
    .await?;
    Ok(Some(sale))
}
