//! The recipe: `images/recipe.toml`, read and resolved for one variant (a variant's
//! packages are its base's plus its own).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::ImageError;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recipe {
    pub suite: String,
    #[serde(default = "minbase")]
    pub debian_variant: String,
    pub user: User,
    pub boot: Boot,
    pub variants: BTreeMap<String, Variant>,
    #[serde(default)]
    pub files: Vec<File>,
}

fn minbase() -> String {
    "minbase".into()
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct User {
    pub name: String,
    pub uid: u32,
    pub home: String,
    /// The persistent volume, a folder of the home.
    pub volume: String,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Boot {
    pub command: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Variant {
    pub base: Option<String>,
    #[serde(default)]
    pub packages: Vec<String>,
    /// A pinned requirements file beside the recipe.
    pub python: Option<String>,
    /// `host`: the toolchain rustmaker was built with.
    pub rust: Option<String>,
    /// Files this variant adds (after the recipe's own and its base's).
    #[serde(default)]
    pub files: Vec<File>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct File {
    pub path: String,
    #[serde(default = "file_mode")]
    pub mode: u32,
    pub content: String,
}

fn file_mode() -> u32 {
    0o644
}

/// One variant, its bases folded in.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    pub variant: String,
    pub suite: String,
    pub debian_variant: String,
    /// Sorted, each once.
    pub packages: Vec<String>,
    /// The requirements files, base first, as (name, content).
    pub python: Vec<(String, String)>,
    pub rust: bool,
    pub user: User,
    pub boot: Boot,
    pub files: Vec<File>,
}

impl Recipe {
    pub fn load(path: &Path) -> Result<Recipe, ImageError> {
        let text = std::fs::read_to_string(path).map_err(|e| ImageError::Recipe {
            path: path.to_owned(),
            reason: format!("cannot read it: {e}"),
        })?;
        toml::from_str(&text).map_err(|e| ImageError::Recipe {
            path: path.to_owned(),
            reason: e.to_string(),
        })
    }

    /// `variant` with its bases; `dir` is where the recipe's requirements files are.
    pub fn resolve(&self, variant: &str, dir: &Path) -> Result<Resolved, ImageError> {
        let bad = |reason: String| ImageError::Recipe {
            path: dir.join("recipe.toml"),
            reason,
        };
        let mut chain = Vec::new();
        let mut name = Some(variant.to_owned());
        while let Some(n) = name {
            if chain.contains(&n) {
                return Err(bad(format!("variant {n} is its own base")));
            }
            let v = self.variants.get(&n).ok_or_else(|| {
                bad(format!(
                    "no variant `{n}` (the recipe has {})",
                    self.variants.keys().cloned().collect::<Vec<_>>().join(", ")
                ))
            })?;
            name = v.base.clone();
            chain.push(n);
        }
        chain.reverse();
        let mut packages = Vec::new();
        let mut python = Vec::new();
        let mut rust = false;
        let mut files = self.files.clone();
        for n in &chain {
            let v = &self.variants[n];
            files.extend(v.files.iter().cloned());
            for p in &v.packages {
                if p.is_empty() || p.starts_with('-') || p.contains(char::is_whitespace) {
                    return Err(bad(format!("variant {n}: `{p}` is not a package name")));
                }
            }
            packages.extend(v.packages.iter().cloned());
            if let Some(file) = &v.python {
                let path = dir.join(file);
                let text = std::fs::read_to_string(&path).map_err(|e| {
                    bad(format!("variant {n}: cannot read {}: {e}", path.display()))
                })?;
                python.push((file.clone(), text));
            }
            match v.rust.as_deref() {
                None => {}
                Some("host") => rust = true,
                Some(other) => {
                    return Err(bad(format!(
                        "variant {n}: rust = `{other}`; the one toolchain source is `host`"
                    )))
                }
            }
        }
        packages.sort();
        packages.dedup();
        if self.boot.command.is_empty() {
            return Err(bad("boot.command is empty".into()));
        }
        for f in &files {
            if !f.path.starts_with('/') || f.path.contains("..") {
                return Err(bad(format!("file `{}` is not an absolute path", f.path)));
            }
        }
        Ok(Resolved {
            variant: variant.to_owned(),
            suite: self.suite.clone(),
            debian_variant: self.debian_variant.clone(),
            packages,
            python,
            rust,
            user: self.user.clone(),
            boot: self.boot.clone(),
            files,
        })
    }
}

/// The recipe shipped with the project (`images/recipe.toml` beside this crate), for a build
/// run from a checkout.
pub fn default_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped() -> Recipe {
        Recipe::load(&default_dir().join("recipe.toml")).unwrap()
    }

    #[test]
    fn the_shipped_recipe_resolves_both_variants() {
        let r = shipped();
        let minimal = r.resolve("minimal", &default_dir()).unwrap();
        assert!(minimal.packages.contains(&"python3".to_string()));
        assert!(minimal.rust);
        assert_eq!(minimal.python.len(), 1);
        assert!(minimal.python[0].1.contains("jupyterlab=="));
        let full = r.resolve("full", &default_dir()).unwrap();
        assert!(full
            .packages
            .contains(&"openjdk-17-jre-headless".to_string()));
        assert!(full.packages.contains(&"python3".to_string()));
        assert_eq!(full.python.len(), 2);
        assert!(full.rust);
        // The machine's variant: minimal's packages and files, a kernel and its own init.
        let vm = r.resolve("vm", &default_dir()).unwrap();
        assert!(vm.packages.contains(&"linux-image-cloud-amd64".to_string()));
        assert!(vm.packages.contains(&"python3".to_string()));
        let init = vm
            .files
            .iter()
            .find(|f| f.path == "/usr/local/sbin/rustmaker-vm-init")
            .expect("the vm variant has its init");
        assert_eq!(init.mode, 0o755);
        assert!(init
            .content
            .contains("exec /usr/local/bin/rustmaker instance boot"));
        assert!(vm.files.iter().any(|f| f.path == "/etc/motd"));
        assert!(!minimal
            .files
            .iter()
            .any(|f| f.path.ends_with("rustmaker-vm-init")));
        // Every requirement pinned, so the same file installs the same packages.
        for (_, text) in &full.python {
            for line in text
                .lines()
                .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            {
                assert!(line.contains("=="), "not pinned: {line}");
            }
        }
    }

    #[test]
    fn bad_recipes_are_refused_naming_what_is_wrong() {
        let r = shipped();
        let e = r.resolve("huge", &default_dir()).unwrap_err().to_string();
        assert!(
            e.contains("no variant `huge`") && e.contains("minimal"),
            "{e}"
        );
        let mut looped = r.clone();
        looped.variants.get_mut("minimal").unwrap().base = Some("full".into());
        let e = looped
            .resolve("full", &default_dir())
            .unwrap_err()
            .to_string();
        assert!(e.contains("its own base"), "{e}");
        let mut bad = r.clone();
        bad.variants
            .get_mut("minimal")
            .unwrap()
            .packages
            .push("--allow-everything".into());
        let e = bad
            .resolve("minimal", &default_dir())
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a package name"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let e = r.resolve("minimal", dir.path()).unwrap_err().to_string();
        assert!(e.contains("python-minimal.txt"), "{e}");
        let path = dir.path().join("recipe.toml");
        std::fs::write(&path, "suite = \"bookworm\"\ncolour = 1\n").unwrap();
        let e = Recipe::load(&path).unwrap_err().to_string();
        assert!(e.contains("colour") || e.contains("missing"), "{e}");
    }
}
