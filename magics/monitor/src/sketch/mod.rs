//! The sketches behind the statistics: KLL for quantiles and distributions, HyperLogLog for
//! distinct counts. Both are fixed-size and mergeable.

pub mod hll;
pub mod kll;

pub use hll::{hash64, Hll};
pub use kll::Kll;
