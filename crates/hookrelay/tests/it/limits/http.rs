//! HTTP server limits over raw TCP: slow headers are cut off, a slow body is answered
//! 408 and its connection closed, and connections past `max_connections` wait until one
//! closes while the first ones are served.

use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::*;

const WITHIN: Duration = Duration::from_secs(10);

async fn limited_server(args: &[&str]) -> TestServer {
    TestServer::launch(Launch {
        args: args.iter().map(|s| s.to_string()).collect(),
        ..Launch::default()
    })
    .await
}

async fn connect(server: &TestServer) -> TcpStream {
    let address = server.base.strip_prefix("http://").unwrap();
    TcpStream::connect(address).await.expect("connect")
}

fn get_health() -> &'static str {
    "GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n"
}

/// Reads one response with a Content-Length body: its status and body.
async fn read_response(stream: &mut TcpStream) -> (u16, String, String) {
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&received).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let head = text[..end].to_owned();
            let length = head
                .lines()
                .find_map(|line| {
                    line.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap())
                })
                .unwrap_or(0);
            if received.len() >= end + 4 + length {
                let status = head[9..12].parse().unwrap();
                return (status, head, text[end + 4..end + 4 + length].to_owned());
            }
        }
        let n = tokio::time::timeout(WITHIN, stream.read(&mut buffer))
            .await
            .expect("no answer in time")
            .expect("read");
        assert!(
            n > 0,
            "connection closed mid-response: {:?}",
            String::from_utf8_lossy(&received)
        );
        received.extend_from_slice(&buffer[..n]);
    }
}

/// Reads until the server closes the connection; what it sent before.
async fn read_until_closed(stream: &mut TcpStream) -> String {
    let mut received = Vec::new();
    let mut buffer = [0u8; 1024];
    loop {
        match tokio::time::timeout(WITHIN, stream.read(&mut buffer))
            .await
            .expect("still open")
        {
            Ok(0) | Err(_) => return String::from_utf8_lossy(&received).into_owned(),
            Ok(n) => received.extend_from_slice(&buffer[..n]),
        }
    }
}

#[tokio::test]
async fn headers_sent_a_byte_at_a_time_are_cut_off_at_the_header_timeout() {
    let server = limited_server(&["--http-header-timeout", "1s"]).await;
    let mut slow = connect(&server).await;
    let started = Instant::now();
    let request = get_health().as_bytes();
    let mut cut_off_at = None;
    for (sent, byte) in request.iter().enumerate() {
        if slow.write_all(&[*byte]).await.is_err() {
            cut_off_at = Some(sent);
            break;
        }
        // Meanwhile other clients are served as usual.
        let (status, _) = server.health().await;
        assert_eq!(status, reqwest::StatusCode::OK);
        tokio::time::sleep(Duration::from_millis(250)).await;
        let mut probe = [0u8; 1];
        if let Ok(Ok(0)) = tokio::time::timeout(Duration::from_millis(1), slow.read(&mut probe)).await {
            cut_off_at = Some(sent + 1);
            break;
        }
    }
    let sent = cut_off_at.expect("the server waited for the whole slow header");
    assert!(sent < request.len(), "cut off before the headers were complete");
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(900),
        "not before the timeout: {elapsed:?}"
    );
    assert!(elapsed < Duration::from_secs(5), "soon after the timeout: {elapsed:?}");
}

#[tokio::test]
async fn a_connection_that_sends_nothing_is_closed_at_the_header_timeout() {
    let server = limited_server(&["--http-header-timeout", "1s"]).await;
    let mut silent = connect(&server).await;
    let started = Instant::now();
    assert_eq!(read_until_closed(&mut silent).await, "", "closed without an answer");
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(900) && elapsed < Duration::from_secs(5),
        "{elapsed:?}"
    );
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed_at_the_header_timeout() {
    let server = limited_server(&["--http-header-timeout", "1s"]).await;
    let mut stream = connect(&server).await;
    stream.write_all(get_health().as_bytes()).await.unwrap();
    assert_eq!(read_response(&mut stream).await.0, 200);
    let started = Instant::now();
    read_until_closed(&mut stream).await;
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(900) && elapsed < Duration::from_secs(5),
        "{elapsed:?}"
    );
}

