//! Script-mode models served as SageMaker's inference toolkit serves them: the artifact's
//! `code/inference.py` with `model_fn`, `input_fn`, `predict_fn` and `output_fn` (the
//! toolkit's defaults where absent), in worker processes of the project's Python
//! (`worker.py`). A request takes an idle worker or starts one, so a variant runs as many as
//! its endpoint lets requests through at once; a worker that dies fails only the request it
//! held (a `ModelError`), and the next request starts a fresh one.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Mutex;

use polars::prelude::DataFrame;
use rustmaker_magics::services::ServedModel;
use rustmaker_magics::MagicError;
use serde_json::{json, Value};

const WORKER: &str = include_str!("worker.py");

/// Whether `artifact` holds `code/inference.py`.
pub fn has_inference_code(artifact: &Path) -> bool {
    let Ok(file) = std::fs::File::open(artifact) else {
        return false;
    };
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let Ok(entries) = archive.entries() else {
        return false;
    };
    entries.flatten().any(|e| {
        e.path()
            .is_ok_and(|p| p.to_string_lossy().trim_start_matches("./") == "code/inference.py")
    })
}

struct Worker {
    child: Child,
    input: ChildStdin,
    output: BufReader<ChildStdout>,
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A script-mode model: its unpacked folder and its idle workers.
pub struct ScriptServed {
    dir: PathBuf,
    idle: Mutex<Vec<Worker>>,
}

impl Drop for ScriptServed {
    fn drop(&mut self) {
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).clear();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn failed(e: impl std::fmt::Display) -> MagicError {
    MagicError::Failed(e.to_string())
}

impl ScriptServed {
    /// Unpacks `artifact` and starts one worker, so that a `model_fn` that raises fails the
    /// load with its error.
    pub fn load(artifact: &Path) -> Result<ScriptServed, MagicError> {
        let dir = std::env::temp_dir().join(format!(
            "rustmaker-serve-{}-{}",
            std::process::id(),
            uuid_like()
        ));
        let model_dir = dir.join("model");
        std::fs::create_dir_all(&model_dir).map_err(failed)?;
        let file = std::fs::File::open(artifact)
            .map_err(|e| failed(format!("cannot open {}: {e}", artifact.display())))?;
        tar::Archive::new(flate2::read::GzDecoder::new(file))
            .unpack(&model_dir)
            .map_err(|e| failed(format!("{} does not unpack: {e}", artifact.display())))?;
        std::fs::write(dir.join("worker.py"), WORKER).map_err(failed)?;
        let served = ScriptServed {
            dir,
            idle: Mutex::new(Vec::new()),
        };
        let first = served.start()?;
        served.idle.lock().expect("never poisoned").push(first);
        Ok(served)
    }

    fn start(&self) -> Result<Worker, MagicError> {
        let mut child = Command::new(rustmaker_process::python())
            .arg(self.dir.join("worker.py"))
            .arg(self.dir.join("model"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| failed(format!("cannot start the model's Python worker: {e}")))?;
        let input = child.stdin.take().expect("piped");
        let mut output = BufReader::new(child.stdout.take().expect("piped"));
        let mut line = String::new();
        output.read_line(&mut line).map_err(failed)?;
        let ready: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
        if ready["ready"] != true {
            let _ = child.kill();
            let _ = child.wait();
            return Err(MagicError::Failed(format!(
                "inference.py's model_fn failed: {}",
                ready["error"]
                    .as_str()
                    .unwrap_or("the worker exited before it was ready")
            )));
        }
        Ok(Worker {
            child,
            input,
            output,
        })
    }

    fn exchange(
        worker: &mut Worker,
        body: &[u8],
        content_type: &str,
        accept: &str,
    ) -> std::io::Result<(Value, Vec<u8>)> {
        let header = json!({"content_type": content_type, "accept": accept, "length": body.len()});
        worker.input.write_all(format!("{header}\n").as_bytes())?;
        worker.input.write_all(body)?;
        worker.input.flush()?;
        let mut line = String::new();
        if worker.output.read_line(&mut line)? == 0 {
            return Err(std::io::Error::other("the worker exited"));
        }
        let answer: Value = serde_json::from_str(&line).map_err(std::io::Error::other)?;
        let mut data = Vec::new();
        if answer["ok"] == true {
            data = vec![0; answer["length"].as_u64().unwrap_or(0) as usize];
            worker.output.read_exact(&mut data)?;
        }
        Ok((answer, data))
    }
}

/// A name unique to this load.
fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{nanos:x}-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

impl ServedModel for ScriptServed {
    fn features(&self) -> &[String] {
        &[]
    }

    fn predict(&self, _: &DataFrame) -> Result<DataFrame, MagicError> {
        Err(MagicError::Data(
            "a script-mode model answers request bodies through its inference.py".into(),
        ))
    }

