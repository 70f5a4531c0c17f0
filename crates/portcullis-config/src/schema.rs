//! JSON Schema of one config file, for editors (`portcullis schema`).

/// The JSON Schema of a config file as pretty-printed JSON.
///
/// ```
/// let schema = portcullis_config::json_schema();
/// assert!(schema.contains("\"routes\""));
/// ```
#[must_use]
pub fn json_schema() -> String {
    let schema = schemars::schema_for!(crate::raw::RawFile);
    serde_json::to_string_pretty(&schema).unwrap_or_else(|_| "{}".to_owned())
}
