//! The image's formats, each made from `rootfs/`: a reproducible tar (sorted names, times
//! clamped to the epoch, numeric owners, no access or change times: debuerreotype's recipe),
//! an ext4 filesystem (`mke2fs -d`, no loop mount), a qcow2 of it, a squashfs and an OCI image
//! layout.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr;
use std::time::Instant;

use crate::build::{run, sha256_file, StepReport};
use crate::recipe::Resolved;
use crate::ImageError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Dir,
    Tar,
    Ext4,
    Qcow2,
    Squashfs,
    Oci,
}

impl FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Format, String> {
        Ok(match s.trim() {
            "dir" => Format::Dir,
            "tar" => Format::Tar,
            "ext4" => Format::Ext4,
            "qcow2" => Format::Qcow2,
            "squashfs" => Format::Squashfs,
            "oci" => Format::Oci,
            other => {
                return Err(format!(
                    "unknown format `{other}`: choose from dir, tar, ext4, qcow2, squashfs, oci"
                ))
            }
        })
    }
}

/// Formats from a comma-separated list (`dir` is always made: the others come from it).
pub fn parse_formats(list: &str) -> Result<Vec<Format>, String> {
    let mut formats = vec![Format::Dir];
    for part in list.split(',').filter(|p| !p.trim().is_empty()) {
        let f: Format = part.parse()?;
        if !formats.contains(&f) {
            formats.push(f);
        }
    }
    Ok(formats)
}

/// One file the build wrote.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Output {
    pub format: Format,
    pub path: PathBuf,
    pub bytes: u64,
    /// The tar's sha256, or the OCI manifest's digest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

pub(crate) fn write(
    dir: &Path,
    recipe: &Resolved,
    formats: &[Format],
    epoch: u64,
    steps: &mut Vec<StepReport>,
) -> Result<Vec<Output>, ImageError> {
    let rootfs = dir.join("rootfs");
    let mut outputs = vec![Output {
        format: Format::Dir,
        path: rootfs.clone(),
        bytes: crate::build::du(&rootfs),
        digest: None,
    }];
    let mut timed = |step: &'static str,
                     f: &mut dyn FnMut() -> Result<Output, ImageError>|
     -> Result<Output, ImageError> {
        eprintln!("==> {step}");
        let started = Instant::now();
        let out = f()?;
        steps.push(StepReport {
            step,
            cached: false,
            seconds: started.elapsed().as_secs_f64(),
        });
        Ok(out)
    };
    let wants = |f: Format| formats.contains(&f);
    let tar = dir.join("rootfs.tar");
    if wants(Format::Tar) || wants(Format::Oci) {
        outputs.push(timed("tar", &mut || rootfs_tar(&rootfs, &tar, epoch))?);
    }
    let ext4 = dir.join("rootfs.ext4");
    if wants(Format::Ext4) || wants(Format::Qcow2) {
        outputs.push(timed("ext4", &mut || {
            ext4_image(&rootfs, &ext4, recipe, epoch)
        })?);
    }
    if wants(Format::Qcow2) {
        let qcow2 = dir.join("rootfs.qcow2");
        outputs.push(timed("qcow2", &mut || {
            run(
                "qcow2",
                Command::new("qemu-img")
                    .args(["convert", "-q", "-f", "raw", "-O", "qcow2"])
                    .arg(&ext4)
                    .arg(&qcow2),
            )?;
            output(Format::Qcow2, &qcow2, None)
        })?);
    }
    if wants(Format::Squashfs) {
        let sq = dir.join("rootfs.squashfs");
        outputs.push(timed("squashfs", &mut || {
            run(
                "squashfs",
                Command::new("mksquashfs")
                    .arg(&rootfs)
                    .arg(&sq)
                    .args(["-noappend", "-quiet", "-no-progress", "-comp", "zstd"])
                    .args([
                        "-mkfs-time",
                        &epoch.to_string(),
                        "-all-time",
                        &epoch.to_string(),
                    ]),
            )?;
            output(Format::Squashfs, &sq, None)
        })?);
    }
    if wants(Format::Oci) {
        outputs.push(timed("oci", &mut || {
            crate::oci::write(dir, &tar, recipe, epoch)
        })?);
    }
    // Made only as the source of another format.
    if !wants(Format::Tar) {
        let _ = std::fs::remove_file(&tar);
        outputs.retain(|o| o.format != Format::Tar);
    }
    if !wants(Format::Ext4) {
        let _ = std::fs::remove_file(&ext4);
        outputs.retain(|o| o.format != Format::Ext4);
    }
    Ok(outputs)
}

