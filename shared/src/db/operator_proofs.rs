//! Operator identity proofs, each good for one invocation.

use deadpool_postgres::GenericClient;

use super::DbError;

/// Records a proof as used; `false` when it was used before. Proofs older
/// than a day are forgotten here too: STS refuses a proof 15 minutes after
/// it was signed, so an older one can never be presented again.
pub async fn spend_operator_proof(
    db: &impl GenericClient,
    digest: &[u8; 32],
    caller: &str,
) -> Result<bool, DbError> {
    db.execute("DELETE FROM operator_proofs WHERE used_at < now() - interval '1 day'", &[]).await?;
    let spent = db
        .execute(
            "INSERT INTO operator_proofs (proof_sha256, caller) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &[&digest.as_slice(), &caller],
        )
        .await?;
    Ok(spent == 1)
}
