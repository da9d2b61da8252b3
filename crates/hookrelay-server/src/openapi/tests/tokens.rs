//! What the document states about tokens and scopes.

use hookrelay_core::access::{Scope, CREATE_FIELDS, TOKEN_NAME_MAX};
use hookrelay_core::{EventCatalog, TokenId};
use serde_json::{json, Value};

use crate::openapi::{document, prefix_pattern};

#[test]
fn the_token_operations_and_schemas_are_documented() {
    let doc = document(&EventCatalog::default());
    for (path, method, id) in [
        ("/v1/tokens", "get", "ListTokens"),
        ("/v1/tokens", "post", "CreateToken"),
        ("/v1/tokens/{id}", "delete", "RevokeToken"),
    ] {
        let operation = &doc["paths"][path][method];
        assert_eq!(operation["operationId"], id);
        assert_eq!(operation["x-hookrelay-scope"], "tokens:manage", "{id}");
        assert!(operation["responses"]["403"]["description"]
            .as_str()
            .is_some_and(|text| text.contains("insufficient_scope") && text.contains("space_disabled")));
    }
    let revoke = &doc["paths"]["/v1/tokens/{id}"]["delete"];
    let id = revoke["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "id")
        .unwrap();
    assert_eq!(id["schema"]["pattern"], prefix_pattern(TokenId::PREFIX));

    let body = doc
        .pointer("/paths/~1v1~1tokens/post/requestBody/content/application~1json/schema")
        .expect("the create body");
    let mut fields: Vec<&str> = body["properties"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    fields.sort_unstable();
    let mut accepted = CREATE_FIELDS.to_vec();
    accepted.sort_unstable();
    assert_eq!(fields, accepted);
    assert_eq!(body["required"], json!(["name", "scopes"]));
    assert_eq!(body["additionalProperties"], false);
    assert_eq!(body["properties"]["name"]["maxLength"], json!(TOKEN_NAME_MAX));

    let schemas = &doc["components"]["schemas"];
    let names: Vec<&str> = Scope::ALL.iter().map(|s| s.as_str()).collect();
    assert_eq!(schemas["Scope"]["enum"], json!(names));
    let described = schemas["Scope"]["description"].as_str().unwrap();
    assert!(
        names.iter().all(|name| described.contains(&format!("`{name}`"))),
        "{described}"
    );
    let listed: &Value = &schemas["Token"];
    assert!(
        listed["properties"].get("token").is_none(),
        "a listed token never shows the token"
    );
    assert_eq!(schemas["CreatedToken"]["properties"]["token"]["type"], "string");
    assert_eq!(listed["additionalProperties"], false);
}
