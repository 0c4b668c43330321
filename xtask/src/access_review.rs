//! `cargo xtask access-review PLAN_JSON`: the regular access review.
//!
//! Renders every IAM role's effective permissions from a Terraform plan
//! (`terraform show -json`) as a table (role -> actions -> resources ->
//! conditions) and fails on wildcard actions or resources that are not
//! justified in `infra/access-review-allowlist.json`, on managed policy
//! attachments, and on statements it cannot review (NotAction, NotResource).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde_json::Value;

/// One justified wildcard: `action` may be used on `resource` by `roles`
/// (role names, or `["*"]` for any role).
struct Allowed {
    action: String,
    resource: String,
    roles: Vec<String>,
}

/// One reviewed grant.
struct Row {
    role: String,
    trusted_by: String,
    actions: Vec<String>,
    resources: Vec<String>,
    condition: String,
}

/// Reviews the plan at `plan_json`, using the allowlist under `root/infra`.
/// Prints the table; returns an error listing every finding.
pub fn access_review(root: &Path, plan_json: &Path) -> Result<()> {
    let plan: Value = serde_json::from_str(
        &std::fs::read_to_string(plan_json)
            .with_context(|| format!("reading plan {}", plan_json.display()))?,
    )
    .context("plan is not JSON (use `terraform show -json PLAN`)")?;
    let allow = load_allowlist(&root.join("infra").join("access-review-allowlist.json"))?;
    let (rows, mut findings) = review(&plan)?;
    print!("{}", render(&rows));
    for row in &rows {
        for action in &row.actions {
            for resource in &row.resources {
                let wild_action = action.contains('*');
                let wild_resource = is_wildcard_resource(resource);
                if !(wild_action || wild_resource) {
                    continue;
                }
                let justified = allow.iter().any(|a| {
                    a.action == *action
                        && a.resource == *resource
                        && a.roles.iter().any(|r| r == "*" || *r == row.role)
                });
                if !justified {
                    findings.push(format!(
                        "{}: {action} on {resource} is a wildcard without a justification",
                        row.role
                    ));
                }
            }
        }
    }
    if findings.is_empty() {
        println!(
            "access review: {} grants over {} roles reviewed, 0 findings",
            rows.len(),
            rows.iter().map(|r| &r.role).collect::<std::collections::BTreeSet<_>>().len()
        );
        Ok(())
    } else {
        for f in &findings {
            eprintln!("access review finding: {f}");
        }
        bail!("access review: {} finding(s)", findings.len())
    }
}

/// `*`, or an ARN whose resource part is only a wildcard (`arn:aws:s3:::*`).
fn is_wildcard_resource(resource: &str) -> bool {
    if resource == "*" {
        return true;
    }
    let parts: Vec<&str> = resource.splitn(6, ':').collect();
    parts.len() == 6 && parts[5] == "*"
}

fn load_allowlist(path: &Path) -> Result<Vec<Allowed>> {
    let v: Value = serde_json::from_str(
        &std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
    )
    .with_context(|| format!("{} is not JSON", path.display()))?;
    let entries = v
        .get("allowed")
        .and_then(Value::as_array)
        .with_context(|| format!("{}: expected an \"allowed\" array", path.display()))?;
    let mut out = Vec::new();
    for e in entries {
        let s = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
        let reason = s("reason");
        if reason.trim().len() < 20 {
            bail!("{}: every allowed wildcard needs a written reason: {e}", path.display());
        }
        let roles = e
            .get("roles")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
            .unwrap_or_else(|| vec!["*".to_string()]);
        out.push(Allowed { action: s("action"), resource: s("resource"), roles });
    }
    Ok(out)
}

/// Every resource of a module tree, by address.
fn collect(module: &Value, out: &mut BTreeMap<String, Value>) {
    if let Some(resources) = module.get("resources").and_then(Value::as_array) {
        for r in resources {
            if r.get("mode").and_then(Value::as_str) == Some("managed") {
                if let Some(addr) = r.get("address").and_then(Value::as_str) {
                    out.insert(addr.to_string(), r.clone());
                }
            }
        }
    }
    if let Some(children) = module.get("child_modules").and_then(Value::as_array) {
        for c in children {
            collect(c, out);
        }
    }
}

fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).map(str::to_string).collect(),
        _ => Vec::new(),
    }
}

/// An attribute from the planned values, or from the prior state when the
/// plan only knows it after apply (a policy document re-read at apply time).
fn attr<'a>(planned: &'a Value, prior: Option<&'a Value>, key: &str) -> Option<&'a Value> {
    planned.get("values").and_then(|v| v.get(key)).filter(|v| !v.is_null()).or_else(|| {
        prior.and_then(|p| p.get("values")).and_then(|v| v.get(key)).filter(|v| !v.is_null())
    })
}

fn review(plan: &Value) -> Result<(Vec<Row>, Vec<String>)> {
    let mut planned = BTreeMap::new();
    let mut prior = BTreeMap::new();
    if let Some(root) = plan.pointer("/planned_values/root_module") {
        collect(root, &mut planned);
    } else if let Some(root) = plan.pointer("/values/root_module") {
        // `terraform show -json` of a state works too.
        collect(root, &mut planned);
    }
    if let Some(root) = plan.pointer("/prior_state/values/root_module") {
        collect(root, &mut prior);
    }
    if planned.is_empty() {
        bail!("the plan has no resources");
    }

    let mut findings = Vec::new();
    // Role name (or unknown-name placeholder by address) -> trusted principals.
    let mut trust: BTreeMap<String, String> = BTreeMap::new();
    let mut role_by_address: BTreeMap<String, String> = BTreeMap::new();
    for (addr, r) in &planned {
        if r.get("type").and_then(Value::as_str) != Some("aws_iam_role") {
            continue;
        }
        let p = prior.get(addr);
        let name = attr(r, p, "name").and_then(Value::as_str).unwrap_or(addr).to_string();
        let principals = attr(r, p, "assume_role_policy")
            .and_then(Value::as_str)
            .and_then(|s| serde_json::from_str::<Value>(s).ok())
            .map(|doc| {
                statements(&doc)
                    .iter()
                    .flat_map(|s| {
                        s.get("Principal")
                            .and_then(Value::as_object)
                            .map(|o| o.values().flat_map(|v| strings(Some(v))).collect::<Vec<_>>())
                            .unwrap_or_default()
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_else(|| "(unknown)".to_string());
        role_by_address.insert(addr.clone(), name.clone());
        trust.insert(name, principals);
    }

    let mut rows = Vec::new();
    for (addr, r) in &planned {
        let p = prior.get(addr);
        match r.get("type").and_then(Value::as_str) {
            Some("aws_iam_role_policy") => {
                let role = attr(r, p, "role")
                    .and_then(Value::as_str)
                    .unwrap_or("(unknown role)")
                    .to_string();
                let Some(doc) = attr(r, p, "policy").and_then(Value::as_str) else {
                    findings.push(format!("{addr}: policy is only known after apply; review a plan of applied infrastructure"));
                    continue;
                };
                let doc: Value = serde_json::from_str(doc)
                    .with_context(|| format!("{addr}: policy is not JSON"))?;
                for s in statements(&doc) {
                    if s.get("Effect").and_then(Value::as_str) != Some("Allow") {
                        continue;
                    }
                    if s.get("NotAction").is_some() || s.get("NotResource").is_some() {
                        findings.push(format!("{addr}: NotAction/NotResource cannot be reviewed"));
                        continue;
                    }
                    let mut actions = strings(s.get("Action"));
                    actions.sort();
                    let mut resources = strings(s.get("Resource"));
                    resources.sort();
                    let condition = s
                        .get("Condition")
                        .and_then(Value::as_object)
                        .map(|ops| {
                            ops.iter()
                                .flat_map(|(op, kv)| {
                                    kv.as_object()
                                        .map(|o| {
                                            o.iter()
                                                .map(|(k, v)| {
                                                    format!(
                                                        "{op} {k}={}",
                                                        strings(Some(v)).join("|")
                                                    )
                                                })
                                                .collect::<Vec<_>>()
                                        })
                                        .unwrap_or_default()
                                })
                                .collect::<Vec<_>>()
                                .join("; ")
                        })
                        .unwrap_or_default();
                    rows.push(Row {
                        trusted_by: trust.get(&role).cloned().unwrap_or_default(),
                        role: role.clone(),
                        actions,
                        resources,
                        condition,
                    });
                }
            }
            Some("aws_iam_role_policy_attachment")
            | Some("aws_iam_role_policy_attachments_exclusive") => {
                findings.push(format!("{addr}: managed policy attachments are not allowed; write a scoped inline policy"));
            }
            Some("aws_iam_policy") | Some("aws_iam_user_policy") | Some("aws_iam_group_policy") => {
                findings.push(format!("{addr}: only role inline policies are expected"));
            }
            _ => {}
        }
    }
    for name in role_by_address.values() {
        if !rows.iter().any(|r| &r.role == name) {
            rows.push(Row {
                role: name.clone(),
                trusted_by: trust.get(name).cloned().unwrap_or_default(),
                actions: vec!["(none)".to_string()],
                resources: Vec::new(),
                condition: String::new(),
            });
        }
    }
    rows.sort_by(|a, b| a.role.cmp(&b.role));
    Ok((rows, findings))
}

fn statements(doc: &Value) -> Vec<Value> {
    match doc.get("Statement") {
        Some(Value::Array(a)) => a.clone(),
        Some(v @ Value::Object(_)) => vec![v.clone()],
        _ => Vec::new(),
    }
}

fn render(rows: &[Row]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "| role | trusted by | actions | resources | conditions |");
    let _ = writeln!(out, "| --- | --- | --- | --- | --- |");
    let mut last = "";
    for r in rows {
        let (role, trusted) =
            if r.role == last { ("", "") } else { (r.role.as_str(), r.trusted_by.as_str()) };
        last = &r.role;
        let _ = writeln!(
            out,
            "| {role} | {trusted} | {} | {} | {} |",
            r.actions.join("<br>"),
            r.resources.join("<br>"),
            r.condition
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(policy: &str) -> Value {
        serde_json::json!({
            "planned_values": {"root_module": {"resources": [
                {"address": "aws_iam_role.r", "mode": "managed", "type": "aws_iam_role",
                 "values": {"name": "gallery-api", "assume_role_policy":
                    "{\"Statement\":[{\"Effect\":\"Allow\",\"Principal\":{\"Service\":\"lambda.amazonaws.com\"},\"Action\":\"sts:AssumeRole\"}]}"}},
                {"address": "aws_iam_role_policy.p", "mode": "managed", "type": "aws_iam_role_policy",
                 "values": {"role": "gallery-api", "name": "p", "policy": policy}}
            ]}}
        })
    }

    #[test]
    fn renders_grants_and_flags_wildcards() {
        let p = plan(
            r#"{"Statement":[{"Effect":"Allow","Action":["s3:PutObject"],"Resource":"arn:aws:s3:::b/*"},{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#,
        );
        let (rows, findings) = review(&p).expect("review");
        assert!(findings.is_empty());
        assert_eq!(rows.len(), 2);
        let table = render(&rows);
        assert!(table.contains("gallery-api"));
        assert!(table.contains("lambda.amazonaws.com"));
        assert!(is_wildcard_resource("*"));
        assert!(is_wildcard_resource("arn:aws:s3:::*"));
        assert!(!is_wildcard_resource("arn:aws:s3:::b/*"));
    }

    #[test]
    fn unknown_policy_is_a_finding() {
        let mut p = plan("x");
        p["planned_values"]["root_module"]["resources"][1]["values"]
            .as_object_mut()
            .expect("object")
            .remove("policy");
        let (_, findings) = review(&p).expect("review");
        assert_eq!(findings.len(), 1);
    }
}
