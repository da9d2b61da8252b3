//! What the server tells operators besides its logs: Prometheus metrics.

pub mod metrics;
