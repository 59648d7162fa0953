//! `%s3`: list, copy (multipart for large uploads, with progress), remove, and frames read
//! from or written to S3 as CSV or Parquet.

use rustmaker_magics::long_work::{self, LiveDisplay};
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, Delete, ObjectIdentifier};
use clap::{Parser, Subcommand};
use polars::prelude::*;
use rustmaker_magics::table::frame_bundle;
use rustmaker_magics::{Magic, MagicCall, MagicContext, MagicError, MagicForm, MimeBundle};

use crate::client::{aws_error, build_error, failed, Aws};
use rustmaker_magics::parse_args;

/// Files at least this large are uploaded in parts of this size.
const PART_SIZE: usize = 8 * 1024 * 1024;
/// Most entries a listing shows.
const MAX_LISTED: usize = 10_000;

/// `s3://bucket/key` split into bucket and key.
#[derive(Debug, Clone, PartialEq)]
pub struct S3Url {
    pub bucket: String,
    pub key: String,
}

impl S3Url {
    pub fn parse(text: &str) -> Result<S3Url, MagicError> {
        let rest = text
            .strip_prefix("s3://")
            .ok_or_else(|| failed(format!("`{text}` is not an S3 URL: write s3://BUCKET/KEY")))?;
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        let valid = bucket.len() >= 3
            && bucket.len() <= 63
            && bucket
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
        if !valid {
            return Err(failed(format!(
                "`{text}`: `{bucket}` is not a valid bucket name (3-63 lowercase letters, digits, `-` and `.`)"
            )));
        }
        Ok(S3Url {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
        })
    }
}

impl std::fmt::Display for S3Url {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.key)
    }
}

#[derive(Parser, Debug)]
#[command(disable_help_flag = true, disable_version_flag = true)]
struct S3Args {
    #[command(subcommand)]
    command: S3Command,
}

#[derive(Subcommand, Debug)]
enum S3Command {
    /// Buckets, or the objects and prefixes under s3://BUCKET/PREFIX.
    Ls {
        url: Option<String>,
        #[arg(long)]
        recursive: bool,
        #[arg(short = 'o', long = "output")]
        output: Option<String>,
    },
    /// Make a bucket.
    Mb { url: String },
    /// Copy local -> S3, S3 -> local, or S3 -> S3.
    Cp { src: String, dst: String },
    /// Remove an object, or everything under a prefix with --recursive.
    Rm {
        url: String,
        #[arg(long)]
        recursive: bool,
    },
    /// Read a CSV or Parquet object into a frame.
    Read {
        url: String,
        #[arg(short = 'o', long = "output")]
        output: String,
        #[arg(long, value_parser = ["csv", "parquet"])]
        format: Option<String>,
    },
    /// Write a frame to S3 as CSV or Parquet.
    Write {
        frame: String,
        url: String,
        #[arg(long, value_parser = ["csv", "parquet"])]
        format: Option<String>,
    },
}

pub struct S3Magic(pub Arc<Mutex<Aws>>);

