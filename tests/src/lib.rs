//! End-to-end tests of the real `portcullis` binary against real backends on ephemeral ports.
//! The tests live in `tests/e2e`; this library is intentionally empty.
