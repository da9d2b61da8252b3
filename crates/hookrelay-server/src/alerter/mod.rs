//! The alerter: sends the alert e-mails that recording attempts queued. Alerts are
//! claimed under a lease, so any number of nodes can run it without sending one twice,
//! and an alert whose sending fails stays queued and is tried again later, so a mail
//! server outage delays alerts and loses none. Each address gets at most
//! `alert_emails_per_hour` alert e-mails per window (`core::alert_limit`, counted in the
//! store); the alerts held back reach it in one digest when its window closes (`digest`).

use std::sync::Arc;
use std::time::Duration;

use hookrelay_core::alert::Alert;
use hookrelay_core::alert_limit::EmailLimit;
use hookrelay_core::delivery::RetrySchedule;
use hookrelay_core::Timestamp;
use hookrelay_store::{AlertOutcome, Store};
use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::delivery::Wakeup;
use crate::error_chain;
use crate::telemetry::metrics::{self, DbOperation};

mod digest;

/// Alerts claimed at once: one, so a slow mail server cannot outlast the lease of
/// alerts still waiting in a batch.
const CLAIM_BATCH: u32 = 1;
/// How long a claim on an alert holds: well over one SMTP conversation.
const LEASE: Duration = Duration::from_secs(300);
/// How often an idle alerter looks for alerts nobody told it about (other nodes).
const IDLE_POLL: Duration = Duration::from_secs(2);

/// Where alerts are sent from, and through which server.
#[derive(Clone)]
pub struct SmtpSettings {
    /// `smtp://host:port`, `smtps://user:pass@host`, `smtp://host?tls=required`.
    pub url: String,
    /// The sender.
    pub from: Mailbox,
    /// Time a conversation with the mail server may take.
    pub timeout: Duration,
}

impl std::fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry the mail server's password.
        f.debug_struct("SmtpSettings")
            .field("url", &"<redacted>")
            .field("from", &self.from)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// How alerts are sent.
#[derive(Clone, Debug)]
pub struct AlerterConfig {
    /// The mail server; `None` turns e-mail off (alerts are recorded and logged).
    pub smtp: Option<SmtpSettings>,
    /// Delays between sending attempts; the last one repeats for as long as it takes.
    pub retry_schedule: RetrySchedule,
    /// Alert e-mails per address and window.
    pub email_limit: EmailLimit,
}

/// A running alerter.
pub struct Alerter {
    task: JoinHandle<()>,
    stop: watch::Sender<bool>,
}

impl Alerter {
    /// Starts sending queued alerts.
    pub fn start(
        store: Arc<dyn Store>,
        config: AlerterConfig,
        wakeup: Wakeup,
    ) -> Result<Self, lettre::transport::smtp::Error> {
        let mailer = match &config.smtp {
            Some(smtp) => Some(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(&smtp.url)?
                    .timeout(Some(smtp.timeout))
                    .build(),
            ),
            None => None,
        };
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(run(store, config, mailer, wakeup, stopped));
        Ok(Self { task, stop })
    }

