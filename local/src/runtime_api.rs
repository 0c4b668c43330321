//! A Lambda Runtime API on loopback, so a function's real binary can run here
//! exactly as it does in AWS: it polls `/next`, answers `/response` or `/error`,
//! and reports a failed cold start to `/init/error`.
//!
//! It also answers the Lambda `Invoke` API
//! (`POST /2015-03-31/functions/{name}/invocations`), so a client built on the
//! AWS SDK (the operator tool) reaches the binary through the same two hops it
//! takes in AWS. Requests are not signed-checked: IAM is AWS's to enforce.
//!
//! Endpoints and headers follow AWS's "Using the Lambda runtime API for custom
//! runtimes" and the `Invoke` API reference.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tokio::sync::{mpsc, oneshot, Mutex as AsyncMutex};

const ACCOUNT: &str = "123456789012";

/// How an invocation ended.
#[derive(Debug, Clone, PartialEq)]
pub enum InvocationOutcome {
    /// The handler's result (for an HTTP function, the function URL response).
    Response(serde_json::Value),
    /// The handler failed (`/error`), or the cold start did (`/init/error`).
    Error(FunctionError),
}

#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct FunctionError {
    #[serde(rename = "errorType", default)]
    pub error_type: String,
    #[serde(rename = "errorMessage", default)]
    pub error_message: String,
}

struct Invocation {
    id: String,
    payload: Bytes,
    done: oneshot::Sender<InvocationOutcome>,
}

struct Shared {
    function_name: String,
    region: String,
    timeout: Duration,
    queue: mpsc::UnboundedSender<Invocation>,
    next: AsyncMutex<mpsc::UnboundedReceiver<Invocation>>,
    in_flight: Mutex<HashMap<String, oneshot::Sender<InvocationOutcome>>>,
    init_error: Mutex<Option<FunctionError>>,
    init_failed: tokio::sync::Notify,
}

