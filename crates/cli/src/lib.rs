//! The `egov` command's library: the stack of participants (`egov-stack`),
//! under its old path `egov_cli::stack`.
#![forbid(unsafe_code)]

pub use egov_stack as stack;
