//! The requests that `benches/inspect.rs` and `examples/inspect_loop.rs` measure, in one place
//! so the bench and the loop cannot drift apart.

use std::net::{IpAddr, Ipv4Addr};

use http::{HeaderMap, HeaderValue};
use portcullis_core::RequestView;

/// The view the WAF is asked about: a request to `api.example.com` from loopback.
pub(crate) fn view<'a>(
    method: &'a str,
    path: &'a str,
    query: &'a str,
    headers: &'a HeaderMap,
) -> RequestView<'a> {
    RequestView {
        method,
        path,
        query: Some(query),
        host: Some("api.example.com"),
        headers,
        client_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        route: "orders",
    }
}

/// A typical API POST: 10 query parameters and a 2 KB JSON body of 15 order lines.
pub(crate) struct Post {
    pub(crate) query: &'static str,
    pub(crate) body: String,
    pub(crate) headers: HeaderMap,
}

pub(crate) fn post() -> Post {
    let query = "page=2&per_page=50&sort=created_at&order=desc&status=active&q=blue%20widgets\
                 &category=hardware&min_price=10&max_price=250&lang=en-GB";
    let mut items = Vec::new();
    for i in 0..15 {
        items.push(format!(
            r#"{{"sku":"SKU-{i:05}","name":"Widget number {i}","qty":{i},"price":19.99,"tags":["blue","metal"],"note":"Deliver to the back door, ring twice"}}"#
        ));
    }
    let body = format!(
        r#"{{"customer":{{"id":"c-123","email":"mary@example.com"}},"items":[{}]}}"#,
        items.join(",")
    );
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    headers.insert("content-length", HeaderValue::from(body.len()));
    headers.insert(
        "user-agent",
        HeaderValue::from_static("Mozilla/5.0 (X11; Linux x86_64) Firefox/126.0"),
    );
    headers.insert("accept", HeaderValue::from_static("application/json"));
    headers.insert(
        "authorization",
        HeaderValue::from_static("Bearer abc.def.ghi"),
    );
    Post {
        query,
        body,
        headers,
    }
}

/// Path and query of the GET whose headers [`get_headers`] builds.
pub(crate) const GET_PATH: &str = "/api/v1/orders/123";
pub(crate) const GET_QUERY: &str =
    "expand=items,customer&fields=id,status,total&currency=EUR&include_archived=false";

/// A typical browser-driven API GET without a body: a real Chrome User-Agent, the usual
/// Accept headers, a bearer JWT and three cookies.
pub(crate) fn get_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("host", HeaderValue::from_static("api.example.com"));
    h.insert(
        "user-agent",
        HeaderValue::from_static(
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) \
             Chrome/125.0.0.0 Safari/537.36",
        ),
    );
    h.insert(
        "accept",
        HeaderValue::from_static("application/json, text/plain, */*"),
    );
    h.insert(
        "accept-language",
        HeaderValue::from_static("en-GB,en;q=0.9,de;q=0.8"),
    );
    h.insert(
        "accept-encoding",
        HeaderValue::from_static("gzip, deflate, br, zstd"),
    );
    h.insert(
        "authorization",
        HeaderValue::from_static(
            "Bearer eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.\
             eyJzdWIiOiJ1LTQ4MjEiLCJpc3MiOiJodHRwczovL2lkLmV4YW1wbGUuY29tIiwiYXVkIjoiYXBpIiwiZXhwIjoxNzY0OTAwMDAwLCJzY29wZSI6Im9yZGVyczpyZWFkIn0.\
             dGhpc2lzbm90YXJlYWxzaWduYXR1cmVidXRpdGhhc3RoZXJpZ2h0bGVuZ3RoZm9yaXQ",
        ),
    );
    h.insert(
        "cookie",
        HeaderValue::from_static(
            "session_id=9f8e7d6c5b4a39281706f5e4d3c2b1a0; theme=dark; _ga=GA1.2.1234567890.1733356800",
        ),
    );
    h
}
