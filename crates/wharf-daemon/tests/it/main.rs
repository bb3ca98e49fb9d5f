//! Integration tests of wharf-daemon's stores.

mod hardening;
mod round_trip;
