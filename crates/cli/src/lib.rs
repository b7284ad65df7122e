//! The `egov` command's library: the stack of participants, started in one
//! process or as a subset of them (`--roles`), wired by addresses.
#![forbid(unsafe_code)]

pub mod stack;
