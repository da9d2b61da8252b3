use std::time::Duration;

use super::*;

const LIMIT: EmailLimit = EmailLimit {
    per_window: 2,
    window: Duration::from_secs(3600),
};

fn at(seconds: i64) -> Timestamp {
    Timestamp::from_micros(1_700_000_000_000_000 + seconds * 1_000_000)
}

#[test]
fn the_first_alerts_of_a_window_are_sent_and_the_rest_held_until_it_closes() {
    let first = LIMIT.admit(None, at(0));
    assert!(first.send);
    assert_eq!(first.window, RecipientWindow { start: at(0), sent: 1 });
    let second = LIMIT.admit(Some(first.window), at(10));
    assert!(second.send);
    assert_eq!(second.window.sent, 2);
    let third = LIMIT.admit(Some(second.window), at(20));
    assert!(!third.send);
    assert_eq!(third.window, second.window, "a held alert does not count");
    assert_eq!(third.digest_due, at(3600));
    let fourth = LIMIT.admit(Some(third.window), at(3599));
    assert!(!fourth.send);
    assert_eq!(fourth.digest_due, at(3600));
}

#[test]
fn a_closed_window_opens_a_new_one() {
    let full = RecipientWindow { start: at(0), sent: 2 };
    let next = LIMIT.admit(Some(full), at(3600));
    assert!(next.send);
    assert_eq!(
        next.window,
        RecipientWindow {
            start: at(3600),
            sent: 1
        }
    );
    assert_eq!(next.digest_due, at(7200));
}

#[test]
fn a_limit_of_zero_holds_everything() {
    let none = EmailLimit { per_window: 0, ..LIMIT };
    let admission = none.admit(None, at(5));
    assert!(!admission.send);
    assert_eq!(admission.window, RecipientWindow { start: at(5), sent: 0 });
    assert_eq!(admission.digest_due, at(3605));
}

#[test]
fn addresses_differing_in_case_share_a_count() {
    assert_eq!(recipient_key(" OnCall@Example.COM"), "oncall@example.com");
    let given = ["b@x".to_owned(), "A@x".to_owned(), "a@X".to_owned()];
    let distinct = distinct_recipients(&given);
    assert_eq!(
        distinct,
        [
            ("a@x".to_owned(), "A@x".to_owned()),
            ("b@x".to_owned(), "b@x".to_owned())
        ]
    );
}

fn held(id: &str, webhook: &str, kind: AlertKind, seconds: i64, subject: &str) -> HeldAlert {
    HeldAlert {
        alert_id: id.into(),
        webhook_id: webhook.into(),
        kind,
        subject: subject.into(),
        create_time: at(seconds),
    }
}

#[test]
fn the_digest_counts_per_webhook_and_lists_each_alert_in_order() {
    let alerts = [
        held(
            "alr-3",
            "whk-b",
            AlertKind::Disabled,
            30,
            "[hookrelay] Webhook \"B\" was disabled",
        ),
        held(
            "alr-1",
            "whk-a",
            AlertKind::Failing,
            10,
            "[hookrelay] Webhook \"A\" is failing",
        ),
        held(
            "alr-2",
            "whk-a",
            AlertKind::Recovered,
            20,
            "[hookrelay] Webhook \"A\" has recovered",
        ),
    ];
    let digest = digest("ops@example.com", &alerts, &LIMIT);
    assert_eq!(digest.subject, "[hookrelay] 3 alerts held back");
    let text = &digest.text;
    assert!(
        text.contains("ops@example.com had been sent 2 alert e-mails within 1 h"),
        "{text}"
    );
    assert!(
        text.contains(&format!("from {} to {}", at(10).to_rfc3339(), at(30).to_rfc3339())),
        "{text}"
    );
    assert!(text.contains("whk-a: 1 failing, 1 recovered"), "{text}");
    assert!(text.contains("whk-b: 1 disabled"), "{text}");
    let (one, two, three) = (
        text.find("alr-1").unwrap(),
        text.find("alr-2").unwrap(),
        text.find("alr-3").unwrap(),
    );
    assert!(one < two && two < three, "oldest first: {text}");
}

#[test]
fn tenant_text_stays_on_its_line() {
    let alerts = [held(
        "alr-1",
        "whk-a",
        AlertKind::Failing,
        0,
        "Webhook \"x\r\nBcc: victim\" is failing",
    )];
    let text = digest("ops@example.com", &alerts, &LIMIT).text;
    assert!(!text.contains("\r") && text.contains("x  Bcc: victim"), "{text}");
    assert_eq!(digest("a@b", &alerts, &LIMIT).subject, "[hookrelay] 1 alert held back");
}
