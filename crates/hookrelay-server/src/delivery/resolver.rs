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
            reachable(host, resolved, allow_private).map(Vec::into_iter)
        })
    }
}

/// The addresses `host` resolved to that deliveries may reach, in the resolver's order;
/// an error if it resolved to none, or only to refused ones.
fn reachable(host: String, resolved: Vec<SocketAddr>, allow_private: bool) -> Result<Vec<SocketAddr>, BoxError> {
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
    Ok(allowed)
}

fn boxed(error: impl Error + Send + Sync + 'static) -> BoxError {
    Box::new(error)
}

#[cfg(test)]
mod tests {
    use tower_service::Service;

    use super::*;

    fn addrs(ips: &[&str]) -> Vec<SocketAddr> {
        ips.iter().map(|ip| SocketAddr::new(ip.parse().unwrap(), 443)).collect()
    }

    fn is_blocked(result: &Result<Vec<SocketAddr>, BoxError>) -> bool {
        result.as_ref().is_err_and(|e| e.is::<BlockedAddress>())
    }

    #[test]
    fn a_name_resolving_only_to_special_purpose_addresses_is_blocked() {
        for resolved in [
            addrs(&["192.0.0.8"]),
            addrs(&["64:ff9b::a00:1"]),
            addrs(&[
                "192.0.0.8",
                "198.51.100.7",
                "2001:db8::1",
                "100::1",
                "::ffff:192.168.0.1",
            ]),
        ] {
            let result = reachable("hooks.example".into(), resolved.clone(), false);
            assert!(is_blocked(&result), "{resolved:?}: {result:?}");
            let allowed = reachable("hooks.example".into(), resolved.clone(), true).unwrap();
            assert_eq!(allowed, resolved);
        }
    }

    #[test]
    fn only_public_addresses_of_a_mixed_answer_are_kept() {
        let resolved = addrs(&["192.0.0.8", "93.184.216.34", "64:ff9b::a00:1", "2606:4700:4700::1111"]);
        let kept = reachable("hooks.example".into(), resolved, false).unwrap();
        assert_eq!(kept, addrs(&["93.184.216.34", "2606:4700:4700::1111"]));
    }

    #[test]
    fn no_addresses_is_a_dns_failure() {
        let result = reachable("hooks.example".into(), Vec::new(), false);
        assert!(result.is_err_and(|e| e.is::<DnsFailure>()));
    }

    #[tokio::test]
    async fn the_system_resolver_is_filtered_too() {
        let name = |host: &str| host.parse::<Name>().unwrap();
        let refused = GuardedResolver { allow_private: false }.call(name("localhost")).await;
        assert!(refused.is_err_and(|e| e.is::<BlockedAddress>()));
        let allowed = GuardedResolver { allow_private: true }
            .call(name("localhost"))
            .await
            .unwrap();
        assert!(allowed.into_iter().all(|a| a.ip().is_loopback()));
    }
}
