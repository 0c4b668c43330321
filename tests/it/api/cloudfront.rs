//! The hop the emulator cannot run: CloudFront with origin access control in
//! front of a Lambda function URL. A viewer request is rewritten exactly as
//! that path rewrites it, then delivered as a function URL event through
//! `lambda_http` into the router, the way the deployed function receives it:
//!
//! - the origin request policy (AllViewerExceptHostHeader) forwards every
//!   viewer header but `Host`, which becomes the function URL's host;
//! - OAC (`signing_behavior = "always"`) signs the origin request with
//!   SigV4: the viewer's `Authorization` is replaced, `x-amz-date` and
//!   `x-amz-security-token` are added, and the viewer's `x-amz-content-sha256`
//!   is part of the signature (CloudFront does not hash bodies itself);
//! - CloudFront adds `via`, `x-forwarded-for` and `cloudfront-viewer-*`;
//! - the function URL (AWS_IAM) refuses a POST or PUT whose payload hash is
//!   missing or does not match the body, before the function runs.
//!
//! The signature itself is not verified here (IAM does that in AWS); what
//! matters to the application is that `Authorization` never reaches it.

use std::collections::BTreeMap;

use base64::Engine;
use lambda_runtime::LambdaEvent;
use serde_json::{json, Value};

use super::{hex, Req, ViewerReply};

const URL_HOST: &str = "abcdefghijklmnopqrstuvwxyz012345.lambda-url.eu-west-1.on.aws";
const VIEWER_IP: &str = "198.51.100.7";

/// The origin request CloudFront sends for `viewer`: (headers, event).
pub fn origin_event(viewer: &Req) -> Result<Value, ViewerReply> {
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in &viewer.headers {
        let name = name.to_ascii_lowercase();
        if name == "host" || name == "authorization" {
            continue;
        }
        headers
            .entry(name)
            .and_modify(|v| *v = format!("{v},{value}"))
            .or_insert_with(|| value.clone());
    }
    let payload_hash = headers.get("x-amz-content-sha256").cloned();
    if matches!(viewer.method.as_str(), "POST" | "PUT")
        && payload_hash.as_deref() != Some(&hex(&viewer.body))
    {
        // Lambda's answer to an unsigned or mis-hashed payload; the function never runs.
        return Err(ViewerReply {
            status: 403,
            headers: BTreeMap::from([("content-type".into(), "application/json".into())]),
            body: json!({ "Message": "The request signature we calculated does not match the signature you provided." }),
        });
    }
    let now = chrono::Utc::now();
    let amz_date = now.format("%Y%m%dT%H%M%SZ").to_string();
    let mut signed: Vec<&str> = vec!["host", "x-amz-date", "x-amz-security-token"];
    if payload_hash.is_some() {
        signed.push("x-amz-content-sha256");
    }
    signed.sort_unstable();
    let signature = hex(format!("{}{}{amz_date}", viewer.method, viewer.path).as_bytes());
    headers.insert("host".into(), URL_HOST.into());
    headers.insert(
        "authorization".into(),
        format!(
            "AWS4-HMAC-SHA256 Credential=ASIAEXAMPLEEXAMPLE00/{}/eu-west-1/lambda/aws4_request, SignedHeaders={}, Signature={signature}",
            now.format("%Y%m%d"),
            signed.join(";")
        ),
    );
    headers.insert("x-amz-date".into(), amz_date);
    headers.insert("x-amz-security-token".into(), "IQoJb3JpZ2luX2VjEXAMPLE".into());
    headers.insert("via".into(), "2.0 4f5e6d7c8b9a.cloudfront.net (CloudFront)".into());
    let forwarded = headers
        .get("x-forwarded-for")
        .map(|f| format!("{f}, {VIEWER_IP}"))
        .unwrap_or_else(|| VIEWER_IP.into());
    headers.insert("x-forwarded-for".into(), forwarded);
    headers.insert("x-forwarded-proto".into(), "https".into());
    headers.insert("cloudfront-viewer-country".into(), "NL".into());
    headers.insert("cloudfront-viewer-address".into(), format!("{VIEWER_IP}:50123"));
    headers.insert("cloudfront-is-mobile-viewer".into(), "false".into());

    let (raw_path, raw_query) = viewer.path.split_once('?').unwrap_or((&viewer.path, ""));
    let text = std::str::from_utf8(&viewer.body).ok();
    let (body, is_base64) = match text {
        _ if viewer.body.is_empty() => (Value::Null, false),
        Some(t) => (Value::String(t.to_owned()), false),
        None => {
            (Value::String(base64::engine::general_purpose::STANDARD.encode(&viewer.body)), true)
        }
    };
    let mut event = json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": raw_path,
        "rawQueryString": raw_query,
        "headers": headers,
        "requestContext": {
            "accountId": "anonymous",
            "apiId": "abcdefghijklmnopqrstuvwxyz012345",
            "authorizer": { "iam": { "accessKey": "ASIAEXAMPLEEXAMPLE00", "accountId": "123456789012", "callerId": "AROAEXAMPLE:cloudfront",
                                     "userArn": "arn:aws:sts::123456789012:assumed-role/cloudfront/OriginAccessControl", "userId": "AROAEXAMPLE:cloudfront" } },
            "domainName": URL_HOST,
            "domainPrefix": "abcdefghijklmnopqrstuvwxyz012345",
            "http": { "method": viewer.method, "path": raw_path, "protocol": "HTTP/1.1", "sourceIp": VIEWER_IP, "userAgent": "gallery-tests" },
            "requestId": uuid::Uuid::new_v4().to_string(),
            "routeKey": "$default",
            "stage": "$default",
            "time": now.format("%d/%b/%Y:%H:%M:%S +0000").to_string(),
            "timeEpoch": now.timestamp_millis(),
        },
        "isBase64Encoded": is_base64,
    });
    if !body.is_null() {
        event["body"] = body;
    }
    Ok(event)
}

/// The viewer's request, all the way to the router and back.
pub async fn deliver(state: &api::SharedState, router: axum::Router, viewer: &Req) -> ViewerReply {
    let event = match origin_event(viewer) {
        Ok(event) => event,
        Err(refused) => return refused,
    };
    // The origin never sees the viewer's Authorization: the OAC signature replaced it.
    assert!(event["headers"]["authorization"].as_str().unwrap().starts_with("AWS4-HMAC-SHA256 "));
    let mut context = lambda_runtime::Context::default();
    context.request_id = event["requestContext"]["requestId"].as_str().unwrap().to_owned();
    let response = api::lambda::handle(LambdaEvent::new(event, context), state, router)
        .await
        .expect("a function URL event is served");
    let status = response["statusCode"].as_u64().unwrap() as u16;
    let mut headers = BTreeMap::new();
    if let Some(map) = response["headers"].as_object() {
        for (k, v) in map {
            headers.insert(k.to_ascii_lowercase(), v.as_str().unwrap_or_default().to_owned());
        }
    }
    if let Some(map) = response["multiValueHeaders"].as_object() {
        for (k, v) in map {
            let joined: Vec<&str> = v
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            if !joined.is_empty() {
                headers.insert(k.to_ascii_lowercase(), joined.join(", "));
            }
        }
    }
    let raw = match (response["body"].as_str(), response["isBase64Encoded"].as_bool()) {
        (Some(b), Some(true)) => base64::engine::general_purpose::STANDARD.decode(b).unwrap(),
        (Some(b), _) => b.as_bytes().to_vec(),
        (None, _) => Vec::new(),
    };
    let body = if raw.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&raw)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&raw).into()))
    };
    ViewerReply { status, headers, body }
}
