//! wharf-api: the control API between the CLI and the daemon.
//!
//! The daemon serves a narrow [`Control`] trait ([`server`]: axum over a Unix socket, HTTP/1
//! and JSON); the CLI calls it with [`Client`]. Every request and response type lives in
//! [`message`], so that the two sides cannot drift apart.

pub mod client;
pub mod control;
pub mod message;
pub mod server;
pub mod timestamp;

pub use client::{Client, JsonStream};
pub use control::Control;
pub use message::{ApiError, ErrorKind};
