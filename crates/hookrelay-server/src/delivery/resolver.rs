//! Name resolution that refuses non-public addresses. Checking the addresses a name
//! resolves to, and connecting only to those, closes the DNS-rebinding gap that
//! checking the URL alone would leave.

use std::error::Error;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use hookrelay_core::net::is_public;
use hyper_util::client::legacy::connect::dns::Name;

/// Every address the name resolved to is one deliveries may not reach.
#[derive(Debug, thiserror::Error)]
#[error("{0} resolves only to private, loopback or otherwise non-public addresses")]
pub struct BlockedAddress(pub String);

/// The name did not resolve.
#[derive(Debug, thiserror::Error)]
#[error("cannot resolve {host}: {reason}")]
pub struct DnsFailure {
    host: String,
    reason: String,
}

/// Resolves with the system resolver, keeping only addresses deliveries may reach.
#[derive(Clone, Copy, Debug)]
pub struct GuardedResolver {
    pub allow_private: bool,
}

type Resolving = Pin<Box<dyn Future<Output = Result<std::vec::IntoIter<SocketAddr>, BoxError>> + Send>>;
type BoxError = Box<dyn Error + Send + Sync>;

impl tower_service::Service<Name> for GuardedResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = BoxError;
    type Future = Resolving;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|e| {
                    boxed(DnsFailure {
                        host: host.clone(),
                        reason: e.to_string(),
                    })
                })?
                .collect();
            if resolved.is_empty() {
                return Err(boxed(DnsFailure {
                    host,
                    reason: "no addresses".into(),
                }));
            }
            let allowed: Vec<SocketAddr> = resolved
                .into_iter()
                .filter(|a| allow_private || is_public(a.ip()))
                .collect();
            if allowed.is_empty() {
                return Err(boxed(BlockedAddress(host)));
            }
            Ok(allowed.into_iter())
        })
    }
}

fn boxed(error: impl Error + Send + Sync + 'static) -> BoxError {
    Box::new(error)
}
