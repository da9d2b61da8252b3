//! The route table. Every route is registered through it, with who may call it, so the
//! list of what the router serves is built with the router itself: the OpenAPI tests
//! check that list against the document both ways, and that every API route needs a
//! scope.

use axum::handler::Handler;
use axum::http::Method;
use axum::routing::{on, MethodFilter};
use axum::{Extension, Router};
use hookrelay_core::access::Scope;

use crate::state::AppState;

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

/// A router being built, and each route registered on it.
#[derive(Default)]
pub struct RouteTable {
    router: Router<AppState>,
    listed: Vec<(Method, &'static str, Access)>,
}

impl RouteTable {
    /// Serves `handler` for `method` on `path` to callers `access` admits, and lists it.
    pub fn add<H, T>(mut self, method: Method, path: &'static str, access: Access, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        let filter = MethodFilter::try_from(method.clone()).expect("the API routes standard methods only");
        let route = match access {
            Access::Public => on(filter, handler),
            Access::Scope(scope) => on(filter, handler).layer(Extension(RequiredScope(scope))),
        };
        // Registering a second method on a path merges it into the path's method router;
        // each method keeps its own scope.
        self.router = self.router.route(path, route);
        self.listed.push((method, path, access));
        self
    }

    /// Each route registered so far, in order: method, path and who may call it.
    pub fn listed(&self) -> &[(Method, &'static str, Access)] {
        &self.listed
    }

    /// The router serving them.
    pub fn into_router(self) -> Router<AppState> {
        self.router
    }
}