impl Magic for S3Magic {
    fn name(&self) -> &str {
        "s3"
    }
    fn forms(&self) -> &[MagicForm] {
        &[MagicForm::Line]
    }
    fn summary(&self) -> &str {
        "S3: `ls`, `cp`, `rm`, and frames to and from CSV/Parquet objects (`read`, `write`)."
    }
    fn help(&self) -> String {
        "%s3 ls [s3://BUCKET/PREFIX] [--recursive] [-o NAME]   buckets, or objects and prefixes (-o: as a frame)
%s3 mb s3://BUCKET             make a bucket
%s3 cp SRC DST                 local file <-> s3://…, or s3:// -> s3:// (multipart above 8 MiB, with progress)
%s3 rm s3://BUCKET/KEY [--recursive]
%s3 read s3://BUCKET/KEY.csv|.parquet -o NAME [--format csv|parquet]   an object into the frame store
%s3 write NAME s3://BUCKET/KEY.csv|.parquet [--format csv|parquet]     a frame to S3

Credentials, region and endpoint come from the standard AWS chain or `%aws config`.

Example:
  %s3 cp data/train.csv s3://my-bucket/train/train.csv
  %s3 read s3://my-bucket/train/train.csv -o train"
            .into()
    }
    fn run(&self, call: &MagicCall, ctx: &mut dyn MagicContext) -> Result<(), MagicError> {
        let args: S3Args = parse_args("s3", call.argv()?)?;
        let mut aws = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let client = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&aws.sdk()?)
                // Local endpoints (moto, MinIO) serve buckets as paths, not host names.
                .force_path_style(
                    aws.settings.endpoint_url.is_some()
                        || std::env::var_os("AWS_ENDPOINT_URL").is_some(),
                )
                .build(),
        );
        match args.command {
            S3Command::Ls {
                url,
                recursive,
                output,
            } => ls(
                &aws,
                &client,
                url.as_deref(),
                recursive,
                output.as_deref(),
                ctx,
            ),
            S3Command::Cp { src, dst } => cp(&aws, &client, &src, &dst, ctx),
            S3Command::Mb { url } => {
                let url = S3Url::parse(&url)?;
                let mut req = client.create_bucket().bucket(&url.bucket);
                let region = aws
                    .sdk()?
                    .region()
                    .map(|r| r.to_string())
                    .unwrap_or_default();
                // us-east-1 is the one region that takes no location constraint.
                if region != "us-east-1" {
                    req = req.create_bucket_configuration(
                        aws_sdk_s3::types::CreateBucketConfiguration::builder()
                            .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::from(
                                region.as_str(),
                            ))
                            .build(),
                    );
                }
                aws.run(ctx, req.send())?
                    .map_err(|e| aws_error(&aws, &format!("making bucket {}", url.bucket), e))?;
                ctx.stdout(&format!("Made bucket s3://{}.\n", url.bucket));
                Ok(())
            }
            S3Command::Rm { url, recursive } => {
                rm(&aws, &client, &S3Url::parse(&url)?, recursive, ctx)
            }
            S3Command::Read {
                url,
                output,
                format,
            } => {
                rustmaker_magics::frames::check_name(&output)?;
                let url = S3Url::parse(&url)?;
                let format = format_of(&url.key, format.as_deref())?;
                let bytes = get_bytes(&aws, &client, &url, ctx)?;
                let frame = match format {
                    "csv" => CsvReadOptions::default()
                        .with_has_header(true)
                        .with_infer_schema_length(Some(10_000))
                        .into_reader_with_file_handle(Cursor::new(bytes))
                        .finish(),
                    _ => ParquetReader::new(Cursor::new(bytes)).finish(),
                }
                .map_err(|e| {
                    failed(format!(
                        "s3://{}/{} is not readable as {format}: {e}",
                        url.bucket, url.key
                    ))
                })?;
                ctx.stdout(&format!(
                    "Read s3://{}/{} into frame `{output}`: {} rows × {} columns.\n",
                    url.bucket,
                    url.key,
                    frame.height(),
                    frame.width()
                ));
                ctx.frames().insert(&output, frame)
            }
            S3Command::Write { frame, url, format } => {
                let url = S3Url::parse(&url)?;
                let format = format_of(&url.key, format.as_deref())?;
                let mut df = ctx.frames().get(&frame)?.clone();
                let mut buf = Vec::new();
                match format {
                    "csv" => CsvWriter::new(&mut buf).finish(&mut df),
                    _ => ParquetWriter::new(&mut buf).finish(&mut df).map(drop),
                }
                .map_err(|e| {
                    failed(format!(
                        "frame `{frame}` cannot be written as {format}: {e}"
                    ))
                })?;
                let size = buf.len();
                let put = client
                    .put_object()
                    .bucket(&url.bucket)
                    .key(&url.key)
                    .body(ByteStream::from(buf))
                    .send();
                aws.run(ctx, put)?.map_err(|e| {
                    aws_error(&aws, &format!("writing s3://{}/{}", url.bucket, url.key), e)
                })?;
                ctx.stdout(&format!(
                    "Wrote frame `{frame}` ({} rows, {size} bytes of {format}) to s3://{}/{}.\n",
                    df.height(),
                    url.bucket,
                    url.key
                ));
                Ok(())
            }
        }
    }
}