#[tokio::test]
async fn a_slow_body_is_answered_408_and_its_connection_closed_writing_nothing() {
    let server = limited_server(&["--http-request-timeout", "1s"]).await;
    let body = serde_json::to_string(&simple_webhook("slow")).unwrap();
    let head = format!(
        "POST /v1/webhooks HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {TOKEN}\r\nMonime-Space-Id: {SPACE}\r\n\
         Idempotency-Key: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        unique_key(),
        body.len()
    );
    let mut stream = connect(&server).await;
    stream.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    // Half the body, a byte every 100 ms: it cannot all arrive within the second.
    let writer = async {
        for byte in &body.as_bytes()[..body.len() / 2] {
            if stream.write_all(&[*byte]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let _ = tokio::time::timeout(Duration::from_millis(1500), writer).await;
    let (status, head, body) = read_response(&mut stream).await;
    assert_eq!(status, 408, "{head}\n{body}");
    assert!(head.to_ascii_lowercase().contains("connection: close"), "{head}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_error(
        reqwest::StatusCode::REQUEST_TIMEOUT,
        &body,
        reqwest::StatusCode::REQUEST_TIMEOUT,
        "request_timeout",
        None,
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    read_until_closed(&mut stream).await;
    let listed = server.get("/v1/webhooks").await;
    assert_eq!(listed["pagination"]["count"], 0, "{listed}");
    // A request in time is unaffected.
    server.must_create(&simple_webhook("quick")).await;
}

#[tokio::test]
async fn connections_past_the_cap_wait_until_one_closes() {
    let server = limited_server(&["--max-connections", "2"]).await;
    let mut first = connect(&server).await;
    let mut second = connect(&server).await;
    for stream in [&mut first, &mut second] {
        stream.write_all(get_health().as_bytes()).await.unwrap();
        assert_eq!(read_response(stream).await.0, 200);
    }
    let mut third = connect(&server).await;
    third.write_all(get_health().as_bytes()).await.unwrap();
    // The server answers a request sent after the third's on a served connection ...
    first.write_all(get_health().as_bytes()).await.unwrap();
    assert_eq!(read_response(&mut first).await.0, 200);
    second.write_all(get_health().as_bytes()).await.unwrap();
    assert_eq!(read_response(&mut second).await.0, 200);
    // ... and still has not answered the third, which it has not accepted.
    let mut probe = [0u8; 1];
    match third.try_read(&mut probe) {
        Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("the third connection was served past the cap: {other:?}"),
    }
    // Once one closes, the third is served.
    drop(second);
    let (status, _, _) = read_response(&mut third).await;
    assert_eq!(status, 200);
    first.write_all(get_health().as_bytes()).await.unwrap();
    assert_eq!(read_response(&mut first).await.0, 200);
}

#[tokio::test]
async fn a_client_that_reads_nothing_of_its_answers_is_disconnected() {
    // A long header timeout, so only the stalled answer can close the connection.
    let server = limited_server(&["--http-request-timeout", "1s", "--http-header-timeout", "60s"]).await;
    let document = server
        .client
        .get(format!("{}/openapi.json", server.base))
        .send()
        .await
        .unwrap();
    let document_len = document.bytes().await.unwrap().len();
    let (mut reader, mut writer) = connect(&server).await.into_split();
    // Pipelined requests whose answers add up to far more than the sockets' buffers.
    const REQUESTS: usize = 2000;
    let requests = "GET /openapi.json HTTP/1.1\r\nHost: test\r\n\r\n".repeat(REQUESTS);
    let sending = tokio::spawn(async move {
        let _ = writer.write_all(requests.as_bytes()).await;
        writer
    });
    // Past the limit, the stalled server gives up on the connection.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut received = 0usize;
    let mut buffer = vec![0u8; 64 * 1024];
    let ended = tokio::time::timeout(WITHIN, async {
        loop {
            match reader.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => received += n,
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the connection stayed open; {received} bytes read");
    assert!(
        received < REQUESTS * document_len,
        "closed before all the answers were sent: {received} bytes"
    );
    sending.abort();
    // The server serves others as before.
    assert_eq!(server.health().await.0, reqwest::StatusCode::OK);
}
