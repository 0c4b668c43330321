//! Logging and metrics.
//!
//! Logs are JSON lines; the Lambda runtime wraps each invocation in a span that
//! carries `requestId`, and the formatter copies the current span onto every line.
//! Metrics are CloudWatch embedded-metric-format lines, so alarms need no client.

use tracing_subscriber::{fmt, EnvFilter};

/// Namespace of every metric the gallery emits; alarms in `infra/` use it.
pub const METRIC_NAMESPACE: &str = "CopperGallery";

/// Installs the JSON subscriber; the level comes from `RUST_LOG` (default `info`).
/// Safe to call more than once (tests do): later calls are ignored.
pub fn init() {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,refinery_core=warn"));
    let _ = fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(true)
        .with_span_list(false)
        .with_target(true)
        // CloudWatch stamps each line itself; ANSI escapes would garble it.
        .with_ansi(false)
        .flatten_event(true)
        .try_init();
}

/// One embedded-metric-format line for a count metric with a `Function` dimension.
pub fn metric_line(function: &str, name: &str, value: f64, timestamp_ms: i64) -> String {
    metric_line_with_unit(function, name, value, "Count", timestamp_ms)
}

pub fn metric_line_with_unit(
    function: &str,
    name: &str,
    value: f64,
    unit: &str,
    timestamp_ms: i64,
) -> String {
    serde_json::json!({
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": METRIC_NAMESPACE,
                "Dimensions": [["Function"]],
                "Metrics": [{ "Name": name, "Unit": unit }],
            }],
        },
        "Function": function,
        name: value,
    })
    .to_string()
}

/// Emits a count metric on stdout, where the Lambda log agent turns it into a metric.
/// A measurement (bytes, seconds) as an embedded-format metric.
pub fn measure(function: &str, name: &str, value: f64, unit: &str) {
    println!(
        "{}",
        metric_line_with_unit(function, name, value, unit, chrono::Utc::now().timestamp_millis())
    );
}

pub fn count(function: &str, name: &str, value: f64) {
    println!("{}", metric_line(function, name, value, chrono::Utc::now().timestamp_millis()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_line_is_embedded_metric_format() {
        let line = metric_line("backup", "BackupSucceeded", 1.0, 1_700_000_000_000);
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["_aws"]["CloudWatchMetrics"][0]["Namespace"], METRIC_NAMESPACE);
        assert_eq!(v["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"], "BackupSucceeded");
        assert_eq!(v["BackupSucceeded"], 1.0);
        assert_eq!(v["Function"], "backup");
    }
}
