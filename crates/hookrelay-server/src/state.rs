//! What every request handler can reach.

use std::sync::Arc;

use hookrelay_core::webhook::InputRules;
use hookrelay_core::EventCatalog;
use hookrelay_store::Store;

use crate::delivery::Wakeup;

/// Shared, cheaply cloned handler state.
#[derive(Clone)]
pub struct AppState {
    /// Where everything is kept.
    pub store: Arc<dyn Store>,
    /// Known event names.
    pub catalog: Arc<EventCatalog>,
    /// Whether webhook URLs may point at private and loopback addresses.
    pub allow_private_targets: bool,
    /// Tells the delivery engine about new work.
    pub wakeup: Wakeup,
}

impl AppState {
    /// The rules request bodies are validated against.
    pub fn input_rules(&self) -> InputRules<'_> {
        InputRules {
            catalog: &self.catalog,
            allow_private_targets: self.allow_private_targets,
        }
    }
}
