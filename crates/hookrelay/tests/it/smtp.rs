//! A real SMTP server for alert tests: speaks enough SMTP (EHLO, MAIL, RCPT, DATA, QUIT)
//! for any client, over TCP, keeps what it receives, and can be stopped and started
//! again on the same port to play an outage.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// One received e-mail.
#[derive(Clone, Debug)]
pub struct Mail {
    pub recipients: Vec<String>,
    /// The raw message (headers and body) as sent.
    pub raw: String,
}

impl Mail {
    pub fn subject(&self) -> String {
        let headers = self.raw.split("\n\n").next().unwrap_or_default();
        let unfolded = headers.replace("\n ", " ").replace("\n\t", " ");
        unfolded
            .lines()
            .find_map(|l| l.strip_prefix("Subject: "))
            .map(decode_header)
            .unwrap_or_default()
    }

    /// The message with quoted-printable soft breaks and escapes undone.
    pub fn decoded(&self) -> String {
        decode_quoted_printable(&self.raw)
    }
}

pub struct SmtpServer {
    pub port: u16,
    mails: Arc<Mutex<Vec<Mail>>>,
    refusal: Option<&'static str>,
    task: Option<JoinHandle<()>>,
}

impl SmtpServer {
    pub async fn start() -> Self {
        Self::listen(None).await
    }

    /// A server that answers every `MAIL FROM` with `reply` (a whole SMTP reply line,
    /// e.g. `550 5.7.1 relay denied`), so it takes no message.
    pub async fn refusing(reply: &'static str) -> Self {
        Self::listen(Some(reply)).await
    }

    async fn listen(refusal: Option<&'static str>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mails = Arc::new(Mutex::new(Vec::new()));
        let task = Some(tokio::spawn(serve(listener, mails.clone(), refusal)));
        Self {
            port,
            mails,
            refusal,
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Stops accepting and drops open sessions: the port refuses connections.
    pub fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }

    /// Listens again on the same port.
    pub async fn restart(&mut self) {
        self.stop();
        let listener = TcpListener::bind(("127.0.0.1", self.port)).await.unwrap();
        self.task = Some(tokio::spawn(serve(listener, self.mails.clone(), self.refusal)));
    }

    pub fn mails(&self) -> Vec<Mail> {
        self.mails.lock().unwrap().clone()
    }

    pub async fn wait_for(&self, n: usize, within: Duration) -> Vec<Mail> {
        let deadline = Instant::now() + within;
        loop {
            let mails = self.mails();
            if mails.len() >= n {
                return mails;
            }
            assert!(
                Instant::now() < deadline,
                "expected {n} e-mails within {within:?}, got {}",
                mails.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn serve(listener: TcpListener, mails: Arc<Mutex<Vec<Mail>>>, refusal: Option<&'static str>) {
    let mut sessions = tokio::task::JoinSet::new();
    loop {
        let Ok((socket, _)) = listener.accept().await else {
            continue;
        };
        let mails = mails.clone();
        // Sessions live in the JoinSet, so stopping the server (aborting this task) ends them too.
        sessions.spawn(async move {
            let _ = session(socket, mails, refusal).await;
        });
    }
}

async fn session(
    socket: tokio::net::TcpStream,
    mails: Arc<Mutex<Vec<Mail>>>,
    refusal: Option<&'static str>,
) -> std::io::Result<()> {
    let (read, mut write) = socket.into_split();
    let mut lines = BufReader::new(read).lines();
    write.write_all(b"220 localhost test SMTP\r\n").await?;
    let mut recipients = Vec::new();
    while let Some(line) = lines.next_line().await? {
        let upper = line.to_ascii_uppercase();
        let reply: &[u8] = if let Some(refusal) = refusal.filter(|_| upper.starts_with("MAIL FROM")) {
            write.write_all(refusal.as_bytes()).await?;
            b"\r\n"
        } else if upper.starts_with("EHLO") {
            b"250-localhost\r\n250 8BITMIME\r\n"
        } else if upper.starts_with("HELO") || upper.starts_with("MAIL FROM") || upper.starts_with("NOOP") {
            b"250 OK\r\n"
        } else if upper.starts_with("RSET") {
            recipients.clear();
            b"250 OK\r\n"
        } else if upper.starts_with("RCPT TO") {
            recipients.push(
                line[8..]
                    .trim()
                    .trim_matches(|c| c == '<' || c == '>' || c == ':')
                    .to_owned(),
            );
            b"250 OK\r\n"
        } else if upper == "DATA" {
            write.write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n").await?;
            let mut raw = String::new();
            while let Some(line) = lines.next_line().await? {
                if line == "." {
                    break;
                }
                raw.push_str(line.strip_prefix('.').unwrap_or(&line));
                raw.push('\n');
            }
            mails.lock().unwrap().push(Mail {
                recipients: std::mem::take(&mut recipients),
                raw,
            });
            b"250 OK queued\r\n"
        } else if upper == "QUIT" {
            write.write_all(b"221 Bye\r\n").await?;
            return Ok(());
        } else {
            b"502 Command not implemented\r\n"
        };
        write.write_all(reply).await?;
    }
    Ok(())
}

fn decode_quoted_printable(text: &str) -> String {
    let joined = text.replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' && i + 2 < bytes.len() {
            if let Ok(byte) = u8::from_str_radix(&joined[i + 1..i + 3], 16) {
                out.push(byte);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Undoes RFC 2047 encoded words (`=?utf-8?b?…?=` / `=?utf-8?q?…?=`) well enough for tests.
fn decode_header(value: &str) -> String {
    use base64::Engine;
    let mut out = String::new();
    for word in value.split_whitespace() {
        let decoded = word
            .strip_prefix("=?utf-8?b?")
            .or_else(|| word.strip_prefix("=?UTF-8?B?"))
            .and_then(|rest| rest.strip_suffix("?="))
            .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned());
        match decoded {
            Some(text) => out.push_str(&text),
            None => {
                if !out.is_empty() {
                    out.push(' ');
                }
                out.push_str(word);
            }
        }
    }
    out
}
