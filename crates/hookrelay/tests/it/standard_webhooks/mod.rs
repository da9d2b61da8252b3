//! The `standard-webhooks` delivery format through the real binary, verified with the
//! specification's official Python library (`standardwebhooks`, installed by `.ci/run`):
//! HS256 with a Monime secret mapped to `whsec_…`, retries keeping the message id, the
//! library refusing tampered bodies and wrong secrets; ES256 carried as `es256,…`, which
//! the library skips and the public key verifies; the Monime format unchanged beside it.

use std::process::Stdio;
use std::time::Duration;

use base64::{engine::general_purpose::STANDARD, Engine};
use p256::ecdsa::signature::Verifier as _;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::pkcs8::DecodePublicKey;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;

use hookrelay_client::verify::{ReceivedHeaders, Verifier as SdkVerifier, VerifyErrorKind};

use crate::receiver::{Received, Receiver, Reply};
use crate::support::*;

const VERIFY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/standard_webhooks/verify.py");
const SECRET: &str = "standard-webhooks-monime-secret-0123456789";
const WAIT: Duration = Duration::from_secs(20);

async fn server() -> TestServer {
    TestServer::launch(Launch {
        args: ["--allow-private-targets", "--retry-schedule", "0s,1s"]
            .map(str::to_owned)
            .to_vec(),
        ..Launch::default()
    })
    .await
}

