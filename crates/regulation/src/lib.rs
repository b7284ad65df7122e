//! The regulation as data: the process definition, the transition function,
//! the working-day calendar, deadlines and the IIN. Pure: no I/O, no clock.
#![forbid(unsafe_code)]

pub mod calendar;
pub mod definition;
pub mod iin;
pub mod instance;
pub mod render;
pub mod swimlane;

pub use calendar::Calendar;
pub use definition::{Definition, DefinitionError, Duration, Effect, Step, StepKind};
pub use iin::Iin;
pub use instance::{
    Branch, Event, Follows, HandOver, Instance, StepRecord, Transition, TransitionError, apply, hand_over,
};
