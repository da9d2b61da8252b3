//! Alerts for failing webhooks, as pure rules: how an attempt moves a webhook's health,
//! when that calls for an e-mail or for disabling the webhook, and what the e-mail says.
//! The store applies these rules in the transaction that records the attempt, so health,
//! alerts and attempts never disagree.

use std::fmt::Write as _;
use std::time::Duration;

use crate::delivery::ErrorKind;
use crate::id::{AlertId, SpaceId, WebhookId};
use crate::timestamp::Timestamp;

/// Where an alert stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlertStatus {
    /// Waiting to be sent (or to be sent again after the mail server failed).
    Pending,
    /// Accepted by the mail server.
    Sent,
    /// Not sent because e-mail is off; it was logged instead.
    Skipped,
    /// Not e-mailed because every recipient had reached its alert e-mail limit; each
    /// gets it listed in a digest when its window closes.
    Suppressed,
}

impl AlertStatus {
    /// Every status.
    pub const ALL: [AlertStatus; 4] = [Self::Pending, Self::Sent, Self::Skipped, Self::Suppressed];

    /// The wire and database name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Sent => "sent",
            Self::Skipped => "skipped",
            Self::Suppressed => "suppressed",
        }
    }

    /// From the wire and database name.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// A stored alert.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alert {
    /// `alr-…`.
    pub id: AlertId,
    /// The webhook's space.
    pub space_id: SpaceId,
    /// The webhook it is about.
    pub webhook_id: WebhookId,
    /// Why it was raised.
    pub kind: AlertKind,
    /// The webhook's `alertEmails` when it was raised.
    pub recipients: Vec<String>,
    /// The e-mail.
    pub message: AlertMessage,
    /// Where it stands.
    pub status: AlertStatus,
    /// Sending attempts made.
    pub attempts: u32,
    /// When the next sending attempt is due (pending alerts).
    pub next_attempt_time: Option<Timestamp>,
    /// Why the last sending attempt failed.
    pub last_error: Option<String>,
    /// When it was raised.
    pub create_time: Timestamp,
    /// When the mail server accepted it.
    pub sent_time: Option<Timestamp>,
}

/// Why an alert is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlertKind {
    /// Deliveries keep failing.
    Failing,
    /// The first success after a failing alert.
    Recovered,
    /// The webhook was disabled after failing for too long.
    Disabled,
}

impl AlertKind {
    /// Every kind.
    pub const ALL: [AlertKind; 3] = [Self::Failing, Self::Recovered, Self::Disabled];

    /// The wire and database name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Failing => "failing",
            Self::Recovered => "recovered",
            Self::Disabled => "disabled",
        }
    }

    /// From the wire and database name.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

/// The thresholds, all configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AlertPolicy {
    /// A webhook whose last this-many attempts all failed is failing.
    pub failing_after_attempts: u32,
    /// At most one failing alert per webhook per this period.
    pub quiet_period: Duration,
    /// A webhook with attempts but no success for this long is disabled.
    pub disable_after: Duration,
}

impl Default for AlertPolicy {
    fn default() -> Self {
        Self {
            failing_after_attempts: 5,
            quiet_period: Duration::from_secs(6 * 3600),
            disable_after: Duration::from_secs(3 * 24 * 3600),
        }
    }
}

/// What hookrelay remembers about a webhook's recent attempts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WebhookHealth {
    /// Failed attempts since the last success.
    pub consecutive_failures: u32,
    /// When the current run of failures began.
    pub failing_since: Option<Timestamp>,
    /// Deliveries that exhausted their retries since then.
    pub failed_deliveries: u32,
    /// The last failure's status code, if the receiver answered.
    pub last_status_code: Option<u16>,
    /// The last failure's kind.
    pub last_error_kind: Option<ErrorKind>,
    /// The start of the last failure's response body.
    pub last_response_body: Option<String>,
    /// When the last failing alert was queued.
    pub last_failing_alert: Option<Timestamp>,
    /// Whether a failing alert went out since the last success (a success then sends
    /// a recovered alert).
    pub alerted: bool,
}

/// One attempt, as the health rules see it.
#[derive(Clone, Debug)]
pub struct AttemptSummary<'a> {
    /// When it started.
    pub start_time: Timestamp,
    /// Whether it succeeded.
    pub succeeded: bool,
    /// Whether its delivery has no attempts left.
    pub delivery_exhausted: bool,
    /// The status received.
    pub status_code: Option<u16>,
    /// Why it failed.
    pub error_kind: Option<ErrorKind>,
    /// The start of the response body.
    pub response_body: Option<&'a str>,
}

/// What an attempt calls for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HealthChange {
    /// Alerts to queue (in this order).
    pub alerts: Vec<AlertKind>,
    /// Whether to disable the webhook now.
    pub disable: bool,
}

