//! The function's invocations: function URL requests go through `lambda_http`
//! into the router; operator invocations (`gallery-ops tokens …`, `artists …`)
//! run the token and artist tasks of `shared::ops`. One binary, so tokens are managed by the role
//! that owns them.

use axum::Router;
use lambda_http::request::LambdaRequest;
use lambda_http::tower::ServiceExt;
use lambda_runtime::{Diagnostic, LambdaEvent};
use shared::db::{self, AuditEntry};
use shared::ops::{Invocation, OperatorRequest, OperatorResponse, OpsError, Owner};

use crate::AppState;

/// One invocation of the deployed function.
pub async fn handle(event: LambdaEvent<serde_json::Value>, state: &AppState, router: Router) -> Result<serde_json::Value, Diagnostic> {
    let LambdaEvent { payload, context } = event;
    if OperatorRequest::is_operator_event(&payload) {
        let request: OperatorRequest = serde_json::from_value(payload).map_err(|e| diagnostic(&OpsError::Invalid(e.to_string())))?;
        let invocation = Invocation { request_id: &context.request_id, function_arn: Some(&context.invoked_function_arn) };
        let response = operate(&request, &invocation, state).await.map_err(|e| diagnostic(&e))?;
        return serde_json::to_value(response).map_err(|e| diagnostic(&OpsError::Task(e.to_string())));
    }
    let request: LambdaRequest = serde_json::from_value(payload)
        .map_err(|e| Diagnostic { error_type: "InvalidEvent".into(), error_message: format!("not a function URL event: {e}") })?;
    // `lambda_http::run` wraps the router in exactly this adapter.
    let adapter = lambda_http::Adapter::from(router);
    let Ok(response) = adapter.oneshot(LambdaEvent::new(request, context)).await;
    serde_json::to_value(response).map_err(|e| Diagnostic { error_type: "InvalidResponse".into(), error_message: e.to_string() })
}

/// A token or artist task for a proven operator. A task refused after the caller was
/// proven is audited as refused; an unproven caller leaves no trace here
/// (CloudTrail has the invocation).
pub async fn operate(request: &OperatorRequest, invocation: &Invocation<'_>, state: &AppState) -> Result<OperatorResponse, OpsError> {
    let caller = state.verifier.authorize(request, Owner::Api, invocation, &state.pool).await?;
    let request_id = invocation.request_id;
    let task = &request.operator_task;
    match shared::ops::run_api_task(&state.pool, task, &caller, request_id).await {
        Ok(result) => Ok(OperatorResponse { action: task.action().to_owned(), caller: caller.arn, result }),
        Err(e) => {
            if matches!(e, OpsError::Refused(_) | OpsError::NotFound(_)) {
                let client = state.pool.get().await.map_err(db::DbError::from)?;
                let actor = caller.actor();
                let detail = serde_json::json!({ "refused": e.to_string() });
                let entry =
                    AuditEntry { actor: &actor, action: task.action(), target: "operator-task", request_id: Some(request_id), detail };
                db::append_audit(&client, &entry).await?;
            }
            Err(e)
        }
    }
}

fn diagnostic(e: &OpsError) -> Diagnostic {
    Diagnostic { error_type: e.error_type().into(), error_message: e.to_string() }
}
