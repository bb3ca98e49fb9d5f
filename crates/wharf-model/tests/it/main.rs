//! Integration tests of wharf-model, on the files under `testdata/` at the top of the repository:
//! the conformance suite (realistic projects and the exact `config` output Docker Compose prints
//! for them), the bad-input cases (message and place of each error), inputs that must not make
//! the loader panic, and regressions.

mod bad_input;
mod case;
mod conformance;
mod corpus;
mod fidelity;
mod nasty_input;
mod regression;
mod upstream;
