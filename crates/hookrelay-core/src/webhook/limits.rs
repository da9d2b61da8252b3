//! Limits of the reference contract, shared by validation and the OpenAPI document.

/// `name`: 1..=100 characters.
pub const NAME_MAX: usize = 100;
/// `url`: at most 255 characters.
pub const URL_MAX: usize = 255;
/// `events`: 1..=100 items.
pub const EVENTS_MAX: usize = 100;
/// `headers`: at most 10.
pub const HEADERS_MAX: usize = 10;
/// A custom header value: at most 1,024 characters (our bound; the spec has none).
pub const HEADER_VALUE_MAX: usize = 1024;
/// `alertEmails`: at most 2.
pub const ALERT_EMAILS_MAX: usize = 2;
/// `metadata`: at most 64 keys.
pub const METADATA_MAX: usize = 64;
/// HS256 secret: 32..=256 characters.
pub const SECRET_MIN: usize = 32;
/// HS256 secret: 32..=256 characters.
pub const SECRET_MAX: usize = 256;
/// Length of a secret the server generates when none is given.
pub const GENERATED_SECRET_LEN: usize = 48;