    /// Stops after the alert being sent, if any (at most one is claimed at a time).
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

async fn run(
    store: Arc<dyn Store>,
    config: AlerterConfig,
    mailer: Option<AsyncSmtpTransport<Tokio1Executor>>,
    wakeup: Wakeup,
    mut stop: watch::Receiver<bool>,
) {
    while !*stop.borrow() {
        let now = Timestamp::now();
        let claim = store.claim_alerts(now, now.plus(LEASE), CLAIM_BATCH);
        let claimed = match metrics::time_db(DbOperation::ClaimAlerts, claim).await {
            Ok(claimed) => claimed,
            Err(error) => {
                tracing::error!(error = %error_chain(&error), "claiming alerts failed");
                Vec::new()
            }
        };
        let mut full = claimed.len() as u32 == CLAIM_BATCH;
        for alert in claimed {
            let outcome = send(store.as_ref(), &config, mailer.as_ref(), &alert).await;
            metrics::alert_finished(&outcome);
            let finish = store.finish_alert(&alert.id, &outcome, Timestamp::now());
            if let Err(error) = metrics::time_db(DbOperation::FinishAlert, finish).await {
                tracing::error!(error = %error_chain(&error), alert = %alert.id, "recording an alert failed");
            }
        }
        if let (Some(mailer), Some(smtp)) = (mailer.as_ref(), config.smtp.as_ref()) {
            full |= digest::send_due(store.as_ref(), &config, mailer, smtp).await;
        }
        if full {
            continue;
        }
        tokio::select! {
            () = wakeup.woken() => {}
            () = tokio::time::sleep(IDLE_POLL) => {}
            _ = stop.changed() => {}
        }
    }
}

async fn send(
    store: &dyn Store,
    config: &AlerterConfig,
    mailer: Option<&AsyncSmtpTransport<Tokio1Executor>>,
    alert: &Alert,
) -> AlertOutcome {
    let (Some(mailer), Some(smtp)) = (mailer, config.smtp.as_ref()) else {
        tracing::warn!(
            alert = %alert.id,
            webhook = %alert.webhook_id,
            kind = alert.kind.as_str(),
            recipients = ?alert.recipients,
            subject = %alert.message.subject,
            "alert not e-mailed: e-mail is off"
        );
        return AlertOutcome::Skipped;
    };
    // The full error goes to the log; the alert keeps a reason its tenant may read.
    let retry = |detail: String, reason: &'static str| {
        let delay = retry_delay(config, alert.attempts + 1);
        tracing::warn!(alert = %alert.id, error = %detail, retry_in = ?delay, "sending an alert failed");
        AlertOutcome::Retry {
            at: Timestamp::now().plus(delay),
            error: reason.to_owned(),
        }
    };
    let recipients = match store
        .admit_alert_recipients(alert, &config.email_limit, Timestamp::now())
        .await
    {
        Ok(recipients) => recipients,
        Err(error) => return retry(error_chain(&error), "the alert could not be sent for now"),
    };
    if recipients.is_empty() {
        tracing::info!(alert = %alert.id, webhook = %alert.webhook_id, "alert held for digests: every recipient is at its limit");
        return AlertOutcome::Suppressed;
    }
    let mut builder = Message::builder()
        .from(smtp.from.clone())
        .subject(&alert.message.subject);
    for recipient in &recipients {
        match recipient.parse::<Mailbox>() {
            Ok(mailbox) => builder = builder.to(mailbox),
            Err(error) => tracing::warn!(alert = %alert.id, %error, "skipping an unusable recipient"),
        }
    }
    let message = match builder.multipart(MultiPart::alternative_plain_html(
        alert.message.text.clone(),
        alert.message.html.clone(),
    )) {
        Ok(message) => message,
        Err(error) => {
            return retry(
                format!("cannot build the e-mail: {error}"),
                "the alert e-mail could not be built",
            )
        }
    };
    match mailer.send(message).await {
        Ok(_) => {
            tracing::info!(alert = %alert.id, webhook = %alert.webhook_id, kind = alert.kind.as_str(), "alert sent");
            AlertOutcome::Sent
        }
        Err(error) => retry(error_chain(&error), tenant_reason(&error)),
    }
}

/// The delay before sending attempt `number` (from 1); the schedule's last delay
/// repeats, so an alert is never given up.
fn retry_delay(config: &AlerterConfig, number: u32) -> Duration {
    let number = number.min(config.retry_schedule.attempts());
    config
        .retry_schedule
        .delay_before(number)
        .unwrap_or(Duration::from_secs(60))
}

/// Why sending failed, in words the webhook's tenant may read through the API: the mail
/// server's own text names the operator's hosts and accounts and answers about their
/// credentials, so it goes to the log only.
fn tenant_reason(error: &lettre::transport::smtp::Error) -> &'static str {
    if error.is_permanent() {
        "the mail server refused the message"
    } else if error.is_transient() {
        "the mail server refused the message for now"
    } else if error.is_timeout() {
        "the mail server did not answer in time"
    } else if error.is_tls() {
        "the secure connection to the mail server failed"
    } else if error.is_response() || error.is_client() {
        "the conversation with the mail server failed"
    } else {
        "the mail server could not be reached"
    }
}