/// About how many bytes a root filesystem of `rootfs` bytes takes with `formats` beside it
/// (the build's intermediates included: the tar behind the OCI layer, the ext4 behind qcow2),
/// from the sizes these tools write for the image's own trees.
pub fn bytes_needed(rootfs: u64, formats: &[Format]) -> u64 {
    let wants = |f: Format| formats.contains(&f);
    let mut bytes = rootfs;
    if wants(Format::Tar) || wants(Format::Oci) {
        bytes += rootfs;
    }
    if wants(Format::Ext4) || wants(Format::Qcow2) {
        // mke2fs leaves the unwritten part of ext4_size sparse.
        bytes += rootfs + (256 << 20);
    }
    if wants(Format::Qcow2) {
        bytes += rootfs;
    }
    if wants(Format::Squashfs) {
        bytes += rootfs / 2;
    }
    if wants(Format::Oci) {
        // The gzipped layer in the layout, and the layout again as oci.tar.
        bytes += rootfs / 5 * 4;
    }
    bytes
}

/// The ext4 file's size: the tree, room for the filesystem's structures and for the instance
/// to write.
fn ext4_size(rootfs: u64) -> u64 {
    (rootfs + rootfs / 3 + (256 << 20)) / 4096 * 4096
}

fn output(format: Format, path: &Path, digest: Option<String>) -> Result<Output, ImageError> {
    let bytes = std::fs::metadata(path)
        .map_err(ImageError::io("outputs", path))?
        .len();
    Ok(Output {
        format,
        path: path.to_owned(),
        bytes,
        digest,
    })
}

/// The same tree and epoch give the same bytes.
pub(crate) fn reproducible_tar(
    step: &'static str,
    from: &Path,
    to: &Path,
    epoch: u64,
) -> Result<(), ImageError> {
    run(
        step,
        Command::new("tar")
            .args([
                "--sort=name",
                "--numeric-owner",
                "--format=pax",
                "--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime",
                "--clamp-mtime",
            ])
            .arg(format!("--mtime=@{epoch}"))
            .arg("-C")
            .arg(from)
            .arg("-cf")
            .arg(to)
            .arg(".")
            .env("LC_ALL", "C"),
    )
}

fn rootfs_tar(rootfs: &Path, tar: &Path, epoch: u64) -> Result<Output, ImageError> {
    reproducible_tar("tar", rootfs, tar, epoch)?;
    let sha = sha256_file(tar).map_err(ImageError::io("tar", tar))?;
    output(Format::Tar, tar, Some(format!("sha256:{sha}")))
}

fn ext4_image(
    rootfs: &Path,
    ext4: &Path,
    recipe: &Resolved,
    epoch: u64,
) -> Result<Output, ImageError> {
    let size = ext4_size(crate::build::du(rootfs));
    let _ = std::fs::remove_file(ext4);
    let file = std::fs::File::create(ext4).map_err(ImageError::io("ext4", ext4))?;
    file.set_len(size).map_err(ImageError::io("ext4", ext4))?;
    drop(file);
    // A UUID and hash seed from the variant and epoch, so the same inputs give the same image.
    let id = uuid_from(&format!("{}-{}", recipe.variant, epoch));
    run(
        "ext4",
        Command::new("mke2fs")
            .args(["-q", "-F", "-t", "ext4", "-L", "rustmaker-root"])
            .args(["-U", &id])
            .args(["-E", &format!("hash_seed={id},root_owner=0:0")])
            .arg("-d")
            .arg(rootfs)
            .arg(ext4)
            .env("E2FSPROGS_FAKE_TIME", epoch.to_string()),
    )?;
    output(Format::Ext4, ext4, None)
}

