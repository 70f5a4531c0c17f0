//! End-to-end tests: the real `portcullis` binary against real HTTP backends on ephemeral ports.
//! The binary is `PORTCULLIS_BIN` or the debug build beside this test (built when missing).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod auth;
mod faults;
mod h2_downgrade;
mod health;
mod hostile;
mod lifecycle;
mod limits;
mod proxy;
mod slow_clients;
mod support;
mod tls;
mod waf;
