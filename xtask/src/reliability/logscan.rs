//! No secret in any log line: every secret a test run used, looked for in
//! every line the run logged.
//!
//! The secrets come from where they were minted, not from a list someone
//! keeps: the emulator records every data key, decrypted plaintext and
//! Secrets Manager value it handed out (`xtask/moto_recording.py`), its
//! request recording holds every SigV4 signature (SDK calls, presigned URLs
//! and POST forms, the operators' identity proofs sent on to STS), and the
//! stack's own passwords are known to xtask. API tokens are found by their
//! shape (`cpg_` and 43 base64url characters), so a token minted anywhere is
//! caught. The logs are the test run's output (the functions' JSON lines
//! in-process), every function binary's output, and PostgreSQL's log, which
//! RDS exports to CloudWatch.

use std::path::{Path, PathBuf};

use aho_corasick::AhoCorasick;
use anyhow::{Context, Result};

/// The API token prefix (`shared::domain::TOKEN_PREFIX`) and the length of its
/// random part: 32 bytes in unpadded base64url.
const TOKEN_PREFIX: &str = "cpg_";
const TOKEN_BODY: usize = 43;

/// What one test run leaves for the scan (`cargo xtask test` fills it).
pub struct RunFiles {
    pub dir: PathBuf,
}

impl RunFiles {
    pub fn fresh(root: &Path) -> Result<Self> {
        let dir = root.join("target").join("reliability").join("logs");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        Ok(Self { dir })
    }

    pub fn existing(root: &Path) -> Self {
        Self { dir: root.join("target").join("reliability").join("logs") }
    }

    /// Secrets the emulator handed out, one per line.
    pub fn emulator_secrets(&self) -> PathBuf {
        self.dir.join("emulator-secrets.txt")
    }

    /// The test run's own output.
    pub fn output(&self) -> PathBuf {
        self.dir.join("test-output.log")
    }
}

pub struct Findings {
    pub secrets: usize,
    pub lines: usize,
    pub files: usize,
    /// `file:line kind` of every hit, never the secret itself.
    pub hits: Vec<String>,
}

/// The scan after a test run: its summary kept for `cargo xtask reliability`,
/// an error naming every hit (file, line, kind; never the secret).
pub fn check(run: &RunFiles, recording: &Path, passwords: &[String]) -> Result<()> {
    let found = scan(run, recording, passwords)?;
    let summary = format!(
        "{} secrets (passwords, data keys, secret values, SigV4 signatures) and every API-token-shaped \
         string, looked for in {} lines of {} logs: {} hits",
        found.secrets,
        found.lines,
        found.files,
        found.hits.len()
    );
    crate::say(&format!("log scan: {summary}"));
    let cases = found.lines;
    if !found.hits.is_empty() {
        let shown: Vec<&str> = found.hits.iter().take(50).map(String::as_str).collect();
        std::fs::write(run.dir.join("scan.txt"), format!("{cases}\tFAILED {summary}"))?;
        anyhow::bail!("secrets in the logs ({summary}):\n  {}", shown.join("\n  "));
    }
    std::fs::write(run.dir.join("scan.txt"), format!("{cases}\t{summary}"))?;
    Ok(())
}