/// The runtime API of one function. Dropping it stops the server.
pub struct RuntimeApi {
    address: SocketAddr,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl RuntimeApi {
    /// Serves on a free loopback port.
    pub async fn start(function_name: &str, region: &str) -> std::io::Result<Self> {
        let (queue, next) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            function_name: function_name.to_owned(),
            region: region.to_owned(),
            timeout: Duration::from_secs(900),
            queue,
            next: AsyncMutex::new(next),
            in_flight: Mutex::new(HashMap::new()),
            init_error: Mutex::new(None),
            init_failed: tokio::sync::Notify::new(),
        });
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next_invocation))
            .route("/2018-06-01/runtime/invocation/{id}/response", post(response))
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .route("/2015-03-31/functions/{name}/invocations", post(invoke_api))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { address, shared, server })
    }

    /// `host:port`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub fn address(&self) -> String {
        self.address.to_string()
    }

    /// Base URL of the `Invoke` API, for an SDK client's endpoint override.
    pub fn invoke_endpoint(&self) -> String {
        format!("http://{}", self.address)
    }

    /// The variables Lambda itself sets in a function's environment.
    pub fn lambda_environment(&self, memory_mb: u32) -> Vec<(String, String)> {
        let name = &self.shared.function_name;
        [
            ("AWS_LAMBDA_RUNTIME_API", self.address()),
            ("AWS_LAMBDA_FUNCTION_NAME", name.clone()),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", memory_mb.to_string()),
            ("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}")),
            ("AWS_LAMBDA_LOG_STREAM_NAME", "local".to_owned()),
            ("AWS_REGION", self.shared.region.clone()),
            ("AWS_DEFAULT_REGION", self.shared.region.clone()),
            ("AWS_EXECUTION_ENV", "AWS_Lambda_provided.al2023".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// Hands `event` to the function and waits for its answer (or for its
    /// cold start to fail). Callers bound the wait: a crashed process never answers.
    pub async fn invoke(&self, event: &serde_json::Value) -> InvocationOutcome {
        let payload = Bytes::from(serde_json::to_vec(event).unwrap_or_default());
        enqueue(&self.shared, payload).await
    }

    /// The cold-start failure the function reported, if any.
    pub fn init_error(&self) -> Option<FunctionError> {
        self.shared.init_error.lock().ok().and_then(|e| e.clone())
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn enqueue(shared: &Shared, payload: Bytes) -> InvocationOutcome {
    let (done, answer) = oneshot::channel();
    let id = uuid_like();
    let failed = shared.init_failed.notified();
    if let Some(e) = shared.init_error.lock().ok().and_then(|e| e.clone()) {
        return InvocationOutcome::Error(e);
    }
    if shared.queue.send(Invocation { id, payload, done }).is_err() {
        return InvocationOutcome::Error(FunctionError {
            error_type: "Runtime.Unavailable".into(),
            error_message: "runtime API stopped".into(),
        });
    }
    tokio::select! {
        outcome = answer => outcome.unwrap_or_else(|_| InvocationOutcome::Error(FunctionError {
            error_type: "Runtime.ExitError".into(),
            error_message: "the invocation was dropped".into(),
        })),
        () = failed => InvocationOutcome::Error(shared.init_error.lock().ok().and_then(|e| e.clone()).unwrap_or(FunctionError {
            error_type: "Runtime.InitError".into(),
            error_message: String::new(),
        })),
    }
}

fn uuid_like() -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!(
        "{:08x}-{:04x}-4000-8000-{:012x}",
        (nanos >> 32) as u32,
        (n & 0xffff) as u16,
        nanos as u64 & 0xffff_ffff_ffff
    )
}

async fn next_invocation(State(shared): State<Arc<Shared>>) -> Response {
    let invocation = { shared.next.lock().await.recv().await };
    let Some(invocation) = invocation else { return StatusCode::GONE.into_response() };
    let deadline =
        SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default() + shared.timeout;
    let arn =
        format!("arn:aws:lambda:{}:{ACCOUNT}:function:{}", shared.region, shared.function_name);
    let mut headers = HeaderMap::new();
    let mut put = |name: &'static str, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            headers.insert(name, v);
        }
    };
    put("lambda-runtime-aws-request-id", &invocation.id);
    put("lambda-runtime-deadline-ms", &deadline.as_millis().to_string());
    put("lambda-runtime-invoked-function-arn", &arn);
    put(
        "lambda-runtime-trace-id",
        &format!("Root=1-00000000-{:024x};Sampled=0", deadline.as_millis()),
    );
    put("content-type", "application/json");
    if let Ok(mut in_flight) = shared.in_flight.lock() {
        in_flight.insert(invocation.id, invocation.done);
    }
    (headers, invocation.payload).into_response()
}

fn finish(shared: &Shared, id: &str, outcome: InvocationOutcome) -> StatusCode {
    match shared.in_flight.lock().ok().and_then(|mut m| m.remove(id)) {
        Some(done) => {
            let _ = done.send(outcome);
            StatusCode::ACCEPTED
        }
        None => StatusCode::BAD_REQUEST,
    }
}

async fn response(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: Bytes,
) -> StatusCode {
    let value = serde_json::from_slice(&body)
        .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&body).into_owned()));
    finish(&shared, &id, InvocationOutcome::Response(value))
}

