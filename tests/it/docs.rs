//! The deployment runbook's operator commands are real commands: each
//! `gallery-ops …` line of docs/deploy.md parses with the tool's own parser
//! and passes the task's argument checks.

use clap::Parser;

#[test]
fn every_gallery_ops_line_in_the_runbook_is_valid() {
    let text = std::fs::read_to_string(format!("{}/../docs/deploy.md", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| l.starts_with("gallery-ops ")).collect();
    assert!(lines.len() >= 8, "the runbook shows the operator commands");
    for line in lines {
        let words = shell_words(line);
        let cli = gallery_ops::Cli::try_parse_from(&words).unwrap_or_else(|e| panic!("{line}: {e}"));
        cli.command.task().validate().unwrap_or_else(|e| panic!("{line}: {e}"));
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
