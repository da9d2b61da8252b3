//! `hookrelay space create|list|disable|enable|set-quota|set-retention`: an operator's hand on the
//! spaces (tenants), on the database itself.

use anyhow::bail;
use clap::{ArgMatches, Subcommand};
use std::time::Duration;

use hookrelay_core::delivery::parse_duration;
use hookrelay_core::quota::QuotaOverrides;
use hookrelay_core::retention::RetentionPolicy;
use hookrelay_core::SpaceId;
use hookrelay_store::{QuotaChange, RetentionChange, SpaceSummary};

use crate::output;
use crate::serve::StoreArgs;
use crate::token::space_id;

#[derive(Subcommand)]
pub enum SpaceCommand {
    /// Create a space and print its id (then give it a token: `hookrelay token create`).
    Create {
        /// The new space's id, `spc-…`. [default: a new random one]
        #[arg(long)]
        id: Option<String>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List every space: when it was created, whether it is disabled, its webhooks,
    /// tokens, own quotas and retention (`-`: the server's setting).
    List {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Disable a space: its tokens are refused (403 space_disabled) and its deliveries
    /// wait, none cancelled, until it is enabled.
    Disable {
        /// The space, `spc-…`.
        #[arg(long)]
        space: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Enable a disabled space: its tokens work again and its waiting deliveries go out.
    Enable {
        /// The space, `spc-…`.
        #[arg(long)]
        space: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Set a space's own quotas over the server's settings; `default` returns one to
    /// the setting. Nodes apply a change within a second.
    SetQuota {
        /// The space, `spc-…`.
        #[arg(long)]
        space: String,
        /// Webhooks the space may have (max_webhooks_per_space).
        #[arg(long, value_name = "N|default", value_parser = parse_quota)]
        max_webhooks: Option<QuotaValue>,
        /// Events the space may publish per second on each node (max_publish_rate).
        #[arg(long, value_name = "N|default", value_parser = parse_quota)]
        max_publish_rate: Option<QuotaValue>,
        /// Deliveries one publish may create (max_fan_out).
        #[arg(long, value_name = "N|default", value_parser = parse_quota)]
        max_fan_out: Option<QuotaValue>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Set how long a space's history is kept, over the server's `retention` and
    /// `payload_retention`; `default` returns one to the setting. Durations as
    /// `90s`, `12h`, `7d`.
    SetRetention {
        /// The space, `spc-…`.
        #[arg(long)]
        space: String,
        /// Events whose deliveries have all finished are deleted this long after publishing.
        #[arg(long, value_name = "DURATION|default", value_parser = parse_retention)]
        retention: Option<RetentionValue>,
        /// Events' data and response bodies are dropped this long after publishing
        /// (shorter than the retention).
        #[arg(long, value_name = "DURATION|default", value_parser = parse_retention)]
        payload_retention: Option<RetentionValue>,
        #[command(flatten)]
        store: StoreArgs,
    },
}

/// A retention as given: a duration, or `None` for the server's setting.
#[derive(Clone, Copy, Debug)]
pub struct RetentionValue(Option<Duration>);

fn parse_retention(text: &str) -> Result<RetentionValue, String> {
    match text {
        "default" => Ok(RetentionValue(None)),
        duration => match parse_duration(duration) {
            Some(duration) if !duration.is_zero() => Ok(RetentionValue(Some(duration))),
            _ => Err("must be a duration such as 90s, 12h or 7d, or `default`".to_owned()),
        },
    }
}

/// A duration in the largest unit that keeps it whole, as `parse_duration` reads it.
fn show_duration(duration: Duration) -> String {
    let millis = duration.as_millis();
    let units = [(86_400_000, "d"), (3_600_000, "h"), (60_000, "m"), (1_000, "s")];
    match units.iter().find(|(size, _)| millis.is_multiple_of(*size)) {
        Some((size, unit)) => format!("{}{unit}", millis / size),
        None => format!("{millis}ms"),
    }
}

/// A quota as given: a number, or `None` for the server's setting.
#[derive(Clone, Copy, Debug)]
pub struct QuotaValue(Option<u32>);

fn parse_quota(text: &str) -> Result<QuotaValue, String> {
    match text {
        "default" => Ok(QuotaValue(None)),
        number => match number.parse::<u32>() {
            Ok(n) if n > 0 => Ok(QuotaValue(Some(n))),
            _ => Err("must be a whole number from 1 to 4294967295, or `default`".to_owned()),
        },
    }
}

pub async fn space(command: SpaceCommand, matches: &ArgMatches) -> anyhow::Result<()> {
    match command {
        SpaceCommand::Create { id, store } => {
            let space = match id {
                Some(id) => space_id(&id)?,
                None => SpaceId::generate(),
            };
            if !store.open(matches).await?.create_space(&space).await? {
                bail!("space {space} exists already");
            }
            println!("{space}");
        }
        SpaceCommand::List { store } => space_table(&store.open(matches).await?.list_spaces().await?),
        SpaceCommand::Disable { space, store } => set_disabled(&space, true, store, matches).await?,
        SpaceCommand::Enable { space, store } => set_disabled(&space, false, store, matches).await?,
        SpaceCommand::SetQuota {
            space,
            max_webhooks,
            max_publish_rate,
            max_fan_out,
            store,
        } => {
            let space = space_id(&space)?;
            let change = QuotaChange {
                max_webhooks: max_webhooks.map(|v| v.0),
                max_publish_rate: max_publish_rate.map(|v| v.0),
                max_fan_out: max_fan_out.map(|v| v.0),
            };
            if change == QuotaChange::default() {
                bail!("give at least one of --max-webhooks, --max-publish-rate, --max-fan-out");
            }
            if !store.open(matches).await?.set_space_quotas(&space, &change).await? {
                bail!("there is no space {space}");
            }
            println!("quotas of {space} set");
        }
        SpaceCommand::SetRetention {
            space,
            retention,
            payload_retention,
            store,
        } => {
            let change = RetentionChange {
                retention: retention.map(|v| v.0),
                payload_retention: payload_retention.map(|v| v.0),
            };
            set_retention(&space, change, store, matches).await?;
        }
    }
    Ok(())
}

async fn set_retention(
    space: &str,
    change: RetentionChange,
    store: StoreArgs,
    matches: &ArgMatches,
) -> anyhow::Result<()> {
    let space = space_id(space)?;
    if change == RetentionChange::default() {
        bail!("give at least one of --retention, --payload-retention");
    }
    let store = store.open(matches).await?;
    let Some(current) = store.list_spaces().await?.into_iter().find(|s| s.id == space) else {
        bail!("there is no space {space}");
    };
    let retention = change.retention.unwrap_or(current.retention.retention);
    let payload_retention = change.payload_retention.unwrap_or(current.retention.payload_retention);
    if let Some(retention) = retention {
        let policy = RetentionPolicy {
            retention,
            payload_retention,
        };
        policy.check().map_err(|reason| anyhow::anyhow!("{reason}"))?;
    }
    if !store.set_space_retention(&space, &change).await? {
        bail!("there is no space {space}");
    }
    println!("retention of {space} set");
    Ok(())
}

async fn set_disabled(space: &str, disabled: bool, store: StoreArgs, matches: &ArgMatches) -> anyhow::Result<()> {
    let space = space_id(space)?;
    if !store.open(matches).await?.set_space_disabled(&space, disabled).await? {
        bail!("there is no space {space}");
    }
    match disabled {
        true => println!("disabled {space}: its tokens are refused and its deliveries wait"),
        false => println!("enabled {space}"),
    }
    Ok(())
}

fn space_table(spaces: &[SpaceSummary]) {
    let quota = |value: Option<u32>| value.map_or_else(|| "-".to_owned(), |n| n.to_string());
    let kept = |value: Option<Duration>| value.map_or_else(|| "-".to_owned(), show_duration);
    let rows: Vec<Vec<String>> = spaces
        .iter()
        .map(|s| {
            let QuotaOverrides {
                max_webhooks,
                max_publish_rate,
                max_fan_out,
            } = s.quotas;
            vec![
                s.id.to_string(),
                s.create_time.to_rfc3339(),
                if s.disabled { "yes" } else { "no" }.to_owned(),
                s.webhooks.to_string(),
                s.tokens.to_string(),
                quota(max_webhooks),
                quota(max_publish_rate),
                quota(max_fan_out),
                kept(s.retention.retention),
                kept(s.retention.payload_retention),
            ]
        })
        .collect();
    output::table(
        &[
            "ID",
            "CREATED",
            "DISABLED",
            "WEBHOOKS",
            "TOKENS",
            "MAX WEBHOOKS",
            "MAX PUBLISH RATE",
            "MAX FAN-OUT",
            "RETENTION",
            "PAYLOAD RETENTION",
        ],
        &rows,
    );
}