    fn answer_bytes(
        &self,
        body: &[u8],
        content_type: &str,
        accept: &str,
    ) -> Option<Result<(Vec<u8>, String), MagicError>> {
        let taken = self.idle.lock().expect("never poisoned").pop();
        let mut worker = match taken.map(Ok).unwrap_or_else(|| self.start()) {
            Ok(w) => w,
            Err(e) => return Some(Err(e)),
        };
        match Self::exchange(&mut worker, body, content_type, accept) {
            Ok((answer, bytes)) => {
                self.idle.lock().expect("never poisoned").push(worker);
                if answer["ok"] == true {
                    let content_type = answer["content_type"]
                        .as_str()
                        .unwrap_or("application/json");
                    Some(Ok((bytes, content_type.to_owned())))
                } else {
                    Some(Err(MagicError::Data(format!(
                        "inference.py: {}",
                        answer["error"].as_str().unwrap_or("the script failed")
                    ))))
                }
            }
            // The worker is dropped (killed and reaped); the next request starts another.
            Err(e) => Some(Err(MagicError::Failed(format!(
                "the model's worker died during the request ({e}); it is restarted for the next one"
            )))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::artifact::{self, Manifest};
    use rustmaker_magics::services::ModelLoader;

    const INFERENCE: &str = r#"
import json, os

def model_fn(model_dir):
    with open(os.path.join(model_dir, "weights.json")) as f:
        weights = json.load(f)
    if weights.get("broken"):
        raise ValueError("the weights are broken")
    return weights

def input_fn(body, content_type):
    text = body.decode()
    if "die" in text:
        os._exit(3)
    if content_type != "text/csv":
        raise ValueError(f"cannot read {content_type}")
    return [[float(v) for v in line.split(",")] for line in text.splitlines() if line]

def predict_fn(rows, model):
    print("predicting", len(rows), "rows")  # to stderr: the protocol is not disturbed
    return [sum(w * v for w, v in zip(model["w"], row)) for row in rows]

def output_fn(prediction, accept):
    return "".join(f"{p:g}\n" for p in prediction), "text/csv"
"#;

    fn artifact(dir: &Path, weights: &str) -> PathBuf {
        let model_dir = dir.join("model");
        std::fs::create_dir_all(model_dir.join("code")).unwrap();
        std::fs::write(model_dir.join("code/inference.py"), INFERENCE).unwrap();
        std::fs::write(model_dir.join("weights.json"), weights).unwrap();
        let path = dir.join("model.tar.gz");
        let manifest = Manifest {
            format_version: 1,
            training_job: "script-job".into(),
            algorithm: "script:train.py".into(),
            hyperparameters: Default::default(),
            schema: None,
            created: "2026-12-02T00:00:00Z".into(),
        };
        artifact::write(&path, &manifest, None, Some(&model_dir)).unwrap();
        path
    }

    #[test]
    fn inference_py_answers_and_a_dead_worker_fails_only_its_request() {
        let dir = tempfile::tempdir().unwrap();
        let path = artifact(dir.path(), r#"{"w": [1, 10]}"#);
        assert!(has_inference_code(&path));
        let served = crate::serving::Loader.load(&path).unwrap();
        let ask = |body: &str, ct: &str| {
            served
                .answer_bytes(body.as_bytes(), ct, "text/csv")
                .unwrap()
        };
        let (body, content_type) = ask("1,2\n3,4\n", "text/csv").unwrap();
        assert_eq!(
            (
                String::from_utf8(body).unwrap().as_str(),
                content_type.as_str()
            ),
            ("21\n43\n", "text/csv")
        );
        let e = ask("1,2", "application/x-npy").unwrap_err();
        assert!(
            matches!(&e, MagicError::Data(m) if m.contains("cannot read application/x-npy")),
            "{e:?}"
        );
        let e = ask("die", "text/csv").unwrap_err();
        assert!(e.to_string().contains("worker died"), "{e}");
        // Served again by a new worker; several at once get a worker each.
        let (body, _) = ask("0,1", "text/csv").unwrap();
        assert_eq!(body, b"10\n");
        std::thread::scope(|s| {
            let answers: Vec<_> = (0..3)
                .map(|i| s.spawn(move || ask(&format!("{i},0"), "text/csv").unwrap().0))
                .collect();
            let answers: Vec<Vec<u8>> = answers.into_iter().map(|a| a.join().unwrap()).collect();
            assert_eq!(
                answers,
                vec![b"0\n".to_vec(), b"1\n".to_vec(), b"2\n".to_vec()]
            );
        });
    }

    #[test]
    fn a_model_fn_that_raises_fails_the_load_with_its_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = artifact(dir.path(), r#"{"broken": true}"#);
        let e = crate::serving::Loader.load(&path).err().unwrap();
        assert!(
            e.to_string()
                .contains("model_fn failed: ValueError: the weights are broken"),
            "{e}"
        );
    }
}
