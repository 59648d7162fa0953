//! Automatic model tuning with the semantics of SageMaker's CreateHyperParameterTuningJob.
//!
//! [`config`] reads and checks the request; [`space`] maps its ranges (with their scaling)
//! to the unit cube; [`strategy`] suggests points (Bayesian: a Gaussian process from [`gp`]
//! with expected improvement; Random; Grid; Hyperband's random draws); [`stopping`] holds the
//! median stopping rule and Hyperband's rungs; [`runner`] runs trials as training jobs, in
//! parallel, to the job's end; [`magic`] is `%tune`; [`ask_tell`] serves the optimiser alone.

pub mod ask_tell;
pub mod config;
pub mod gp;
pub mod magic;
pub mod runner;
pub mod space;
pub mod stopping;
pub mod strategy;
