//! Security probes that are tests of the suite (`cargo xtask test` runs them
//! against the real stack); these rows report how the newest run found them,
//! from its own output, rather than running them twice.

use std::path::Path;

use anyhow::{bail, Result};

use super::logscan::RunFiles;
use super::Row;

const AREA: &str = "security";

/// What each probe tried, the tests that prove it, and the name under which
/// a test records its case count (`tests/it/support.rs::record_cases`).
const PROBES: &[(&str, &[&str], Option<&str>)] = &[
    (
        "plaintext and non-verifying database connections (no TLS, another CA, the wrong name)",
        &[
            "database::plaintext_connections_are_refused",
            "database::a_certificate_from_another_ca_is_refused",
            "database::server_name_is_verified",
        ],
        None,
    ),
    (
        "token guessing past the per-instance budget (429 before the database; known tokens pass)",
        &["api::errors::token_guessing_is_bounded_and_known_tokens_pass"],
        None,
    ),
    (
        "hostile values (NUL, bidi, overlong, out of range, wrong type) in every field of every operation",
        &["api::hostile::hostile_values_in_every_field_of_every_operation_never_reach_a_5xx"],
        Some("hostile_values"),
    ),
    (
        "SQL injection, path traversal and URLs in every field and key: stored verbatim, no SQL run, \
         no key outside its prefix, no URL fetched",
        &["api::hostile::injection_traversal_and_urls_in_every_field_are_data_never_code_keys_or_fetches"],
        Some("injection_traversal_urls"),
    ),
    (
        "guessed keys of unpublished images through the media path",
        &["api::media::a_guessed_draft_key_never_answers_200"],
        None,
    ),
];

pub fn rows(root: &Path) -> Vec<Row> {
    let run = RunFiles::existing(root);
    let output = std::fs::read_to_string(run.output()).unwrap_or_default();
    PROBES
        .iter()
        .map(|(tried, tests, counted)| {
            let result = outcome(&output, tests).map(|what| {
                let recorded = counted.and_then(|name| {
                    std::fs::read_to_string(run.dir.join("cases").join(format!("{name}.txt"))).ok()
                });
                let cases =
                    recorded.and_then(|t| t.trim().parse().ok()).unwrap_or(tests.len() as u64);
                (cases, what)
            });
            Row::from_result(AREA, *tried, result)
        })
        .collect()
}

/// `Ok` when every named test passed in the run.
fn outcome(output: &str, tests: &[&str]) -> Result<String> {
    if output.is_empty() {
        bail!("no test run on record: run `cargo xtask test` first");
    }
    for test in tests {
        let prefix = format!("test {test} ... ");
        let Some(line) = output.lines().find_map(|l| l.split_once(&prefix).map(|(_, r)| r)) else {
            bail!("{test} did not run in the last `cargo xtask test`");
        };
        if !line.starts_with("ok") {
            bail!("{test}: {}", line.trim());
        }
    }
    Ok(format!("{} in the last `cargo xtask test`", plural(tests.len())))
}

fn plural(n: usize) -> String {
    if n == 1 {
        "its test passed".into()
    } else {
        format!("all {n} tests passed")
    }
}
