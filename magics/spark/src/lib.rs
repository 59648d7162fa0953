//! rustmaker-spark: Spark from the notebook through Livy, as sparkmagic does it.
//!
//! - [`livy`]: Livy's REST API (JSON shapes and a blocking client with retries).
//! - [`magics`]: `%%spark`, `%%sql`, `%%configure`, … with sparkmagic's options.
//! - [`endpoint`] and [`emr`]: where Livy is (a URL, an EMR cluster, or the local server).
//! - [`server`]: `rustmaker livy serve`, a Livy-compatible server running local PySpark.

pub mod config;
pub mod emr;
pub mod endpoint;
pub mod livy;
pub mod magics;
pub mod server;

pub use magics::register;
