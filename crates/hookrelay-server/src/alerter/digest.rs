//! Digests: the alerts held back from an address under its alert e-mail limit, sent to
//! it as one plain-text e-mail when its window closes. Claimed under a lease like
//! alerts, so one node sends each; a digest whose sending fails is tried again after the
//! alert retry schedule's last (repeating) delay.

use hookrelay_core::alert_limit;
use hookrelay_core::Timestamp;
use hookrelay_store::{Digest, Store};
use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::{retry_delay, AlerterConfig, SmtpSettings, LEASE};
use crate::error_chain;

/// Addresses whose digests are claimed at once: one, as for alerts.
const CLAIM_BATCH: u32 = 1;

/// Sends the digests due now; whether a full batch was claimed (more may be due).
pub(super) async fn send_due(
    store: &dyn Store,
    config: &AlerterConfig,
    mailer: &AsyncSmtpTransport<Tokio1Executor>,
    smtp: &SmtpSettings,
) -> bool {
    let now = Timestamp::now();
    let digests = match store.claim_digests(now, now.plus(LEASE), CLAIM_BATCH).await {
        Ok(digests) => digests,
        Err(error) => {
            tracing::error!(error = %error_chain(&error), "claiming alert digests failed");
            return false;
        }
    };
    let full = digests.len() as u32 == CLAIM_BATCH;
    for digest in digests {
        let retry_at = match send(config, mailer, smtp, &digest).await {
            Ok(()) => None,
            Err(error) => {
                let delay = retry_delay(config, u32::MAX);
                tracing::warn!(recipient = %digest.recipient, %error, retry_in = ?delay, "sending an alert digest failed");
                Some(Timestamp::now().plus(delay))
            }
        };
        if let Err(error) = store.finish_digest(&digest, retry_at).await {
            tracing::error!(error = %error_chain(&error), recipient = %digest.recipient, "recording an alert digest failed");
        }
    }
    full
}

async fn send(
    config: &AlerterConfig,
    mailer: &AsyncSmtpTransport<Tokio1Executor>,
    smtp: &SmtpSettings,
    digest: &Digest,
) -> Result<(), String> {
    let message = alert_limit::digest(&digest.recipient, &digest.held, &config.email_limit);
    let to: Mailbox = digest.recipient.parse().map_err(|e| format!("unusable address: {e}"))?;
    let email = Message::builder()
        .from(smtp.from.clone())
        .to(to)
        .subject(message.subject)
        .header(ContentType::TEXT_PLAIN)
        .body(message.text)
        .map_err(|e| format!("cannot build the e-mail: {e}"))?;
    mailer.send(email).await.map_err(|e| error_chain(&e))?;
    tracing::info!(recipient = %digest.recipient, held = digest.held.len(), "alert digest sent");
    Ok(())
}
