//! One attempt: sign the body afresh, POST it with the protocol's headers, and turn
//! whatever happens into an attempt-log entry and an outcome.
//!
//! Requests go through hyper's pooled client directly: the protocol needs one POST with
//! prepared headers, and a general-purpose client's per-request work (URL to URI and
//! back, default headers merged into every request, redirect and proxy bookkeeping) was
//! a fifth of the delivery side's CPU time.

use std::error::Error as _;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use axum::body::Bytes;
use axum::http::header::{HeaderMap, HeaderName, HeaderValue, ACCEPT, CONTENT_TYPE, RETRY_AFTER, USER_AGENT};
use axum::http::{Method, Request, Response, StatusCode, Uri};
use hookrelay_core::delivery::{AttemptOutcome, DeliveryAttempt, ErrorKind, RESPONSE_BODY_KEPT, RETRY_AFTER_MAX};
use hookrelay_core::event::{delivery_body, Event};
use hookrelay_core::net::is_public;
use hookrelay_core::signing::SignatureKey;
use hookrelay_core::webhook::{ApiRelease, Webhook};
use hookrelay_core::webhook_settings::DeliveryFormat;
use hookrelay_core::Timestamp;
use hookrelay_store::ClaimedDelivery;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_rustls::{ConfigBuilderExt, HttpsConnector};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use url::Url;

use super::resolver::{BlockedAddress, DnsFailure, GuardedResolver};
use super::DeliveryConfig;

// The protocol's headers, named once (a name given as text is parsed on every request).
const EVENT_ID: HeaderName = HeaderName::from_static("monime-event-id");
const WEBHOOK_ID: HeaderName = HeaderName::from_static("monime-webhook-id");
const DELIVERY_ATTEMPT: HeaderName = HeaderName::from_static("monime-delivery-attempt");
const AGENT: &str = concat!("hookrelay/", env!("CARGO_PKG_VERSION"));

/// The HTTP client every attempt shares.
pub type Client =
    hyper_util::client::legacy::Client<TimedConnect<HttpsConnector<HttpConnector<GuardedResolver>>>, Full<Bytes>>;

/// The HTTP client every attempt shares: pooled connections over HTTP/1.1 (TCP
/// keepalive on, as a silently dropped pooled connection would otherwise hang until the
/// attempt timeout), TLS with the Mozilla roots, names resolved by the address guard,
/// setting up a connection bounded by the connect timeout. Nothing follows redirects and
/// nothing goes through a proxy (a proxy would bypass the guard). The attempt timeout is
/// not the client's: [`send`] puts one deadline over the request and the body, instead
/// of a second timer per request.
pub fn build_client(config: &DeliveryConfig) -> Client {
    let mut http = HttpConnector::new_with_resolver(GuardedResolver {
        allow_private: config.allow_private_targets,
    });
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_keepalive(Some(Duration::from_secs(15)));
    http.set_keepalive_interval(Some(Duration::from_secs(15)));
    http.set_keepalive_retries(Some(3));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports rustls's default protocol versions")
        .with_webpki_roots()
        .with_no_client_auth();
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    let https = HttpsConnector::from((http, tls));
    let connect = TimedConnect {
        inner: https,
        timeout: config.connect_timeout,
    };
    hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(60))
        .pool_timer(TokioTimer::new())
        .build(connect)
}

/// A connector whose whole set-up (name lookup, TCP, TLS handshake) is bounded by one
/// timeout; the HTTP connector's own bounds only each TCP connect.
#[derive(Clone, Debug)]
pub struct TimedConnect<C> {
    inner: C,
    timeout: Duration,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl<C> tower_service::Service<Uri> for TimedConnect<C>
where
    C: tower_service::Service<Uri>,
    C::Response: Send + 'static,
    C::Error: Into<BoxError>,
    C::Future: Send + 'static,
{
    type Response = C::Response;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<C::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let connecting = self.inner.call(uri);
        let timeout = self.timeout;
        Box::pin(async move {
            match tokio::time::timeout(timeout, connecting).await {
                Ok(connected) => connected.map_err(Into::into),
                Err(_) => Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "connecting timed out").into()),
            }
        })
    }
}

