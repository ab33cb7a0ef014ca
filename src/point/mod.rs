//! The bottom of the house: what a caller hands in (values, timestamps, names), the compact
//! point that travels to the worker, the rules a metric must follow, the coarse clock, and the
//! name encoder that makes any text a valid path.

pub(crate) mod clock;
pub(crate) mod metric;
pub(crate) mod names;
pub(crate) mod validate;
