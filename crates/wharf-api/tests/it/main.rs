//! The control API end to end: the axum server on a Unix socket, the client, and a fake
//! `Control` behind them.

mod fake;
mod hardening;
mod roundtrip;
