//! Request framing the gateway refuses to interpret: the rules live in
//! [`portcullis_core::framing`] (pure, unit-tested and fuzzed there); this applies them to
//! Pingora's request head.

use pingora::http::RequestHeader;
use portcullis_core::Deny;

/// Checks what decides where a request ends and what it addresses. `None`: unambiguous.
#[must_use]
pub(crate) fn check(req: &RequestHeader) -> Option<Deny> {
    portcullis_core::framing::check(&req.method, req.version, req.raw_path(), &req.headers)
}
