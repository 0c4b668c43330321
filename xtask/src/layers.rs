//! `cargo xtask layers`: the dependency rules ARCHITECTURE.md lists, checked.
//!
//! Inside `shared`, every `crate::` path must go to the same or a lower layer,
//! never between `db` and `aws`, never out of `config`, and the modules must
//! form no cycle; L0 names no AWS SDK and no database driver. Across the
//! workspace (`cargo metadata`), no function depends on another, `shared`
//! on none, and only the image processor links the C image codecs.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{bail, Context, Result};

/// Each top-level module of `shared` and its layer.
pub const LAYERS: &[(&str, u8)] = &[
    ("archive", 0),
    ("config", 0),
    ("domain", 0),
    ("operator", 0),
    ("retention", 0),
    ("telemetry", 0),
    ("aws", 1),
    ("db", 1),
    ("connect", 2),
    ("ledger", 2),
    ("media", 2),
    ("runner", 2),
];

/// The two adapters, which never import each other.
const SIDEWAYS: [&str; 2] = ["aws", "db"];

/// What L0 must not name: the AWS SDK and the database driver.
const L0_FORBIDDEN: &[&str] = &[
    "aws_sdk_",
    "aws_config::",
    "aws_sigv4::",
    "aws_credential_types::",
    "aws_smithy_",
    "tokio_postgres",
    "deadpool_postgres",
    "postgres_protocol",
    "refinery::",
    "hyper_util::",
    "hyper_rustls::",
];

/// The C codecs' crates, which only the image processor may link.
const CODECS: &[&str] = &["turbojpeg-sys", "libwebp-sys", "lcms2-sys"];
const IMAGE_PROCESSOR: &str = "image-processor";

pub fn check(root: &Path) -> Result<()> {
    let files = shared_sources(&root.join("shared/src"))?;
    let mut problems = check_sources(&files);
    let metadata =
        std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .current_dir(root)
            .args(["metadata", "--format-version", "1", "--locked"])
            .output()
            .context("running cargo metadata")?;
    if !metadata.status.success() {
        bail!("cargo metadata failed: {}", String::from_utf8_lossy(&metadata.stderr));
    }
    let metadata: serde_json::Value = serde_json::from_slice(&metadata.stdout)?;
    problems.extend(check_workspace(&Workspace::from_metadata(&metadata)?));
    problems.extend(duplicate_type_names(&workspace_sources(root)?));
    if problems.is_empty() {
        crate::say(&format!(
            "layers: {} modules of shared in 3 layers, the crate graph, the public type names: \
             as ARCHITECTURE.md says",
            LAYERS.len()
        ));
        return Ok(());
    }
    for p in &problems {
        eprintln!("layers: {p}");
    }
    bail!("{} dependency rule(s) broken (ARCHITECTURE.md, Layers)", problems.len())
}