pub(crate) async fn set_format(server: &TestServer, webhook: &str, format: &str) {
    let path = format!("/v1/webhooks/{webhook}/settings");
    let (status, body) = send(server.request(Method::PUT, &path).json(&json!({"format": format}))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// What the official library says of each (secret, delivery, body) given.
pub(crate) async fn official_verdicts(cases: &[(&str, &Received, &[u8])]) -> Vec<Value> {
    let input: Vec<Value> = cases
        .iter()
        .map(|(secret, received, body)| {
            let headers: serde_json::Map<String, Value> = received
                .headers
                .iter()
                .map(|(name, value)| (name.to_string(), json!(value.to_str().unwrap())))
                .collect();
            json!({"secret": secret, "headers": headers, "body_b64": STANDARD.encode(body)})
        })
        .collect();
    let mut child = tokio::process::Command::new("python3")
        .arg(VERIFY)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 (with standardwebhooks: .ci/run installs it)");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&serde_json::to_vec(&input).unwrap()).await.unwrap();
    drop(stdin);
    let output = child.wait_with_output().await.unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

/// The Standard Webhooks headers of a received delivery, as the SDK takes them.
fn standard_headers(received: &Received) -> ReceivedHeaders<'_> {
    ReceivedHeaders {
        id: received.header("webhook-id"),
        timestamp: received.header("webhook-timestamp"),
        signature: received.header("webhook-signature"),
    }
}

pub(crate) fn whsec(secret: &str) -> String {
    format!("whsec_{}", STANDARD.encode(secret))
}

#[tokio::test]
async fn hs256_deliveries_verify_with_the_official_library() {
    let server = server().await;
    let receiver = Receiver::start().await;
    // The first attempt fails, so the event is also delivered by a retry.
    receiver.script(|n| if n == 0 { Reply::Status(500) } else { Reply::Status(200) });
    let webhook = server
        .must_create(&json!({
            "name": "standard",
            "url": receiver.url,
            "events": ["payment.completed"],
            "verificationMethod": {"type": "HS256", "secret": SECRET},
        }))
        .await;
    set_format(&server, webhook["id"].as_str().unwrap(), "standard-webhooks").await;
    let event = server.publish("payment.completed", "pmt_1", json!({"amount": 5})).await;
    let received = receiver.wait_for(2, WAIT).await;
    let event_id = event["id"].as_str().unwrap();
    for delivery in &received {
        assert_eq!(delivery.header("webhook-id"), event_id, "the id stays across retries");
        let timestamp: i64 = delivery.header("webhook-timestamp").parse().unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap();
        assert!((timestamp - now.as_secs() as i64).abs() < 60, "{timestamp}");
        assert!(delivery.header("webhook-signature").starts_with("v1,"));
        assert!(
            delivery.headers.get("monime-signature").is_none(),
            "one format at a time"
        );
        assert_eq!(delivery.header("monime-event-id"), event_id);
    }
    let mut tampered = received[1].body.to_vec();
    tampered.extend_from_slice(b" ");
    let wrong = whsec("another-secret-of-thirty-two-characters!");
    let verdicts = official_verdicts(&[
        (&whsec(SECRET), &received[0], &received[0].body),
        (&whsec(SECRET), &received[1], &received[1].body),
        (&whsec(SECRET), &received[1], &tampered),
        (&wrong, &received[1], &received[1].body),
    ])
    .await;
    assert_eq!(verdicts[0]["verified"], true, "{verdicts:?}");
    assert_eq!(verdicts[1]["verified"], true, "{verdicts:?}");
    assert_eq!(verdicts[1]["payload"]["event"]["id"], event_id, "{verdicts:?}");
    assert_eq!(verdicts[1]["payload"], received[1].json(), "the body is Monime's");
    assert_eq!(verdicts[2]["verified"], false, "a tampered body: {verdicts:?}");
    assert_eq!(verdicts[3]["verified"], false, "a wrong secret: {verdicts:?}");
    // The SDK's verifier agrees with the official library, delivery by delivery.
    let sdk = SdkVerifier::hs256(SECRET);
    for delivery in &received {
        let event = sdk.verify_standard(&delivery.body, standard_headers(delivery)).unwrap();
        assert_eq!(event.event.id, event_id);
    }
    let refused = sdk
        .verify_standard(&tampered, standard_headers(&received[1]))
        .unwrap_err();
    assert_eq!(refused.kind(), VerifyErrorKind::SignatureMismatch);
    let wrong = SdkVerifier::hs256("another-secret-of-thirty-two-characters!");
    assert!(wrong
        .verify_standard(&received[1].body, standard_headers(&received[1]))
        .is_err());
}

#[tokio::test]
async fn es256_is_carried_under_its_own_version_and_monime_format_is_unchanged() {
    let server = server().await;
    let receiver = Receiver::start().await;
    let webhook = server
        .must_create(&json!({
            "name": "ecdsa",
            "url": receiver.url,
            "events": ["payment.completed"],
            "verificationMethod": {"type": "ES256"},
        }))
        .await;
    let id = webhook["id"].as_str().unwrap();
    let public_key = webhook["verificationMethod"]["publicKey"].as_str().unwrap();
    set_format(&server, id, "standard-webhooks").await;
    server.publish("payment.completed", "pmt_1", json!({"amount": 1})).await;
    let standard = receiver.wait_for(1, WAIT).await.remove(0);
    let (version, encoded) = standard.header("webhook-signature").split_once(',').unwrap();
    assert_eq!(version, "es256");
    let signed = format!(
        "{}.{}.{}",
        standard.header("webhook-id"),
        standard.header("webhook-timestamp"),
        String::from_utf8(standard.body.to_vec()).unwrap()
    );
    let key = VerifyingKey::from_public_key_pem(public_key).unwrap();
    let signature = Signature::from_slice(&STANDARD.decode(encoded).unwrap()).unwrap();
    key.verify(signed.as_bytes(), &signature)
        .expect("the public key verifies it");
    // The specification has no ES256: its library finds no signature it knows.
    let verdict = official_verdicts(&[(&whsec(SECRET), &standard, &standard.body)]).await;
    // The SDK verifies it with the public key, and refuses a changed body.
    let sdk = SdkVerifier::es256(public_key).unwrap();
    let event = sdk
        .verify_standard(&standard.body, standard_headers(&standard))
        .unwrap();
    assert_eq!(event.event.id, standard.header("webhook-id"));
    let refused = sdk.verify_standard(b"{}", standard_headers(&standard)).unwrap_err();
    assert_eq!(refused.kind(), VerifyErrorKind::SignatureMismatch);
    assert_eq!(verdict[0]["verified"], false, "{verdict:?}");

    set_format(&server, id, "monime").await;
    server.publish("payment.completed", "pmt_2", json!({"amount": 2})).await;
    let monime = receiver.wait_for(2, WAIT).await.remove(1);
    assert!(
        monime.header("monime-signature").starts_with("t="),
        "{:?}",
        monime.headers
    );
    assert!(monime.headers.get("webhook-signature").is_none());
    assert!(monime.headers.get("webhook-id").is_none());
}
