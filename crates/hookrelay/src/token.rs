//! `hookrelay token create|list|revoke`: an operator's hand on any space's access
//! tokens, on the database itself (no token needed). The API's own, for a space's
//! users, is `hookrelay tokens` (`remote::tokens`).

use anyhow::{bail, Context};
use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{ArgMatches, Subcommand};
use hookrelay_core::access::{AccessToken, Scope, Scopes, TokenDraft};
use hookrelay_core::delivery::parse_duration;
use hookrelay_core::{token, SpaceId, Timestamp, TokenId};
use serde_json::json;

use crate::output;
use crate::serve::StoreArgs;

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Create an access token for a space (creating the space if new) and print it: the
    /// token alone on standard output, shown this once.
    Create {
        /// The space the token acts in, `spc-…`.
        #[arg(long)]
        space: String,
        /// What the token is for, shown in lists.
        #[arg(long, default_value = "cli")]
        name: String,
        /// A scope the token gets (repeatable). [default: every scope]
        #[arg(long = "scope", value_name = "SCOPE", value_parser = scope_parser())]
        scopes: Vec<Scope>,
        /// How long the token works, e.g. 12h or 30d. [default: until revoked]
        #[arg(long, value_name = "DURATION")]
        expires: Option<String>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List a space's tokens, newest first (never the tokens themselves).
    List {
        /// The space, `spc-…`.
        #[arg(long)]
        space: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Revoke a token: every node refuses it within a second.
    Revoke {
        /// The space the token acts in, `spc-…`.
        #[arg(long)]
        space: String,
        /// The token's id, `tok-…` (from `token list`).
        #[arg(long)]
        id: String,
        #[command(flatten)]
        store: StoreArgs,
    },
}

/// Scopes by name, listed in `--help` and in the error for any other value.
fn scope_parser() -> impl TypedValueParser<Value = Scope> {
    PossibleValuesParser::new(Scope::ALL.map(Scope::as_str))
        .map(|name| Scope::parse(&name).expect("a possible value is a scope"))
}

/// `text` as a space id, or an error saying what one looks like.
pub fn space_id(text: &str) -> anyhow::Result<SpaceId> {
    SpaceId::parse(text)
        .with_context(|| format!("{text:?} is not a space id: expected `spc-` followed by letters, digits, `_` or `-`"))
}

pub async fn token(command: TokenCommand, matches: &ArgMatches) -> anyhow::Result<()> {
    match command {
        TokenCommand::Create {
            space,
            name,
            scopes,
            expires,
            store,
        } => {
            let space = space_id(&space)?;
            let draft = draft(name, &scopes, expires.as_deref())?;
            let store = store.open(matches).await?;
            let secret = token::generate();
            let record = AccessToken::of_secret(&secret, space, draft, Timestamp::now());
            store.add_token(&record, &token::digest(&secret), None).await?;
            println!("{secret}");
            eprintln!(
                "Created token {} ({}) in {} with scopes: {}. It is shown only once: keep it somewhere safe.",
                record.id, record.name, record.space_id, record.scopes
            );
        }
        TokenCommand::List { space, store } => {
            let space = space_id(&space)?;
            let store = store.open(matches).await?;
            let mut tokens = Vec::new();
            let mut after = None;
            loop {
                let page = store.list_tokens(&space, after, 50).await?;
                tokens.extend(page.items);
                match page.next {
                    Some(next) => after = Some(next),
                    None => break,
                }
            }
            token_table(&tokens);
        }
        TokenCommand::Revoke { space, id, store } => {
            let space = space_id(&space)?;
            let Some(id) = TokenId::parse(&id) else {
                bail!("{id:?} is not a token id: expected `tok-…`, as `token list` shows");
            };
            let store = store.open(matches).await?;
            if !store.revoke_token(&space, &id).await? {
                bail!("space {space} has no token {id}");
            }
            println!("revoked {id}");
        }
    }
    Ok(())
}

/// The token asked for, checked by the rules the API applies: every scope unless some
/// are named.
fn draft(name: String, scopes: &[Scope], expires: Option<&str>) -> anyhow::Result<TokenDraft> {
    let now = Timestamp::now();
    let scopes: Scopes = match scopes {
        [] => Scopes::all(),
        some => some.iter().copied().collect(),
    };
    let expire_time = match expires {
        None => None,
        Some(text) => {
            let lasting = parse_duration(text.trim())
                .filter(|d| !d.is_zero())
                .with_context(|| format!("--expires {text:?} is not a positive duration such as 12h or 30d"))?;
            Some(now.plus(lasting).to_rfc3339())
        }
    };
    let body = json!({"name": name, "scopes": scopes.names(), "expireTime": expire_time});
    TokenDraft::parse(&body, now).map_err(|errors| anyhow::anyhow!("{}", errors.summary()))
}

fn token_table(tokens: &[AccessToken]) {
    let time = |at: Option<Timestamp>| at.map_or_else(|| "-".to_owned(), Timestamp::to_rfc3339);
    let rows: Vec<Vec<String>> = tokens
        .iter()
        .map(|t| {
            vec![
                t.id.to_string(),
                t.name.clone(),
                t.prefix.clone(),
                t.scopes.names().join(","),
                t.create_time.to_rfc3339(),
                time(t.last_used_time),
                time(t.expire_time),
            ]
        })
        .collect();
    output::table(
        &["ID", "NAME", "PREFIX", "SCOPES", "CREATED", "LAST USED", "EXPIRES"],
        &rows,
    );
}
