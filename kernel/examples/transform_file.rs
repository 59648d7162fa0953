//! One batch transform of a CSV file, timed: the model loaded once, then
//! `transform::transform_file` as a transform job runs it (MultiRecord, 6 MB requests, Line).
//! For profiling the batch path apart from the service and its polling.
//!
//!     cargo run --release -p rustmaker-kernel --example transform_file -- MODEL.tar.gz IN.csv OUT
//!
//! `tests/bench/bench_deploy.py` times the same work through a transform job.

use std::time::Instant;

use rustmaker_deploy::transform::{self, Options};
use rustmaker_magics::services::ModelLoader;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(model), Some(input), Some(out)) = (args.get(1), args.get(2), args.get(3)) else {
        anyhow::bail!("usage: transform_file MODEL.tar.gz IN.csv OUT");
    };
    let served = rustmaker_ml::serving::Loader
        .load(std::path::Path::new(model))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let options = Options {
        content_type: Some("text/csv".into()),
        ..Options::default()
    };
    let t = Instant::now();
    let done = transform::transform_file(&*served, input.as_ref(), out.as_ref(), &options)?;
    println!(
        "{} records in {} requests: {:.3} s",
        done.records,
        done.requests,
        t.elapsed().as_secs_f64()
    );
    Ok(())
}
