//! The API function's operator tasks (`gallery-ops tokens …`, `admin
//! bootstrap`, `artists create|list`): tokens and the first artists, before
//! anyone holds a token for the admin routes. Each runs in one transaction
//! with its audit entry (`shared::runner`).

mod artists;
mod tokens;

use async_trait::async_trait;
use deadpool_postgres::{Pool, Transaction};
use shared::operator::{OperatorTask, TaskOwner};
use shared::runner::{Done, OperatorTasks, OpsError, TaskContext, Verifier};

use crate::AppState;

#[async_trait]
impl OperatorTasks for AppState {
    const FUNCTION: TaskOwner = TaskOwner::Api;

    fn pool(&self) -> &Pool {
        &self.pool
    }

    fn verifier(&self) -> &Verifier {
        &self.verifier
    }

    fn transactional(&self, _: &OperatorTask) -> bool {
        true
    }

    async fn run(
        &self,
        task: &OperatorTask,
        _: &TaskContext<'_>,
        tx: Option<&Transaction<'_>>,
    ) -> Result<Done, OpsError> {
        let tx = tx
            .ok_or_else(|| OpsError::Task("a token or artist task runs in a transaction".into()))?;
        match task {
            OperatorTask::CreateArtist { .. } | OperatorTask::ListArtists { .. } => {
                artists::apply(tx, task).await
            }
            _ => tokens::apply(tx, task).await,
        }
    }
}