/// What an attempt did.
pub struct AttemptReport {
    pub entry: DeliveryAttempt,
    pub outcome: AttemptOutcome,
}

/// What every attempt to one webhook shares, made once for the webhook instead of once
/// per attempt: its URL parsed (and checked against the address rule), its signing key
/// opened, and its fixed headers as a header map: under fan-out a worker starts with
/// nearly every delivery, and preparing these per attempt was most of its own work.
pub struct Target {
    webhook: Arc<Webhook>,
    /// Why every attempt fails at once, when the stored URL, key or a header is unusable
    /// (or the URL names a blocked address).
    prepared: Result<Prepared, ErrorKind>,
}

struct Prepared {
    uri: Uri,
    key: SignatureKey,
    format: DeliveryFormat,
    /// `Content-Type`, `User-Agent`, `Accept`, `Monime-Webhook-Id` and the webhook's own
    /// headers.
    headers: HeaderMap,
}

impl Target {
    /// Prepares attempts to `webhook`.
    pub fn new(webhook: Arc<Webhook>, config: &DeliveryConfig) -> Self {
        let prepared = prepare(&webhook, config);
        Self { webhook, prepared }
    }

    /// Whether this target sends to `webhook` as it is: the same copy, or an equal one
    /// (a claim may carry a fresh copy of an unchanged webhook).
    pub fn serves(&self, webhook: &Arc<Webhook>) -> bool {
        Arc::ptr_eq(&self.webhook, webhook) || self.webhook == *webhook
    }
}

fn prepare(webhook: &Webhook, config: &DeliveryConfig) -> Result<Prepared, ErrorKind> {
    let url = Url::parse(&webhook.url).map_err(|_| ErrorKind::Request)?;
    if !config.allow_private_targets && names_blocked_ip(&url) {
        return Err(ErrorKind::BlockedAddress);
    }
    let uri: Uri = url.as_str().parse().map_err(|_| ErrorKind::Request)?;
    let Some(key) = webhook.verification.signature_key() else {
        tracing::error!(webhook = %webhook.id, "stored signing key is unusable");
        return Err(ErrorKind::Request);
    };
    let mut headers = HeaderMap::with_capacity(7 + webhook.headers.len());
    headers.append(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.append(USER_AGENT, HeaderValue::from_static(AGENT));
    headers.append(ACCEPT, HeaderValue::from_static("*/*"));
    let id = HeaderValue::from_str(webhook.id.as_str()).map_err(|_| ErrorKind::Request)?;
    headers.append(WEBHOOK_ID, id);
    for (name, value) in &webhook.headers {
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| ErrorKind::Request)?;
        let value = HeaderValue::from_str(value).map_err(|_| ErrorKind::Request)?;
        headers.append(name, value);
    }
    let format = webhook.settings.format;
    Ok(Prepared {
        uri,
        key,
        format,
        headers,
    })
}

/// The body a delivery sends, made once per event and API release and shared by the
/// deliveries of a fan-out (the signature stays per webhook).
#[derive(Clone)]
pub struct Body {
    release: ApiRelease,
    bytes: Bytes,
}

impl Body {
    /// The body of `event` for webhooks on `release`.
    pub fn new(release: ApiRelease, event: &Event) -> Self {
        Self {
            release,
            bytes: Bytes::from(delivery_body(release, event)),
        }
    }

    /// These bytes, if made for `release`; else the body made again for it (a queued
    /// delivery's webhook may have changed its release since the claim).
    fn for_release(&self, release: ApiRelease, event: &Event) -> Bytes {
        if self.release == release {
            self.bytes.clone()
        } else {
            Self::new(release, event).bytes
        }
    }
}

