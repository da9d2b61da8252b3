//! Every example of the seed document, as the JSON requests its SDK calls make.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn create_with_hmac_verification() {
    let server = TestServer::start().await;
    let (status, body) = server.create_webhook(&hmac_example()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["success"], json!(true));
    assert_eq!(body["messages"], json!([]));
    let webhook = &body["result"];
    assert!(webhook["id"].as_str().unwrap().starts_with("whk-"));
    assert_eq!(webhook["name"], "Production Webhook");
    assert_eq!(webhook["url"], "https://yoursite.com/webhooks/monime");
    assert_eq!(webhook["apiRelease"], "caph");
    assert_eq!(webhook["enabled"], json!(true));
    assert_eq!(
        webhook["events"],
        json!(["payment.completed", "payment.failed", "payout.completed"])
    );
    assert_eq!(
        webhook["verificationMethod"],
        json!({"type": "HS256", "secret": "your-32-character-minimum-secret-key-here"})
    );
    assert_eq!(webhook["alertEmails"], json!(["alerts@yoursite.com"]));
    assert_eq!(webhook["metadata"], json!({"environment": "production"}));
    assert_eq!(webhook["headers"], json!({}));
    let created = webhook["createTime"].as_str().unwrap();
    assert!(created.ends_with('Z') && created.len() == 24, "RFC 3339 UTC: {created}");
    assert_eq!(webhook["updateTime"], webhook["createTime"]);
}

#[tokio::test]
async fn create_with_ecdsa_verification_returns_a_p256_public_key() {
    use p256::pkcs8::DecodePublicKey;
    let server = TestServer::start().await;
    let webhook = server
        .must_create(&json!({
            "name": "Secure ECDSA Webhook",
            "url": "https://yoursite.com/webhooks/monime-secure",
            "apiRelease": "caph",
            "events": ["payment.completed", "payment.failed", "payout.completed", "payout.failed"],
            "verificationMethod": {"type": "ES256"},
            "alertEmails": ["security@yoursite.com"]
        }))
        .await;
    let method = &webhook["verificationMethod"];
    assert_eq!(method["type"], "ES256");
    assert!(method.get("secret").is_none(), "no secret for ES256: {method}");
    let pem = method["publicKey"].as_str().unwrap();
    assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----"), "{pem}");
    p256::ecdsa::VerifyingKey::from_public_key_pem(pem).expect("a P-256 SubjectPublicKeyInfo");
    assert_eq!(webhook["alertEmails"], json!(["security@yoursite.com"]));
    assert_eq!(webhook["metadata"], json!({}));
}

#[tokio::test]
async fn create_with_custom_headers() {
    let server = TestServer::start().await;
    let webhook = server
        .must_create(&json!({
            "name": "Authenticated Webhook",
            "url": "https://yoursite.com/webhooks/monime",
            "apiRelease": "caph",
            "events": ["payment.completed", "checkout_session.completed"],
            "verificationMethod": {"type": "HS256", "secret": "minimum-32-character-secret-for-production"},
            "headers": {"X-Custom-Auth": "your-auth-token-here", "X-Environment": "production"}
        }))
        .await;
    assert_eq!(
        webhook["headers"],
        json!({"X-Custom-Auth": "your-auth-token-here", "X-Environment": "production"})
    );
}

#[tokio::test]
async fn omitted_verification_method_gets_a_generated_hs256_secret() {
    let server = TestServer::start().await;
    let webhook = server.must_create(&simple_webhook("defaults")).await;
    assert_eq!(webhook["verificationMethod"]["type"], "HS256");
    let secret = webhook["verificationMethod"]["secret"].as_str().unwrap();
    assert_eq!(secret.len(), 48);
    assert!(secret.chars().all(|c| c.is_ascii_alphanumeric()));
    assert_eq!(webhook["apiRelease"], "caph");
    assert_eq!(webhook["enabled"], json!(true));
    let other = server.must_create(&simple_webhook("defaults 2")).await;
    assert_ne!(
        other["verificationMethod"]["secret"],
        webhook["verificationMethod"]["secret"]
    );
}

