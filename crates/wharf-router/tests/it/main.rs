//! The router against real upstream servers and real clients, all on 127.0.0.1 ephemeral ports.

mod access;
mod backend;
mod draining;
mod forwarded;
mod routing;
mod streaming;
mod unavailable;
mod websocket;
