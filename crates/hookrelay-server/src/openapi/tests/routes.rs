//! The router and the document list the same operations: nothing is served undocumented,
//! nothing documented is missing; every API operation needs a scope, declared where its
//! route is registered, and the document lists it; the document declares exactly the
//! query parameters each route accepts.

use std::collections::BTreeSet;

use hookrelay_core::EventCatalog;

use crate::api::{route_table, Access};
use crate::openapi::document;

/// The methods an OpenAPI path item can hold; its other keys are not operations.
const METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

#[test]
fn every_route_is_documented_and_every_operation_routed() {
    let routed: BTreeSet<(String, String)> = route_table()
        .listed()
        .iter()
        .map(|route| (route.method.as_str().to_lowercase(), route.path.to_owned()))
        .collect();
    assert_eq!(
        routed.len(),
        route_table().listed().len(),
        "a route is registered twice"
    );
    let doc = document(&EventCatalog::default());
    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .expect("the document has paths")
        .iter()
        .flat_map(|(path, item)| {
            let methods = item.as_object().expect("a path item is an object").keys();
            methods
                .filter(|key| METHODS.contains(&key.as_str()))
                .map(move |method| (method.clone(), path.clone()))
        })
        .collect();

    let undocumented: Vec<_> = routed.difference(&documented).collect();
    let unrouted: Vec<_> = documented.difference(&routed).collect();
    assert!(
        undocumented.is_empty() && unrouted.is_empty(),
        "routed but not documented: {undocumented:?}; documented but not routed: {unrouted:?}"
    );
}

#[test]
fn every_api_route_needs_a_scope_and_the_document_names_it() {
    let doc = document(&EventCatalog::default());
    for route in route_table().listed() {
        let (method, path) = (&route.method, &route.path);
        let operation = &doc["paths"][*path][method.as_str().to_lowercase()];
        match route.access {
            Access::Scope(scope) => {
                assert!(
                    path.starts_with("/v1/"),
                    "{method} {path} needs a token but is not an API route"
                );
                assert_eq!(operation["x-hookrelay-scope"], scope.as_str(), "{method} {path}");
                assert!(operation.get("security").is_none(), "{method} {path}");
            }
            Access::Public => {
                let public = [
                    "/healthz",
                    "/openapi.json",
                    "/metrics",
                    "/v1/webhooks/{id}/jwks.json",
                    "/v1/spaces/{id}/jwks.json",
                ];
                assert!(public.contains(path), "{method} {path} is served without a token");
                assert_eq!(operation["security"], serde_json::json!([]), "{method} {path}");
                assert!(operation.get("x-hookrelay-scope").is_none(), "{method} {path}");
            }
        }
    }
}

#[test]
fn the_document_declares_exactly_the_query_parameters_each_route_accepts() {
    let doc = document(&EventCatalog::default());
    for route in route_table().listed() {
        let operation = &doc["paths"][route.path][route.method.as_str().to_lowercase()];
        let documented: BTreeSet<&str> = operation["parameters"]
            .as_array()
            .map(|parameters| parameters.as_slice())
            .unwrap_or_default()
            .iter()
            .filter(|parameter| parameter["in"] == "query")
            .map(|parameter| parameter["name"].as_str().expect("a parameter has a name"))
            .collect();
        let accepted: BTreeSet<&str> = route.query.iter().copied().collect();
        assert_eq!(documented, accepted, "{} {}", route.method, route.path);
    }
}
