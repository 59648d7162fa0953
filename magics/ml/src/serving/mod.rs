//! A model artifact loaded once and scored many times: what the hosting engine serves
//! (through `rustmaker_magics::services::ModelLoader`) and what `%predict` scores with. A
//! script-mode artifact with `code/inference.py` is served by Python workers ([`script`]).

pub mod script;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use polars::prelude::{Column, DataFrame};
use rustmaker_magics::services::{ModelLoader, ServedModel};
use rustmaker_magics::MagicError;

use crate::algorithms::Model;
use crate::prep::{self, FeatureSchema};
use crate::{artifact, job, MlError};

/// A built-in algorithm's model with the schema its input is prepared by.
pub struct Served {
    schema: FeatureSchema,
    model: Model,
    features: Vec<String>,
}

impl Served {
    pub fn new(schema: FeatureSchema, model: Model) -> Served {
        let features = schema.columns.iter().map(|c| c.name().to_owned()).collect();
        Served {
            schema,
            model,
            features,
        }
    }

    /// Reads `model_tar`; a script-mode model (no built-in model inside) is refused.
    pub fn load(model_tar: &Path) -> Result<Served, MlError> {
        let (manifest, model) = artifact::read(model_tar)?;
        let (Some(schema), Some(model)) = (manifest.schema, model) else {
            return Err(MlError::Input(format!(
                "{} holds a model of {} (script mode): %predict scores built-in algorithms' models; serve a script's model from an endpoint, with a code/inference.py in its model.tar.gz",
                model_tar.display(),
                manifest.algorithm
            )));
        };
        Ok(Served::new(schema, model))
    }

    /// The schema the model's input is prepared by.
    pub fn schema(&self) -> &FeatureSchema {
        &self.schema
    }

    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The model's own answer (class probabilities in the order of [`Served::classes`], or
    /// values) for the rows of `frame` that have a target, with that target as class indices
    /// or values: what a candidate's validation score is computed from.
    pub fn evaluate(
        &self,
        frame: &DataFrame,
    ) -> Result<(crate::algorithms::Output, ndarray::Array1<f64>), MlError> {
        let (keep, y) = prep::target(&self.schema, frame)?;
        let mask: polars::prelude::BooleanChunked = keep.iter().map(|k| Some(*k)).collect();
        let rows = frame
            .filter(&mask)
            .map_err(|e| MlError::Input(e.to_string()))?;
        let x = prep::transform(&self.schema, &rows)?;
        Ok((self.model.predict(&x), y))
    }

    /// A classifier's labels, in the order of its probabilities; empty for a regressor.
    pub fn classes(&self) -> &[String] {
        &self.schema.classes
    }

    /// The answer columns for each row of `frame`.
    pub fn answer_columns(&self, frame: &DataFrame) -> Result<Vec<Column>, MlError> {
        let x = prep::transform(&self.schema, frame)?;
        job::prediction_columns(&self.schema, &self.model.predict(&x))
    }
}

impl ServedModel for Served {
    fn features(&self) -> &[String] {
        &self.features
    }

    fn predict(&self, rows: &DataFrame) -> Result<DataFrame, MagicError> {
        let columns = self.answer_columns(rows)?;
        DataFrame::new(rows.height(), columns).map_err(|e| MagicError::Failed(e.to_string()))
    }

    fn predict_numbers(&self, values: &[f64]) -> Option<Result<DataFrame, MagicError>> {
        let x = prep::transform_numbers(&self.schema, values)?;
        let answered = job::prediction_columns(&self.schema, &self.model.predict(&x))
            .map_err(MagicError::from)
            .and_then(|columns| {
                DataFrame::new(x.nrows(), columns).map_err(|e| MagicError::Failed(e.to_string()))
            });
        Some(answered)
    }
}

/// Loads built-in algorithms' artifacts for the hosting engine.
pub struct Loader;

impl ModelLoader for Loader {
    /// A file or folder as given; else a training job's name, whose artifact is served.
    fn locate(&self, url: &str) -> Result<PathBuf, MagicError> {
        let path = Path::new(url);
        if path.exists()
            || url.contains('/')
            || rustmaker_sagemaker::check_name(url, rustmaker_sagemaker::Resource::TrainingJob)
                .is_err()
        {
            return Ok(if path.is_dir() {
                path.join("model.tar.gz")
            } else {
                path.to_owned()
            });
        }
        let artifact = crate::magic::job_artifact(url)?;
        if artifact.starts_with("s3://") {
            return Err(MagicError::Data(format!(
                "training job {url}'s model is at {artifact}: download it and give its local path"
            )));
        }
        Ok(PathBuf::from(artifact))
    }

    fn load(&self, artifact: &Path) -> Result<Arc<dyn ServedModel>, MagicError> {
        match Served::load(artifact) {
            Ok(served) => Ok(Arc::new(served)),
            Err(_) if script::has_inference_code(artifact) => {
                Ok(Arc::new(script::ScriptServed::load(artifact)?))
            }
            Err(e) => Err(e.into()),
        }
    }
}
