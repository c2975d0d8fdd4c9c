//! [`Routes`]: an axum router that remembers its paths, so the route table
//! (path → permission) is built by the same code that builds the router and
//! cannot drift from it. The router-walk test enumerates
//! [`route_table`](super::route_table) and probes every path of the real
//! router.

use std::convert::Infallible;
use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::response::IntoResponse;
use axum::routing::{MethodRouter, Route};
use tower::{Layer, Service};

use super::AppState;
use crate::auth::Permission;

/// A route group under construction: the router and its paths.
pub struct Routes {
    pub(super) router: Router<Arc<AppState>>,
    pub(super) paths: Vec<&'static str>,
}

impl Default for Routes {
    fn default() -> Self {
        Self::new()
    }
}

impl Routes {
    /// No routes.
    pub fn new() -> Self {
        Routes {
            router: Router::new(),
            paths: Vec::new(),
        }
    }

    /// As [`Router::route`].
    #[must_use]
    pub fn route(mut self, path: &'static str, mr: MethodRouter<Arc<AppState>>) -> Self {
        self.router = self.router.route(path, mr);
        self.paths.push(path);
        self
    }

    /// As [`Router::merge`].
    #[must_use]
    pub fn merge(mut self, other: Routes) -> Self {
        self.router = self.router.merge(other.router);
        self.paths.extend(other.paths);
        self
    }

    /// Merges a router built elsewhere (the Prometheus API of
    /// killkrill-query) whose routes are `paths`.
    #[must_use]
    pub fn merge_router(mut self, paths: &[&'static str], router: Router<Arc<AppState>>) -> Self {
        self.router = self.router.merge(router);
        self.paths.extend_from_slice(paths);
        self
    }

    /// As [`Router::layer`].
    #[must_use]
    pub fn layer<L>(mut self, layer: L) -> Self
    where
        L: Layer<Route> + Clone + Send + Sync + 'static,
        L::Service: Service<Request> + Clone + Send + Sync + 'static,
        <L::Service as Service<Request>>::Response: IntoResponse + 'static,
        <L::Service as Service<Request>>::Error: Into<Infallible> + 'static,
        <L::Service as Service<Request>>::Future: Send + 'static,
    {
        self.router = self.router.layer(layer);
        self
    }
}

/// One row of the route table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSpec {
    /// The axum path (`/metrics/job/{job}`).
    pub path: &'static str,
    /// What a caller needs.
    pub permission: Permission,
}
