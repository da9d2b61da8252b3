//! `hookrelay tokens`: create, list and revoke your space's access tokens through the
//! API (your token needs `tokens:manage`). An operator's, on the database, is
//! `hookrelay token`.

use clap::builder::PossibleValuesParser;
use clap::{Args, Subcommand};
use hookrelay_client::{CreateToken, ListParams, Token};
use hookrelay_core::access::Scope;

use super::{or_dash, print_one, print_page, Connection};
use crate::output;

#[derive(Args)]
pub struct TokenArgs {
    #[command(flatten)]
    connection: Connection,
    #[command(subcommand)]
    command: TokenCommand,
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create a token and print it: the token alone on standard output, shown this once.
    Create {
        /// What the token is for, shown in lists.
        #[arg(long)]
        name: String,
        /// A scope the token gets (repeatable; at least one, each one your token has).
        #[arg(long = "scope", value_name = "SCOPE", required = true, value_parser = scope_names())]
        scopes: Vec<String>,
        /// When the token stops working, RFC 3339 (e.g. 2030-01-01T00:00:00Z). [default: never]
        #[arg(long, value_name = "TIME")]
        expire_time: Option<String>,
        /// Idempotency-Key for the request (default: a random one).
        #[arg(long)]
        idempotency_key: Option<String>,
    },
    /// List your space's tokens, newest first (never the tokens themselves).
    List {
        /// Tokens per page (1–50).
        #[arg(long)]
        limit: Option<u32>,
        /// Continue after this cursor.
        #[arg(long)]
        after: Option<String>,
    },
    /// Revoke a token: every node refuses it within a second.
    Revoke {
        /// The token's id, `tok-…`.
        id: String,
    },
}

/// The scopes' names, listed in `--help` and in the error for any other value.
fn scope_names() -> PossibleValuesParser {
    PossibleValuesParser::new(Scope::ALL.map(Scope::as_str))
}

pub async fn tokens(args: TokenArgs) -> anyhow::Result<()> {
    let client = args.connection.client()?;
    let json = args.connection.json;
    let api = client.tokens();
    match args.command {
        TokenCommand::Create {
            name,
            scopes,
            expire_time,
            idempotency_key,
        } => {
            let token = CreateToken {
                name,
                scopes,
                expire_time,
            };
            let response = match idempotency_key {
                Some(key) => api.create_with_idempotency_key(&token, key).await?,
                None => api.create(&token).await?,
            };
            print_one(json, &response, |created| {
                println!("{}", created.token);
                eprintln!(
                    "Created token {} ({}) with scopes: {}. It is shown only once: keep it somewhere safe.",
                    created.record.id,
                    created.record.name,
                    created.record.scopes.join(", ")
                );
            });
        }
        TokenCommand::List { limit, after } => {
            let response = api.list(ListParams { limit, after }).await?;
            print_page(json, &response, token_table);
        }
        TokenCommand::Revoke { id } => {
            let response = api.revoke(&id).await?;
            print_one(json, &response, |_| println!("revoked {id}"));
        }
    }
    Ok(())
}

fn token_table(tokens: &[Token]) {
    let rows: Vec<Vec<String>> = tokens
        .iter()
        .map(|t| {
            vec![
                t.id.clone(),
                t.name.clone(),
                t.prefix.clone(),
                t.scopes.join(","),
                t.create_time.clone(),
                or_dash(&t.last_used_time),
                or_dash(&t.expire_time),
            ]
        })
        .collect();
    output::table(
        &["ID", "NAME", "PREFIX", "SCOPES", "CREATED", "LAST USED", "EXPIRES"],
        &rows,
    );
}
