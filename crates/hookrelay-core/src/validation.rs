//! Field-level validation errors. Every rejected request names the field and the rule
//! it broke, so a client can fix its input without reading our source.

use serde::Serialize;

/// One broken rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// Where the problem is: `name`, `events[2]`, `headers.X-Foo`, `Idempotency-Key`.
    pub field: String,
    /// Which rule, snake_case: `required`, `max_length`, `unknown_field`, ...
    pub rule: &'static str,
    /// A sentence for humans.
    pub message: String,
}

/// All the rules a request broke (never empty when returned as an error).
#[derive(Clone, Debug, Default, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.summary())]
pub struct ValidationErrors(pub Vec<FieldError>);

impl ValidationErrors {
    /// Records a broken rule.
    pub fn push(&mut self, field: impl Into<String>, rule: &'static str, message: impl Into<String>) {
        self.0.push(FieldError {
            field: field.into(),
            rule,
            message: message.into(),
        });
    }

    /// A single-error set.
    pub fn single(field: impl Into<String>, rule: &'static str, message: impl Into<String>) -> Self {
        let mut errors = Self::default();
        errors.push(field, rule, message);
        errors
    }

    /// Whether no rule was broken.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok(value)` when nothing was broken, else the errors.
    pub fn into_result<T>(self, value: impl FnOnce() -> T) -> Result<T, Self> {
        if self.is_empty() {
            Ok(value())
        } else {
            Err(self)
        }
    }

    /// The messages joined, for the envelope's top-level `message`.
    pub fn summary(&self) -> String {
        self.0.iter().map(|e| e.message.as_str()).collect::<Vec<_>>().join("; ")
    }
}
