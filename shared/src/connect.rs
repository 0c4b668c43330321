//! A function's cold start: AWS clients, the database password from Secrets
//! Manager, and the pool that reads the password again after a rotation.

use crate::aws::{Clients, SecretError};
use crate::config::{Common, PasswordSource};
use crate::db::{self, DbError, PasswordRefresh};

/// Why a cold start could not get its clients and pool.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error(transparent)]
    Db(#[from] DbError),
}

/// AWS clients and the application role's pool.
pub async fn connect(common: &Common) -> Result<(Clients, deadpool_postgres::Pool), StartupError> {
    let clients = Clients::new(&common.aws).await;
    let password = clients.database_password(&common.db.password).await?;
    let pool = db::pool_rotating(
        &common.db,
        &password,
        Some(password_refresh(&clients, &common.db.password)),
    )?;
    Ok((clients, pool))
}

/// How a pool reads `source` again after a rotation.
pub fn password_refresh(clients: &Clients, source: &PasswordSource) -> PasswordRefresh {
    let (clients, source) = (clients.clone(), source.clone());
    std::sync::Arc::new(move || {
        let (clients, source) = (clients.clone(), source.clone());
        Box::pin(async move { clients.database_password(&source).await.map_err(|e| e.to_string()) })
    })
}