/// Attempts a claimed delivery once, through `target` (which serves its webhook), with
/// `body` made for its event.
pub async fn attempt(
    client: &Client,
    target: &Target,
    claimed: &ClaimedDelivery,
    body: &Body,
    config: &DeliveryConfig,
) -> AttemptReport {
    let start_time = Timestamp::now();
    let started = Instant::now();
    let result = match &target.prepared {
        Ok(prepared) => {
            let body = body.for_release(claimed.webhook.api_release, &claimed.event);
            send(client, prepared, claimed, body, config).await
        }
        Err(kind) => Err(*kind),
    };
    let duration_ms = u32::try_from(started.elapsed().as_millis()).unwrap_or(u32::MAX);
    let entry = |status_code, error_kind, response_body| DeliveryAttempt {
        attempt: claimed.attempt,
        start_time,
        duration_ms,
        status_code,
        error_kind,
        response_body,
    };
    match result {
        Ok((status, retry_after, body)) => {
            let outcome = if status.is_success() {
                AttemptOutcome::Succeeded
            } else if status == StatusCode::GONE {
                AttemptOutcome::Gone
            } else {
                AttemptOutcome::Failed { retry_after }
            };
            let kind = (!status.is_success()).then_some(ErrorKind::HttpStatus);
            AttemptReport {
                entry: entry(Some(status.as_u16()), kind, Some(body)),
                outcome,
            }
        }
        Err(kind) => AttemptReport {
            entry: entry(None, Some(kind), None),
            outcome: AttemptOutcome::Failed { retry_after: None },
        },
    }
}

/// Sends the request; on an answer, returns its status, the `Retry-After` delay it
/// asked for (429 and 503 only) and the start of its body.
async fn send(
    client: &Client,
    target: &Prepared,
    claimed: &ClaimedDelivery,
    body: Bytes,
    config: &DeliveryConfig,
) -> Result<(StatusCode, Option<Duration>, String), ErrorKind> {
    let mut headers = target.headers.clone();
    let event = claimed.event.id.as_str();
    super::signature::append(&mut headers, &target.key, target.format, event, unix_now(), &body)?;
    let event_id = HeaderValue::from_str(claimed.event.id.as_str()).map_err(|_| ErrorKind::Request)?;
    headers.append(EVENT_ID, event_id);
    headers.append(DELIVERY_ATTEMPT, HeaderValue::from(claimed.attempt));
    let mut request = Request::new(Full::new(body));
    *request.method_mut() = Method::POST;
    *request.uri_mut() = target.uri.clone();
    *request.headers_mut() = headers;
    // A timeout past what an instant can hold (a configured "forever") waits a century.
    let now = tokio::time::Instant::now();
    let deadline = (now.checked_add(config.attempt_timeout))
        .unwrap_or_else(|| now + std::time::Duration::from_secs(100 * 365 * 24 * 3600));
    let response = match tokio::time::timeout_at(deadline, client.request(request)).await {
        Err(_) => return Err(ErrorKind::Timeout),
        Ok(Err(error)) => return Err(classify(&error)),
        Ok(Ok(response)) => response,
    };
    let status = response.status();
    let retry_after = match status {
        StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => retry_after(&response),
        _ => None,
    };
    // The status decides the outcome; the body is only kept for the log, so a slow body
    // does not turn a received 2xx into a timeout.
    let body = tokio::time::timeout_at(deadline, body_start(response))
        .await
        .unwrap_or_default();
    Ok((status, retry_after, body))
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Whether the URL's host is a literal IP deliveries may not reach (literal IPs are
/// never handed to the resolver, so the resolver cannot refuse them).
fn names_blocked_ip(url: &Url) -> bool {
    let ip = match url.host() {
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip),
        _ => return false,
    };
    !is_public(ip)
}

/// The first [`RESPONSE_BODY_KEPT`] bytes of the body, as text.
async fn body_start(response: Response<Incoming>) -> String {
    let mut body = response.into_body();
    let mut kept = Vec::new();
    while kept.len() < RESPONSE_BODY_KEPT {
        match body.frame().await {
            Some(Ok(frame)) => {
                if let Some(chunk) = frame.data_ref() {
                    let room = RESPONSE_BODY_KEPT - kept.len();
                    kept.extend_from_slice(&chunk[..chunk.len().min(room)]);
                }
            }
            Some(Err(_)) | None => break,
        }
    }
    String::from_utf8_lossy(&kept).into_owned()
}

/// `Retry-After` as seconds or an HTTP date, capped at 24 h.
fn retry_after(response: &Response<Incoming>) -> Option<Duration> {
    let value = response.headers().get(RETRY_AFTER)?.to_str().ok()?.trim();
    let delay = match value.parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds),
        Err(_) => httpdate::parse_http_date(value)
            .ok()?
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    };
    Some(delay.min(RETRY_AFTER_MAX))
}

