//! The S3 commands: connect with the resolved endpoint and credentials, run, print.

use anyhow::{bail, Context, Result};
use futures_util::{stream, StreamExt, TryStreamExt};
use time::OffsetDateTime;

use super::answers::display_time;
use super::cache;
use super::http;
use super::location::{parse_expiry, Location, S3Url};
use super::login;
use super::resolve::{resolve, AwsFiles, CredentialSource, Env, Keys, ResolveFlags};
use super::s3::S3Client;
use super::tls::{client_config, Trust};
use super::transfer::{self, TransferOptions};
use super::{BucketArgs, CpArgs, LsArgs, RmArgs, S3Options, ShareArgs};

/// Deletions in flight during `rm -r`: each is a tiny request, so latency dominates.
const DELETE_CONCURRENCY: usize = 8;

/// Runs a profile's `credential_process` command and reads its JSON.
async fn run_credential_process(command: &str) -> Result<Keys> {
    let owned = command.to_string();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(&owned)
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::inherit())
            .output()
    })
    .await
    .context("credential_process did not finish")?
    .with_context(|| format!("cannot run credential_process {command:?}"))?;
    if !output.status.success() {
        bail!("credential_process {command:?} failed ({})", output.status);
    }
    parse_credential_process(&output.stdout)
        .with_context(|| format!("the output of credential_process {command:?}"))
}

/// Reads AWS credential_process JSON (`Version` 1).
fn parse_credential_process(json: &[u8]) -> Result<Keys> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Output {
        version: u32,
        access_key_id: String,
        secret_access_key: String,
        session_token: Option<String>,
    }
    let output: Output = serde_json::from_slice(json).context("not credential_process JSON")?;
    if output.version != 1 {
        bail!(
            "credential_process Version {} (only 1 exists)",
            output.version
        );
    }
    Ok(Keys {
        access_key_id: output.access_key_id,
        secret_access_key: output.secret_access_key,
        session_token: output.session_token.filter(|token| !token.is_empty()),
    })
}

/// The client for an S3 command: endpoint and credentials resolved, the login cache
/// refreshed first when it is the one that will be used.
pub async fn connect(env: &Env, options: &S3Options) -> Result<S3Client> {
    let files = AwsFiles::load(env)?;
    let cache_path = cache::cache_path(env).unwrap_or_default();
    let cached = if options.profile.is_none() && !env.has_keys() {
        match login::current(env).await {
            Ok(cached) => cached,
            Err(err) => {
                eprintln!("warning: {err:#}");
                cache::load(&cache_path)
            }
        }
    } else {
        None
    };
    let flags = ResolveFlags {
        endpoint: options.endpoint.clone(),
        profile: options.profile.clone(),
    };
    let resolved = resolve(
        &flags,
        env,
        &files,
        cached.as_ref(),
        &cache_path,
        OffsetDateTime::now_utc(),
    )?;
    let keys = match resolved.credentials {
        CredentialSource::Keys(keys) => keys,
        CredentialSource::Process(command) => run_credential_process(&command).await?,
    };
    let tls = if resolved.endpoint.starts_with("https://") {
        let trust = Trust::from_env(options.ca_file.clone(), env);
        Some(client_config(trust.root_store()?, None)?)
    } else {
        None
    };
    Ok(S3Client::new(
        http::client(tls),
        &resolved.endpoint,
        &resolved.region,
        keys,
    ))
}

/// A size for `ls`: bytes, or with `human` KiB/MiB/GiB/TiB with one decimal.
fn format_size(size: u64, human: bool) -> String {
    if !human || size < 1024 {
        return size.to_string();
    }
    let units = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = size as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < units.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", units[unit])
}

/// What `ls` shows of a key: relative to the listed "directory" (as `aws s3 ls`), or the
/// whole key when recursive.
fn shown_name<'a>(key: &'a str, prefix: &str, recursive: bool) -> &'a str {
    if recursive {
        return key;
    }
    let directory = prefix.rfind('/').map_or("", |slash| &prefix[..=slash]);
    key.strip_prefix(directory).unwrap_or(key)
}

/// `mucura ls`.
pub async fn ls(env: &Env, args: LsArgs) -> Result<()> {
    let target = args.target.as_deref().map(S3Url::require).transpose()?;
    let client = connect(env, &args.s3).await?;
    let Some(url) = target else {
        for bucket in client.list_buckets().await? {
            println!("{}  {}", display_time(&bucket.created), bucket.name);
        }
        return Ok(());
    };
    let delimiter = (!args.recursive).then_some("/");
    let listing = client.list_all(&url.bucket, &url.key, delimiter).await?;
    for prefix in &listing.prefixes {
        println!(
            "{:>19}  {:>12}  {}",
            "",
            "PRE",
            shown_name(prefix, &url.key, false)
        );
    }
    for object in &listing.objects {
        println!(
            "{}  {:>12}  {}",
            display_time(&object.last_modified),
            format_size(object.size, args.human_readable),
            shown_name(&object.key, &url.key, args.recursive)
        );
    }
    Ok(())
}