fn format_of<'a>(key: &str, given: Option<&'a str>) -> Result<&'a str, MagicError> {
    if let Some(f) = given {
        return Ok(f);
    }
    let lower = key.to_ascii_lowercase();
    if lower.ends_with(".csv") {
        Ok("csv")
    } else if lower.ends_with(".parquet") || lower.ends_with(".pq") {
        Ok("parquet")
    } else {
        Err(failed(format!(
            "cannot tell the format of `{key}` from its name: add --format csv or --format parquet"
        )))
    }
}

fn get_bytes(
    aws: &Aws,
    client: &aws_sdk_s3::Client,
    url: &S3Url,
    ctx: &dyn MagicContext,
) -> Result<Vec<u8>, MagicError> {
    let what = format!("reading s3://{}/{}", url.bucket, url.key);
    let object = aws
        .run(
            ctx,
            client.get_object().bucket(&url.bucket).key(&url.key).send(),
        )?
        .map_err(|e| aws_error(aws, &what, e))?;
    let data = aws
        .run(ctx, object.body.collect())?
        .map_err(|e| failed(format!("{what}: the download broke off: {e}")))?;
    Ok(data.into_bytes().to_vec())
}

fn ls(
    aws: &Aws,
    client: &aws_sdk_s3::Client,
    url: Option<&str>,
    recursive: bool,
    output: Option<&str>,
    ctx: &mut dyn MagicContext,
) -> Result<(), MagicError> {
    if let Some(name) = output {
        rustmaker_magics::frames::check_name(name)?;
    }
    let frame = match url.filter(|u| *u != "s3://") {
        None => {
            let out = aws
                .run(ctx, client.list_buckets().send())?
                .map_err(|e| aws_error(aws, "listing buckets", e))?;
            let (names, created): (Vec<String>, Vec<String>) = out
                .buckets()
                .iter()
                .map(|b| {
                    (
                        b.name().unwrap_or_default().to_owned(),
                        b.creation_date().map(|d| d.to_string()).unwrap_or_default(),
                    )
                })
                .unzip();
            df!("bucket" => names, "created" => created)
        }
        Some(url) => {
            let url = S3Url::parse(url)?;
            let (mut keys, mut sizes, mut modified) = (Vec::new(), Vec::new(), Vec::new());
            let mut token = None;
            loop {
                let mut req = client
                    .list_objects_v2()
                    .bucket(&url.bucket)
                    .prefix(&url.key);
                if !recursive {
                    req = req.delimiter("/");
                }
                if let Some(t) = token.take() {
                    req = req.continuation_token(t);
                }
                let out = aws.run(ctx, req.send())?.map_err(|e| {
                    aws_error(aws, &format!("listing s3://{}/{}", url.bucket, url.key), e)
                })?;
                for p in out.common_prefixes() {
                    keys.push(p.prefix().unwrap_or_default().to_owned());
                    sizes.push(None);
                    modified.push(None);
                }
                for o in out.contents() {
                    keys.push(o.key().unwrap_or_default().to_owned());
                    sizes.push(o.size());
                    modified.push(o.last_modified().map(|d| d.to_string()));
                }
                token = out.next_continuation_token().map(str::to_owned);
                if token.is_none() || keys.len() >= MAX_LISTED {
                    break;
                }
            }
            df!("key" => keys, "size" => sizes, "last_modified" => modified)
        }
    }
    .map_err(failed)?;
    ctx.display(frame_bundle(&frame, MAX_LISTED), None);
    if let Some(name) = output {
        ctx.frames().insert(name, frame)?;
    }
    Ok(())
}