fn parse_error(body: &[u8], headers: &HeaderMap) -> FunctionError {
    let mut error: FunctionError = serde_json::from_slice(body).unwrap_or(FunctionError {
        error_type: String::new(),
        error_message: String::from_utf8_lossy(body).into_owned(),
    });
    if error.error_type.is_empty() {
        error.error_type = headers
            .get("lambda-runtime-function-error-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("Unhandled")
            .to_owned();
    }
    error
}

async fn error(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    finish(&shared, &id, InvocationOutcome::Error(parse_error(&body, &headers)))
}

async fn init_error(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    if let Ok(mut slot) = shared.init_error.lock() {
        *slot = Some(parse_error(&body, &headers));
    }
    shared.init_failed.notify_waiters();
    StatusCode::ACCEPTED
}

/// `Invoke` (RequestResponse): 200 with the result, or 200 with
/// `X-Amz-Function-Error` and the error document, as Lambda answers.
async fn invoke_api(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    let wanted = name.rsplit(':').next().unwrap_or(&name);
    if wanted != shared.function_name && name != shared.function_name {
        let body =
            serde_json::json!({ "Type": "User", "message": format!("Function not found: {name}") });
        return (
            StatusCode::NOT_FOUND,
            [("x-amzn-errortype", "ResourceNotFoundException")],
            axum::Json(body),
        )
            .into_response();
    }
    match enqueue(&shared, body).await {
        InvocationOutcome::Response(value) => {
            (StatusCode::OK, [("x-amz-executed-version", "$LATEST")], axum::Json(value))
                .into_response()
        }
        InvocationOutcome::Error(e) => {
            let body =
                serde_json::json!({ "errorType": e.error_type, "errorMessage": e.error_message });
            (
                StatusCode::OK,
                [("x-amz-function-error", "Unhandled"), ("x-amz-executed-version", "$LATEST")],
                axum::Json(body),
            )
                .into_response()
        }
    }
}

/// A function's binary running against a [`RuntimeApi`]; killed when dropped.
/// Its stdout and stderr (the JSON log lines) are kept for the caller to read.
pub struct FunctionProcess {
    child: tokio::process::Child,
    pub started: std::time::Instant,
    log: std::path::PathBuf,
}

impl FunctionProcess {
    /// Starts `binary` with exactly `env` plus what Lambda sets (and `PATH`):
    /// nothing leaks in from the caller's environment.
    pub fn spawn(
        binary: &std::path::Path,
        env: &[(String, String)],
        runtime: &RuntimeApi,
        memory_mb: u32,
    ) -> std::io::Result<Self> {
        Self::spawn_command(binary, &[], env, runtime, memory_mb)
    }

    /// A program with arguments (e.g. `node index.js`, the benchmark's peer).
    pub fn spawn_command(
        program: &std::path::Path,
        args: &[String],
        env: &[(String, String)],
        runtime: &RuntimeApi,
        memory_mb: u32,
    ) -> std::io::Result<Self> {
        let log = kept_logs().unwrap_or_else(std::env::temp_dir).join(format!(
            "lambda-{}-{}.log",
            runtime.shared.function_name,
            uuid_like()
        ));
        let out = std::fs::File::create(&log)?;
        let started = std::time::Instant::now();
        let child = tokio::process::Command::new(program)
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .envs(runtime.lambda_environment(memory_mb))
            .envs(env.iter().cloned())
            .stdin(std::process::Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .kill_on_drop(true)
            .spawn()?;
        Ok(Self { child, started, log })
    }

    pub fn id(&self) -> Option<u32> {
        self.child.id()
    }

    /// What the process printed so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Peak resident memory so far (`VmHWM`), in KiB.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.id()?)).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }

    /// Waits up to `timeout` for the process to exit on its own.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        tokio::time::timeout(timeout, self.child.wait()).await.ok().and_then(Result::ok)
    }
}

impl Drop for FunctionProcess {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        if kept_logs().is_none() {
            let _ = std::fs::remove_file(&self.log);
        }
    }
}

/// Where `cargo xtask test` keeps every function's log for the secret scan
/// (`GALLERY_LOG_DIR`); unset, logs are temporary.
fn kept_logs() -> Option<std::path::PathBuf> {
    std::env::var_os("GALLERY_LOG_DIR").map(std::path::PathBuf::from)
}

/// Where the workspace's binaries of the running profile are: beside the
/// current executable (a test binary sits one level deeper, in `deps/`).
pub fn binary(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    let mut dir = exe.parent().map(std::path::Path::to_path_buf).unwrap_or_default();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir.join(name)
}
