//! WAF settings of a route (`routes[].waf`). Owned by the WAF work (portcullis-waf compiles a
//! [`WafSpec`] into detectors).

use schemars::JsonSchema;
use serde::Deserialize;

use crate::error::{Diagnostics, Origin};

/// `routes[].waf` as written.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawWaf {
    /// `off`, `detect` or `block` (default block).
    pub mode: Option<String>,
}

/// What the WAF does with a request that scores over the threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WafMode {
    /// Not inspected.
    Off,
    /// Inspected, logged and counted, never blocked.
    Detect,
    /// Blocked with 403.
    Block,
}

/// Validated WAF settings of a route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WafSpec {
    /// Mode.
    pub mode: WafMode,
}

pub(crate) fn validate(raw: &RawWaf, o: &Origin, d: &mut Diagnostics) -> WafSpec {
    let mode = match raw.mode.as_deref().unwrap_or("block") {
        "off" => WafMode::Off,
        "detect" => WafMode::Detect,
        "block" => WafMode::Block,
        other => {
            d.error_at(
                o,
                &["mode"],
                format!("unknown mode {other:?}: expected off, detect or block"),
            );
            WafMode::Block
        }
    };
    WafSpec { mode }
}
