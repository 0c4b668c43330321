//! Who is running an operator task, proven rather than claimed.
//!
//! Lambda does not tell a function who invoked it. So the operator tool signs,
//! with the operator's own credentials, an STS `GetCallerIdentity` request
//! (SigV4 in the query string, valid for minutes) and sends it inside the task;
//! the function sends that request to STS itself and learns the caller's ARN
//! from STS's answer. The signature also covers an `x-gallery-task` header
//! holding the SHA-256 of the task, so a proof cannot be reused for another task.
//! (The same scheme secures HashiCorp Vault's AWS IAM login.)
//!
//! The function never fetches a URL from the payload: it takes only the query
//! string and sends it to the STS endpoint it is configured with.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use http_body_util::BodyExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The header that binds a proof to one task.
pub const TASK_HEADER: &str = "x-gallery-task";
/// Longest validity a proof may ask for.
pub const MAX_PROOF_LIFETIME: Duration = Duration::from_secs(300);

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("the identity proof is malformed: {0}")]
    Malformed(String),
    #[error("STS refused the identity proof (HTTP {status}): expired, not signed for this task, or not signed by valid credentials")]
    Refused { status: u16 },
    #[error("cannot reach STS to check the identity proof: {0}")]
    Unreachable(String),
    #[error("caller {arn} is not the gallery's operator role")]
    NotOperator { arn: String },
    #[error("cannot sign the identity proof: {0}")]
    Signing(String),
}

impl IdentityError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unreachable(_))
    }
}

/// A presigned `GetCallerIdentity` query string.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct IdentityProof {
    pub sts_query: String,
}

/// The verified caller.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Caller {
    pub arn: String,
    pub account: String,
}

impl Caller {
    /// How the audit log names an operator.
    pub fn actor(&self) -> String {
        let mut actor = format!("operator:{}", self.arn);
        actor.truncate(200);
        actor
    }
}

/// Where STS is: the endpoint override (local emulator), else the regional endpoint
/// (inside the VPC, the STS interface endpoint answers for that name).
pub fn sts_endpoint(endpoint_url: Option<&str>, region: &str) -> String {
    match endpoint_url {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None => format!("https://sts.{region}.amazonaws.com"),
    }
}

pub fn task_digest(task_json: &[u8]) -> String {
    hex::encode(Sha256::digest(task_json))
}

fn host_of(endpoint: &str) -> Result<String, IdentityError> {
    let url = url::Url::parse(endpoint).map_err(|e| IdentityError::Malformed(format!("STS endpoint {endpoint:?}: {e}")))?;
    let host = url.host_str().ok_or_else(|| IdentityError::Malformed("STS endpoint has no host".into()))?;
    Ok(match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    })
}

const BASE_QUERY: &str = "Action=GetCallerIdentity&Version=2011-06-15";

/// Signs a proof for `task_json` with the operator's credentials (the operator tool's side).
pub fn sign(credentials: Credentials, region: &str, endpoint: &str, task_json: &[u8]) -> Result<IdentityProof, IdentityError> {
    use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SignatureLocation, SigningSettings};
    let fail = |e: &dyn std::fmt::Display| IdentityError::Signing(e.to_string());
    let host = host_of(endpoint)?;
    let digest = task_digest(task_json);
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(MAX_PROOF_LIFETIME);
    let identity = credentials.into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("sts")
        .time(SystemTime::now())
        .settings(settings)
        .build()
        .map_err(|e| fail(&e))?
        .into();
    let url = format!("{endpoint}/?{BASE_QUERY}");
    let headers = [("host", host.as_str()), (TASK_HEADER, digest.as_str())];
    let request = SignableRequest::new("GET", url, headers.into_iter(), SignableBody::Bytes(&[])).map_err(|e| fail(&e))?;
    let (instructions, _) = sign(request, &params).map_err(|e| fail(&e))?.into_parts();
    let mut query = url::form_urlencoded::Serializer::new(String::from(BASE_QUERY));
    for (name, value) in instructions.params() {
        query.append_pair(name, value);
    }
    Ok(IdentityProof { sts_query: query.finish() })
}

/// Checks the shape of a proof before anything is sent: only a
/// `GetCallerIdentity` presigned for at most [`MAX_PROOF_LIFETIME`] and signed
/// over the task header is accepted.
pub fn check_shape(proof: &IdentityProof) -> Result<(), IdentityError> {
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(proof.sts_query.as_bytes()).into_owned().collect();
    let get = |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let bad = |why: &str| Err(IdentityError::Malformed(why.to_owned()));
    if proof.sts_query.len() > 4096 {
        return bad("longer than 4096 bytes");
    }
    if get("Action") != Some("GetCallerIdentity") || get("Version") != Some("2011-06-15") {
        return bad("not a GetCallerIdentity request");
    }
    if pairs.iter().filter(|(k, _)| k == "Action").count() != 1 {
        return bad("more than one Action");
    }
    if get("X-Amz-Algorithm") != Some("AWS4-HMAC-SHA256") || get("X-Amz-Signature").is_none() {
        return bad("not signed with SigV4");
    }
    let expires: u64 = get("X-Amz-Expires").and_then(|v| v.parse().ok()).unwrap_or(u64::MAX);
    if expires > MAX_PROOF_LIFETIME.as_secs() {
        return bad("valid for longer than 300 seconds");
    }
    if !get("X-Amz-SignedHeaders").unwrap_or("").split(';').any(|h| h == TASK_HEADER) {
        return bad("not signed over the task");
    }
    Ok(())
}

