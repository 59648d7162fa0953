//! rustmaker-spark: Spark from the notebook through Livy, as sparkmagic does it.
//!
//! - [`livy`]: Livy's REST API (JSON shapes and a blocking client with retries).
//! - [`magics`]: `%%spark`, `%%sql`, `%%configure`, … with sparkmagic's options.
//! - [`endpoint`]: where Livy is (a URL, an EMR cluster found through the composition root's
//!   [`rustmaker_magics::services::ClusterResolver`], or the local server).
//! - [`server`]: the local Livy-compatible server running PySpark, a part of its own beside
//!   the magics; [`cli`] is its command line (`rustmaker livy serve`).

pub mod cli;
pub mod config;
pub mod endpoint;
pub mod livy;
pub mod magics;
pub mod server;

pub use magics::register;
