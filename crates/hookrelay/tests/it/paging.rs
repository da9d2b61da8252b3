//! Cursor pagination: newest first, stable while webhooks come and go between pages.

use std::collections::{BTreeSet, HashSet};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::*;

async fn page(server: &TestServer, limit: usize, after: Option<&str>) -> (Vec<Value>, Option<String>) {
    let path = match after {
        Some(cursor) => format!("/v1/webhooks?limit={limit}&after={cursor}"),
        None => format!("/v1/webhooks?limit={limit}"),
    };
    let (status, body) = send(server.request(Method::GET, &path)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let items = body["result"].as_array().unwrap().clone();
    assert_eq!(body["pagination"]["count"], json!(items.len()));
    assert!(items.len() <= limit);
    (items, body["pagination"]["next"].as_str().map(str::to_owned))
}

#[tokio::test]
async fn paging_through_120_webhooks_while_creating_and_deleting() {
    let server = TestServer::start().await;
    let mut live: BTreeSet<String> = BTreeSet::new();
    for i in 0..120 {
        let webhook = server.must_create(&simple_webhook(&format!("w{i}"))).await;
        live.insert(webhook["id"].as_str().unwrap().to_owned());
    }

    for limit in [1usize, 7, 50] {
        // Webhooks present from the first page to the last must each be seen exactly once.
        let mut throughout = live.clone();
        let mut seen: Vec<String> = Vec::new();
        let mut after: Option<String> = None;
        let mut last_time: Option<String> = None;
        let mut round = 0usize;
        loop {
            let (items, next) = page(&server, limit, after.as_deref()).await;
            for item in &items {
                let time = item["createTime"].as_str().unwrap().to_owned();
                if let Some(previous) = &last_time {
                    assert!(&time <= previous, "not newest first");
                }
                last_time = Some(time);
                seen.push(item["id"].as_str().unwrap().to_owned());
            }
            if next.is_some() {
                assert_eq!(items.len(), limit, "a page before the last is full");
            }
            // Between pages: one new webhook, and one deletion (alternately of a seen and
            // an unseen one).
            let created = server
                .must_create(&simple_webhook(&format!("during {limit}/{round}")))
                .await;
            live.insert(created["id"].as_str().unwrap().to_owned());
            let victim = live
                .iter()
                .find(|id| seen.contains(id) == round.is_multiple_of(2) && throughout.contains(*id))
                .cloned();
            if let Some(victim) = victim {
                let (status, _) = send(server.request(Method::DELETE, &format!("/v1/webhooks/{victim}"))).await;
                assert_eq!(status, StatusCode::OK);
                live.remove(&victim);
                throughout.remove(&victim);
            }
            round += 1;
            match next {
                Some(cursor) => after = Some(cursor),
                None => break,
            }
        }
        let unique: HashSet<&String> = seen.iter().collect();
        assert_eq!(unique.len(), seen.len(), "limit {limit}: a webhook was repeated");
        let missing: Vec<_> = throughout.iter().filter(|id| !unique.contains(id)).collect();
        assert!(missing.is_empty(), "limit {limit}: skipped {missing:?}");
    }
}

#[tokio::test]
async fn default_page_size_is_ten() {
    let server = TestServer::start().await;
    for i in 0..11 {
        server.must_create(&simple_webhook(&format!("w{i}"))).await;
    }
    let (status, body) = send(server.request(Method::GET, "/v1/webhooks")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["pagination"]["count"], json!(10));
    let next = body["pagination"]["next"].as_str().expect("a next cursor");
    let (rest, end) = page(&server, 10, Some(next)).await;
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0]["name"], "w0");
    assert_eq!(end, None);
}
