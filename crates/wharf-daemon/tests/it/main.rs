//! Integration tests of wharf-daemon's stores.

mod round_trip;
