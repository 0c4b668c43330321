//! What Terraform gives each function, read from `infra/` itself: the
//! environment map (checked against the variables each function's `Config`
//! reads) and the connection budget. The runtime tests start every binary with
//! exactly this environment.

use std::collections::{BTreeMap, BTreeSet};

use hcl::{Body, Expression, ObjectKey};
use shared::config::{EnvReads, FromEnv};

fn infra(file: &str) -> Body {
    let path = format!("{}/../infra/{file}", env!("CARGO_MANIFEST_DIR"));
    hcl::from_str(&std::fs::read_to_string(&path).unwrap())
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn key_name(key: &ObjectKey) -> String {
    match key {
        ObjectKey::Identifier(id) => id.to_string(),
        ObjectKey::Expression(Expression::String(s)) => s.clone(),
        other => panic!("unsupported object key {other:?}"),
    }
}

fn object(expr: &Expression) -> BTreeMap<String, Expression> {
    match expr {
        Expression::Object(o) => o.iter().map(|(k, v)| (key_name(k), v.clone())).collect(),
        other => panic!("expected an object, found {other:?}"),
    }
}

fn locals(body: &Body) -> BTreeMap<String, Expression> {
    body.blocks()
        .filter(|b| b.identifier() == "locals")
        .flat_map(|b| b.body().attributes())
        .map(|a| (a.key().to_owned(), a.expr().clone()))
        .collect()
}

fn render(expr: &Expression) -> String {
    hcl::format::to_string(expr).unwrap_or_default()
}

/// One function as Terraform configures it.
#[derive(Debug)]
pub struct FunctionSettings {
    /// The binary's name (`image-processor`; Terraform's key is `image_processor`).
    pub binary: String,
    /// Environment variable → its Terraform expression, rendered.
    pub env: BTreeMap<String, String>,
    pub reserved: i64,
    pub db_pool: i64,
    pub db_direct: i64,
    pub memory: u32,
}

fn number(expr: &Expression, variables: &BTreeMap<String, i64>) -> i64 {
    match expr {
        Expression::Number(n) => n.as_i64().unwrap(),
        other => {
            let text = render(other);
            let name =
                text.strip_prefix("var.").unwrap_or_else(|| panic!("unsupported number {text}"));
            *variables.get(name).unwrap_or_else(|| panic!("variable {name} has no numeric default"))
        }
    }
}

/// Every variable's numeric default.
pub fn numeric_defaults() -> BTreeMap<String, i64> {
    infra("variables.tf")
        .blocks()
        .filter(|b| b.identifier() == "variable")
        .filter_map(|b| {
            let name = match b.labels().first()? {
                hcl::BlockLabel::String(s) => s.clone(),
                hcl::BlockLabel::Identifier(i) => i.to_string(),
            };
            let default = b.body().attributes().find(|a| a.key() == "default")?;
            match default.expr() {
                Expression::Number(n) => Some((name, n.as_i64()?)),
                _ => None,
            }
        })
        .collect()
}

/// Each function's settings, evaluating the `environment` block of
/// `aws_lambda_function.function` the way Terraform's `merge` does.
pub fn functions() -> Vec<FunctionSettings> {
    let body = infra("functions.tf");
    let locals = locals(&body);
    let main_locals = self::locals(&infra("main.tf"));
    let folders = object(&main_locals["function_folders"]);
    let common = object(&locals["common_environment"]);
    let settings = object(&locals["function_settings"]);
    let variables = numeric_defaults();
    let lambda = body
        .blocks()
        .find(|b| {
            b.identifier() == "resource"
                && b.labels().len() == 2
                && render_label(&b.labels()[0]) == "aws_lambda_function"
        })
        .expect("aws_lambda_function.function");
    let merge_args = lambda
        .body()
        .blocks()
        .find(|b| b.identifier() == "environment")
        .and_then(|b| {
            b.body().attributes().find(|a| a.key() == "variables").map(|a| a.expr().clone())
        })
        .expect("environment { variables = … }");
    let Expression::FuncCall(call) = merge_args else {
        panic!("environment variables must be a merge(…)")
    };
    assert_eq!(call.name.to_string(), "merge");

    settings
        .iter()
        .map(|(key, value)| {
            let s = object(value);
            let mut env = BTreeMap::new();
            for arg in &call.args {
                let pieces: BTreeMap<String, Expression> = match arg {
                    Expression::Object(_) => object(arg),
                    other => match render(other).as_str() {
                        "local.common_environment" => common.clone(),
                        "local.function_settings[each.key].extra_env" => object(&s["extra_env"]),
                        text => {
                            panic!("unsupported merge argument {text}: teach tests/it/terraform.rs")
                        }
                    },
                };
                for (name, expr) in pieces {
                    // The one per-function expression in the literal object.
                    let rendered = render(&expr).replace(
                        "local.function_settings[each.key].db_pool",
                        &render(&s["db_pool"]),
                    );
                    env.insert(name, rendered);
                }
            }
            let binary = match &folders[key] {
                Expression::String(f) => f.clone(),
                other => panic!("folder of {key}: {other:?}"),
            };
            FunctionSettings {
                binary,
                env,
                reserved: number(&s["reserved"], &variables),
                db_pool: number(&s["db_pool"], &variables),
                db_direct: number(&s["db_direct"], &variables),
                memory: number(&s["memory"], &variables) as u32,
            }
        })
        .collect()
}

fn render_label(label: &hcl::BlockLabel) -> String {
    match label {
        hcl::BlockLabel::String(s) => s.clone(),
        hcl::BlockLabel::Identifier(i) => i.to_string(),
    }
}

/// What each binary reads, from its own `Config`.
pub fn reads(binary: &str) -> EnvReads {
    match binary {
        "api" => api::ApiConfig::variables(),
        "image-processor" => image_processor::ProcessorConfig::variables(),
        "backup" => backup::BackupConfig::variables(),
        "retention" => retention::RetentionConfig::variables(),
        other => panic!("unknown function {other}"),
    }
}

/// Set by Lambda itself in every function's environment; Terraform may not set them.
fn lambda_provided(name: &str) -> bool {
    matches!(
        name,
        "AWS_REGION"
            | "AWS_DEFAULT_REGION"
            | "AWS_ACCESS_KEY_ID"
            | "AWS_SECRET_ACCESS_KEY"
            | "AWS_SESSION_TOKEN"
            | "_HANDLER"
            | "TZ"
    ) || name.starts_with("AWS_LAMBDA_")
}

#[test]
fn terraform_sets_exactly_what_each_function_reads() {
    let functions = functions();
    assert_eq!(
        functions.iter().map(|f| f.binary.as_str()).collect::<BTreeSet<_>>(),
        BTreeSet::from(["api", "backup", "image-processor", "retention"])
    );
    let mut problems = Vec::new();
    for f in &functions {
        let reads = reads(&f.binary);
        let set: BTreeSet<&str> = f.env.keys().map(String::as_str).collect();
        for name in &reads.required {
            if !set.contains(name.as_str()) && !lambda_provided(name) {
                problems.push(format!("{}: reads {name}, Terraform does not set it", f.binary));
            }
        }
        for group in &reads.one_of {
            let given = group.iter().filter(|n| set.contains(n.as_str())).count();
            if given != 1 {
                problems.push(format!(
                    "{}: Terraform must set exactly one of {group:?}, sets {given}",
                    f.binary
                ));
            }
        }
        let all = reads.all();
        for name in &set {
            if !all.contains(*name) {
                problems.push(format!(
                    "{}: Terraform sets {name}, the function never reads it",
                    f.binary
                ));
            }
            if lambda_provided(name) {
                problems.push(format!("{}: {name} is reserved by Lambda", f.binary));
            }
        }
        // Local-only settings: an emulator endpoint or a plaintext password has no place in AWS.
        for local_only in ["AWS_ENDPOINT_URL", "DATABASE_PASSWORD", "DATABASE_OWNER_PASSWORD"] {
            if set.contains(local_only) {
                problems.push(format!("{}: {local_only} must not be set in AWS", f.binary));
            }
        }
    }
    assert!(problems.is_empty(), "Terraform and the code disagree:\n{}", problems.join("\n"));
}

#[test]
fn the_checker_catches_a_renamed_variable() {
    // The same comparison as above, on a deliberately drifted map.
    let reads = reads("api");
    let mut env: BTreeSet<String> =
        functions().into_iter().find(|f| f.binary == "api").unwrap().env.into_keys().collect();
    env.remove("GALLERY_ORIGINALS_BUCKET");
    env.insert("GALLERY_ORIGINAL_BUCKET".into());
    assert!(reads.required.iter().any(|r| !env.contains(r)), "a missing variable is noticed");
    assert!(env.iter().any(|e| !reads.all().contains(e)), "an unused variable is noticed");
}

#[test]
fn the_functions_fit_the_database_connection_budget() {
    let defaults = numeric_defaults();
    let max = defaults["db_max_connections"];
    let headroom = defaults["db_connection_headroom"];
    let functions = functions();
    let demand: i64 = functions.iter().map(|f| f.reserved * (f.db_pool + f.db_direct)).sum();
    assert!(demand + headroom <= max, "reserved concurrency × connections = {demand}, + headroom {headroom} > max_connections {max}");
    for f in &functions {
        assert!(f.db_pool >= 1, "{}: a pool needs a connection", f.binary);
        assert_eq!(
            f.env["DATABASE_POOL_SIZE"],
            format!("tostring({})", f.db_pool),
            "{}: pool size reaches the function",
            f.binary
        );
    }
    // Terraform refuses a plan that breaks the budget, too.
    let text =
        std::fs::read_to_string(format!("{}/../infra/functions.tf", env!("CARGO_MANIFEST_DIR")))
            .unwrap();
    assert!(text.contains(
        "local.db_connection_demand + var.db_connection_headroom <= var.db_max_connections"
    ));
    let database =
        std::fs::read_to_string(format!("{}/../infra/database.tf", env!("CARGO_MANIFEST_DIR")))
            .unwrap();
    assert!(
        database.contains("\"max_connections\"") && database.contains("var.db_max_connections"),
        "the budget's limit is the database's setting"
    );
}

/// The edge function stands apart (outside the VPC, no database): its own
/// resource, held to the same rule.
#[test]
fn terraform_sets_exactly_what_the_edge_function_reads() {
    let body = infra("edge.tf");
    let lambda = body
        .blocks()
        .find(|b| {
            b.identifier() == "resource"
                && b.labels().len() == 2
                && render_label(&b.labels()[1]) == "edge"
                && render_label(&b.labels()[0]) == "aws_lambda_function"
        })
        .expect("aws_lambda_function.edge");
    let variables = lambda
        .body()
        .blocks()
        .find(|b| b.identifier() == "environment")
        .and_then(|b| {
            b.body().attributes().find(|a| a.key() == "variables").map(|a| object(a.expr()))
        })
        .expect("environment { variables = { … } }");
    let set: BTreeSet<String> = variables.keys().cloned().collect();
    let reads = edge::EdgeConfig::variables();
    let all = reads.all();
    for name in &reads.required {
        assert!(
            set.contains(name) || lambda_provided(name),
            "edge reads {name}; Terraform does not set it"
        );
    }
    for name in &set {
        assert!(all.contains(name), "Terraform sets {name}; edge never reads it");
        assert!(name != "AWS_ENDPOINT_URL", "no emulator endpoint in AWS");
    }
}

/// RDS retires minor versions and refuses to create instances on them, and
/// with automatic minor upgrades on a pinned minor makes the next plan try to
/// downgrade: the engine version is a major version, everywhere it is set.
#[test]
fn the_database_engine_is_pinned_to_a_major_version_only() {
    let variables = infra("variables.tf");
    let default = variables
        .blocks()
        .filter(|b| b.identifier() == "variable")
        .find(|b| matches!(b.labels().first(), Some(hcl::BlockLabel::String(s)) if s == "db_engine_version"))
        .and_then(|b| b.body().attributes().find(|a| a.key() == "default").map(|a| a.expr().clone()));
    let Some(Expression::String(version)) = default else {
        panic!("db_engine_version has no string default")
    };
    assert!(
        !version.is_empty() && version.bytes().all(|b| b.is_ascii_digit()),
        "db_engine_version = {version:?}: a major version only"
    );
    let database = infra("database.tf");
    let instance = database
        .blocks()
        .find(|b| {
            b.identifier() == "resource"
                && b.labels().iter().any(|l| l.as_str() == "aws_db_instance")
        })
        .unwrap();
    let engine = instance.body().attributes().find(|a| a.key() == "engine_version").unwrap();
    assert_eq!(render(engine.expr()).trim(), "var.db_engine_version");
    let upgrades =
        instance.body().attributes().find(|a| a.key() == "auto_minor_version_upgrade").unwrap();
    assert_eq!(render(upgrades.expr()).trim(), "true");
}