/// `(path relative to `base`, text)` of every Rust file under `dirs`.
fn rust_sources(base: &Path, dirs: &[&str]) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut stack: Vec<_> = dirs.iter().map(|d| base.join(d)).collect();
    while let Some(dir) = stack.pop() {
        for entry in
            std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))?
        {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let relative = path.strip_prefix(base)?.to_string_lossy().replace('\\', "/");
                out.push((relative, std::fs::read_to_string(&path)?));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// `(path, text)` of every Rust file of the workspace's crates.
fn workspace_sources(root: &Path) -> Result<Vec<(String, String)>> {
    rust_sources(root, &["shared", "functions", "ops", "local", "tests", "xtask"])
}

/// Public types that share a name across the workspace: a reader cannot
/// tell them apart in a signature, a log line or a search.
pub fn duplicate_type_names(files: &[(String, String)]) -> Vec<String> {
    let mut places: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (path, text) in files {
        for line in text.lines() {
            let line = line.trim_start();
            for kind in ["pub struct ", "pub enum ", "pub trait ", "pub type "] {
                if let Some(rest) = line.strip_prefix(kind) {
                    let name: String = rest
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    if !name.is_empty() {
                        places.entry(name).or_default().push(path.clone());
                    }
                }
            }
        }
    }
    places
        .into_iter()
        .filter(|(_, at)| at.len() > 1)
        .map(|(name, at)| {
            format!("public type `{name}` is declared {} times: {}", at.len(), at.join(", "))
        })
        .collect()
}

/// `(module, path relative to shared/src, text)` of every source file but `lib.rs`.
fn shared_sources(src: &Path) -> Result<Vec<(String, String, String)>> {
    Ok(rust_sources(src, &["."])?
        .into_iter()
        .map(|(path, text)| (path.trim_start_matches("./").to_owned(), text))
        .filter(|(path, _)| path != "lib.rs")
        .map(|(path, text)| {
            let module = path.split('/').next().unwrap_or("").trim_end_matches(".rs").to_owned();
            (module, path, text)
        })
        .collect())
}

fn layer_of(module: &str) -> Option<u8> {
    LAYERS.iter().find(|(m, _)| *m == module).map(|(_, l)| *l)
}

/// The top-level modules a file's code names through `crate::` (comment lines skipped).
fn crate_imports(text: &str) -> BTreeSet<String> {
    let ident = |s: &str| {
        s.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect::<String>()
    };
    let mut found = BTreeSet::new();
    for line in text.lines().filter(|l| !l.trim_start().starts_with("//")) {
        let mut rest = line;
        while let Some(at) = rest.find("crate::") {
            let preceded =
                rest[..at].chars().last().is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
            rest = &rest[at + "crate::".len()..];
            if preceded {
                continue; // `some_crate::`, not `crate::`
            }
            if let Some(group) = rest.strip_prefix('{') {
                // `crate::{a::X, b}`: the first segment of each item at depth 0.
                let mut depth = 0;
                let mut item_start = true;
                for (i, c) in group.char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' if depth == 0 => break,
                        '}' => depth -= 1,
                        ',' if depth == 0 => item_start = true,
                        c if item_start && !c.is_whitespace() => {
                            found.insert(ident(&group[i..]));
                            item_start = false;
                        }
                        _ => {}
                    }
                }
            } else {
                found.insert(ident(rest));
            }
        }
    }
    found.retain(|m| !m.is_empty());
    found
}

/// Every rule broken by these files, in words.
pub fn check_sources(files: &[(String, String, String)]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, path, text) in files {
        let Some(layer) = layer_of(module) else {
            problems.push(format!("shared/src/{path}: module `{module}` has no layer (add it to LAYERS and ARCHITECTURE.md)"));
            continue;
        };
        graph.entry(module.clone()).or_default();
        for target in crate_imports(text) {
            if &target == module {
                continue;
            }
            match layer_of(&target) {
                None => problems.push(format!("shared/src/{path}: names `crate::{target}`, which has no layer")),
                Some(_) if module == "config" => {
                    problems.push(format!("shared/src/{path}: config imports nothing else of the crate, but names `crate::{target}`"))
                }
                Some(l) if l > layer => {
                    problems.push(format!("shared/src/{path}: upward import: `{module}` (L{layer}) names `crate::{target}` (L{l})"))
                }
                Some(_) if SIDEWAYS.contains(&module.as_str()) && SIDEWAYS.contains(&target.as_str()) => problems
                    .push(format!("shared/src/{path}: sideways import: `{module}` names `crate::{target}` (db and aws use only L0)")),
                Some(_) => {}
            }
            graph.entry(module.clone()).or_default().insert(target);
        }
        if layer == 0 {
            for line in text.lines().filter(|l| !l.trim_start().starts_with("//")) {
                if let Some(name) = L0_FORBIDDEN.iter().find(|n| line.contains(*n)) {
                    problems.push(format!("shared/src/{path}: `{module}` is L0 but names `{name}` (no AWS SDK, no database driver)"));
                    break;
                }
            }
        }
    }
    problems.extend(
        cycles(&graph).into_iter().map(|c| format!("module cycle in shared: {}", c.join(" → "))),
    );
    problems
}

/// Each cycle once, as the path that closes it.
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    fn walk(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
        found: &mut Vec<Vec<String>>,
    ) {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_owned());
            found.push(cycle);
            return;
        }
        if done.contains(node) {
            return;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            walk(next, graph, path, done, found);
        }
        path.pop();
        done.insert(node.to_owned());
    }
    let (mut done, mut found) = (BTreeSet::new(), Vec::new());
    for node in graph.keys() {
        walk(node, graph, &mut Vec::new(), &mut done, &mut found);
    }
    found
}