#[tokio::test]
async fn get_returns_the_created_webhook() {
    let server = TestServer::start().await;
    let created = server.must_create(&hmac_example()).await;
    let id = created["id"].as_str().unwrap();
    let (status, body) = send(server.request(Method::GET, &format!("/v1/webhooks/{id}"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["success"], json!(true));
    assert_eq!(body["result"], created);
}

#[tokio::test]
async fn list_returns_webhooks_newest_first_with_pagination() {
    let server = TestServer::start().await;
    let first = server.must_create(&simple_webhook("first")).await;
    let second = server.must_create(&simple_webhook("second")).await;
    let (status, body) = send(server.request(Method::GET, "/v1/webhooks")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["success"], json!(true));
    assert_eq!(body["result"], json!([second, first]));
    assert_eq!(body["pagination"], json!({"count": 2, "next": null}));
}

#[tokio::test]
async fn update_disable_and_enable() {
    let server = TestServer::start().await;
    let created = server.must_create(&hmac_example()).await;
    let path = format!("/v1/webhooks/{}", created["id"].as_str().unwrap());
    let (status, body) = send(server.request(Method::PATCH, &path).json(&json!({"enabled": false}))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["result"]["enabled"], json!(false));
    assert_eq!(body["result"]["name"], created["name"]);
    assert!(body["result"]["updateTime"].as_str() > created["updateTime"].as_str());
    let (_, fetched) = send(server.request(Method::GET, &path)).await;
    assert_eq!(fetched["result"]["enabled"], json!(false));

    let (status, body) = send(server.request(Method::PATCH, &path).json(&json!({"enabled": true}))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["result"]["enabled"], json!(true));
}

#[tokio::test]
async fn update_configuration_changes_only_the_fields_sent() {
    let server = TestServer::start().await;
    let created = server.must_create(&hmac_example()).await;
    let path = format!("/v1/webhooks/{}", created["id"].as_str().unwrap());
    let (status, body) = send(server.request(Method::PATCH, &path).json(&json!({
        "url": "https://yoursite.com/webhooks/monime-v2",
        "events": ["payment.completed", "payment.failed", "payout.completed", "checkout_session.completed"],
        "name": null
    })))
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let updated = &body["result"];
    assert_eq!(updated["url"], "https://yoursite.com/webhooks/monime-v2");
    assert_eq!(
        updated["events"],
        json!([
            "payment.completed",
            "payment.failed",
            "payout.completed",
            "checkout_session.completed"
        ])
    );
    for unchanged in [
        "id",
        "name",
        "enabled",
        "apiRelease",
        "verificationMethod",
        "alertEmails",
        "metadata",
        "headers",
        "createTime",
    ] {
        assert_eq!(updated[unchanged], created[unchanged], "{unchanged} changed");
    }
    assert!(updated["updateTime"].as_str() > created["updateTime"].as_str());
    let (_, fetched) = send(server.request(Method::GET, &path)).await;
    assert_eq!(&fetched["result"], updated);

    // Empty collections clear; everything else is replaced whole.
    let (_, body) = send(server.request(Method::PATCH, &path).json(&json!({
        "alertEmails": [], "metadata": {"tier": "gold"}, "headers": {"X-Team": "payments"}, "apiRelease": "siriusb"
    })))
    .await;
    assert_eq!(body["result"]["alertEmails"], json!([]));
    assert_eq!(body["result"]["metadata"], json!({"tier": "gold"}));
    assert_eq!(body["result"]["headers"], json!({"X-Team": "payments"}));
    assert_eq!(body["result"]["apiRelease"], "siriusb");
}

#[tokio::test]
async fn delete_removes_the_webhook_for_every_later_call() {
    let server = TestServer::start().await;
    let created = server.must_create(&hmac_example()).await;
    let path = format!("/v1/webhooks/{}", created["id"].as_str().unwrap());
    let (status, body) = send(server.request(Method::DELETE, &path)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"success": true, "messages": []}));
    for method in [Method::GET, Method::DELETE] {
        let (status, body) = send(server.request(method, &path)).await;
        assert_error(status, &body, StatusCode::NOT_FOUND, "not_found", None);
    }
    let (status, body) = send(server.request(Method::PATCH, &path).json(&json!({"enabled": true}))).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found", None);
    let (_, list) = send(server.request(Method::GET, "/v1/webhooks")).await;
    assert_eq!(list["result"], json!([]));
}
