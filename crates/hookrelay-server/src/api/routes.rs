//! The route table. Every route is registered through it, so the list of what the router
//! serves is built with the router itself; the OpenAPI tests check that list against the
//! document both ways.

use axum::handler::Handler;
use axum::http::Method;
use axum::routing::{on, MethodFilter};
use axum::Router;

use crate::state::AppState;

/// A router being built, and the `(method, path)` of each route registered on it.
#[derive(Default)]
pub struct RouteTable {
    router: Router<AppState>,
    listed: Vec<(Method, &'static str)>,
}

impl RouteTable {
    /// Serves `handler` for `method` on `path`, and lists the pair.
    pub fn add<H, T>(mut self, method: Method, path: &'static str, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        let filter = MethodFilter::try_from(method.clone()).expect("the API routes standard methods only");
        // Registering a second method on a path merges it into the path's method router.
        self.router = self.router.route(path, on(filter, handler));
        self.listed.push((method, path));
        self
    }

    /// Each route registered so far, in order.
    pub fn listed(&self) -> &[(Method, &'static str)] {
        &self.listed
    }

    /// The router serving them.
    pub fn into_router(self) -> Router<AppState> {
        self.router
    }
}
