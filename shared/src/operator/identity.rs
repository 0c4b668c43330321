//! Who is running an operator task, proven rather than claimed.
//!
//! Lambda does not tell a function who invoked it. So the operator tool signs,
//! with the operator's own credentials, an STS `GetCallerIdentity` request
//! (SigV4 in its headers) and sends the signature headers inside the task; the
//! function sends that very request to STS itself and learns the caller's ARN
//! from STS's answer. The signature also covers an `x-gallery-task` header
//! holding the SHA-256 of the task, so a proof cannot be reused for another
//! task, and STS refuses it 15 minutes after its `x-amz-date`. (HashiCorp
//! Vault's AWS IAM login works the same way.)
//!
//! This module holds the protocol: the proof, its checks, the caller and the
//! role it must be; `aws::sts` signs proofs and sends them to STS.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The header that binds a proof to one task.
pub const TASK_HEADER: &str = "x-gallery-task";
/// A random value in every proof, signed: two invocations of the same task
/// in the same second are two proofs, so a proof seen twice is a replay.
pub const NONCE_HEADER: &str = "x-gallery-nonce";

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
    #[error("this identity proof was already used: every proof is good for one invocation")]
    Replayed,
    #[error("cannot bind the proof to this function: {0}")]
    Unbound(String),
    #[error("cannot sign the identity proof: {0}")]
    Signing(String),
}

impl IdentityError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unreachable(_))
    }
}

/// The signature headers of a `GetCallerIdentity` request.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct IdentityProof {
    pub authorization: String,
    pub amz_date: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_token: Option<String>,
    /// 128 random bits, hex; signed as `x-gallery-nonce`.
    pub nonce: String,
}

/// The verified caller.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ProvenCaller {
    pub arn: String,
    pub account: String,
}

impl ProvenCaller {
    /// How the audit log names an operator.
    pub fn actor(&self) -> String {
        // At most 200 bytes, cut on a character boundary: an answer naming a
        // multi-byte ARN once panicked here (found by fuzzing, `identity_proof`).
        let actor = format!("operator:{}", self.arn);
        let mut end = actor.len().min(200);
        while !actor.is_char_boundary(end) {
            end -= 1;
        }
        actor[..end].to_owned()
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

/// How far a proof's signing time may be from the function's clock.
const CLOCK_WINDOW: chrono::TimeDelta = chrono::TimeDelta::minutes(5);

/// Checks a proof before anything is sent: SigV4 for STS, signed over the
/// task header, signed within minutes of now.
pub fn check_shape(
    proof: &IdentityProof,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), IdentityError> {
    let bad = |why: &str| Err(IdentityError::Malformed(why.to_owned()));
    if proof.authorization.len() > 2048
        || proof.security_token.as_ref().is_some_and(|t| t.len() > 4096)
    {
        return bad("oversized");
    }
    if proof.nonce.len() != 32
        || !proof.nonce.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return bad("the nonce is not 128 bits of hex");
    }
    let printable = |v: &str| v.bytes().all(|b| (0x20..0x7f).contains(&b));
    if !printable(&proof.authorization)
        || !printable(&proof.amz_date)
        || !proof.security_token.as_deref().is_none_or(printable)
    {
        return bad("headers must be printable ASCII");
    }
    let Some(rest) = proof.authorization.strip_prefix("AWS4-HMAC-SHA256 Credential=") else {
        return bad("not signed with SigV4");
    };
    let scope = rest.split(',').next().unwrap_or("");
    if !scope.ends_with("/sts/aws4_request") {
        return bad("not signed for STS");
    }
    let signed = rest.split(", ").find_map(|p| p.strip_prefix("SignedHeaders=")).unwrap_or("");
    for needed in ["host", "x-amz-date", TASK_HEADER, NONCE_HEADER] {
        if !signed.split(';').any(|h| h == needed) {
            return bad("not signed over the task");
        }
    }
    let signed_at = chrono::NaiveDateTime::parse_from_str(&proof.amz_date, "%Y%m%dT%H%M%SZ")
        .map_err(|_| IdentityError::Malformed("x-amz-date is not a SigV4 time".into()))?
        .and_utc();
    if (now - signed_at).abs() > CLOCK_WINDOW {
        return bad("signed more than five minutes from now");
    }
    Ok(())
}

/// The ARN and account from a `GetCallerIdentityResponse` document.
pub fn parse_caller(xml: &str) -> Result<ProvenCaller, IdentityError> {
    let field = |name: &str| -> Option<String> {
        let open = format!("<{name}>");
        let start = xml.find(&open)? + open.len();
        let end = start + xml[start..].find(&format!("</{name}>"))?;
        Some(xml[start..end].trim().to_owned())
    };
    match (field("Arn"), field("Account")) {
        (Some(arn), Some(account)) if arn.starts_with("arn:") && !account.is_empty() => {
            Ok(ProvenCaller { arn, account })
        }
        _ => Err(IdentityError::Malformed("STS answer names no caller".into())),
    }
}

/// The operator role a proof must come from: in the invoked function's own
/// account and partition (taken from the ARN Lambda invoked, never from
/// STS's answer, which names whatever account signed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorRole {
    pub partition: String,
    pub account: String,
    pub role: String,
}

