//! Alert e-mails per recipient address, as pure rules: an address gets at most
//! `per_window` alert e-mails in a window that opens with the first one sent to it;
//! alerts past that are held, and one digest listing them goes out when the window
//! closes. A tenant who lists someone's address in `alertEmails` and makes many webhooks
//! fail can therefore send that address at most `per_window + 1` e-mails per window
//! through the operator's mail server.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use crate::alert::AlertKind;
use crate::timestamp::Timestamp;

/// How many alert e-mails an address may get, and per how long.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EmailLimit {
    /// E-mails per window (the digest aside).
    pub per_window: u32,
    /// The window, which opens with the first e-mail sent to an address.
    pub window: Duration,
}

impl Default for EmailLimit {
    fn default() -> Self {
        Self {
            per_window: 10,
            window: Duration::from_secs(3600),
        }
    }
}

/// An address's current window: when it opened and how many e-mails it has had.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecipientWindow {
    /// When the window opened.
    pub start: Timestamp,
    /// Alert e-mails sent to the address in it.
    pub sent: u32,
}

/// What becomes of one alert for one address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Admission {
    /// Whether the alert is e-mailed to the address now; if not, it is held for the
    /// digest due at `digest_due`.
    pub send: bool,
    /// The address's window after this alert, to store.
    pub window: RecipientWindow,
    /// When the window closes, and the digest of what it held is sent.
    pub digest_due: Timestamp,
}

impl EmailLimit {
    /// Decides an alert for an address whose stored window is `current`, at `now`.
    pub fn admit(&self, current: Option<RecipientWindow>, now: Timestamp) -> Admission {
        let open = current.filter(|window| now < window.start.plus(self.window));
        let window = open.unwrap_or(RecipientWindow { start: now, sent: 0 });
        let send = window.sent < self.per_window;
        Admission {
            send,
            window: RecipientWindow {
                start: window.start,
                sent: window.sent + u32::from(send),
            },
            digest_due: window.start.plus(self.window),
        }
    }
}

/// The key an address is counted under: addresses differing only in case reach the
/// same mailbox at nearly every mail server, so they share one count.
pub fn recipient_key(address: &str) -> String {
    address.trim().to_lowercase()
}

/// An alert's recipients, once each: `(key, address)` with the first spelling of each
/// key, sorted by key (the order nodes lock the addresses' windows in).
pub fn distinct_recipients(addresses: &[String]) -> Vec<(String, String)> {
    let mut distinct: BTreeMap<String, String> = BTreeMap::new();
    for address in addresses {
        distinct
            .entry(recipient_key(address))
            .or_insert_with(|| address.clone());
    }
    distinct.into_iter().collect()
}

/// An alert held back from an address, as its digest lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeldAlert {
    /// `alr-…`.
    pub alert_id: String,
    /// `whk-…`.
    pub webhook_id: String,
    /// Why it was raised.
    pub kind: AlertKind,
    /// The e-mail's subject, which names the webhook.
    pub subject: String,
    /// When it was raised.
    pub create_time: Timestamp,
}

/// A digest e-mail: plain text only, since it quotes tenants' webhook names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DigestMessage {
    /// Subject line (no tenant text).
    pub subject: String,
    /// Plain-text body.
    pub text: String,
}

/// Writes the digest of the alerts held back from `recipient` (in any order): how many,
/// over what time, per webhook and kind, then each alert.
pub fn digest(recipient: &str, held: &[HeldAlert], limit: &EmailLimit) -> DigestMessage {
    let mut held: Vec<&HeldAlert> = held.iter().collect();
    held.sort_by(|a, b| (a.create_time, &a.alert_id).cmp(&(b.create_time, &b.alert_id)));
    let count = held.len();
    let plural = if count == 1 { "" } else { "s" };
    let subject = format!("[hookrelay] {count} alert{plural} held back");
    let mut text = format!(
        "{recipient} had been sent {} alert e-mails within {}, the most it may get, so hookrelay held back \
         {count} more alert{plural} and lists them here instead.\n",
        limit.per_window,
        describe(limit.window),
    );
    if let (Some(first), Some(last)) = (held.first(), held.last()) {
        let _ = writeln!(
            text,
            "Raised from {} to {}.",
            first.create_time.to_rfc3339(),
            last.create_time.to_rfc3339()
        );
    }
    text.push_str("\nPer webhook:\n");
    let mut per_webhook: BTreeMap<&str, BTreeMap<&str, usize>> = BTreeMap::new();
    for alert in &held {
        *per_webhook
            .entry(&alert.webhook_id)
            .or_default()
            .entry(alert.kind.as_str())
            .or_default() += 1;
    }
    for (webhook, kinds) in &per_webhook {
        let kinds: Vec<String> = kinds.iter().map(|(kind, n)| format!("{n} {kind}")).collect();
        let _ = writeln!(text, "  {webhook}: {}", kinds.join(", "));
    }
    text.push_str("\nAlerts:\n");
    for alert in &held {
        let _ = writeln!(
            text,
            "  {}  {}  {}  {}  {}",
            alert.create_time.to_rfc3339(),
            alert.kind.as_str(),
            alert.webhook_id,
            alert.alert_id,
            one_line(&alert.subject)
        );
    }
    text.push_str("\nEach alert is also listed by GET /v1/webhooks/{id}/alerts.\n");
    DigestMessage { subject, text }
}

/// Tenant text on one line: control characters (line breaks among them) become spaces.
fn one_line(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

/// A window as a reader says it: whole hours, minutes or seconds.
fn describe(window: Duration) -> String {
    let seconds = window.as_secs();
    match seconds {
        s if s >= 3600 && s % 3600 == 0 => format!("{} h", s / 3600),
        s if s >= 60 && s % 60 == 0 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

#[cfg(test)]
mod tests;
