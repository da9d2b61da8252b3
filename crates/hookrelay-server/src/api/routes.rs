//! The route table. Every route is registered through it, with who may call it and the
//! query parameters it takes, so the list of what the router serves is built with the
//! router itself: the OpenAPI tests check that list against the document both ways, that
//! every API route needs a scope, and that the document declares exactly the query
//! parameters each route accepts. A request with any other query parameter is refused
//! before its handler runs.

use axum::extract::Request;
use axum::handler::Handler;
use axum::http::Method;
use axum::middleware::map_request;
use axum::routing::{on, MethodFilter};
use axum::{Extension, Router};
use hookrelay_core::access::Scope;

use crate::error::ApiError;
use crate::state::AppState;

/// The names of the query parameters a route accepts.
pub type QueryParams = &'static [&'static str];

/// Who may call a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Anyone, without a token.
    Public,
    /// A token of the space with this scope.
    Scope(Scope),
}

/// The scope a route needs, put in each of its requests' extensions for the
/// authenticating extractor (`request::Tenant`) to check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequiredScope(pub Scope);

/// One registered route.
#[derive(Clone, Debug)]
pub struct Route {
    /// Its method.
    pub method: Method,
    /// Its path, with `{name}` segments.
    pub path: &'static str,
    /// Who may call it.
    pub access: Access,
    /// The query parameters it accepts; any other is refused.
    pub query: QueryParams,
}

/// A router being built, and each route registered on it.
#[derive(Default)]
pub struct RouteTable {
    router: Router<AppState>,
    listed: Vec<Route>,
}

impl RouteTable {
    /// Serves `handler` for `method` on `path` to callers `access` admits, refusing any
    /// query parameter not in `query`, and lists it.
    pub fn add<H, T>(
        mut self,
        method: Method,
        path: &'static str,
        access: Access,
        query: QueryParams,
        handler: H,
    ) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        let filter = MethodFilter::try_from(method.clone()).expect("the API routes standard methods only");
        let check =
            map_request(
                move |request: Request| async move { check_query(request.uri().query(), query).map(|()| request) },
            );
        // The query is checked before authentication: a malformed request is refused for
        // what it is whoever sends it.
        let route = match access {
            Access::Public => on(filter, handler).layer(check),
            Access::Scope(scope) => on(filter, handler).layer(Extension(RequiredScope(scope))).layer(check),
        };
        // Registering a second method on a path merges it into the path's method router;
        // each method keeps its own scope.
        self.router = self.router.route(path, route);
        self.listed.push(Route {
            method,
            path,
            access,
            query,
        });
        self
    }

    /// Each route registered so far, in order.
    pub fn listed(&self) -> &[Route] {
        &self.listed
    }

    /// The router serving them.
    pub fn into_router(self) -> Router<AppState> {
        self.router
    }
}

/// Refuses a query string naming a parameter outside `accepted`, naming one twice, or
/// holding a value without a name, so a typo such as `limt=5` is an error rather than
/// silently ignored. Empty pieces (`?`, `a=1&&b=2`) name nothing and pass.
pub fn check_query(query: Option<&str>, accepted: QueryParams) -> Result<(), ApiError> {
    let mut seen: Vec<String> = Vec::new();
    for piece in query.unwrap_or("").split('&').filter(|piece| !piece.is_empty()) {
        let Some((name, _)) = url::form_urlencoded::parse(piece.as_bytes()).next() else {
            continue;
        };
        let refuse = |rule: &'static str, message: String| Err(ApiError::field(name.to_string(), rule, message));
        if name.is_empty() {
            return Err(ApiError::field("query", "format", "a query parameter has no name"));
        }
        if !accepted.contains(&name.as_ref()) {
            return refuse("unknown_parameter", unknown_message(&name, accepted));
        }
        if seen.iter().any(|s| *s == name) {
            return refuse(
                "repeated_parameter",
                format!("query parameter {name} is given more than once"),
            );
        }
        seen.push(name.into_owned());
    }
    Ok(())
}

fn unknown_message(name: &str, accepted: QueryParams) -> String {
    if accepted.is_empty() {
        format!("unknown query parameter {name}: this operation takes no query parameters")
    } else {
        format!(
            "unknown query parameter {name}: this operation takes {}",
            accepted.join(", ")
        )
    }
}

#[cfg(test)]
mod tests;
