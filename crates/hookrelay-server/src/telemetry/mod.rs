//! What the server tells operators besides its logs: Prometheus metrics, and
//! OpenTelemetry traces when the `OTEL_*` variables ask for them.

pub mod metrics;
pub mod traces;