impl OperatorRole {
    /// `function_arn`: `arn:<partition>:lambda:<region>:<account>:function:<name>[:<qualifier>]`.
    pub fn of_function(function_arn: &str, role: &str) -> Result<Self, IdentityError> {
        let parts: Vec<&str> = function_arn.split(':').collect();
        let unbound =
            || IdentityError::Unbound(format!("{function_arn:?} is not a Lambda function ARN"));
        if parts.len() < 7 || parts[0] != "arn" || parts[2] != "lambda" || parts[5] != "function" {
            return Err(unbound());
        }
        let (partition, account) = (parts[1], parts[4]);
        if partition.is_empty()
            || account.len() != 12
            || !account.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(unbound());
        }
        Ok(Self {
            partition: partition.to_owned(),
            account: account.to_owned(),
            role: role.to_owned(),
        })
    }

    /// Whether `caller` is a session of exactly this role: partition, account
    /// and role name all compared, and a session name present.
    pub fn check(&self, caller: &ProvenCaller) -> Result<(), IdentityError> {
        let prefix =
            format!("arn:{}:sts::{}:assumed-role/{}/", self.partition, self.account, self.role);
        let session = caller.arn.strip_prefix(&prefix);
        match session {
            Some(s) if !s.is_empty() && !s.contains('/') && caller.account == self.account => {
                Ok(())
            }
            _ => Err(IdentityError::NotOperator { arn: caller.arn.clone() }),
        }
    }
}

/// The digest under which a proof is remembered as used.
pub fn proof_digest(proof: &IdentityProof) -> [u8; 32] {
    Sha256::digest(proof.authorization.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by fuzzing: a 200-byte cut inside a multi-byte character panicked.
    #[test]
    fn a_long_multibyte_caller_is_cut_on_a_character_boundary() {
        for pad in 0..4 {
            let arn =
                format!("arn:aws:sts::1:assumed-role/o/{}{}", "a".repeat(pad), "é".repeat(120));
            let actor = ProvenCaller { arn, account: "1".into() }.actor();
            assert!(actor.len() <= 200 && actor.len() >= 198, "{}", actor.len());
        }
    }

    #[test]
    fn reads_the_caller_from_sts() {
        let xml = "<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><GetCallerIdentityResult>\
                   <Arn>arn:aws:sts::111122223333:assumed-role/copper-gallery-operator/alice</Arn><UserId>AROA:alice</UserId>\
                   <Account>111122223333</Account></GetCallerIdentityResult></GetCallerIdentityResponse>";
        let caller = parse_caller(xml).unwrap();
        assert_eq!(caller.account, "111122223333");
        let function = "arn:aws:lambda:eu-west-1:111122223333:function:copper-gallery-api";
        OperatorRole::of_function(function, "copper-gallery-operator")
            .unwrap()
            .check(&caller)
            .unwrap();
        assert!(OperatorRole::of_function(function, "copper-gallery-admin")
            .unwrap()
            .check(&caller)
            .is_err());
        assert!(parse_caller("<Error><Code>SignatureDoesNotMatch</Code></Error>").is_err());
    }

    /// The account is the function's, not the one STS names: a role of the
    /// same name in another account is not the operator.
    #[test]
    fn a_same_named_role_in_another_account_is_not_the_operator() {
        let role = OperatorRole::of_function(
            "arn:aws:lambda:eu-west-1:111122223333:function:g-api:live",
            "g-operator",
        )
        .unwrap();
        let other = ProvenCaller {
            arn: "arn:aws:sts::999999999999:assumed-role/g-operator/mallory".into(),
            account: "999999999999".into(),
        };
        assert!(matches!(role.check(&other), Err(IdentityError::NotOperator { .. })));
        // STS's account field cannot vouch for an ARN of another account either.
        let mixed = ProvenCaller {
            arn: "arn:aws:sts::999999999999:assumed-role/g-operator/mallory".into(),
            account: "111122223333".into(),
        };
        assert!(role.check(&mixed).is_err());
        let ours = ProvenCaller {
            arn: "arn:aws:sts::111122223333:assumed-role/g-operator/alice".into(),
            account: "111122223333".into(),
        };
        role.check(&ours).unwrap();
        // The whole role name: a longer name with the same prefix is another role.
        let longer = ProvenCaller {
            arn: "arn:aws:sts::111122223333:assumed-role/g-operator-x/alice".into(),
            account: "111122223333".into(),
        };
        assert!(role.check(&longer).is_err());
        let sessionless = ProvenCaller {
            arn: "arn:aws:sts::111122223333:assumed-role/g-operator/".into(),
            account: "111122223333".into(),
        };
        assert!(role.check(&sessionless).is_err());
    }

    #[test]
    fn the_partition_is_the_functions() {
        let role = OperatorRole::of_function(
            "arn:aws-cn:lambda:cn-north-1:111122223333:function:g-api",
            "g-operator",
        )
        .unwrap();
        let china = ProvenCaller {
            arn: "arn:aws-cn:sts::111122223333:assumed-role/g-operator/alice".into(),
            account: "111122223333".into(),
        };
        role.check(&china).unwrap();
        let global = ProvenCaller {
            arn: "arn:aws:sts::111122223333:assumed-role/g-operator/alice".into(),
            account: "111122223333".into(),
        };
        assert!(role.check(&global).is_err());
        for bad in [
            "",
            "arn:aws:lambda:eu-west-1:1111:function:x",
            "arn:aws:s3:::bucket",
            "arn:aws:lambda:eu-west-1:111122223333:layer:x",
        ] {
            assert!(
                matches!(
                    OperatorRole::of_function(bad, "g-operator"),
                    Err(IdentityError::Unbound(_))
                ),
                "{bad}"
            );
        }
    }
}
