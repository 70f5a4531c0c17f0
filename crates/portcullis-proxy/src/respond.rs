//! The one place a refusal or failure becomes a response: a small JSON body with a stable code,
//! the request id, and no internals.

use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::proxy::Session;
use portcullis_core::Deny;

/// Writes `deny` as the response: status, its safe headers, and the common JSON error body.
pub(crate) async fn send_deny(
    session: &mut Session,
    deny: &Deny,
    request_id: &str,
) -> pingora::Result<()> {
    let body = error_body(deny.status, deny.reason, &deny.message, request_id);
    let mut resp = ResponseHeader::build(deny.status, Some(6 + deny.headers.len()))?;
    for (name, value) in &deny.headers {
        resp.append_header(*name, value.as_str())?;
    }
    resp.insert_header("content-type", "application/json")?;
    resp.insert_header("cache-control", "no-store")?;
    resp.insert_header("content-length", body.len().to_string())?;
    resp.insert_header("x-request-id", request_id)?;
    let head_only = session.req_header().method == http::Method::HEAD;
    session
        .write_response_header(Box::new(resp), head_only)
        .await?;
    if !head_only {
        session
            .write_response_body(Some(Bytes::from(body)), true)
            .await?;
    }
    Ok(())
}

/// Writes a configured direct response.
pub(crate) async fn send_direct(
    session: &mut Session,
    status: u16,
    headers: &[(String, String)],
    body: &str,
    request_id: &str,
) -> pingora::Result<()> {
    let mut resp = ResponseHeader::build(status, Some(3 + headers.len()))?;
    for (name, value) in headers {
        resp.append_header(name.clone(), value.as_str())?;
    }
    resp.insert_header("content-length", body.len().to_string())?;
    resp.insert_header("x-request-id", request_id)?;
    let head_only = session.req_header().method == http::Method::HEAD || body.is_empty();
    session
        .write_response_header(Box::new(resp), head_only)
        .await?;
    if !head_only {
        session
            .write_response_body(Some(Bytes::copy_from_slice(body.as_bytes())), true)
            .await?;
    }
    Ok(())
}

/// `{"error":{"status":403,"code":"waf_blocked","message":"...","request_id":"..."}}`
#[must_use]
pub fn error_body(status: u16, code: &str, message: &str, request_id: &str) -> Vec<u8> {
    let value = serde_json::json!({
        "error": { "status": status, "code": code, "message": message, "request_id": request_id }
    });
    serde_json::to_vec(&value).unwrap_or_default()
}

/// The stable code and message for a status the gateway produces on failure.
#[must_use]
pub(crate) fn failure_text(status: u16) -> (&'static str, &'static str) {
    match status {
        400 => ("bad_request", "the request could not be parsed"),
        404 => ("no_route", "no route matches this request"),
        408 => ("request_timeout", "the request was not received in time"),
        413 => ("body_too_large", "the request body is too large"),
        502 => ("bad_gateway", "the upstream service failed to answer"),
        503 => ("unavailable", "no healthy upstream is available"),
        504 => (
            "upstream_timeout",
            "the upstream service did not answer in time",
        ),
        _ => ("internal_error", "the gateway failed to handle the request"),
    }
}
