//! OpenTelemetry trace export (OTLP over HTTP), on when `OTEL_EXPORTER_OTLP_ENDPOINT`
//! or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set; the other standard `OTEL_*`
//! variables (`OTEL_SERVICE_NAME`, `OTEL_EXPORTER_OTLP_PROTOCOL`, `…_HEADERS`,
//! `OTEL_BSP_*`) configure it as for any OpenTelemetry SDK.
//!
//! One trace runs from a publish to each of its attempts: the publish span's context is
//! stored with the event as a W3C `traceparent`, and each attempt span, made later and
//! perhaps on another node, is its child. Only this module's spans are exported; the
//! logs stay as they are.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hookrelay_core::delivery::ErrorKind;
use hookrelay_core::event::Event;
use hookrelay_store::ClaimedDelivery;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::Layer;

/// The target of the spans exported: the layer takes these and nothing else.
pub const TARGET: &str = "hookrelay::trace";

/// Whether spans are exported, so the publish path stores a trace context only then.
static ENABLED: AtomicBool = AtomicBool::new(false);

const ENDPOINT_VARIABLES: [&str; 2] = ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"];
const PROTOCOL_VARIABLES: [&str; 2] = ["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"];
const TIMEOUT_VARIABLES: [&str; 2] = ["OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT"];
/// The OTLP exporter's default timeout.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The trace pipeline, while it runs.
pub struct Traces {
    provider: SdkTracerProvider,
}

/// Why trace export could not start.
#[derive(Debug, thiserror::Error)]
#[error("OpenTelemetry trace export: {0}")]
pub struct TracesError(String);

impl Traces {
    /// The pipeline the `OTEL_*` variables ask for; `None` when no endpoint is set.
    /// Needs a Tokio runtime (the exporter's HTTP client runs on it).
    pub fn from_env() -> Result<Option<Self>, TracesError> {
        if !ENDPOINT_VARIABLES.iter().any(|name| std::env::var_os(name).is_some()) {
            return Ok(None);
        }
        let mut exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_http_client(RuntimeClient::new(timeout_from_env()?));
        // The specification's default is protobuf; the crate's, with JSON compiled in, is JSON.
        if !PROTOCOL_VARIABLES.iter().any(|name| std::env::var_os(name).is_some()) {
            exporter = exporter.with_protocol(Protocol::HttpBinary);
        }
        let exporter = exporter.build().map_err(|e| TracesError(e.to_string()))?;
        let mut resource = Resource::builder();
        let named_in_attributes = std::env::var("OTEL_RESOURCE_ATTRIBUTES")
            .is_ok_and(|attributes| attributes.split(',').any(|a| a.trim().starts_with("service.name=")));
        if std::env::var_os("OTEL_SERVICE_NAME").is_none() && !named_in_attributes {
            resource = resource.with_service_name("hookrelay");
        }
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource.build())
            .build();
        Ok(Some(Self { provider }))
    }

    /// The layer that exports this module's spans.
    pub fn layer<S>(&self) -> impl Layer<S>
    where
        S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    {
        ENABLED.store(true, Ordering::Relaxed);
        tracing_opentelemetry::layer()
            .with_tracer(self.provider.tracer("hookrelay"))
            .with_filter(Targets::new().with_target(TARGET, tracing::Level::INFO))
    }

    /// Exports the spans still buffered and stops.
    pub async fn shutdown(self) {
        ENABLED.store(false, Ordering::Relaxed);
        let provider = self.provider;
        let done = tokio::task::spawn_blocking(move || provider.shutdown()).await;
        if let Ok(Err(error)) = done {
            tracing::warn!(%error, "flushing the last spans failed");
        }
    }
}

fn timeout_from_env() -> Result<Duration, TracesError> {
    let Some((name, value)) = TIMEOUT_VARIABLES
        .iter()
        .find_map(|name| std::env::var(name).ok().map(|value| (name, value)))
    else {
        return Ok(DEFAULT_TIMEOUT);
    };
    let millis: u64 = value
        .trim()
        .parse()
        .map_err(|_| TracesError(format!("{name} must be a whole number of milliseconds, not {value:?}")))?;
    Ok(Duration::from_millis(millis))
}

/// Whether spans are exported.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// The span of a publish, and the `traceparent` to store with its event (none when
/// traces are off).
pub fn publish_span(event: &Event) -> (Span, Option<String>) {
    if !enabled() {
        return (Span::none(), None);
    }
    let span = tracing::info_span!(
        target: TARGET,
        "publish",
        otel.kind = "server",
        hookrelay.event_id = %event.id,
        hookrelay.event_name = %event.name,
    );
    let mut carrier = HashMap::new();
    TraceContextPropagator::new().inject_context(&span.context(), &mut carrier);
    (span, carrier.remove("traceparent"))
}

/// The span of an attempt, a child of its event's publish when the event carries its
/// trace context. `http.response.status_code` is recorded when the answer comes.
pub fn attempt_span(delivery: &ClaimedDelivery) -> Span {
    if !enabled() {
        return Span::none();
    }
    let span = tracing::info_span!(
        target: TARGET,
        "attempt",
        otel.kind = "client",
        hookrelay.event_id = %delivery.event.id,
        hookrelay.delivery_id = %delivery.delivery_id,
        hookrelay.webhook_id = %delivery.webhook.id,
        hookrelay.attempt = delivery.attempt,
        http.response.status_code = tracing::field::Empty,
        error.type = tracing::field::Empty,
    );
    if let Some(trace_parent) = &delivery.event.trace_parent {
        let carrier = HashMap::from([("traceparent".to_owned(), trace_parent.clone())]);
        let parent = TraceContextPropagator::new().extract(&carrier);
        if let Err(error) = span.set_parent(parent) {
            tracing::debug!(%error, "an attempt span could not join its publish's trace");
        }
    }
    span
}

/// Records how an attempt ended on its span.
pub fn attempt_answered(span: &Span, status_code: Option<u16>, error_kind: Option<ErrorKind>) {
    if let Some(status) = status_code {
        span.record("http.response.status_code", status);
    }
    if let Some(kind) = error_kind {
        span.record("error.type", kind.as_str());
    }
}

/// The exporter's HTTP client: hyper with rustls (public roots), run on the Tokio
/// runtime that built it, since the SDK exports from a thread of its own.
#[derive(Debug)]
struct RuntimeClient {
    runtime: tokio::runtime::Handle,
    client: opentelemetry_http::hyper::HyperClient<
        hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    >,
}

impl RuntimeClient {
    fn new(timeout: Duration) -> Self {
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .build();
        Self {
            runtime: tokio::runtime::Handle::current(),
            client: opentelemetry_http::hyper::HyperClient::new(connector, timeout, None),
        }
    }
}

#[async_trait::async_trait]
impl HttpClient for RuntimeClient {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let client = self.client.clone();
        self.runtime
            .spawn(async move { client.send_bytes(request).await })
            .await
            .map_err(|e| Box::new(e) as HttpError)?
    }
}
