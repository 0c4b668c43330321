//! The whole gallery on loopback: provisions the emulator, migrates, seeds a
//! demo artist, then serves the API router and the published renditions (as
//! CloudFront would) and processes uploads with the same code the Lambdas run. Started by `cargo xtask dev`; Ctrl-C stops it.
//!
//! `local [--address ADDR] [--credentials FILE]`: another address (default
//! 127.0.0.1:3000), and an artist's and an admin's token written to FILE
//! (owner-only) for the reliability suite's attack runs.

use std::sync::Arc;

use shared::config::FromEnv;

use anyhow::Result;

const ADDRESS: &str = "127.0.0.1:3000";

fn option(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned()
}

#[tokio::main]
async fn main() -> Result<()> {
    shared::telemetry::init();
    let api_config = api::ApiConfig::from_env()?;
    let processor_config = image_processor::ProcessorConfig::from_env()?;
    let backup_config = backup::BackupConfig::from_env()?;
    let retention_config = retention::RetentionConfig::from_env()?;

    let common = &api_config.common;
    let clients = shared::aws::Clients::new(&common.aws).await;
    local::provision(&clients, &retention_config, &api_config.region).await?;
    let owner_password = clients.database_password(&backup_config.owner.password).await?;
    let applied = local::migrate(&common.db, &backup_config.owner.user, &owner_password).await?;
    tracing::info!(?applied, "migrations applied");

    let password = clients.database_password(&common.db.password).await?;
    let pool = shared::db::pool(&common.db, &password)?;
    let token = local::seed(&pool).await?;
    if let Some(path) = option("--credentials") {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let credentials = local::credentials(&pool).await?;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)?;
        file.write_all(&serde_json::to_vec(&credentials)?)?;
    }
    // The processor logs in as its own role, as deployed.
    let processor_login = &backup_config.function_logins.processor;
    let processor_db =
        shared::config::DbConfig { user: processor_login.user.clone(), ..common.db.clone() };
    let processor_pool = shared::db::pool(
        &processor_db,
        &clients.database_password(&processor_login.password).await?,
    )?;
    let processor = image_processor::processor_with(&processor_config, processor_pool, &clients);
    let state = Arc::new(api::AppState::new(&api_config, pool, &clients));
    let media = state.media.clone();

    let address = option("--address").unwrap_or_else(|| ADDRESS.to_owned());
    let listener = tokio::net::TcpListener::bind(&address).await?;
    println!(
        "\nCopper Print Gallery is running on http://{address}\n\
         demo artist token (shown once): {token}\n\
         try: curl -s http://{address}/v1/artworks\n\
         \x20    (published images load from http://{address}/renditions/..., as from the CDN)\n\
         \x20    curl -s http://{address}/v1/me -H 'x-gallery-token: {token}'\n\
         \x20    (writes also send x-amz-content-sha256: the body's SHA-256; see the README)\n\
         Ctrl-C stops everything.\n"
    );
    // One origin for the API and the renditions, as the distribution serves both.
    let serve = axum::serve(listener, api::router(state).merge(local::edge::router(media)))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        });
    let watch = local::watch_uploads(&processor, &clients.s3, async {
        let _ = tokio::signal::ctrl_c().await;
    });
    let (served, ()) = tokio::join!(serve, watch);
    served?;
    Ok(())
}
