//! The function's invocations: function URL requests go through `lambda_http`
//! into the router; operator invocations (`gallery-ops tokens …`, `artists …`)
//! run the token and artist tasks (`operator`) through `shared::runner`. One binary, so tokens are managed by the role
//! that owns them.

use axum::Router;
use lambda_http::request::LambdaRequest;
use lambda_http::tower::ServiceExt;
use lambda_runtime::{Diagnostic, LambdaEvent};
use shared::operator::{Invocation, OperatorRequest, OperatorResponse};
use shared::runner::OpsError;

use crate::AppState;

/// One invocation of the deployed function.
pub async fn handle(
    event: LambdaEvent<serde_json::Value>,
    state: &AppState,
    router: Router,
) -> Result<serde_json::Value, Diagnostic> {
    let LambdaEvent { payload, context } = event;
    if OperatorRequest::is_operator_event(&payload) {
        let request: OperatorRequest = serde_json::from_value(payload)
            .map_err(|e| diagnostic(&OpsError::Invalid(e.to_string())))?;
        let invocation = Invocation {
            request_id: &context.request_id,
            function_arn: Some(&context.invoked_function_arn),
        };
        let response = operate(&request, &invocation, state).await.map_err(|e| diagnostic(&e))?;
        return serde_json::to_value(response)
            .map_err(|e| diagnostic(&OpsError::Task(e.to_string())));
    }
    let request: LambdaRequest = serde_json::from_value(payload).map_err(|e| Diagnostic {
        error_type: "InvalidEvent".into(),
        error_message: format!("not a function URL event: {e}"),
    })?;
    // `lambda_http::run` wraps the router in exactly this adapter.
    let adapter = lambda_http::Adapter::from(router);
    let Ok(response) = adapter.oneshot(LambdaEvent::new(request, context)).await;
    serde_json::to_value(response).map_err(|e| Diagnostic {
        error_type: "InvalidResponse".into(),
        error_message: e.to_string(),
    })
}

/// A token or artist task for a proven operator (`shared::runner`): an
/// unproven caller leaves no trace here (CloudTrail has the invocation).
pub async fn operate(
    request: &OperatorRequest,
    invocation: &Invocation<'_>,
    state: &AppState,
) -> Result<OperatorResponse, OpsError> {
    shared::runner::operate(state, request, invocation).await
}

fn diagnostic(e: &OpsError) -> Diagnostic {
    Diagnostic { error_type: e.error_type().into(), error_message: e.to_string() }
}