/// Names what broke a request that got no answer.
fn classify(error: &hyper_util::client::legacy::Error) -> ErrorKind {
    let mut source = error.source();
    let (mut tls, mut timeout) = (false, false);
    while let Some(cause) = source {
        if cause.is::<BlockedAddress>() {
            return ErrorKind::BlockedAddress;
        }
        if cause.is::<DnsFailure>() {
            return ErrorKind::Dns;
        }
        timeout |= cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut);
        let text = cause.to_string().to_ascii_lowercase();
        tls |= text.contains("certificate") || text.contains("tls") || text.contains("handshake");
        source = cause.source();
    }
    if timeout {
        ErrorKind::Timeout
    } else if tls {
        ErrorKind::Tls
    } else if error.is_connect() {
        ErrorKind::Connect
    } else {
        ErrorKind::Request
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use hookrelay_core::alert::AlertPolicy;
    use hookrelay_core::delivery::{ErrorKind, RetrySchedule};

    use super::*;

    #[test]
    fn a_shared_body_is_made_again_for_another_release() {
        let draft = hookrelay_core::event::EventDraft::parse(
            &serde_json::json!({"name": "payment.completed", "object": {"id": "p", "type": "payment"}, "data": {}}),
            &hookrelay_core::EventCatalog::default(),
        )
        .unwrap();
        let event = draft.into_event(hookrelay_core::SpaceId::generate(), Timestamp::now());
        let body = Body::new(ApiRelease::Caph, &event);
        for release in [ApiRelease::Caph, ApiRelease::Siriusb] {
            assert_eq!(
                body.for_release(release, &event),
                delivery_body(release, &event),
                "{release:?}"
            );
        }
    }

    #[test]
    fn literal_private_hosts_are_blocked() {
        let blocked = |url: &str| names_blocked_ip(&Url::parse(url).unwrap());
        assert!(blocked("http://127.0.0.1:8080/x"));
        assert!(blocked("http://[::ffff:10.0.0.1]/x"));
        assert!(!blocked("https://93.184.216.34/x"));
        assert!(!blocked("https://example.com/x"));
    }

    /// What a request to `url` fails with, through the delivery client.
    async fn failure(url: &str, allow_private: bool) -> ErrorKind {
        let config = DeliveryConfig {
            retry_schedule: RetrySchedule::default(),
            attempt_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_millis(300),
            max_in_flight_per_webhook: 1,
            max_in_flight: 1,
            allow_private_targets: allow_private,
            shutdown_grace: Duration::from_secs(1),
            idle_poll: Duration::from_secs(1),
            alert_policy: AlertPolicy::default(),
            liveness: hookrelay_core::node::Liveness::default(),
        };
        let mut request = Request::new(Full::new(Bytes::from_static(b"{}")));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = url.parse().unwrap();
        let error = build_client(&config)
            .request(request)
            .await
            .expect_err("the request fails");
        classify(&error)
    }

    #[tokio::test]
    async fn failed_requests_are_named_by_cause() {
        // A port nothing listens on: the connection is refused.
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        assert_eq!(
            failure(&format!("http://127.0.0.1:{port}/"), true).await,
            ErrorKind::Connect
        );
        // A name that resolves only to loopback, where private targets are not allowed.
        assert_eq!(
            failure(&format!("http://localhost:{port}/"), false).await,
            ErrorKind::BlockedAddress
        );
        // A name that cannot resolve (`.invalid` never does).
        assert_eq!(failure("http://no-such-host.invalid/", true).await, ErrorKind::Dns);
        // A listener that accepts and never answers the TLS handshake: setting up the
        // connection, not only its TCP connect, is bounded by the connect timeout.
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = silent.local_addr().unwrap().port();
        let held = tokio::spawn(async move {
            let (stream, _) = silent.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(10)).await;
            drop(stream);
        });
        let started = std::time::Instant::now();
        assert_eq!(
            failure(&format!("https://127.0.0.1:{port}/"), true).await,
            ErrorKind::Timeout
        );
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "took {:?}",
            started.elapsed()
        );
        held.abort();
    }
}
