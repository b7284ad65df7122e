//! The regulation as data: the process definition, the transition function,
//! the working-day calendar, deadlines and the IIN. Pure: no I/O, no clock.
#![forbid(unsafe_code)]

pub mod calendar;
pub mod iin;
