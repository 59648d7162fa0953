//! rustmaker-image: the managed notebook instance's image.
//!
//! [`recipe`] reads the declarative recipe (`images/recipe.toml`: the Debian suite and
//! packages, the pinned Python packages, the Rust toolchain, the notebook user, files and the
//! boot step). [`build`] turns it into a root filesystem in cached steps — the Debian base
//! from `mmdebstrap`, the Python environment, the toolchain, then the rustmaker binary and the
//! configuration — each kept under the hash of its inputs, so a change to rustmaker alone
//! redoes only the last step. [`outputs`] writes the formats (a directory, a reproducible tar,
//! ext4, qcow2, squashfs) and [`oci`] the OCI image layout. [`cli`] is `rustmaker image …`.
//!
//! Everything here shells out to the tools Debian packages (mmdebstrap, chroot, unshare, tar,
//! mke2fs, qemu-img, mksquashfs): the build is what an operator could run by hand, in order,
//! with each failure named by its step.

pub mod build;
pub mod cli;
pub mod oci;
pub mod outputs;
pub mod recipe;

use std::path::PathBuf;

/// What went wrong in a build, named by the step that failed.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The recipe cannot be read or says something this build cannot do.
    #[error("recipe {}: {reason}", .path.display())]
    Recipe { path: PathBuf, reason: String },
    /// A tool the build needs is missing and could not be installed.
    #[error("step {step}: {tool} is not installed and could not be installed ({reason}); install it with `apt-get install {package}`")]
    MissingTool {
        step: &'static str,
        tool: String,
        package: String,
        reason: String,
    },
    /// A step's command failed; `reason` holds the lines of its output that say why.
    #[error("step {step} failed: {reason}")]
    Step { step: &'static str, reason: String },
    /// The disk that would hold the image has too little room for it; checked before the
    /// image is assembled, so a full disk is named instead of failing a tool halfway.
    #[error(
        "step {step}: the image needs about {:.1} GB under {} and {:.1} GB are free there; free some space or build into another --out",
        *.needed as f64 / 1e9,
        .path.display(),
        *.available as f64 / 1e9
    )]
    NoSpace {
        step: &'static str,
        path: PathBuf,
        needed: u64,
        available: u64,
    },
    /// A file or folder of the build could not be made, read or written.
    #[error("step {step}: {}: {source}", .path.display())]
    Io {
        step: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl ImageError {
    pub(crate) fn io(
        step: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> ImageError {
        let path = path.into();
        move |source| ImageError::Io { step, path, source }
    }
}
