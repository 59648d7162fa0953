//! The OCI image layout (image-spec 1.0): `oci/` with `oci-layout`, `index.json` and
//! `blobs/sha256/` (one gzip layer: the root filesystem's tar; the image config; the
//! manifest), and `oci.tar`, the same layout as one file that OCI tools load
//! (`skopeo copy oci-archive:…`, `umoci unpack --image oci:minimal`). The gzip stream has no
//! name and no time, so the same tar gives the same digests.

use std::io::{Read, Write};
use std::path::Path;

use flate2::{Compression, GzBuilder};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::build::{sha256_file, write_file};
use crate::outputs::{reproducible_tar, Format, Output};
use crate::recipe::Resolved;
use crate::ImageError;

const STEP: &str = "oci";

/// A blob written under its digest: (digest, size).
fn blob(layout: &Path, bytes: &[u8]) -> Result<(String, u64), ImageError> {
    let hex = hex::encode(Sha256::digest(bytes));
    write_file(&layout.join("blobs/sha256").join(&hex), bytes, 0o644)?;
    Ok((format!("sha256:{hex}"), bytes.len() as u64))
}

/// Compresses the layer while hashing it: (digest of the gzip, its size).
fn layer(layout: &Path, tar: &Path) -> Result<(String, u64), ImageError> {
    struct Hashing<W> {
        inner: W,
        hash: Sha256,
        bytes: u64,
    }
    impl<W: Write> Write for Hashing<W> {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let n = self.inner.write(buf)?;
            self.hash.update(&buf[..n]);
            self.bytes += n as u64;
            Ok(n)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            self.inner.flush()
        }
    }
    let blobs = layout.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).map_err(ImageError::io(STEP, &blobs))?;
    let partial = blobs.join("layer.partial");
    let io = |path: &Path| ImageError::io(STEP, path.to_owned());
    let file = std::fs::File::create(&partial).map_err(io(&partial))?;
    let hashing = Hashing {
        inner: std::io::BufWriter::new(file),
        hash: Sha256::new(),
        bytes: 0,
    };
    let mut gz = GzBuilder::new()
        .mtime(0)
        .write(hashing, Compression::fast());
    let mut input = std::fs::File::open(tar).map_err(io(tar))?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = input.read(&mut buf).map_err(io(tar))?;
        if n == 0 {
            break;
        }
        gz.write_all(&buf[..n]).map_err(io(&partial))?;
    }
    let mut hashing = gz.finish().map_err(io(&partial))?;
    hashing.flush().map_err(io(&partial))?;
    let hex = hex::encode(hashing.hash.finalize());
    let done = blobs.join(&hex);
    std::fs::rename(&partial, &done).map_err(io(&done))?;
    Ok((format!("sha256:{hex}"), hashing.bytes))
}

/// RFC 3339 of a Unix time (UTC), as image configs write `created`.
fn rfc3339(epoch: u64) -> String {
    chrono::DateTime::from_timestamp(epoch as i64, 0)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

pub(crate) fn write(
    dir: &Path,
    tar: &Path,
    recipe: &Resolved,
    epoch: u64,
) -> Result<Output, ImageError> {
    let layout = dir.join("oci");
    let _ = std::fs::remove_dir_all(&layout);
    write_file(
        &layout.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
        0o644,
    )?;
    let diff_id = format!(
        "sha256:{}",
        sha256_file(tar).map_err(ImageError::io(STEP, tar))?
    );
    let (layer_digest, layer_size) = layer(&layout, tar)?;
    let created = rfc3339(epoch);
    let path = if recipe.rust {
        "PATH=/opt/rust/bin:/opt/jupyter/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    } else {
        "PATH=/opt/jupyter/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    };
    let config = json!({
        "created": created,
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "Entrypoint": recipe.boot.command,
            "Env": [path, "LANG=C.UTF-8"],
            "WorkingDir": "/",
            "Labels": {
                "org.opencontainers.image.title": format!("rustmaker notebook instance ({})", recipe.variant),
            },
        },
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{
            "created": created,
            "created_by": format!("rustmaker image build --variant {}", recipe.variant),
        }],
    });
    let (config_digest, config_size) = blob(&layout, config.to_string().as_bytes())?;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": config_size,
        },
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": layer_digest,
            "size": layer_size,
        }],
    });
    let (manifest_digest, manifest_size) = blob(&layout, manifest.to_string().as_bytes())?;
    let index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest,
            "size": manifest_size,
            "annotations": {"org.opencontainers.image.ref.name": recipe.variant},
        }],
    });
    write_file(
        &layout.join("index.json"),
        index.to_string().as_bytes(),
        0o644,
    )?;
    let archive = dir.join("oci.tar");
    reproducible_tar(STEP, &layout, &archive, epoch)?;
    let bytes = std::fs::metadata(&archive)
        .map_err(ImageError::io(STEP, &archive))?
        .len();
    Ok(Output {
        format: Format::Oci,
        path: archive,
        bytes,
        digest: Some(manifest_digest),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_written_as_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_767_225_599), "2025-12-31T23:59:59Z");
    }

    #[test]
    fn the_layout_names_each_blob_by_its_digest_and_repeats_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("tree");
        std::fs::create_dir_all(tree.join("etc")).unwrap();
        std::fs::write(tree.join("etc/hostname"), "notebook\n").unwrap();
        let tar = dir.path().join("rootfs.tar");
        reproducible_tar("tar", &tree, &tar, 1_700_000_000).unwrap();
        let recipe = crate::recipe::Recipe::load(&crate::recipe::default_dir().join("recipe.toml"))
            .unwrap()
            .resolve("minimal", &crate::recipe::default_dir())
            .unwrap();
        let out = write(dir.path(), &tar, &recipe, 1_700_000_000).unwrap();
        let digest = out.digest.clone().unwrap();
        let layout = dir.path().join("oci");
        let index: serde_json::Value =
            serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
        assert_eq!(index["manifests"][0]["digest"], digest.as_str());
        for entry in std::fs::read_dir(layout.join("blobs/sha256")).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().to_string_lossy().into_owned();
            assert_eq!(sha256_file(&entry.path()).unwrap(), name);
        }
        let manifest: serde_json::Value = serde_json::from_slice(
            &std::fs::read(layout.join("blobs/sha256").join(&digest[7..])).unwrap(),
        )
        .unwrap();
        let config_digest = manifest["config"]["digest"].as_str().unwrap();
        let config: serde_json::Value = serde_json::from_slice(
            &std::fs::read(layout.join("blobs/sha256").join(&config_digest[7..])).unwrap(),
        )
        .unwrap();
        assert_eq!(
            config["rootfs"]["diff_ids"][0],
            format!("sha256:{}", sha256_file(&tar).unwrap()).as_str()
        );
        assert_eq!(config["created"], "2023-11-14T22:13:20Z");
        // The same inputs, the same digest.
        let again = write(dir.path(), &tar, &recipe, 1_700_000_000).unwrap();
        assert_eq!(again.digest, out.digest);
    }
}
