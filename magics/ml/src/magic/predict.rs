//! `%predict`: a model's answers for each row of a data set, as a frame.

use std::path::{Path, PathBuf};

use clap::Parser;
use polars::prelude::{CsvWriter, DataFrame, ParquetWriter, SerWriter};
use rustmaker_magics::csv_header::HeaderArgs;
use rustmaker_magics::data::SharedObjectStore;
use rustmaker_magics::scratch::Scratch;
use rustmaker_magics::table::frame_bundle;
use rustmaker_magics::{parse_args, Magic, MagicCall, MagicContext, MagicError, MagicForm};

use crate::job::{self};

use super::inputs::load;
pub(crate) use rustmaker_magics::failed;

#[derive(Parser, Debug)]
#[command(disable_help_flag = true, disable_version_flag = true)]
struct PredictArgs {
    /// A training job's name, or a model.tar.gz (local or s3://).
    #[arg(long)]
    model: String,
    #[arg(long)]
    data: String,
    #[arg(short = 'o')]
    frame: Option<String>,
    /// Also (or only) write the scored rows to a .csv or .parquet file.
    #[arg(long)]
    output: Option<PathBuf>,
    #[command(flatten)]
    csv: HeaderArgs,
}

pub struct PredictMagic {
    pub store: SharedObjectStore,
}

impl Magic for PredictMagic {
    fn name(&self) -> &str {
        "predict"
    }
    fn forms(&self) -> &[MagicForm] {
        &[MagicForm::Line]
    }
    fn summary(&self) -> &str {
        "Score data with a trained model (a job's, or a model.tar.gz) into a frame."
    }
    fn help(&self) -> String {
        "%predict --model JOB|PATH/model.tar.gz|s3://…/model.tar.gz --data SOURCE -o NAME [--output FILE.csv|FILE.parquet] [--header|--no-header]\n\n\
         Adds the model's answer to each row of SOURCE (a frame, .csv, .parquet or s3:// object)\n\
         and keeps the result as the frame NAME, or writes it to FILE (`rustmaker predict` from a\n\
         shell). The columns are SageMaker's: predicted_label and\n\
         probability (classification), score (regression), closest_cluster and\n\
         distance_to_cluster (k-means). The data is prepared with the model's recorded schema; a\n\
         missing column, or text where the model had numbers, is refused with the column named.\n\n\
         Example:\n    %predict --model iris-forest --data iris_new -o scored"
            .into()
    }
    fn run(&self, call: &MagicCall, ctx: &mut dyn MagicContext) -> Result<(), MagicError> {
        let args: PredictArgs = parse_args("predict", call.argv()?)?;
        match (&args.frame, &args.output) {
            (None, None) => return Err(MagicError::usage(
                "predict",
                "say where the scored rows go: -o FRAME, --output FILE.csv|FILE.parquet, or both",
            )),
            (Some(f), _) => rustmaker_magics::frames::check_name(f)?,
            (None, Some(_)) => {}
        }
        let format = match args.output.as_ref().map(|p| {
            p.extension()
                .map(|e| e.to_string_lossy().to_ascii_lowercase())
                .unwrap_or_default()
        }) {
            None => None,
            Some(e) if e == "csv" || e == "parquet" => Some(e),
            Some(_) => {
                return Err(MagicError::usage(
                    "predict",
                    "--output must end in .csv or .parquet",
                ))
            }
        };
        let scratch = Scratch::new("ml")?;
        let model = if args.model.starts_with("s3://") {
            self.store.fetch(&args.model, scratch.path(), Some(&*ctx))?
        } else if args.model.ends_with(".tar.gz") || Path::new(&args.model).is_file() {
            PathBuf::from(&args.model)
        } else {
            let uri = super::job_artifact(&args.model)?;
            if uri.starts_with("s3://") {
                self.store.fetch(&uri, scratch.path(), Some(&*ctx))?
            } else {
                PathBuf::from(uri)
            }
        };
        if !model.is_file() {
            return Err(failed(format!("there is no model at {}", model.display())));
        }
        let (data, _) = load(&args.data, args.csv.given(), &*self.store, &scratch, ctx)?;
        let scored = job::predict(&model, &data)?;
        ctx.display(frame_bundle(&scored, 10), None);
        if let (Some(path), Some(format)) = (&args.output, format) {
            write_scored(&scored, path, &format)?;
            ctx.stdout(&format!(
                "{} rows scored into {}\n",
                scored.height(),
                path.display()
            ));
        }
        if let Some(f) = &args.frame {
            ctx.frames().insert(f, scored)?;
        }
        Ok(())
    }
}

fn write_scored(scored: &DataFrame, path: &Path, format: &str) -> Result<(), MagicError> {
    let fail = |e: String| failed(format!("cannot write {}: {e}", path.display()));
    let file = std::fs::File::create(path).map_err(|e| fail(e.to_string()))?;
    let mut frame = scored.clone();
    let written = if format == "csv" {
        CsvWriter::new(file).finish(&mut frame)
    } else {
        ParquetWriter::new(file).finish(&mut frame).map(|_| ())
    };
    written.map_err(|e| fail(e.to_string()))
}
