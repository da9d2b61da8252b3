//! Placeholder until the generator lands.
pub fn document(_catalog: &hookrelay_core::EventCatalog) -> serde_json::Value {
    serde_json::json!({})
}
