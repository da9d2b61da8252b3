//! The commands that call a running server through the SDK, one module per resource:
//! `webhook`, `events`, `deliveries`, `tokens`, `erasures`. Connection settings come from flags or
//! `HOOKRELAY_URL`, `HOOKRELAY_SPACE_ID` and `HOOKRELAY_TOKEN`.

mod deliveries;
mod erasures;
mod events;
mod recoveries;
mod rotation;
mod tokens;
mod webhook;
mod webhook_args;
mod webhook_settings;

use anyhow::Context;
use clap::Args;
use hookrelay_client::{ApiListResponse, ApiResponse, Client};
use serde::Serialize;

use crate::output;

pub use deliveries::{deliveries, DeliveryArgs};
pub use erasures::{erasures, ErasureArgs};
pub use events::{events, EventArgs};
pub use tokens::{tokens, TokenArgs};
pub use webhook::{webhook, WebhookArgs};

/// How to reach the server, and how to print.
#[derive(Args)]
struct Connection {
    /// The hookrelay server's base URL.
    #[arg(
        long = "server",
        env = "HOOKRELAY_URL",
        default_value = "http://127.0.0.1:8080",
        global = true,
        value_name = "URL"
    )]
    server: String,
    /// Your space, `spc-…`.
    #[arg(long, env = "HOOKRELAY_SPACE_ID", global = true)]
    space_id: Option<String>,
    /// Your access token.
    #[arg(long, env = "HOOKRELAY_TOKEN", hide_env_values = true, global = true)]
    token: Option<String>,
    /// Print the API's JSON answer instead of a table.
    #[arg(long, global = true)]
    json: bool,
}

impl Connection {
    fn client(&self) -> anyhow::Result<Client> {
        let space = self
            .space_id
            .clone()
            .context("no space: give --space-id or set HOOKRELAY_SPACE_ID")?;
        let token = self
            .token
            .clone()
            .context("no token: give --token or set HOOKRELAY_TOKEN")?;
        Ok(Client::builder(space, token).base_url(&self.server).build()?)
    }
}

/// Prints an answer: the API's JSON with `--json`, else `show`'s rendering of its result.
fn print_one<T: Serialize>(json: bool, response: &ApiResponse<T>, show: impl Fn(&T)) {
    if json {
        output::json(response);
    } else {
        show(&response.result);
    }
}

/// Prints an answer of one item: the API's JSON with `--json`, else `table`'s one-row
/// rendering of its result.
fn print_row<T: Serialize>(json: bool, response: &ApiResponse<T>, table: impl Fn(&[T])) {
    print_one(json, response, |item| table(std::slice::from_ref(item)));
}

/// A table cell for a value that may be absent: `-` when it is.
fn or_dash(value: &Option<String>) -> String {
    value.clone().unwrap_or_else(|| "-".to_owned())
}

/// Prints a list page: the API's JSON with `--json`, else `table`'s rendering of its
/// items and the flag that fetches the next page.
fn print_page<T: Serialize>(json: bool, page: &ApiListResponse<T>, table: impl Fn(&[T])) {
    if json {
        output::json(page);
    } else {
        table(&page.result);
        if let Some(next) = &page.pagination.next {
            println!("\nmore: --after {next}");
        }
    }
}