/// `mucura cp`.
pub async fn cp(env: &Env, args: CpArgs) -> Result<()> {
    let source = Location::parse(&args.source)?;
    let destination = Location::parse(&args.destination)?;
    if args.part_size < transfer::MIN_PART_SIZE {
        bail!("--part-size must be at least 5 MiB (S3's smallest part)");
    }
    let client = connect(env, &args.s3).await?;
    let options = TransferOptions {
        multipart_threshold: args.multipart_threshold,
        part_size: args.part_size,
        concurrency: args.concurrency.max(1),
        progress: !args.quiet,
    };
    transfer::copy(&client, source, destination, args.recursive, &options).await
}

/// `mucura rm`.
pub async fn rm(env: &Env, args: RmArgs) -> Result<()> {
    if !args.recursive {
        let url = S3Url::require_object(&args.target)?;
        let client = connect(env, &args.s3).await?;
        client.delete_object(&url.bucket, &url.key).await?;
        println!("delete: {url}");
        return Ok(());
    }
    let url = S3Url::require(&args.target)?;
    let client = connect(env, &args.s3).await?;
    let prefix = if url.key.is_empty() || url.key.ends_with('/') {
        url.key.clone()
    } else {
        format!("{}/", url.key)
    };
    let listing = client.list_all(&url.bucket, &prefix, None).await?;
    let client = &client;
    stream::iter(listing.objects.into_iter().map(|object| {
        let target = url.with_key(object.key);
        async move {
            client.delete_object(&target.bucket, &target.key).await?;
            println!("delete: {target}");
            Ok::<_, anyhow::Error>(())
        }
    }))
    .buffer_unordered(DELETE_CONCURRENCY)
    .try_collect::<Vec<()>>()
    .await?;
    Ok(())
}

/// `mucura share`.
pub async fn share(env: &Env, args: ShareArgs) -> Result<()> {
    let url = S3Url::require_object(&args.target)?;
    let expires = parse_expiry(&args.expires)?;
    let client = connect(env, &args.s3).await?;
    // A link to nothing would fail only when the recipient tries it: check now.
    client.existing_object_size(&url.bucket, &url.key).await?;
    println!("{}", client.presign_get(&url.bucket, &url.key, expires)?);
    Ok(())
}

fn bucket_only(text: &str) -> Result<String> {
    let url = S3Url::require(text)?;
    if !url.key.is_empty() {
        bail!("{text}: name just a bucket (s3://BUCKET)");
    }
    Ok(url.bucket)
}

/// `mucura mb`.
pub async fn make_bucket(env: &Env, args: BucketArgs) -> Result<()> {
    let bucket = bucket_only(&args.bucket)?;
    let client = connect(env, &args.s3).await?;
    client.create_bucket(&bucket).await?;
    println!("make_bucket: {bucket}");
    Ok(())
}

/// `mucura rb`.
pub async fn remove_bucket(env: &Env, args: BucketArgs) -> Result<()> {
    let bucket = bucket_only(&args.bucket)?;
    let client = connect(env, &args.s3).await?;
    client.delete_bucket(&bucket).await?;
    println!("remove_bucket: {bucket}");
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn credential_process_json_is_read() {
        let keys = parse_credential_process(
            br#"{"Version":1,"AccessKeyId":"A","SecretAccessKey":"S","SessionToken":"T","Expiration":"2026-11-26T20:00:00Z"}"#,
        )
        .unwrap();
        assert_eq!(keys.access_key_id, "A");
        assert_eq!(keys.session_token.as_deref(), Some("T"));
        assert!(parse_credential_process(
            br#"{"Version":2,"AccessKeyId":"A","SecretAccessKey":"S"}"#
        )
        .is_err());
        assert!(parse_credential_process(b"nope").is_err());
    }

    #[test]
    fn ls_shows_names_relative_to_the_directory() {
        assert_eq!(shown_name("a/b/c.txt", "a/b/", false), "c.txt");
        assert_eq!(shown_name("a/b/c.txt", "a/b", false), "b/c.txt");
        assert_eq!(shown_name("a/b/c.txt", "a/", true), "a/b/c.txt");
        assert_eq!(shown_name("top.txt", "", false), "top.txt");
        assert_eq!(format_size(1023, true), "1023");
        assert_eq!(format_size(1536, true), "1.5 KiB");
        assert_eq!(format_size(20 * 1024 * 1024, true), "20.0 MiB");
        assert_eq!(format_size(1536, false), "1536");
    }

    #[tokio::test]
    async fn credential_processes_run_through_the_shell() {
        let keys = run_credential_process(
            r#"echo '{"Version":1,"AccessKeyId":"PK","SecretAccessKey":"PS"}'"#,
        )
        .await
        .unwrap();
        assert_eq!(keys.access_key_id, "PK");
        assert_eq!(keys.session_token, None);
        let failing = run_credential_process("exit 3").await.unwrap_err();
        assert!(failing.to_string().contains("failed"), "{failing}");
    }
}