/// Applies one attempt to a webhook's health.
pub fn on_attempt(
    health: &mut WebhookHealth,
    attempt: &AttemptSummary<'_>,
    now: Timestamp,
    policy: &AlertPolicy,
) -> HealthChange {
    let mut change = HealthChange::default();
    if attempt.succeeded {
        if health.alerted {
            change.alerts.push(AlertKind::Recovered);
        }
        *health = WebhookHealth::default();
        return change;
    }
    health.consecutive_failures = health.consecutive_failures.saturating_add(1);
    let since = *health.failing_since.get_or_insert(attempt.start_time);
    if attempt.delivery_exhausted {
        health.failed_deliveries = health.failed_deliveries.saturating_add(1);
    }
    health.last_status_code = attempt.status_code;
    health.last_error_kind = attempt.error_kind;
    health.last_response_body = attempt.response_body.map(str::to_owned);

    if now.duration_since(since) >= policy.disable_after {
        change.disable = true;
        change.alerts.push(AlertKind::Disabled);
        return change;
    }
    let failing = health.consecutive_failures >= policy.failing_after_attempts || attempt.delivery_exhausted;
    let quiet = health
        .last_failing_alert
        .is_some_and(|last| now.duration_since(last) < policy.quiet_period);
    if failing && !quiet {
        health.last_failing_alert = Some(now);
        health.alerted = true;
        change.alerts.push(AlertKind::Failing);
    }
    change
}

/// The webhook an alert is about.
#[derive(Clone, Debug)]
pub struct AlertSubject<'a> {
    /// `whk-…`.
    pub id: &'a str,
    /// Its name.
    pub name: &'a str,
    /// Its URL.
    pub url: &'a str,
}

/// An alert e-mail: subject, plain text and HTML.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlertMessage {
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub text: String,
    /// HTML body.
    pub html: String,
}

/// Lines of the last response body quoted in an alert.
const BODY_LINES: usize = 5;

/// Writes the e-mail for an alert. It names the webhook and what went wrong, never a
/// secret, a header value or a payload.
pub fn render(kind: AlertKind, webhook: &AlertSubject<'_>, health: &WebhookHealth) -> AlertMessage {
    let inspect = format!("hookrelay deliveries list --webhook {}", webhook.id);
    let (subject, lead) = match kind {
        AlertKind::Failing => (
            format!("[hookrelay] Webhook \"{}\" is failing", webhook.name),
            "Deliveries to this webhook keep failing. hookrelay keeps retrying them on schedule.",
        ),
        AlertKind::Recovered => (
            format!("[hookrelay] Webhook \"{}\" has recovered", webhook.name),
            "A delivery to this webhook succeeded again after failures.",
        ),
        AlertKind::Disabled => (
            format!("[hookrelay] Webhook \"{}\" was disabled", webhook.name),
            "No delivery to this webhook has succeeded for too long, so hookrelay disabled it. \
             Its pending deliveries were cancelled. Fix the endpoint, then re-enable the webhook \
             (PATCH /v1/webhooks/{id} with {\"enabled\": true}, or `hookrelay webhook update <id> --enabled`); \
             re-enabling resets its failure record.",
        ),
    };
    let mut facts: Vec<(&str, String)> = vec![
        ("Webhook", webhook.name.to_owned()),
        ("Id", webhook.id.to_owned()),
        ("URL", webhook.url.to_owned()),
    ];
    if kind != AlertKind::Recovered {
        if let Some(since) = health.failing_since {
            facts.push(("Failing since", since.to_rfc3339()));
        }
        facts.push(("Failed attempts", health.consecutive_failures.to_string()));
        facts.push(("Failed deliveries", health.failed_deliveries.to_string()));
        let last = match (health.last_status_code, health.last_error_kind) {
            (Some(code), _) => format!("HTTP {code}"),
            (None, Some(kind)) => kind.as_str().to_owned(),
            (None, None) => "unknown".to_owned(),
        };
        facts.push(("Last error", last));
    }
    let body_lines: Vec<&str> = health
        .last_response_body
        .as_deref()
        .filter(|_| kind != AlertKind::Recovered)
        .map(|b| b.lines().take(BODY_LINES).collect())
        .unwrap_or_default();

    let mut text = format!("{lead}\n\n");
    for (label, value) in &facts {
        let _ = writeln!(text, "{label}: {value}");
    }
    if !body_lines.is_empty() {
        text.push_str("\nLast response body (first lines):\n");
        for line in &body_lines {
            let _ = writeln!(text, "  {line}");
        }
    }
    let _ = write!(text, "\nInspect its deliveries:\n  {inspect}\n");

    let mut html = format!("<p>{}</p>\n<table>\n", escape(lead));
    for (label, value) in &facts {
        let _ = writeln!(
            html,
            "<tr><th align=\"left\">{}</th><td>{}</td></tr>",
            escape(label),
            escape(value)
        );
    }
    html.push_str("</table>\n");
    if !body_lines.is_empty() {
        let _ = writeln!(
            html,
            "<p>Last response body (first lines):</p>\n<pre>{}</pre>",
            escape(&body_lines.join("\n"))
        );
    }
    let _ = writeln!(html, "<p>Inspect its deliveries:</p>\n<pre>{}</pre>", escape(&inspect));
    AlertMessage { subject, text, html }
}

fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '&' => escaped.push_str("&amp;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(at: i64, exhausted: bool) -> AttemptSummary<'static> {
        AttemptSummary {
            start_time: Timestamp::from_micros(at),
            succeeded: false,
            delivery_exhausted: exhausted,
            status_code: Some(500),
            error_kind: Some(ErrorKind::HttpStatus),
            response_body: Some("oops <b>\nline 2"),
        }
    }

    const SECOND: i64 = 1_000_000;

    #[test]
    fn five_failures_alert_once_per_quiet_period_then_recovery_and_disable() {
        let policy = AlertPolicy {
            failing_after_attempts: 5,
            quiet_period: Duration::from_secs(60),
            disable_after: Duration::from_secs(600),
        };
        let mut health = WebhookHealth::default();
        for i in 0..4 {
            let change = on_attempt(
                &mut health,
                &failure(i * SECOND, false),
                Timestamp::from_micros(i * SECOND),
                &policy,
            );
            assert_eq!(change, HealthChange::default());
        }
        let fifth = on_attempt(
            &mut health,
            &failure(4 * SECOND, false),
            Timestamp::from_micros(4 * SECOND),
            &policy,
        );
        assert_eq!(fifth.alerts, [AlertKind::Failing]);
        // Quiet: no second failing alert within 60 s, even for an exhausted delivery.
        let quiet = on_attempt(
            &mut health,
            &failure(30 * SECOND, true),
            Timestamp::from_micros(30 * SECOND),
            &policy,
        );
        assert!(quiet.alerts.is_empty());
        let later = on_attempt(
            &mut health,
            &failure(70 * SECOND, false),
            Timestamp::from_micros(70 * SECOND),
            &policy,
        );
        assert_eq!(later.alerts, [AlertKind::Failing]);
        assert_eq!(health.failed_deliveries, 1);
        let disabled = on_attempt(
            &mut health,
            &failure(601 * SECOND, false),
            Timestamp::from_micros(601 * SECOND),
            &policy,
        );
        assert_eq!(
            disabled,
            HealthChange {
                alerts: vec![AlertKind::Disabled],
                disable: true
            }
        );

        let mut recovering = WebhookHealth {
            alerted: true,
            consecutive_failures: 7,
            ..WebhookHealth::default()
        };
        let success = AttemptSummary {
            succeeded: true,
            ..failure(0, false)
        };
        assert_eq!(
            on_attempt(&mut recovering, &success, Timestamp::from_micros(0), &policy).alerts,
            [AlertKind::Recovered]
        );
        assert_eq!(recovering, WebhookHealth::default());
        assert!(
            on_attempt(&mut recovering, &success, Timestamp::from_micros(0), &policy)
                .alerts
                .is_empty()
        );
    }

    #[test]
    fn an_exhausted_delivery_alerts_before_five_failures() {
        let mut health = WebhookHealth::default();
        let change = on_attempt(
            &mut health,
            &failure(0, true),
            Timestamp::from_micros(0),
            &AlertPolicy::default(),
        );
        assert_eq!(change.alerts, [AlertKind::Failing]);
    }

    #[test]
    fn the_message_names_the_webhook_and_escapes_html() {
        let mut health = WebhookHealth::default();
        on_attempt(
            &mut health,
            &failure(0, true),
            Timestamp::from_micros(0),
            &AlertPolicy::default(),
        );
        let subject = AlertSubject {
            id: "whk-1",
            name: "Prod <main>",
            url: "https://a.example/h",
        };
        let message = render(AlertKind::Failing, &subject, &health);
        assert_eq!(message.subject, "[hookrelay] Webhook \"Prod <main>\" is failing");
        for part in [&message.text, &message.html] {
            assert!(part.contains("whk-1") && part.contains("https://a.example/h"));
            assert!(part.contains("HTTP 500"));
            assert!(part.contains("hookrelay deliveries list --webhook whk-1"));
        }
        assert!(message.text.contains("oops <b>"));
        assert!(message.html.contains("oops &lt;b&gt;") && message.html.contains("Prod &lt;main&gt;"));
    }
}
