//! The composition root: the one place where every engine's magics are registered and the
//! services engines share are wired (no engine imports another; they meet through the small
//! traits of [`rustmaker_magics::data`] and [`rustmaker_magics::services`]). The kernel and
//! the command line (`rustmaker train …`) both build their magics here.
//!
//! Adding an engine is one line in [`register`]: `rustmaker_NAME::register(registry, …)`.

use std::sync::Arc;

use rustmaker_magics::console::Console;
use rustmaker_magics::data::SharedObjectStore;
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

/// Registers every magic: the kernel's own, then each engine's, wired together.
pub fn register(registry: &mut MagicRegistry) {
    registry
        .register(Arc::new(ClearOutput))
        .expect("kernel magics have unique names");
    registry
        .register(Arc::new(rustmaker_magics::frames::FramesMagic))
        .expect("kernel magics have unique names");
    let aws_services = rustmaker_aws::AwsServices::new();
    let spark = rustmaker_spark::register(registry, aws_services.clusters())
        .expect("Spark magics have unique names");
    let aws = rustmaker_aws::register(registry, &aws_services, Arc::new(spark))
        .expect("AWS magics have unique names");
    let store: SharedObjectStore = Arc::new(aws.s3.clone());
    register_ml(registry, &store);
    rustmaker_autopilot::magic::register(registry, &store).expect("%autopilot has a unique name");
    let schedules = rustmaker_deploy::magic::register(registry, &store)
        .expect("the deployment magics have unique names");
    registry
        .register(Arc::new(Monitor {
            data: Arc::new(rustmaker_monitor::magic::MonitorMagic {
                store: store.clone(),
            }),
            schedules,
        }))
        .expect("%monitor has a unique name");
    let glue = aws.glue_configure;
    let livy = registry
        .take("configure")
        .expect("the Spark magics have %%configure");
    registry
        .register(Arc::new(Configure { livy, glue }))
        .expect("%%configure was taken out");
}

fn register_ml(registry: &mut MagicRegistry, store: &SharedObjectStore) {
    use rustmaker_ml::magic::{DebuggerMagic, ExperimentsMagic, PredictMagic, TrainMagic};
    use rustmaker_ml::tune::magic::TuneMagic;
    let store = || store.clone();
    registry
        .register(Arc::new(TrainMagic { store: store() }))
        .expect("%train has a unique name");
    registry
        .register(Arc::new(PredictMagic { store: store() }))
        .expect("%predict has a unique name");
    registry
        .register(Arc::new(DebuggerMagic))
        .expect("%debugger has a unique name");
    registry
        .register(Arc::new(ExperimentsMagic))
        .expect("%experiments has a unique name");
    registry
        .register(Arc::new(TuneMagic { store: store() }))
        .expect("%tune has a unique name");
}

/// `%monitor` belongs to two engines: the monitor's (baselines, checks, reports of data at
/// hand) and the hosting engine's (schedules that check an endpoint's captured traffic in
/// the service). The sub-command chooses.
struct Monitor {
    data: Arc<dyn Magic>,
    schedules: Arc<dyn Magic>,
}

impl Magic for Monitor {
    fn name(&self) -> &str {
        "monitor"
    }
    fn forms(&self) -> &[MagicForm] {
        self.data.forms()
    }
    fn summary(&self) -> &str {
        self.data.summary()
    }
    fn help(&self) -> String {
        format!(
            "{}\n\nSchedules of an endpoint's captured traffic:\n\n{}",
            self.data.help(),
            self.schedules.help()
        )
    }
    fn run(&self, call: &MagicCall, ctx: &mut dyn MagicContext) -> Result<(), MagicError> {
        let first = call.argv()?.into_iter().next().unwrap_or_default();
        if rustmaker_deploy::magic::schedules::COMMANDS.contains(&first.as_str()) {
            self.schedules.run(call, ctx)
        } else {
            self.data.run(call, ctx)
        }
    }
}

/// `%%configure` belongs to two engines: sparkmagic's (a Livy session's JSON: driverMemory,
/// conf, …) and AWS Glue's (a Glue session's settings: worker_type, "--job-arg", …). Their keys
/// do not overlap, so the cell's keys choose the engine.
struct Configure {
    livy: Arc<dyn Magic>,
    glue: Arc<dyn Magic>,
}

impl Magic for Configure {
    fn name(&self) -> &str {
        "configure"
    }
    fn forms(&self) -> &[MagicForm] {
        self.livy.forms()
    }
    fn summary(&self) -> &str {
        "Settings of the next Spark (Livy) session, or of the Glue session when the keys are Glue's."
    }
    fn help(&self) -> String {
        format!(
            "Spark through Livy (sparkmagic's keys):\n\n{}\n\n\
             AWS Glue interactive sessions (Glue's keys):\n\n{}\n\n\
             The keys choose: a cell whose keys are all Glue's configures Glue; otherwise Livy.",
            self.livy.help(),
            self.glue.help()
        )
    }
    fn run(&self, call: &MagicCall, ctx: &mut dyn MagicContext) -> Result<(), MagicError> {
        let keys: Vec<String> = match serde_json::from_str::<serde_json::Value>(&call.body) {
            Ok(serde_json::Value::Object(map)) => map.keys().cloned().collect(),
            // Not an object: the Livy side reports it, as sparkmagic would.
            _ => return self.livy.run(call, ctx),
        };
        let (glue, livy): (Vec<&String>, Vec<&String>) = keys
            .iter()
            .partition(|k| rustmaker_aws::glue::sessions::is_configure_key(k));
        match (glue.is_empty(), livy.is_empty()) {
            (true, _) => self.livy.run(call, ctx),
            (false, true) => self.glue.run(call, ctx),
            (false, false) => {
                Err(MagicError::usage(
                    "configure",
                    format!(
                    "the cell mixes Glue session settings ({}) with Livy session settings ({}); \
                     configure each in its own %%configure cell",
                    glue.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", "),
                    livy.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", ")
                ),
                ))
            }
        }
    }
}

/// Runs one magic in the terminal, as `rustmaker NAME ARGS…` (`rustmaker train …` is
/// `%train …`): the same magics, registered the same way, on a [`Console`] context.
pub fn run_in_console(name: &str, args: &[String]) -> Result<(), MagicError> {
    let mut registry = MagicRegistry::new();
    register(&mut registry);
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!(
            "{}",
            registry
                .help(name)?
                .replace(&format!("%{name}"), &format!("rustmaker {name}"))
        );
        return Ok(());
    }
    let call = MagicCall {
        form: MagicForm::Line,
        name: name.to_owned(),
        args: args
            .iter()
            .map(|a| shell_quote(a))
            .collect::<Vec<_>>()
            .join(" "),
        body: String::new(),
        help: false,
    };
    registry.run(&call, &mut Console::new())
}

/// Quotes an argument so the magic's POSIX-style splitting gives it back unchanged.
fn shell_quote(arg: &str) -> String {
    if !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_=.,:/+@%".contains(c))
    {
        arg.to_owned()
    } else {
        format!("'{}'", arg.replace('\'', "'\\''"))
    }
}
