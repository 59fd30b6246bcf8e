//! `osspipe uploads` (list unfinished multipart uploads) and `osspipe abort`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use osspipe::client::Client;
use osspipe::xml::ListedUpload;
use osspipe::Error;

use crate::cli::{AbortArgs, UploadsArgs};
use crate::connect::{destination, Connection, EnvCredentials};
use crate::parse::{parse_iso8601_utc, OssUrl};
use crate::progress::eprintln_clean;
use crate::report::Failure;

/// One unfinished upload with what ListParts says of it.
#[derive(Debug)]
struct UploadRow {
    key: String,
    upload_id: String,
    initiated: String,
    parts: usize,
    bytes: u64,
}

/// Runs `osspipe uploads`.
///
/// # Errors
/// A [`Failure`]: 2 for bad usage, 1 when listing fails.
pub(crate) async fn run_uploads(args: UploadsArgs, quiet: bool) -> Result<(), Failure> {
    let destination = destination(&args.connect, EnvCredentials::from_env())?;
    let connection = Connection::open(destination, quiet).await?;
    let result = list(&connection.client, &args.url).await;
    connection.close().await;
    let rows = result?;
    if args.json {
        let values: Vec<_> = rows
            .iter()
            .map(|row| {
                serde_json::json!({
                    "bucket": args.url.bucket,
                    "key": row.key,
                    "upload_id": row.upload_id,
                    "initiated": row.initiated,
                    "parts": row.parts,
                    "bytes": row.bytes,
                })
            })
            .collect();
        println!("{}", serde_json::Value::Array(values));
        return Ok(());
    }
    if rows.is_empty() {
        if !quiet {
            eprintln_clean(&format!(
                "osspipe: no unfinished uploads under {}",
                args.url
            ));
        }
        return Ok(());
    }
    print_table(&rows);
    Ok(())
}

/// Lists the uploads under the URL's prefix with their parts and bytes (one ListParts each).
async fn list(client: &Client, url: &OssUrl) -> Result<Vec<UploadRow>, Failure> {
    let prefix = (!url.key.is_empty()).then_some(url.key.as_str());
    let uploads = client.list_multipart_uploads(&url.bucket, prefix).await?;
    let mut rows = Vec::with_capacity(uploads.len());
    for upload in uploads {
        match client
            .list_parts(&url.bucket, &upload.key, &upload.upload_id)
            .await
        {
            Ok(parts) => rows.push(UploadRow {
                parts: parts.len(),
                bytes: parts.iter().map(|p| p.size).sum(),
                key: upload.key,
                upload_id: upload.upload_id,
                initiated: upload.initiated,
            }),
            // Completed or aborted between the two listings: it is no longer unfinished.
            Err(error) if error.oss_code() == Some("NoSuchUpload") => {}
            Err(error) => return Err(error.into()),
        }
    }
    Ok(rows)
}

fn print_table(rows: &[UploadRow]) {
    let key_width = rows
        .iter()
        .map(|r| r.key.chars().count())
        .max()
        .unwrap_or(0)
        .max(3);
    let id_width = rows
        .iter()
        .map(|r| r.upload_id.len())
        .max()
        .unwrap_or(0)
        .max(9);
    let started_width = rows
        .iter()
        .map(|r| r.initiated.len())
        .max()
        .unwrap_or(0)
        .max(7);
    println!(
        "{:key_width$}  {:id_width$}  {:started_width$}  {:>5}  {:>12}",
        "KEY", "UPLOAD ID", "STARTED", "PARTS", "BYTES"
    );
    for row in rows {
        println!(
            "{:key_width$}  {:id_width$}  {:started_width$}  {:>5}  {:>12}",
            row.key, row.upload_id, row.initiated, row.parts, row.bytes
        );
    }
}

/// Runs `osspipe abort`.
///
/// # Errors
/// A [`Failure`]: 2 for bad usage, 1 when an abort (or the listing) fails.
pub(crate) async fn run_abort(args: AbortArgs, quiet: bool) -> Result<(), Failure> {
    if args.upload_id.is_some() {
        if args.url.key.is_empty() {
            return Err(Failure::usage(format!(
                "abort --upload-id needs the object's key: oss://{}/KEY",
                args.url.bucket
            )));
        }
        osspipe::limits::validate_object_key(&args.url.key)
            .map_err(|e| Failure::usage(e.to_string()))?;
    }
    let destination = destination(&args.connect, EnvCredentials::from_env())?;
    let connection = Connection::open(destination, quiet).await?;
    let result = match &args.upload_id {
        Some(upload_id) => abort_one(&connection.client, &args.url, upload_id).await,
        None => {
            let older_than = args.older_than.unwrap_or(Duration::MAX);
            abort_all(&connection.client, &args.url, older_than, args.dry_run).await
        }
    };
    connection.close().await;
    result
}

async fn abort_one(client: &Client, url: &OssUrl, upload_id: &str) -> Result<(), Failure> {
    client
        .abort_multipart_upload(&url.bucket, &url.key, upload_id)
        .await?;
    println!("aborted upload {upload_id} of {url}");
    Ok(())
}

/// Aborts every upload under the prefix started more than `older_than` ago. Uploads whose
/// start time cannot be read are left alone (and reported).
async fn abort_all(
    client: &Client,
    url: &OssUrl,
    older_than: Duration,
    dry_run: bool,
) -> Result<(), Failure> {
    let prefix = (!url.key.is_empty()).then_some(url.key.as_str());
    let uploads = client.list_multipart_uploads(&url.bucket, prefix).await?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let mut aborted = 0usize;
    let mut kept = 0usize;
    let mut failures: Vec<Error> = Vec::new();
    for upload in uploads {
        match age(&upload, now) {
            None => {
                eprintln_clean(&format!(
                    "osspipe: warning: left upload {} of {:?}: cannot read its start time {:?}",
                    upload.upload_id, upload.key, upload.initiated
                ));
                kept += 1;
                continue;
            }
            Some(age) if age < older_than => {
                kept += 1;
                continue;
            }
            Some(_) => {}
        }
        let object = OssUrl {
            bucket: url.bucket.clone(),
            key: upload.key.clone(),
        };
        if dry_run {
            println!(
                "would abort upload {} of {object} (started {})",
                upload.upload_id, upload.initiated
            );
            aborted += 1;
            continue;
        }
        match client
            .abort_multipart_upload(&url.bucket, &upload.key, &upload.upload_id)
            .await
        {
            Ok(()) => {
                println!(
                    "aborted upload {} of {object} (started {})",
                    upload.upload_id, upload.initiated
                );
                aborted += 1;
            }
            // Finished or aborted by someone else meanwhile: nothing left to clean up.
            Err(error) if error.oss_code() == Some("NoSuchUpload") => {}
            Err(error) => failures.push(error),
        }
    }
    eprintln_clean(&format!(
        "osspipe: {} {aborted} upload{} under {url}; left {kept} newer or undated",
        if dry_run { "would abort" } else { "aborted" },
        if aborted == 1 { "" } else { "s" },
    ));
    match failures.len() {
        0 => Ok(()),
        n => {
            let first = Failure::from_error(&failures[0]);
            Err(first.note(format!("note: {n} abort(s) failed; rerun to retry them")))
        }
    }
}

/// How long ago the upload started, or `None` when its `Initiated` cannot be read.
fn age(upload: &ListedUpload, now: i64) -> Option<Duration> {
    let started = parse_iso8601_utc(&upload.initiated)?;
    Some(Duration::from_secs(
        now.saturating_sub(started).max(0) as u64
    ))
}
