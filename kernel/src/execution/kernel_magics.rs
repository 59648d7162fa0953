//! Magics that belong to the kernel itself rather than to an engine.

use std::sync::Arc;

use rustmaker_magics::{Magic, MagicCall, MagicContext, MagicError, MagicForm, MagicRegistry};

/// `%clear_output [--wait]`: clears the cell's output, as IPython's `clear_output()` does;
/// with `--wait` the front end clears only when the next output arrives (no flicker).
struct ClearOutput;

impl Magic for ClearOutput {
    fn name(&self) -> &str {
        "clear_output"
    }
    fn forms(&self) -> &[MagicForm] {
        &[MagicForm::Line]
    }
    fn summary(&self) -> &str {
        "Clear the output of the current cell (`--wait`: when the next output arrives)."
    }
    fn help(&self) -> String {
        "%clear_output [--wait]\n\n\
         Clears what the current cell has shown so far. With --wait the front end keeps the old\n\
         output until new output arrives, which avoids flicker in cells that redraw.\n\n\
         Example:\n    println!(\"step 1\");\n    %clear_output\n    println!(\"step 2 (only this remains)\");"
            .into()
    }
    fn run(&self, call: &MagicCall, ctx: &mut dyn MagicContext) -> Result<(), MagicError> {
        let wait = match call.argv()?.as_slice() {
            [] => false,
            [flag] if flag == "--wait" => true,
            _ => {
                return Err(MagicError::usage(
                    "clear_output",
                    "usage: %clear_output [--wait]",
                ))
            }
        };
        ctx.clear_output(wait);
        Ok(())
    }
}

pub fn register(registry: &mut MagicRegistry) {
    registry
        .register(Arc::new(ClearOutput))
        .expect("kernel magics have unique names");
    registry
        .register(Arc::new(rustmaker_magics::frames::FramesMagic))
        .expect("kernel magics have unique names");
    let spark = rustmaker_spark::register(registry).expect("Spark magics have unique names");
    rustmaker_aws::register(
        registry,
        Box::new(move |cluster: &str| spark.use_endpoint(cluster)),
    )
    .expect("AWS magics have unique names");
}