/// The workspace's packages as the rules need them.
#[derive(Debug, Default)]
pub struct Workspace {
    /// Workspace package → the workspace packages it depends on (any kind).
    pub members: BTreeMap<String, BTreeSet<String>>,
    /// Packages under `functions/`.
    pub functions: BTreeSet<String>,
    /// Workspace package → every package its normal dependencies link.
    pub links: BTreeMap<String, BTreeSet<String>>,
}

impl Workspace {
    fn from_metadata(m: &serde_json::Value) -> Result<Self> {
        let empty = Vec::new();
        let packages = m["packages"].as_array().unwrap_or(&empty);
        let members: BTreeSet<&str> = m["workspace_members"]
            .as_array()
            .unwrap_or(&empty)
            .iter()
            .filter_map(|v| v.as_str())
            .collect();
        let name_of: BTreeMap<&str, &str> = packages
            .iter()
            .filter_map(|p| Some((p["id"].as_str()?, p["name"].as_str()?)))
            .collect();
        let mut ws = Workspace::default();
        let member_names: BTreeSet<&str> =
            members.iter().filter_map(|id| name_of.get(id).copied()).collect();
        for p in packages.iter().filter(|p| p["id"].as_str().is_some_and(|id| members.contains(id)))
        {
            let name = p["name"].as_str().context("a package without a name")?.to_owned();
            let manifest = p["manifest_path"].as_str().unwrap_or("").replace('\\', "/");
            if manifest.contains("/functions/") {
                ws.functions.insert(name.clone());
            }
            let deps = p["dependencies"].as_array().unwrap_or(&empty);
            let internal = deps
                .iter()
                .filter_map(|d| d["name"].as_str())
                .filter(|d| member_names.contains(d))
                .map(str::to_owned)
                .collect();
            ws.members.insert(name, internal);
        }
        // Normal dependencies, transitively, from the resolved graph.
        let nodes =
            m["resolve"]["nodes"].as_array().context("cargo metadata without a resolve graph")?;
        let normal: BTreeMap<&str, Vec<&str>> = nodes
            .iter()
            .filter_map(|n| {
                let deps = n["deps"]
                    .as_array()?
                    .iter()
                    .filter(|d| {
                        d["dep_kinds"]
                            .as_array()
                            .is_some_and(|k| k.iter().any(|k| k["kind"].is_null()))
                    })
                    .filter_map(|d| d["pkg"].as_str())
                    .collect();
                Some((n["id"].as_str()?, deps))
            })
            .collect();
        for id in &members {
            let mut seen = BTreeSet::new();
            let mut todo = vec![*id];
            while let Some(next) = todo.pop() {
                for dep in normal.get(next).into_iter().flatten() {
                    if seen.insert(*dep) {
                        todo.push(dep);
                    }
                }
            }
            let name = name_of.get(id).copied().unwrap_or(id).to_owned();
            ws.links.insert(
                name,
                seen.iter().filter_map(|d| name_of.get(d).map(|n| (*n).to_owned())).collect(),
            );
        }
        Ok(ws)
    }
}

