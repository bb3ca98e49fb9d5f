//! The router against real upstream servers and real clients, all on 127.0.0.1 ephemeral ports.

mod access;
mod access_log;
mod backend;
mod balancing;
mod draining;
mod forward_auth;
mod forwarded;
mod hardening;
mod http1;
mod metrics;
mod pebble;
mod routing;
mod streaming;
mod threads;
mod tls;
mod unavailable;
mod websocket;