fn cp(
    aws: &Aws,
    client: &aws_sdk_s3::Client,
    src: &str,
    dst: &str,
    ctx: &mut dyn MagicContext,
) -> Result<(), MagicError> {
    match (src.starts_with("s3://"), dst.starts_with("s3://")) {
        (false, true) => upload(aws, client, Path::new(src), &S3Url::parse(dst)?, ctx),
        (true, false) => download(aws, client, &S3Url::parse(src)?, Path::new(dst), ctx),
        (true, true) => {
            let (from, to) = (S3Url::parse(src)?, S3Url::parse(dst)?);
            let copy = client
                .copy_object()
                .copy_source(format!("{}/{}", from.bucket, from.key))
                .bucket(&to.bucket)
                .key(&to.key)
                .send();
            aws.run(ctx, copy)?
                .map_err(|e| aws_error(aws, &format!("copying {src} to {dst}"), e))?;
            ctx.stdout(&format!("Copied {src} to {dst}.\n"));
            Ok(())
        }
        (false, false) => Err(MagicError::usage(
            "s3",
            "one side of `cp` must be an s3:// URL",
        )),
    }
}

pub(crate) fn upload(
    aws: &Aws,
    client: &aws_sdk_s3::Client,
    path: &Path,
    to: &S3Url,
    ctx: &mut dyn MagicContext,
) -> Result<(), MagicError> {
    let data =
        std::fs::read(path).map_err(|e| failed(format!("cannot read {}: {e}", path.display())))?;
    let key = if to.key.is_empty() || to.key.ends_with('/') {
        format!(
            "{}{}",
            to.key,
            path.file_name()
                .map(|f| f.to_string_lossy())
                .unwrap_or_default()
        )
    } else {
        to.key.clone()
    };
    let dest = format!("s3://{}/{key}", to.bucket);
    let what = format!("uploading {} to {dest}", path.display());
    if data.len() < PART_SIZE {
        let put = client
            .put_object()
            .bucket(&to.bucket)
            .key(&key)
            .body(ByteStream::from(data.clone()))
            .send();
        aws.run(ctx, put)?.map_err(|e| aws_error(aws, &what, e))?;
    } else {
        let created = aws
            .run(
                ctx,
                client
                    .create_multipart_upload()
                    .bucket(&to.bucket)
                    .key(&key)
                    .send(),
            )?
            .map_err(|e| aws_error(aws, &what, e))?;
        let upload_id = created.upload_id().unwrap_or_default().to_owned();
        let mut live = LiveDisplay::new("s3-upload", &upload_id);
        let parts = data.len().div_ceil(PART_SIZE);
        live.finish(
            ctx,
            MimeBundle::text(format!("Uploading to {dest}: 0 of {parts} parts")),
        );
        let mut done = Vec::new();
        let result = (|| -> Result<(), MagicError> {
            for (i, chunk) in data.chunks(PART_SIZE).enumerate() {
                let number = i as i32 + 1;
                let part = client
                    .upload_part()
                    .bucket(&to.bucket)
                    .key(&key)
                    .upload_id(&upload_id)
                    .part_number(number)
                    .body(ByteStream::from(chunk.to_vec()))
                    .send();
                let out = aws.run(ctx, part)?.map_err(|e| aws_error(aws, &what, e))?;
                done.push(
                    CompletedPart::builder()
                        .part_number(number)
                        .set_e_tag(out.e_tag().map(str::to_owned))
                        .build(),
                );
                let text = format!("Uploading to {dest}: {number} of {parts} parts");
                if number as usize == parts {
                    live.finish(ctx, MimeBundle::text(text));
                } else {
                    live.update(ctx, MimeBundle::text(text));
                }
            }
            let complete = client
                .complete_multipart_upload()
                .bucket(&to.bucket)
                .key(&key)
                .upload_id(&upload_id)
                .multipart_upload(
                    CompletedMultipartUpload::builder()
                        .set_parts(Some(done.clone()))
                        .build(),
                )
                .send();
            aws.run(ctx, complete)?
                .map_err(|e| aws_error(aws, &what, e))?;
            Ok(())
        })();
        if let Err(e) = result {
            // Nothing half-written: the parts already sent are discarded.
            let abort = client
                .abort_multipart_upload()
                .bucket(&to.bucket)
                .key(&key)
                .upload_id(&upload_id)
                .send();
            let _ = aws.runtime_block(abort);
            return Err(long_work::on_interrupt(
                e,
                format!("the upload to {dest} was stopped and its parts discarded"),
                format!("{} is kept", path.display()),
            ));
        }
    }
    ctx.stdout(&format!(
        "Uploaded {} ({} bytes) to {dest}.\n",
        path.display(),
        data.len()
    ));
    Ok(())
}