fn uuid_from(seed: &str) -> String {
    use sha2::{Digest, Sha256};
    let h = hex::encode(&Sha256::digest(seed.as_bytes())[..16]);
    format!(
        "{}-{}-4{}-8{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_format_and_its_intermediates_count_in_the_room_needed() {
        const GB: u64 = 1_000_000_000;
        assert_eq!(bytes_needed(GB, &[Format::Dir]), GB);
        // The tar is made for the OCI layer even when not kept.
        assert_eq!(
            bytes_needed(GB, &[Format::Dir, Format::Oci]),
            GB + GB + GB / 5 * 4
        );
        // qcow2 is converted from an ext4 file.
        let ext4 = bytes_needed(GB, &[Format::Dir, Format::Ext4]);
        assert!(ext4 > 2 * GB && ext4 < ext4_size(GB) + GB, "{ext4}");
        assert_eq!(bytes_needed(GB, &[Format::Dir, Format::Qcow2]), ext4 + GB);
        let all = parse_formats("tar,ext4,qcow2,squashfs,oci").unwrap();
        assert!(bytes_needed(GB, &all) > bytes_needed(GB, &all[..4]));
        assert!(bytes_needed(2 * GB, &all) > bytes_needed(GB, &all));
    }

    #[test]
    fn formats_parse_with_dir_always_first() {
        assert_eq!(
            parse_formats("oci,ext4,oci").unwrap(),
            vec![Format::Dir, Format::Oci, Format::Ext4]
        );
        let e = parse_formats("dir,iso").unwrap_err();
        assert!(e.contains("`iso`") && e.contains("squashfs"), "{e}");
    }

    #[test]
    fn the_same_tree_and_epoch_give_the_same_tar() {
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("tree");
        std::fs::create_dir_all(tree.join("b/c")).unwrap();
        std::fs::write(tree.join("b/c/f"), "x").unwrap();
        std::fs::write(tree.join("a"), "y").unwrap();
        reproducible_tar("tar", &tree, &dir.path().join("1.tar"), 1_700_000_000).unwrap();
        // Touched later, written in another order: the same bytes.
        std::thread::sleep(std::time::Duration::from_millis(1100));
        std::fs::remove_file(tree.join("a")).unwrap();
        std::fs::write(tree.join("a"), "y").unwrap();
        reproducible_tar("tar", &tree, &dir.path().join("2.tar"), 1_700_000_000).unwrap();
        assert_eq!(
            sha256_file(&dir.path().join("1.tar")).unwrap(),
            sha256_file(&dir.path().join("2.tar")).unwrap()
        );
        reproducible_tar("tar", &tree, &dir.path().join("3.tar"), 1_600_000_000).unwrap();
        assert_ne!(
            sha256_file(&dir.path().join("1.tar")).unwrap(),
            sha256_file(&dir.path().join("3.tar")).unwrap()
        );
    }

    /// Every format from a small tree, each checked by its own tool (CI installs them all
    /// through scripts/setup; a machine without them says which is missing).
    #[test]
    fn every_format_is_written_from_a_tree_and_passes_its_tool() {
        for tool in ["mke2fs", "e2fsck", "qemu-img", "mksquashfs", "unsquashfs"] {
            assert!(
                crate::build::on_path(tool) || std::path::Path::new("/sbin").join(tool).exists(),
                "{tool} is not installed (scripts/setup installs it)"
            );
        }
        let dir = tempfile::tempdir().unwrap();
        let rootfs = dir.path().join("rootfs");
        std::fs::create_dir_all(rootfs.join("etc/rustmaker")).unwrap();
        std::fs::write(rootfs.join("etc/rustmaker/boot.json"), "{}").unwrap();
        std::fs::write(rootfs.join("etc/hostname"), "localhost\n").unwrap();
        let recipe = crate::recipe::Recipe::load(&crate::recipe::default_dir().join("recipe.toml"))
            .unwrap()
            .resolve("minimal", &crate::recipe::default_dir())
            .unwrap();
        let all = parse_formats("tar,ext4,qcow2,squashfs,oci").unwrap();
        let mut steps = Vec::new();
        let outputs = write(dir.path(), &recipe, &all, 1_700_000_000, &mut steps).unwrap();
        let made: Vec<Format> = outputs.iter().map(|o| o.format).collect();
        assert_eq!(made.len(), 6, "{made:?}");
        let check = |program: &str, args: &[&str]| {
            let out = Command::new(program).args(args).output().unwrap();
            assert!(
                out.status.success(),
                "{program} {args:?}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        let p = |name: &str| dir.path().join(name).display().to_string();
        check("e2fsck", &["-fn", &p("rootfs.ext4")]);
        assert!(check("qemu-img", &["check", &p("rootfs.qcow2")]).contains("No errors"));
        let listing = check("unsquashfs", &["-l", &p("rootfs.squashfs")]);
        assert!(listing.contains("etc/rustmaker/boot.json"), "{listing}");
        let tar = check("tar", &["-tvf", &p("rootfs.tar"), "./etc/hostname"]);
        assert!(tar.contains("2023-11-14"), "{tar}");
        assert!(dir.path().join("oci/index.json").is_file());
        // The same tree, the same ext4 image byte for byte.
        let first = sha256_file(&dir.path().join("rootfs.ext4")).unwrap();
        write(
            dir.path(),
            &recipe,
            &parse_formats("ext4").unwrap(),
            1_700_000_000,
            &mut steps,
        )
        .unwrap();
        assert_eq!(sha256_file(&dir.path().join("rootfs.ext4")).unwrap(), first);
    }

    #[test]
    fn uuids_are_well_formed_and_stable() {
        let a = uuid_from("minimal-1");
        assert_eq!(a, uuid_from("minimal-1"));
        assert_ne!(a, uuid_from("full-1"));
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
    }
}
