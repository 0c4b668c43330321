//! The operator's identity proof on the wire (the protocol is
//! `operator::identity`): the operator tool signs an STS `GetCallerIdentity`
//! request over the task; the function sends exactly that request to STS.
//!
//! The function never fetches a URL from the payload and sends no header but
//! the three signature headers: method, endpoint, body and the task header are
//! its own.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use http_body_util::BodyExt;

use crate::operator::identity::{
    check_shape, parse_caller, task_digest, IdentityError, IdentityProof, ProvenCaller,
    NONCE_HEADER, TASK_HEADER,
};

fn host_of(endpoint: &str) -> Result<String, IdentityError> {
    let url = url::Url::parse(endpoint)
        .map_err(|e| IdentityError::Malformed(format!("STS endpoint {endpoint:?}: {e}")))?;
    let host = url
        .host_str()
        .ok_or_else(|| IdentityError::Malformed("STS endpoint has no host".into()))?;
    Ok(match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    })
}

const BODY: &str = "Action=GetCallerIdentity&Version=2011-06-15";
const CONTENT_TYPE: &str = "application/x-www-form-urlencoded; charset=utf-8";
/// Signs a proof for `task_json` with the operator's credentials (the operator tool's side).
pub fn sign(
    credentials: Credentials,
    region: &str,
    endpoint: &str,
    task_json: &[u8],
) -> Result<IdentityProof, IdentityError> {
    use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
    let fail = |e: &dyn std::fmt::Display| IdentityError::Signing(e.to_string());
    let host = host_of(endpoint)?;
    let digest = task_digest(task_json);
    let identity = credentials.into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("sts")
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| fail(&e))?
        .into();
    let url = format!("{endpoint}/");
    let nonce = hex::encode(rand::random::<[u8; 16]>());
    let headers = [
        ("host", host.as_str()),
        ("content-type", CONTENT_TYPE),
        (TASK_HEADER, digest.as_str()),
        (NONCE_HEADER, nonce.as_str()),
    ];
    let request = SignableRequest::new(
        "POST",
        url,
        headers.into_iter(),
        SignableBody::Bytes(BODY.as_bytes()),
    )
    .map_err(|e| fail(&e))?;
    let (instructions, _) = sign(request, &params).map_err(|e| fail(&e))?.into_parts();
    let header = |name: &str| {
        instructions
            .headers()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.to_owned())
    };
    Ok(IdentityProof {
        authorization: header("authorization")
            .ok_or_else(|| IdentityError::Signing("no authorization header".into()))?,
        amz_date: header("x-amz-date")
            .ok_or_else(|| IdentityError::Signing("no x-amz-date header".into()))?,
        security_token: header("x-amz-security-token"),
        nonce,
    })
}

/// Sends the proof to STS with the digest of the task actually received and
/// returns the caller STS names (the function's side).
pub async fn verify(
    proof: &IdentityProof,
    endpoint: &str,
    task_json: &[u8],
) -> Result<ProvenCaller, IdentityError> {
    check_shape(proof, chrono::Utc::now())?;
    let host = host_of(endpoint)?;
    let malformed = |e: &dyn std::fmt::Display| IdentityError::Malformed(e.to_string());
    let mut request = http::Request::post(format!("{endpoint}/"))
        .header("host", host)
        .header("content-type", CONTENT_TYPE)
        .header(TASK_HEADER, task_digest(task_json))
        .header(NONCE_HEADER, &proof.nonce)
        .header("authorization", &proof.authorization)
        .header("x-amz-date", &proof.amz_date);
    if let Some(token) = &proof.security_token {
        request = request.header("x-amz-security-token", token);
    }
    let request = request
        .body(http_body_util::Full::new(bytes::Bytes::from_static(BODY.as_bytes())))
        .map_err(|e| malformed(&e))?;
    let unreachable = |e: &dyn std::fmt::Display| IdentityError::Unreachable(e.to_string());
    // The provider named explicitly: the dependency tree enables more than one.
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_native_roots(rustls::crypto::ring::default_provider())
        .map_err(|e| unreachable(&e))?
        .https_or_http()
        .enable_http1()
        .build();
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build(connector);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operator::identity::proof_digest;

    fn proof() -> IdentityProof {
        let creds = Credentials::new("AKIDEXAMPLE", "secret", Some("session".into()), None, "test");
        sign(
            creds,
            "eu-west-1",
            "https://sts.eu-west-1.amazonaws.com",
            b"{\"kind\":\"list-tokens\"}",
        )
        .unwrap()
    }

    #[test]
    fn a_signed_proof_has_the_accepted_shape() {
        let p = proof();
        check_shape(&p, chrono::Utc::now()).unwrap();
        assert_eq!(p.security_token.as_deref(), Some("session"));
        assert!(p.authorization.contains("/eu-west-1/sts/aws4_request"), "{}", p.authorization);
        assert!(p.authorization.contains("x-gallery-task"), "{}", p.authorization);
    }

    #[test]
    fn two_proofs_of_one_task_differ() {
        let creds = || Credentials::new("AKIDEXAMPLE", "secret", None, None, "test");
        let endpoint = "https://sts.eu-west-1.amazonaws.com";
        let a = sign(creds(), "eu-west-1", endpoint, b"{\"kind\":\"list-tokens\"}").unwrap();
        let b = sign(creds(), "eu-west-1", endpoint, b"{\"kind\":\"list-tokens\"}").unwrap();
        assert_ne!(a.nonce, b.nonce);
        assert_ne!(
            proof_digest(&a),
            proof_digest(&b),
            "a re-run in the same second is not a replay"
        );
    }

    #[test]
    fn the_signature_depends_on_the_task() {
        let creds = || Credentials::new("AKIDEXAMPLE", "secret", None, None, "test");
        let endpoint = "https://sts.eu-west-1.amazonaws.com";
        let a = sign(creds(), "eu-west-1", endpoint, b"{\"kind\":\"list-tokens\"}").unwrap();
        let b = sign(creds(), "eu-west-1", endpoint, b"{\"kind\":\"run-backup\"}").unwrap();
        if a.amz_date == b.amz_date {
            assert_ne!(
                a.authorization, b.authorization,
                "STS would accept a proof for one task as proof for another"
            );
        }
    }

    #[test]
    fn other_shapes_are_refused() {
        let p = proof();
        let now = chrono::Utc::now();
        let mut tampered = vec![
            IdentityProof { authorization: p.authorization.replace("/sts/", "/s3/"), ..p.clone() },
            IdentityProof {
                authorization: p.authorization.replace(";x-gallery-task", ""),
                ..p.clone()
            },
            IdentityProof {
                authorization: p
                    .authorization
                    .replace("AWS4-HMAC-SHA256", "AWS4-ECDSA-P256-SHA256"),
                ..p.clone()
            },
            IdentityProof { amz_date: "20200101T000000Z".into(), ..p.clone() },
            IdentityProof { amz_date: "yesterday".into(), ..p.clone() },
        ];
        tampered.push(IdentityProof { security_token: Some("a\r\nx-evil: 1".into()), ..p.clone() });
        tampered.push(IdentityProof {
            authorization: p.authorization.replace(";x-gallery-nonce", ""),
            ..p.clone()
        });
        tampered.push(IdentityProof { nonce: "not-hex".into(), ..p.clone() });
        for t in tampered {
            assert!(matches!(check_shape(&t, now), Err(IdentityError::Malformed(_))), "{t:?}");
        }
    }
}
