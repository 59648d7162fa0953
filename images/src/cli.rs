//! `rustmaker image build`: the recipe, the variant and the formats from the command line,
//! then a table of what was made (sizes, times).

use std::path::{Path, PathBuf};
use std::process::Command;

use clap::{Args, Subcommand};

use crate::build::{build, BuildOptions, BuildReport};
use crate::outputs::parse_formats;
use crate::recipe::{default_dir, Recipe};
use crate::ImageError;

#[derive(Subcommand, Debug)]
pub enum ImageCommand {
    /// Builds the notebook instance's image from the recipe (images/recipe.toml).
    Build(BuildArgs),
}

#[derive(Args, Debug)]
pub struct BuildArgs {
    /// minimal (JupyterLab, the kernel, a Rust toolchain), full (adds Java and PySpark) or vm
    /// (adds a kernel, for `rustmaker serve --backend vm`).
    #[arg(long, default_value = "minimal")]
    pub variant: String,
    /// The image's folder (default images/out/VARIANT).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Comma-separated: dir, tar, ext4, qcow2, squashfs, oci.
    #[arg(long, default_value = "dir,tar,oci")]
    pub format: String,
    /// The folder with recipe.toml and its requirements files (default: this checkout's images/).
    #[arg(long)]
    pub recipe: Option<PathBuf>,
    /// Where cached steps are kept (default images/out/cache).
    #[arg(long)]
    pub cache: Option<PathBuf>,
    /// An apt sources file for the base system (default: the host's).
    #[arg(long)]
    pub sources: Option<PathBuf>,
    /// The rustmaker binary to put in the image (default: this one).
    #[arg(long)]
    pub rustmaker: Option<PathBuf>,
    /// Clamp every time in the image to this (default $SOURCE_DATE_EPOCH, else the last
    /// commit's time).
    #[arg(long)]
    pub source_date_epoch: Option<u64>,
    /// Make every step again.
    #[arg(long)]
    pub no_cache: bool,
}

fn epoch(args: &BuildArgs, recipe_dir: &Path) -> u64 {
    if let Some(e) = args.source_date_epoch {
        return e;
    }
    if let Some(e) = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|v| v.trim().parse().ok())
    {
        return e;
    }
    Command::new("git")
        .args(["log", "-1", "--format=%ct"])
        .current_dir(recipe_dir)
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(0)
}

pub fn run(command: ImageCommand) -> Result<BuildReport, ImageError> {
    let ImageCommand::Build(args) = command;
    let recipe_dir = args.recipe.clone().unwrap_or_else(default_dir);
    let recipe_path = recipe_dir.join("recipe.toml");
    let recipe = Recipe::load(&recipe_path)?.resolve(&args.variant, &recipe_dir)?;
    let formats = parse_formats(&args.format).map_err(|reason| ImageError::Recipe {
        path: recipe_path.clone(),
        reason: format!("--format: {reason}"),
    })?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| recipe_dir.join("out").join(&args.variant));
    let rustmaker = match &args.rustmaker {
        Some(p) => p.clone(),
        None => std::env::current_exe().map_err(ImageError::io("rustmaker", "/proc/self/exe"))?,
    };
    let opts = BuildOptions {
        recipe,
        cache: args
            .cache
            .clone()
            .unwrap_or_else(|| recipe_dir.join("out").join("cache")),
        out,
        formats,
        sources: args.sources.clone(),
        rustmaker,
        source_date_epoch: epoch(&args, &recipe_dir),
        no_cache: args.no_cache,
    };
    let report = build(&opts)?;
    println!("{}", table(&report));
    Ok(report)
}

fn mib(bytes: u64) -> String {
    format!("{:.0} MiB", bytes as f64 / (1 << 20) as f64)
}

/// What a person reads at the end of a build.
pub fn table(r: &BuildReport) -> String {
    let mut s = format!(
        "image {} built in {:.0} s: {} ({} root filesystem)\n\n| step | cached | seconds |\n| --- | --- | ---: |\n",
        r.variant,
        r.seconds,
        r.out.display(),
        mib(r.rootfs_bytes)
    );
    for step in &r.steps {
        s.push_str(&format!(
            "| {} | {} | {:.1} |\n",
            step.step,
            if step.cached { "yes" } else { "no" },
            step.seconds
        ));
    }
    s.push_str("\n| format | file | size | digest |\n| --- | --- | ---: | --- |\n");
    for o in &r.outputs {
        s.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            serde_json::to_value(o.format)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            o.path.display(),
            mib(o.bytes),
            o.digest.as_deref().unwrap_or("")
        ));
    }
    s
}
