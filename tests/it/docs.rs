//! The deployment runbook's operator commands are real commands: each
//! `gallery-ops …` line of docs/deploy.md parses with the tool's own parser
//! and passes the task's argument checks.

use clap::Parser;

#[test]
fn every_gallery_ops_line_in_the_runbook_is_valid() {
    let text = std::fs::read_to_string(format!("{}/../docs/deploy.md", env!("CARGO_MANIFEST_DIR")))
        .unwrap();
    let lines: Vec<&str> =
        text.lines().map(str::trim).filter(|l| l.starts_with("gallery-ops ")).collect();
    assert!(lines.len() >= 8, "the runbook shows the operator commands");
    for line in lines {
        let words = shell_words(line);
        let cli =
            gallery_ops::Cli::try_parse_from(&words).unwrap_or_else(|e| panic!("{line}: {e}"));
        if let Some(task) = cli.command.task() {
            task.validate().unwrap_or_else(|e| panic!("{line}: {e}"));
        }
    }
}

/// Splits on spaces, keeping double-quoted words together (all the runbook uses).
pub fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => quoted = !quoted,
            ' ' if !quoted => {
                if !current.is_empty() {
                    words.push(std::mem::take(&mut current));
                }
            }
            c => current.push(c),
        }
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

/// Terraform creates the database roles' secrets without a value (it never
/// holds a password), and the functions read them at cold start: the
/// runbook must fill every such secret before the first invocation, or the
/// backup function cannot start and `gallery-ops database migrate` never runs.
#[test]
fn the_runbook_fills_every_secret_terraform_leaves_empty() {
    let root = format!("{}/..", env!("CARGO_MANIFEST_DIR"));
    let runbook = std::fs::read_to_string(format!("{root}/docs/deploy.md")).unwrap();
    let mut infra = String::new();
    for entry in std::fs::read_dir(format!("{root}/infra")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "tf") {
            infra.push_str(&std::fs::read_to_string(path).unwrap());
        }
    }
    let secrets: Vec<&str> = infra
        .lines()
        .filter_map(|l| l.trim().strip_prefix("resource \"aws_secretsmanager_secret\" \""))
        .filter_map(|rest| rest.split('"').next())
        .collect();
    assert!(secrets.len() >= 2, "{secrets:?}");
    let filled = runbook.find("put-secret-value").expect("the runbook stores the passwords");
    let first_start = runbook.find("gallery-ops database migrate").expect("the runbook migrates");
    assert!(filled < first_start, "the secrets are filled before the first invocation");
    for secret in secrets {
        if infra.contains(&format!("aws_secretsmanager_secret_version\" \"{secret}\"")) {
            continue;
        }
        // The output that names it, and the runbook's use of that output.
        let reference = format!("aws_secretsmanager_secret.{secret}");
        let output = infra
            .split("output \"")
            .skip(1)
            .find(|block| block.split("\n}").next().is_some_and(|b| b.contains(&reference)))
            .and_then(|block| block.split('"').next())
            .unwrap_or_else(|| panic!("no output names secret {secret}"));
        assert!(
            runbook[..first_start].contains(output),
            "docs/deploy.md never fills secret {secret} (output {output}) before the first start"
        );
    }
}