/// Every workspace rule broken, in words.
pub fn check_workspace(ws: &Workspace) -> Vec<String> {
    let mut problems = Vec::new();
    for function in &ws.functions {
        for dep in ws.members.get(function).into_iter().flatten() {
            if ws.functions.contains(dep) {
                problems.push(format!("function `{function}` depends on function `{dep}`: functions share code only through `shared`"));
            }
        }
        let codecs: Vec<_> = CODECS
            .iter()
            .filter(|c| ws.links.get(function).is_some_and(|l| l.contains(**c)))
            .collect();
        if function != IMAGE_PROCESSOR && !codecs.is_empty() {
            problems.push(format!("function `{function}` links the image codecs ({codecs:?}): only `{IMAGE_PROCESSOR}` may"));
        }
    }
    for dep in ws.members.get("shared").into_iter().flatten() {
        problems.push(format!(
            "`shared` depends on workspace crate `{dep}`: the library sits below every function"
        ));
    }
    if ws.links.get("shared").is_some_and(|l| CODECS.iter().any(|c| l.contains(*c))) {
        problems.push("`shared` links the image codecs: they belong to the image processor".into());
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(module: &str, text: &str) -> (String, String, String) {
        (module.into(), format!("{module}/x.rs"), text.into())
    }

    #[test]
    fn reads_every_form_of_crate_path() {
        let text = "use crate::db::{self, DbError};\nuse crate::{aws::storage::ObjectStore, domain};\n// crate::media in a comment\nlet x = crate::config::Env::new();\nuse some_crate::thing;";
        let found: Vec<_> = crate_imports(text).into_iter().collect();
        assert_eq!(found, ["aws", "config", "db", "domain"]);
    }

    #[test]
    fn the_rules_hold_for_a_layered_tree() {
        let files = [
            file("domain", "use crate::config::Env;"),
            file("db", "use crate::domain::Scope; use crate::archive::frames::CopyDigest;"),
            file("aws", "use crate::config::AwsConfig;"),
            file("runner", "use crate::db::AuditEntry; use crate::aws::sts; use crate::operator::OperatorTask;"),
            file("ledger", "use crate::aws::storage::ObjectStore;"),
        ];
        assert_eq!(check_sources(&files), Vec::<String>::new());
    }

    #[test]
    fn planted_violations_are_each_caught() {
        let planted = [
            (
                file("db", "use crate::media::EdgeMedia;"),
                "upward import: `db` (L1) names `crate::media` (L2)",
            ),
            (file("domain", "use crate::db::Client;"), "upward import: `domain` (L0)"),
            (file("aws", "use crate::db::DbError;"), "sideways import: `aws` names `crate::db`"),
            (
                file("db", "fn f(c: &crate::aws::Clients) {}"),
                "sideways import: `db` names `crate::aws`",
            ),
            (file("config", "use crate::domain::Scope;"), "config imports nothing else"),
            (file("archive", "use tokio_postgres::Row;"), "names `tokio_postgres`"),
            (file("operator", "let c = aws_sdk_s3::Client::new(&x);"), "names `aws_sdk_`"),
            (file("imaging", "use crate::domain::Scope;"), "has no layer"),
            (file("media", "use crate::sweep::Sweep;"), "names `crate::sweep`, which has no layer"),
        ];
        for (f, expected) in planted {
            let problems = check_sources(std::slice::from_ref(&f));
            assert!(problems.iter().any(|p| p.contains(expected)), "{f:?}: {problems:?}");
        }
    }

    #[test]
    fn two_public_types_with_one_name_are_caught() {
        let files = [
            ("a/lib.rs".to_owned(), "pub struct Config {}\npub enum Task { A }".to_owned()),
            ("b/lib.rs".to_owned(), "    pub struct Config;\nstruct Task;".to_owned()),
        ];
        assert_eq!(
            duplicate_type_names(&files),
            ["public type `Config` is declared 2 times: a/lib.rs, b/lib.rs"]
        );
    }

    #[test]
    fn a_cycle_is_caught_even_within_a_layer() {
        let files = [
            file("media", "use crate::ledger::write_record;"),
            file("ledger", "use crate::media::EdgeMedia;"),
        ];
        let problems = check_sources(&files);
        assert!(
            problems.iter().any(|p| p.contains("module cycle in shared: ledger → media → ledger")),
            "{problems:?}"
        );
    }

    #[test]
    fn workspace_rules_catch_functions_leaning_on_each_other_and_stray_codecs() {
        let set = |xs: &[&str]| xs.iter().map(|x| (*x).to_owned()).collect::<BTreeSet<_>>();
        let mut ws = Workspace {
            functions: set(&["api", "backup", "image-processor"]),
            ..Default::default()
        };
        ws.members.insert("api".into(), set(&["shared"]));
        ws.members.insert("backup".into(), set(&["shared", "api"]));
        ws.members.insert("image-processor".into(), set(&["shared"]));
        ws.members.insert("shared".into(), set(&[]));
        ws.links.insert("image-processor".into(), set(&["turbojpeg-sys", "shared"]));
        ws.links.insert("api".into(), set(&["lcms2-sys"]));
        let problems = check_workspace(&ws);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("`api` links the image codecs"));
        assert!(problems[1].contains("`backup` depends on function `api`"));
    }
}
