//! What the endpoint adds to a model call (choosing the variant by weight, the worker slot,
//! and writing the data-capture record): each iteration times `Endpoint::invoke` on an
//! endpoint of two variants (3:1) capturing every request, and, right after, the same request
//! answered directly (payload read, the model, answer written). The per-iteration
//! differences are the router's overhead; their p50 and p99 are printed as JSON.
//!
//!     cargo run --release -p rustmaker-kernel --example router_overhead -- MODEL.tar.gz ROW [N]
//!
//! `tests/bench/bench_deploy.py` runs it with the model it serves over HTTP.

use std::sync::Arc;
use std::time::Instant;

use rustmaker_deploy::capture::{CaptureConfig, Rolling};
use rustmaker_deploy::endpoint::{Endpoint, Invocation, VariantSpec};
use rustmaker_deploy::payload::{self, Format};
use rustmaker_magics::services::{ModelLoader, ServedModel};

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(model), Some(row)) = (args.get(1), args.get(2)) else {
        anyhow::bail!("usage: router_overhead MODEL.tar.gz CSV_ROW [ITERATIONS]");
    };
    let n: usize = args
        .get(3)
        .map(|n| n.parse())
        .transpose()?
        .unwrap_or(20_000);
    let served: Arc<dyn ServedModel> = rustmaker_ml::serving::Loader
        .load(std::path::Path::new(model))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let capture_dir = std::env::temp_dir().join(format!("router-overhead-{}", std::process::id()));
    let capture = CaptureConfig::from_sagemaker(&serde_json::json!({
        "EnableCapture": true, "InitialSamplingPercentage": 100,
        "DestinationS3Uri": capture_dir.display().to_string(),
        "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}]}))?;
    let variant = |name: &str, weight: f64| VariantSpec {
        name: name.into(),
        model: served.clone(),
        weight,
        instances: 1,
    };
    let endpoint = Endpoint::new(
        "bench",
        vec![variant("blue", 3.0), variant("green", 1.0)],
        capture,
        Rolling::default(),
    )?;
    let call = Invocation {
        body: row.as_bytes(),
        content_type: Some("text/csv"),
        ..Default::default()
    };
    let direct = || -> anyhow::Result<Vec<u8>> {
        let rows = payload::rows(call.body, Format::Csv, served.features())?;
        let answers = served.predict(&rows).map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(payload::answer(&answers, Format::Csv)?)
    };
    for _ in 0..500 {
        endpoint.invoke(&call, chrono::Utc::now())?;
        direct()?;
    }
    let (mut routed, mut plain, mut overhead) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..n {
        let t = Instant::now();
        endpoint.invoke(&call, chrono::Utc::now())?;
        let a = t.elapsed().as_secs_f64() * 1e6;
        let t = Instant::now();
        direct()?;
        let b = t.elapsed().as_secs_f64() * 1e6;
        routed.push(a);
        plain.push(b);
        overhead.push(a - b);
    }
    for v in [&mut routed, &mut plain, &mut overhead] {
        v.sort_by(f64::total_cmp);
    }
    drop(endpoint);
    let _ = std::fs::remove_dir_all(&capture_dir);
    println!(
        "{}",
        serde_json::json!({
            "iterations": n,
            "invoke_p50_us": percentile(&routed, 0.5), "invoke_p99_us": percentile(&routed, 0.99),
            "direct_p50_us": percentile(&plain, 0.5), "direct_p99_us": percentile(&plain, 0.99),
            "overhead_p50_us": percentile(&overhead, 0.5), "overhead_p99_us": percentile(&overhead, 0.99),
        })
    );
    Ok(())
}
