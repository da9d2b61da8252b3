//! What is written stays written, and secrets are not written in clear.

use reqwest::{Method, StatusCode};
use serde_json::json;
use sqlx::{Column, Connection, Row, TypeInfo};

use crate::support::*;

#[tokio::test]
async fn data_survives_a_restart() {
    let dir = tempfile::TempDir::new().unwrap();
    let server = TestServer::launch_in(dir.path(), Launch::default()).await;
    let hmac = server.must_create(&hmac_example()).await;
    let ecdsa = server
        .must_create(
            &json!({"name": "e", "url": "https://a.example/x", "events": ["payout.failed"],
                              "verificationMethod": {"type": "ES256"}, "headers": {"X-Auth": "token-123"}}),
        )
        .await;
    let status = server.stop().await;
    assert!(status.success(), "SIGTERM exits 0, got {status}");

    let server = TestServer::launch_in(dir.path(), Launch::default()).await;
    for created in [&hmac, &ecdsa] {
        let (status, body) = send(server.request(
            Method::GET,
            &format!("/v1/webhooks/{}", created["id"].as_str().unwrap()),
        ))
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(&body["result"], created);
    }
    // The idempotency record survives too.
    let (_, list) = send(server.request(Method::GET, "/v1/webhooks")).await;
    assert_eq!(list["pagination"]["count"], json!(2));
}

#[tokio::test]
async fn the_database_file_holds_no_secret_in_clear() {
    use p256::elliptic_curve::sec1::ToEncodedPoint;
    use p256::pkcs8::DecodePublicKey;

    let dir = tempfile::TempDir::new().unwrap();
    let server = TestServer::launch_in(dir.path(), Launch::default()).await;
    let hmac = server.must_create(&hmac_example()).await;
    let headers = server
        .must_create(
            &json!({"name": "h", "url": "https://a.example/x", "events": ["payment.completed"],
                              "headers": {"X-Custom-Auth": "header-credential-5f1d3a"}}),
        )
        .await;
    let ecdsa = server
        .must_create(
            &json!({"name": "e", "url": "https://a.example/x", "events": ["payment.completed"],
                              "verificationMethod": {"type": "ES256"}}),
        )
        .await;
    let database = server.database.clone();
    assert!(server.stop().await.success());

    let generated = headers["verificationMethod"]["secret"].as_str().unwrap().to_owned();
    let clear_texts = [
        hmac["verificationMethod"]["secret"].as_str().unwrap().to_owned(),
        generated,
        "header-credential-5f1d3a".to_owned(),
        TOKEN.to_owned(),
    ];
    if database.starts_with("sqlite:") {
        // Raw bytes of the database and anything beside it (WAL, shared memory).
        let mut raw = Vec::new();
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if name.starts_with("hookrelay.db") && !name.ends_with(".key") {
                raw.extend(std::fs::read(&path).unwrap());
            }
        }
        assert!(raw.len() > 4096, "database file found");
        for secret in &clear_texts {
            assert!(
                !raw.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{secret:?} is stored in clear"
            );
        }
    }

    // No stored value is or contains a secret, nor the ES256 private key.
    let public_pem = ecdsa["verificationMethod"]["publicKey"].as_str().unwrap();
    let public = p256::PublicKey::from_public_key_pem(public_pem).unwrap();
    let public_point = public.to_encoded_point(true);
    let webhooks = stored_values(&database, "webhooks").await;
    assert_eq!(
        webhooks.iter().filter(|(c, _)| c == "secret_sealed").count(),
        3,
        "three webhooks read"
    );
    let mut values = webhooks;
    values.extend(stored_values(&database, "idempotency_keys").await);
    values.extend(stored_values(&database, "access_tokens").await);
    for (column, bytes) in &values {
        assert!(!String::from_utf8_lossy(bytes).contains("PRIVATE KEY"));
        for secret in &clear_texts {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{column} holds {secret:?}"
            );
        }
        for window in bytes.windows(32) {
            if let Ok(secret) = p256::SecretKey::from_slice(window) {
                assert_ne!(
                    secret.public_key().to_encoded_point(true),
                    public_point,
                    "column {column} holds the ES256 private key in clear"
                );
            }
        }
    }
    let digests: Vec<_> = values.iter().filter(|(c, _)| c == "token_digest").collect();
    assert!(
        !digests.is_empty() && digests.iter().all(|(_, d)| d.len() == 32),
        "tokens are stored as digests"
    );
}

/// Every value of every row of `table`, as (column, bytes): text as UTF-8, binary as is.
async fn stored_values(database: &str, table: &str) -> Vec<(String, Vec<u8>)> {
    let mut values = Vec::new();
    if database.starts_with("sqlite:") {
        let mut db = sqlx::SqliteConnection::connect(database).await.unwrap();
        for row in sqlx::query(&format!("SELECT * FROM {table}"))
            .fetch_all(&mut db)
            .await
            .unwrap()
        {
            for column in row.columns() {
                let bytes: Vec<u8> = match column.type_info().name() {
                    "BLOB" => row.try_get(column.ordinal()).unwrap(),
                    "TEXT" => row.try_get::<String, _>(column.ordinal()).unwrap().into_bytes(),
                    _ => Vec::new(),
                };
                values.push((column.name().to_owned(), bytes));
            }
        }
    } else {
        // row_to_json renders BYTEA as "\\x<hex>": decode it back to bytes.
        let mut db = sqlx::PgConnection::connect(database).await.unwrap();
        let rows: Vec<String> = sqlx::query_scalar(&format!("SELECT row_to_json(t)::text FROM {table} t"))
            .fetch_all(&mut db)
            .await
            .unwrap();
        for row in rows {
            let object: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&row).unwrap();
            for (column, value) in object {
                let bytes = match value.as_str() {
                    Some(text) => match text.strip_prefix("\\x") {
                        Some(hex) => (0..hex.len() / 2)
                            .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
                            .collect(),
                        None => text.as_bytes().to_vec(),
                    },
                    None => value.to_string().into_bytes(),
                };
                values.push((column, bytes));
            }
        }
    }
    values
}

#[tokio::test]
async fn a_wrong_master_key_fails_loudly_instead_of_serving_garbage() {
    let dir = tempfile::TempDir::new().unwrap();
    let key = |k: &str| Launch {
        env: vec![("HOOKRELAY_MASTER_KEY".into(), k.into())],
        ..Launch::default()
    };
    let server = TestServer::launch_in(dir.path(), key(&"11".repeat(32))).await;
    let created = server.must_create(&hmac_example()).await;
    assert!(server.stop().await.success());
    assert!(
        !dir.path().join("hookrelay.db.key").exists(),
        "a given key writes no key file"
    );

    let server = TestServer::launch_in(dir.path(), key(&"22".repeat(32))).await;
    let (status, body) = send(server.request(
        Method::GET,
        &format!("/v1/webhooks/{}", created["id"].as_str().unwrap()),
    ))
    .await;
    assert_error(status, &body, StatusCode::INTERNAL_SERVER_ERROR, "internal_error", None);
    let log = std::fs::read_to_string(dir.path().join("server.log")).unwrap();
    assert!(log.contains("HOOKRELAY_MASTER_KEY"), "the log says why: {log}");
    assert!(!log.contains(created["verificationMethod"]["secret"].as_str().unwrap()));
}

#[tokio::test]
async fn the_generated_key_file_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let server = TestServer::start().await;
    if !server.database.starts_with("sqlite:") {
        // PostgreSQL nodes share one database, so the master key must be given; no file.
        return;
    }
    let mode = std::fs::metadata(server.dir.join("hookrelay.db.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}
