//! `model.tar.gz`, as SageMaker packs a trained model: the model directory's files plus a
//! `manifest.json` (algorithm, hyperparameters, feature schema). A built-in algorithm's model is
//! `model.json` beside it; a script's model is whatever the script wrote to `SM_MODEL_DIR`.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::algorithms::Model;
use crate::prep::FeatureSchema;
use crate::MlError;

pub const MANIFEST: &str = "manifest.json";
pub const MODEL: &str = "model.json";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub format_version: u32,
    pub training_job: String,
    /// A built-in algorithm's name, or `script:ENTRY_POINT`.
    pub algorithm: String,
    pub hyperparameters: BTreeMap<String, String>,
    /// Built-in algorithms: what the input must look like.
    pub schema: Option<FeatureSchema>,
    pub created: String,
}

fn io(what: &str, path: &Path, e: impl std::fmt::Display) -> MlError {
    MlError::Training(format!("{what} {}: {e}", path.display()))
}

fn append(
    builder: &mut tar::Builder<impl std::io::Write>,
    name: &str,
    data: &[u8],
) -> std::io::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_size(data.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    );
    header.set_cksum();
    builder.append_data(&mut header, name, data)
}

/// Writes `path` (through a temporary file, so a reader never sees half of it): the files of
/// `model_dir` if given, `model.json` if a model is given, and the manifest.
pub fn write(
    path: &Path,
    manifest: &Manifest,
    model: Option<&Model>,
    model_dir: Option<&Path>,
) -> Result<u64, MlError> {
    let partial = path.with_extension("partial");
    let file = std::fs::File::create(&partial).map_err(|e| io("cannot write", &partial, e))?;
    let gz = flate2::write::GzEncoder::new(file, flate2::Compression::default());
    let mut builder = tar::Builder::new(gz);
    let result = (|| -> std::io::Result<()> {
        if let Some(dir) = model_dir {
            builder.append_dir_all(".", dir)?;
        }
        if let Some(model) = model {
            let json = serde_json::to_vec(model).map_err(std::io::Error::other)?;
            append(&mut builder, MODEL, &json)?;
        }
        let json = serde_json::to_vec_pretty(manifest).map_err(std::io::Error::other)?;
        append(&mut builder, MANIFEST, &json)?;
        builder.into_inner()?.finish()?.sync_all()
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&partial);
        return Err(io("cannot write", &partial, e));
    }
    std::fs::rename(&partial, path).map_err(|e| io("cannot move into place", path, e))?;
    Ok(std::fs::metadata(path).map(|m| m.len()).unwrap_or(0))
}

/// Reads a `model.tar.gz`: its manifest and, for a built-in algorithm, the model.
pub fn read(path: &Path) -> Result<(Manifest, Option<Model>), MlError> {
    let file = std::fs::File::open(path).map_err(|e| io("cannot open", path, e))?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let mut manifest = None;
    let mut model = None;
    let entries = archive
        .entries()
        .map_err(|e| io("is not a model.tar.gz:", path, e))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| io("is not a model.tar.gz:", path, e))?;
        let name = entry
            .path()
            .map(|p| p.to_string_lossy().trim_start_matches("./").to_owned())
            .unwrap_or_default();
        if name != MANIFEST && name != MODEL {
            continue;
        }
        let mut bytes = Vec::new();
        entry
            .read_to_end(&mut bytes)
            .map_err(|e| io("cannot read", path, e))?;
        if name == MANIFEST {
            manifest = Some(
                serde_json::from_slice::<Manifest>(&bytes)
                    .map_err(|e| io("has a broken manifest.json:", path, e))?,
            );
        } else {
            model = Some(
                serde_json::from_slice::<Model>(&bytes)
                    .map_err(|e| io("has a broken model.json:", path, e))?,
            );
        }
    }
    let manifest = manifest.ok_or_else(|| {
        MlError::Input(format!(
            "{} has no manifest.json: it was not written by %train",
            path.display()
        ))
    })?;
    Ok((manifest, model))
}
