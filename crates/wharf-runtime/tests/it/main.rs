//! Integration tests of the native runtime, with real processes: the `wharf-shim` binary of this
//! crate, `sh`, `sleep`, `env`, `id`. They run as root in CI; a test that needs root says so on
//! stderr and passes when it is not. The tests that matter most are in `orphan`: no process of
//! an instance survives its supervising process being SIGKILLed.

#[macro_use]
mod support;

mod exec;
mod orphan;
mod signal;
mod start;
mod user;