fn download(
    aws: &Aws,
    client: &aws_sdk_s3::Client,
    from: &S3Url,
    path: &Path,
    ctx: &mut dyn MagicContext,
) -> Result<(), MagicError> {
    let target: PathBuf = if path.is_dir() {
        path.join(from.key.rsplit('/').next().unwrap_or("object"))
    } else {
        path.to_owned()
    };
    let bytes = get_bytes(aws, client, from, ctx)?;
    // Written beside the target and renamed, so a failure leaves no half file.
    let tmp = target.with_extension("part-download");
    std::fs::write(&tmp, &bytes)
        .and_then(|_| std::fs::rename(&tmp, &target))
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            failed(format!("cannot write {}: {e}", target.display()))
        })?;
    ctx.stdout(&format!(
        "Downloaded s3://{}/{} ({} bytes) to {}.\n",
        from.bucket,
        from.key,
        bytes.len(),
        target.display()
    ));
    Ok(())
}

fn rm(
    aws: &Aws,
    client: &aws_sdk_s3::Client,
    url: &S3Url,
    recursive: bool,
    ctx: &mut dyn MagicContext,
) -> Result<(), MagicError> {
    let what = format!("removing s3://{}/{}", url.bucket, url.key);
    if !recursive {
        if url.key.is_empty() || url.key.ends_with('/') {
            return Err(MagicError::usage(
                "s3",
                format!("{what}: that is a prefix; add --recursive to remove everything under it"),
            ));
        }
        aws.run(
            ctx,
            client
                .delete_object()
                .bucket(&url.bucket)
                .key(&url.key)
                .send(),
        )?
        .map_err(|e| aws_error(aws, &what, e))?;
        ctx.stdout(&format!("Removed s3://{}/{}.\n", url.bucket, url.key));
        return Ok(());
    }
    let mut removed = 0;
    loop {
        let out = aws
            .run(
                ctx,
                client
                    .list_objects_v2()
                    .bucket(&url.bucket)
                    .prefix(&url.key)
                    .send(),
            )?
            .map_err(|e| aws_error(aws, &what, e))?;
        let ids = out
            .contents()
            .iter()
            .filter_map(|o| o.key())
            .map(|k| {
                ObjectIdentifier::builder()
                    .key(k)
                    .build()
                    .map_err(|e| build_error(&what, e))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if ids.is_empty() {
            break;
        }
        removed += ids.len();
        let delete = Delete::builder()
            .set_objects(Some(ids))
            .build()
            .map_err(|e| build_error(&what, e))?;
        aws.run(
            ctx,
            client
                .delete_objects()
                .bucket(&url.bucket)
                .delete(delete)
                .send(),
        )?
        .map_err(|e| aws_error(aws, &what, e))?;
    }
    ctx.stdout(&format!(
        "Removed {removed} object(s) under s3://{}/{}.\n",
        url.bucket, url.key
    ));
    Ok(())
}

fn call<F: std::future::Future>(
    aws: &Aws,
    ctx: Option<&dyn MagicContext>,
    fut: F,
) -> Result<F::Output, MagicError> {
    match ctx {
        Some(ctx) => aws.run(ctx, fut),
        None => Ok(aws.runtime_block(fut)),
    }
}

/// Downloads an object, or every object under a prefix (keeping the layout of the keys below
/// it), into `dir`; returns the object's local file or the prefix's local folder. Other crates
/// (`%monitor`) read S3 data through this. With a context, an interrupt stops the download.
pub fn fetch(
    aws: &mut Aws,
    url: &str,
    dir: &Path,
    ctx: Option<&dyn MagicContext>,
) -> Result<PathBuf, MagicError> {
    let parsed = S3Url::parse(url)?;
    let client = aws_sdk_s3::Client::new(&aws.sdk()?);
    let aws = &*aws;
    let mut keys = Vec::new();
    let mut token = None;
    loop {
        let out = call(
            aws,
            ctx,
            client
                .list_objects_v2()
                .bucket(&parsed.bucket)
                .prefix(&parsed.key)
                .set_continuation_token(token)
                .send(),
        )?
        .map_err(|e| aws_error(aws, &format!("listing {url}"), e))?;
        keys.extend(
            out.contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_owned)),
        );
        token = out.next_continuation_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    let single = keys.contains(&parsed.key) && !parsed.key.is_empty();
    let prefix = if parsed.key.is_empty() || parsed.key.ends_with('/') {
        parsed.key.clone()
    } else {
        format!("{}/", parsed.key)
    };
    let wanted: Vec<&String> = if single {
        keys.iter().filter(|k| **k == parsed.key).collect()
    } else {
        keys.iter()
            .filter(|k| k.starts_with(&prefix) && !k.ends_with('/'))
            .collect()
    };
    if wanted.is_empty() {
        return Err(failed(format!("there is no object at or under {url}")));
    }
    for key in &wanted {
        let relative = if single {
            key.rsplit('/').next().unwrap_or(key).to_owned()
        } else {
            key[prefix.len()..].to_owned()
        };
        if relative.split('/').any(|p| p == "..") {
            return Err(failed(format!(
                "refusing the key {key}: it climbs out of the folder"
            )));
        }
        let target = dir.join(&relative);
        let object = call(
            aws,
            ctx,
            client.get_object().bucket(&parsed.bucket).key(*key).send(),
        )?
        .map_err(|e| aws_error(aws, &format!("reading s3://{}/{key}", parsed.bucket), e))?;
        let bytes = call(aws, ctx, object.body.collect())?.map_err(|e| {
            failed(format!(
                "reading s3://{}/{key}: the download broke off: {e}",
                parsed.bucket
            ))
        })?;
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| failed(format!("cannot make {}: {e}", parent.display())))?;
        }
        std::fs::write(&target, bytes.into_bytes())
            .map_err(|e| failed(format!("cannot write {}: {e}", target.display())))?;
    }
    Ok(if single {
        dir.join(wanted[0].rsplit('/').next().unwrap_or(wanted[0]))
    } else {
        dir.to_owned()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_urls() {
        assert_eq!(
            S3Url::parse("s3://my-bucket/a/b.csv").unwrap(),
            S3Url {
                bucket: "my-bucket".into(),
                key: "a/b.csv".into()
            }
        );
        assert_eq!(S3Url::parse("s3://bkt").unwrap().key, "");
        assert!(S3Url::parse("/tmp/x")
            .unwrap_err()
            .to_string()
            .contains("not an S3 URL"));
        assert!(S3Url::parse("s3://Bad_Bucket/x")
            .unwrap_err()
            .to_string()
            .contains("not a valid bucket name"));
        assert_eq!(format_of("x.CSV", None).unwrap(), "csv");
        assert!(format_of("x.json", None).is_err());
    }
}
