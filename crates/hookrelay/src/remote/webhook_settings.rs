//! `hookrelay webhook settings`: show a webhook's delivery settings, or change those
//! named by flags.

use clap::{Args, ValueEnum};
use hookrelay_client::{DeliveryFormat, DeliveryOrdering, UpdateWebhookSettings, WebhookApi, WebhookSettings};

use super::print_one;
use crate::output;

#[derive(Args)]
pub struct SettingsArgs {
    /// The webhook, `whk-…`.
    id: String,
    /// How deliveries are put on the wire.
    #[arg(long, value_enum)]
    format: Option<FormatArg>,
    /// `object`: deliveries of one object go out one at a time, in publish order.
    #[arg(long, value_enum)]
    ordering: Option<OrderingArg>,
    /// At most this many deliveries a second, all nodes together.
    #[arg(long, value_name = "N", conflicts_with = "no_rate_limit")]
    max_deliveries_per_second: Option<u32>,
    /// Remove the rate limit.
    #[arg(long)]
    no_rate_limit: bool,
    /// The webhook's own retry delays, e.g. `0s,5s,5m,1h`.
    #[arg(
        long,
        value_name = "DELAYS",
        value_delimiter = ',',
        conflicts_with = "server_retry_schedule"
    )]
    retry_schedule: Option<Vec<String>>,
    /// Go back to the server's retry schedule.
    #[arg(long)]
    server_retry_schedule: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum FormatArg {
    Monime,
    StandardWebhooks,
}

#[derive(Clone, Copy, ValueEnum)]
enum OrderingArg {
    None,
    Object,
}

impl SettingsArgs {
    /// The change the flags ask for; all `None` when none is given.
    fn into_update(self) -> (String, UpdateWebhookSettings) {
        let update = UpdateWebhookSettings {
            format: self.format.map(|f| match f {
                FormatArg::Monime => DeliveryFormat::Monime,
                FormatArg::StandardWebhooks => DeliveryFormat::StandardWebhooks,
            }),
            ordering: self.ordering.map(|o| match o {
                OrderingArg::None => DeliveryOrdering::None,
                OrderingArg::Object => DeliveryOrdering::Object,
            }),
            max_deliveries_per_second: match (self.max_deliveries_per_second, self.no_rate_limit) {
                (Some(rate), _) => Some(Some(rate)),
                (None, true) => Some(None),
                (None, false) => None,
            },
            retry_schedule: match (self.retry_schedule, self.server_retry_schedule) {
                (Some(delays), _) => Some(Some(delays)),
                (None, true) => Some(None),
                (None, false) => None,
            },
        };
        (self.id, update)
    }
}

/// Shows the settings, after changing them if any flag asks to.
pub async fn settings(api: WebhookApi<'_>, args: SettingsArgs, json: bool) -> anyhow::Result<()> {
    let (id, update) = args.into_update();
    let response = if update == UpdateWebhookSettings::default() {
        api.settings(&id).await?
    } else {
        api.update_settings(&id, &update).await?
    };
    print_one(json, &response, show_settings);
    Ok(())
}

fn show_settings(settings: &WebhookSettings) {
    output::fields(&[
        ("format", wire(&settings.format)),
        ("ordering", wire(&settings.ordering)),
        (
            "maxDeliveriesPerSecond",
            settings
                .max_deliveries_per_second
                .map_or_else(|| "no limit".to_owned(), |rate| rate.to_string()),
        ),
        (
            "retrySchedule",
            settings
                .retry_schedule
                .as_ref()
                .map_or_else(|| "the server's".to_owned(), |delays| delays.join(", ")),
        ),
    ]);
}

/// A settings enum's wire name, as the server spells it.
fn wire(value: &impl serde::Serialize) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}