/// Scans every `*.log` under the run's directory for the secrets the run used.
pub fn scan(run: &RunFiles, recording: &Path, passwords: &[String]) -> Result<Findings> {
    let mut secrets: Vec<(String, &'static str)> =
        passwords.iter().map(|p| (p.clone(), "password")).collect();
    if let Ok(text) = std::fs::read_to_string(run.emulator_secrets()) {
        for value in text.lines().filter(|l| !l.is_empty()) {
            secrets.extend(emulator_secret_forms(value));
        }
    }
    if let Ok(text) = std::fs::read_to_string(recording) {
        for line in text.lines() {
            secrets.extend(request_signatures(line).into_iter().map(|s| (s, "SigV4 signature")));
        }
    }
    secrets.retain(|(s, _)| s.len() >= 16);
    secrets.sort();
    secrets.dedup();
    let matcher = AhoCorasick::new(secrets.iter().map(|(s, _)| s.as_str()))
        .context("building the secret matcher")?;

    let mut findings = Findings { secrets: secrets.len(), lines: 0, files: 0, hits: Vec::new() };
    let mut files: Vec<PathBuf> = std::fs::read_dir(&run.dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    files.sort();
    for file in files {
        findings.files += 1;
        let bytes = std::fs::read(&file)?;
        let text = String::from_utf8_lossy(&bytes);
        let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        for (n, line) in text.lines().enumerate() {
            findings.lines += 1;
            for m in matcher.find_iter(line) {
                findings.hits.push(format!("{name}:{} {}", n + 1, secrets[m.pattern()].1));
            }
            if has_token(line) {
                findings.hits.push(format!("{name}:{} API token", n + 1));
            }
        }
    }
    Ok(findings)
}

/// A value as the emulator handed it out, and the forms a log could show it
/// in: a Secrets Manager JSON value's password, a data key's bytes as hex.
fn emulator_secret_forms(value: &str) -> Vec<(String, &'static str)> {
    let mut forms = vec![(value.to_owned(), "secret value or data key")];
    if let Ok(serde_json::Value::Object(map)) = serde_json::from_str(value) {
        if let Some(serde_json::Value::String(p)) = map.get("password") {
            forms.push((p.clone(), "database password"));
        }
    }
    if let Some(bytes) = base64_decode(value) {
        if bytes.len() >= 16 {
            forms.push((hex(&bytes), "data key (hex)"));
        }
    }
    forms
}

/// Every SigV4 signature in one recorded request (a JSON line: headers, url,
/// body, base64 when `body_encoded`).
fn request_signatures(line: &str) -> Vec<String> {
    let Ok(request) = serde_json::from_str::<serde_json::Value>(line) else {
        return Vec::new();
    };
    let field = |name: &str| request[name].as_str().unwrap_or_default().to_owned();
    let authorization = request["headers"]["Authorization"].as_str().unwrap_or_default();
    let body = match request["body_encoded"].as_bool() {
        Some(true) => base64_decode(&field("body"))
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default(),
        _ => field("body"),
    };
    signatures(&format!("{authorization} {} {body}", field("url")))
}

/// `Signature=` in an Authorization header or a presigned URL's
/// `X-Amz-Signature=`, and the `x-amz-signature` field of a POST form.
fn signatures(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let lower = text.to_ascii_lowercase();
    for marker in ["signature=", "name=\"x-amz-signature\"\r\n\r\n"] {
        let mut from = 0;
        while let Some(at) = lower[from..].find(marker) {
            let start = from + at + marker.len();
            let candidate: String =
                lower[start..].chars().take_while(|c| c.is_ascii_hexdigit()).collect();
            if candidate.len() == 64 {
                found.push(candidate);
            }
            from = start;
        }
    }
    found
}

/// A string shaped like an API token: the prefix and 43 base64url characters.
fn has_token(line: &str) -> bool {
    line.match_indices(TOKEN_PREFIX).any(|(at, _)| {
        let body = &line.as_bytes()[at + TOKEN_PREFIX.len()..];
        body.len() >= TOKEN_BODY
            && body[..TOKEN_BODY]
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
            && !body
                .get(TOKEN_BODY)
                .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Standard base64, what KMS and the recording use.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_tokens_by_shape_only() {
        let token = format!("cpg_{}", "A".repeat(43));
        assert!(has_token(&format!("{{\"msg\":\"x {token}\"}}")));
        assert!(!has_token("cpg_short"));
        assert!(!has_token(&format!("cpg_{}", "A".repeat(44))), "longer is not a token");
    }

    #[test]
    fn finds_every_kind_of_signature() {
        let sig = "a".repeat(64);
        let form = format!(
            "--b\r\nContent-Disposition: form-data; name=\"x-amz-signature\"\r\n\r\n{sig}\r\n--b--"
        );
        let line = serde_json::json!({
            "headers": { "Authorization": format!("AWS4-HMAC-SHA256 Credential=x, Signature={sig}") },
            "url": format!("http://h/b/k?X-Amz-Signature={sig}"),
            "body": base64(form.as_bytes()),
            "body_encoded": true,
        });
        assert_eq!(request_signatures(&line.to_string()), vec![sig.clone(), sig.clone(), sig]);
    }

    fn base64(bytes: &[u8]) -> String {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    #[test]
    fn data_keys_are_looked_for_as_hex_too() {
        let forms = emulator_secret_forms("AAECAwQFBgcICQoLDA0ODw==");
        assert!(forms.iter().any(|(f, _)| f == "000102030405060708090a0b0c0d0e0f"));
    }
}