/// Sends the proof to STS with the digest of the task actually received and
/// returns the caller STS names (the function's side).
pub async fn verify(proof: &IdentityProof, endpoint: &str, task_json: &[u8]) -> Result<Caller, IdentityError> {
    check_shape(proof)?;
    let host = host_of(endpoint)?;
    let uri = format!("{endpoint}/?{}", proof.sts_query);
    let request = http::Request::get(&uri)
        .header("host", host)
        .header(TASK_HEADER, task_digest(task_json))
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .map_err(|e| IdentityError::Malformed(e.to_string()))?;
    let unreachable = |e: &dyn std::fmt::Display| IdentityError::Unreachable(e.to_string());
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()
        .map_err(|e| unreachable(&e))?
        .https_or_http()
        .enable_http1()
        .build();
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build(connector);
    let response = tokio::time::timeout(Duration::from_secs(10), client.request(request))
        .await
        .map_err(|_| IdentityError::Unreachable("timed out after 10 s".into()))?
        .map_err(|e| unreachable(&e))?;
    let status = response.status().as_u16();
    let body = tokio::time::timeout(Duration::from_secs(10), response.into_body().collect())
        .await
        .map_err(|_| IdentityError::Unreachable("timed out reading the answer".into()))?
        .map_err(|e| unreachable(&e))?
        .to_bytes();
    if status >= 500 {
        return Err(IdentityError::Unreachable(format!("STS answered HTTP {status}")));
    }
    if status != 200 {
        return Err(IdentityError::Refused { status });
    }
    parse_caller(&String::from_utf8_lossy(&body))
}

/// The ARN and account from a `GetCallerIdentityResponse` document.
pub fn parse_caller(xml: &str) -> Result<Caller, IdentityError> {
    let field = |name: &str| -> Option<String> {
        let open = format!("<{name}>");
        let start = xml.find(&open)? + open.len();
        let end = start + xml[start..].find(&format!("</{name}>"))?;
        Some(xml[start..end].trim().to_owned())
    };
    match (field("Arn"), field("Account")) {
        (Some(arn), Some(account)) if arn.starts_with("arn:") && !account.is_empty() => Ok(Caller { arn, account }),
        _ => Err(IdentityError::Malformed("STS answer names no caller".into())),
    }
}

/// Whether `caller` is a session of the operator role (`None`: any caller IAM let through).
pub fn require_role(caller: &Caller, role_name: Option<&str>) -> Result<(), IdentityError> {
    let Some(role) = role_name else { return Ok(()) };
    let prefix = format!("arn:aws:sts::{}:assumed-role/{role}/", caller.account);
    if caller.arn.starts_with(&prefix) {
        Ok(())
    } else {
        Err(IdentityError::NotOperator { arn: caller.arn.clone() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proof() -> IdentityProof {
        let creds = Credentials::new("AKIDEXAMPLE", "secret", Some("session".into()), None, "test");
        sign(creds, "eu-west-1", "https://sts.eu-west-1.amazonaws.com", b"{\"kind\":\"list-tokens\"}").unwrap()
    }

    #[test]
    fn a_signed_proof_has_the_accepted_shape() {
        let p = proof();
        check_shape(&p).unwrap();
        assert!(p.sts_query.contains("X-Amz-Security-Token=session"), "{}", p.sts_query);
        assert!(p.sts_query.contains("X-Amz-SignedHeaders=host%3Bx-gallery-task"), "{}", p.sts_query);
    }

    #[test]
    fn other_shapes_are_refused() {
        let p = proof();
        for (from, to) in [
            ("Action=GetCallerIdentity", "Action=AssumeRole"),
            ("X-Amz-Expires=300", "X-Amz-Expires=3600"),
            ("host%3Bx-gallery-task", "host"),
            ("AWS4-HMAC-SHA256", "AWS4-ECDSA"),
        ] {
            let tampered = IdentityProof { sts_query: p.sts_query.replace(from, to) };
            assert!(matches!(check_shape(&tampered), Err(IdentityError::Malformed(_))), "{from} → {to}");
        }
        let doubled = IdentityProof { sts_query: format!("{}&Action=AssumeRole", p.sts_query) };
        assert!(check_shape(&doubled).is_err());
    }

    #[test]
    fn reads_the_caller_from_sts() {
        let xml = "<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><GetCallerIdentityResult>\
                   <Arn>arn:aws:sts::111122223333:assumed-role/copper-gallery-operator/alice</Arn><UserId>AROA:alice</UserId>\
                   <Account>111122223333</Account></GetCallerIdentityResult></GetCallerIdentityResponse>";
        let caller = parse_caller(xml).unwrap();
        assert_eq!(caller.account, "111122223333");
        require_role(&caller, Some("copper-gallery-operator")).unwrap();
        assert!(require_role(&caller, Some("copper-gallery-admin")).is_err());
        assert!(parse_caller("<Error><Code>SignatureDoesNotMatch</Code></Error>").is_err());
    }
}
