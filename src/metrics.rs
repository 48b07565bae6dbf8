//! Prometheus metrics: the recorder (installed once per process) and the names we record, in one
//! place so labels stay few and bounded (route templates, not paths; channel ids, model ids from
//! the catalog, statuses).
//!
//! - `llmage_http_requests_total{route,method,status}`, `llmage_http_request_duration_seconds{route,method}`
//! - `llmage_upstream_calls_total{channel,outcome}` (chat calls by channel: ok, failed, rejected, client_closed, …)
//! - `llmage_chat_tokens_total{model,kind}` and `llmage_credit_units_charged_total{kind}` (1/10,000 credit)
//! - `llmage_ledger_operations_total{op}` (reserve, settle, release, refused)
//! - `llmage_credit_lease_events_total{event}` (chat credit leases: claim, end)
//! - `llmage_task_steps_total{vendor,step}` and `llmage_tasks{status}` (all processes, sampled)
//! - `llmage_rate_limited_total{limit}`

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Latency buckets (seconds): sub-millisecond gateway work up to long streams.
const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0, 300.0,
];

/// Install the process-wide recorder (first call wins) and return the handle that renders it.
pub fn install() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), BUCKETS)
                .ok()?;
            match builder.install_recorder() {
                Ok(handle) => Some(handle),
                Err(e) => {
                    tracing::warn!(error = %e, "metrics recorder not installed");
                    None
                }
            }
        })
        .clone()
}

/// The Prometheus text exposition of everything recorded.
pub fn render() -> String {
    HANDLE
        .get()
        .and_then(|h| h.as_ref())
        .map(PrometheusHandle::render)
        .unwrap_or_default()
}
