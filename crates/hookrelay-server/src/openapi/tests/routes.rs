//! The router and the document list the same operations: nothing is served undocumented,
//! nothing documented is missing.

use std::collections::BTreeSet;

use hookrelay_core::EventCatalog;

use crate::api::route_table;
use crate::openapi::document;

/// The methods an OpenAPI path item can hold; its other keys are not operations.
const METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

#[test]
fn every_route_is_documented_and_every_operation_routed() {
    let routed: BTreeSet<(String, String)> = route_table()
        .listed()
        .iter()
        .map(|(method, path)| (method.as_str().to_lowercase(), (*path).to_owned()))
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
