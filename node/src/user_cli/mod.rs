//! The user commands of `mucura` (issue #6): `ls`, `cp`, `rm`, `share`, `mb`, `rb` against any
//! S3 endpoint, and `login`, `register`, `env`, `credential-process` for grid users.
//!
//! How a command runs: [`resolve`] finds endpoint and credentials (flags, environment, the
//! [`cache`] of `login`, AWS profiles via [`aws_files`]); [`s3`] signs and sends requests over
//! [`http`] (plain or rustls, trust from [`tls`]) and reads S3's XML with [`answers`];
//! [`transfer`] streams files for `cp`; [`commands`] prints. `login` ([`login`]) talks to the
//! grid endpoint ([`grid_client`]) over mutual TLS with the proxy file and reads the STS
//! answer ([`sts`]); [`xml`] reads every XML answer by local name; [`location`] parses
//! operands.

pub mod answers;
pub mod aws_files;
pub mod cache;
pub mod commands;
pub mod grid_client;
pub mod http;
pub mod location;
pub mod login;
pub mod resolve;
pub mod s3;
pub mod sts;
pub mod tls;
pub mod transfer;
pub mod xml;

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Subcommand};

use resolve::Env;

/// The user-facing subcommands, flattened into `mucura`'s command list.
#[derive(Subcommand)]
pub enum UserCommand {
    /// List buckets, or the objects under s3://BUCKET[/PREFIX].
    Ls(LsArgs),
    /// Copy files to or from S3: `cp FILE s3://B/KEY`, `cp s3://B/KEY FILE`, `-r` for trees.
    Cp(CpArgs),
    /// Delete an object, or with -r everything under a prefix.
    Rm(RmArgs),
    /// Print a presigned URL that lets anyone download an object until it expires.
    Share(ShareArgs),
    /// Create a bucket.
    Mb(BucketArgs),
    /// Delete an empty bucket.
    Rb(BucketArgs),
    /// Exchange a grid proxy certificate for temporary S3 credentials, cache them and write
    /// the AWS profile `mucura`.
    Login(LoginArgs),
    /// Register with a personal grid certificate and get long-term S3 keys.
    Register(RegisterArgs),
    /// Print `export AWS_…` lines for the cached credentials: eval "$(mucura env)".
    Env,
    /// Print the cached credentials as AWS `credential_process` JSON.
    CredentialProcess,
}

/// Where and as whom the S3 commands connect (see [`resolve`] for the order).
#[derive(Args, Clone, Default)]
pub struct S3Options {
    /// S3 endpoint URL [default: AWS_ENDPOINT_URL, the login cache, the profile's endpoint_url].
    #[arg(long)]
    pub endpoint: Option<String>,
    /// AWS profile to use (from ~/.aws/credentials and ~/.aws/config).
    #[arg(long)]
    pub profile: Option<String>,
    /// PEM bundle of CAs to trust for https endpoints [default: X509_CERT_DIR and the system
    /// bundle].
    #[arg(long)]
    pub ca_file: Option<PathBuf>,
}

/// `mucura ls`.
#[derive(Args)]
pub struct LsArgs {
    /// s3://BUCKET[/PREFIX]; without it, the buckets are listed.
    pub target: Option<String>,
    /// List every object under the prefix, not just one level.
    #[arg(short, long)]
    pub recursive: bool,
    /// Sizes in KiB, MiB, GiB.
    #[arg(long)]
    pub human_readable: bool,
    #[command(flatten)]
    pub s3: S3Options,
}

/// `mucura cp`.
#[derive(Args)]
pub struct CpArgs {
    /// A local file or directory, or s3://BUCKET/KEY.
    pub source: String,
    /// A local path, or s3://BUCKET/KEY (ending with / or a bucket: the source's name is kept).
    pub destination: String,
    /// Copy a directory or a whole prefix.
    #[arg(short, long)]
    pub recursive: bool,
    /// Files larger than this are uploaded in parts.
    #[arg(long, default_value = "64MiB", value_parser = parse_size_arg)]
    pub multipart_threshold: u64,
    /// Size of each part (at least 5 MiB, as S3 requires).
    #[arg(long, default_value = "16MiB", value_parser = parse_size_arg)]
    pub part_size: u64,
    /// Parts or files transferred at once.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// No progress bar, even on a terminal.
    #[arg(short, long)]
    pub quiet: bool,
    #[command(flatten)]
    pub s3: S3Options,
}

fn parse_size_arg(text: &str) -> Result<u64, String> {
    location::parse_size(text).map_err(|err| err.to_string())
}

/// `mucura rm`.
#[derive(Args)]
pub struct RmArgs {
    /// s3://BUCKET/KEY (with -r: s3://BUCKET[/PREFIX]).
    pub target: String,
    /// Delete every object under the prefix.
    #[arg(short, long)]
    pub recursive: bool,
    #[command(flatten)]
    pub s3: S3Options,
}

/// `mucura share`.
#[derive(Args)]
pub struct ShareArgs {
    /// s3://BUCKET/KEY of the object to share.
    pub target: String,
    /// How long the URL works: SECONDS, or a number with s, m, h, d (at most 7d).
    #[arg(long, default_value = "1h")]
    pub expires: String,
    #[command(flatten)]
    pub s3: S3Options,
}

/// `mucura mb` / `mucura rb`.
#[derive(Args)]
pub struct BucketArgs {
    /// s3://BUCKET
    pub bucket: String,
    #[command(flatten)]
    pub s3: S3Options,
}

/// `mucura login`.
#[derive(Args)]
pub struct LoginArgs {
    /// Grid proxy file [default: $X509_USER_PROXY, else /tmp/x509up_u$UID].
    #[arg(long)]
    pub proxy: Option<PathBuf>,
    /// Grid endpoint https://HOST:PORT [default: $MUCURA_GRID_URL].
    #[arg(long)]
    pub grid_url: Option<String>,
    /// Requested lifetime of the credentials in seconds (the server may shorten it).
    #[arg(long, value_name = "SECONDS")]
    pub duration: Option<u64>,
    /// PEM bundle of CAs to trust for the grid endpoint [default: $X509_CERT_DIR, else
    /// /etc/grid-security/certificates].
    #[arg(long)]
    pub ca_file: Option<PathBuf>,
    /// S3 endpoint to record when the grid endpoint names none.
    #[arg(long)]
    pub endpoint: Option<String>,
    /// Get new credentials even if the cached ones are still fresh.
    #[arg(long)]
    pub force: bool,
}

/// `mucura register`.
#[derive(Args)]
pub struct RegisterArgs {
    /// Your certificate (PEM), e.g. ~/.globus/usercert.pem.
    #[arg(long)]
    pub cert: PathBuf,
    /// Its private key (PEM, not passphrase-protected), e.g. a decrypted ~/.globus/userkey.pem.
    #[arg(long)]
    pub key: PathBuf,
    /// Grid endpoint https://HOST:PORT [default: $MUCURA_GRID_URL].
    #[arg(long)]
    pub grid_url: Option<String>,
    /// PEM bundle of CAs to trust for the grid endpoint.
    #[arg(long)]
    pub ca_file: Option<PathBuf>,
    /// Store the keys as AWS profile `mucura` (~/.aws/credentials, mode 0600, and the
    /// endpoint in ~/.aws/config).
    #[arg(long)]
    pub write_profile: bool,
}

/// Runs a user command.
pub async fn run(command: UserCommand) -> Result<()> {
    let env = Env::from_process();
    match command {
        UserCommand::Ls(args) => commands::ls(&env, args).await,
        UserCommand::Cp(args) => commands::cp(&env, args).await,
        UserCommand::Rm(args) => commands::rm(&env, args).await,
        UserCommand::Share(args) => commands::share(&env, args).await,
        UserCommand::Mb(args) => commands::make_bucket(&env, args).await,
        UserCommand::Rb(args) => commands::remove_bucket(&env, args).await,
        UserCommand::Login(args) => {
            login::login(
                &env,
                login::LoginRequest {
                    proxy: args.proxy,
                    grid_url: args.grid_url,
                    duration_seconds: args.duration,
                    ca_file: args.ca_file,
                    endpoint: args.endpoint,
                    force: args.force,
                },
            )
            .await
        }
        UserCommand::Register(args) => {
            login::register(
                &env,
                login::RegisterRequest {
                    cert: args.cert,
                    key: args.key,
                    grid_url: args.grid_url,
                    ca_file: args.ca_file,
                    write_profile: args.write_profile,
                },
            )
            .await
        }
        UserCommand::Env => login::env_command(&env).await,
        UserCommand::CredentialProcess => login::credential_process(&env).await,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(subcommand)]
        command: UserCommand,
    }

    #[test]
    fn cp_flags_parse_sizes_and_defaults() {
        let cli = Cli::try_parse_from([
            "mucura",
            "cp",
            "-r",
            "dir",
            "s3://bkt/pre/",
            "--part-size",
            "5MiB",
            "--endpoint",
            "http://h:1",
        ])
        .unwrap();
        let UserCommand::Cp(args) = cli.command else {
            panic!("not cp")
        };
        assert!(args.recursive);
        assert_eq!(args.part_size, 5 * 1024 * 1024);
        assert_eq!(args.multipart_threshold, 64 * 1024 * 1024);
        assert_eq!(args.s3.endpoint.as_deref(), Some("http://h:1"));
        assert!(Cli::try_parse_from(["mucura", "cp", "a", "b", "--part-size", "lots"]).is_err());
        assert!(Cli::try_parse_from(["mucura", "cp", "only-one"]).is_err());
    }

    #[test]
    fn login_and_share_flags_parse() {
        let cli = Cli::try_parse_from([
            "mucura",
            "login",
            "--proxy",
            "/tmp/x509up_u1",
            "--grid-url",
            "https://g:8443",
            "--duration",
            "7200",
        ])
        .unwrap();
        let UserCommand::Login(args) = cli.command else {
            panic!("not login")
        };
        assert_eq!(args.duration, Some(7200));
        assert_eq!(args.proxy, Some(PathBuf::from("/tmp/x509up_u1")));
        let cli = Cli::try_parse_from(["mucura", "share", "s3://b/k", "--expires", "7d"]).unwrap();
        assert!(
            matches!(cli.command, UserCommand::Share(ShareArgs { ref expires, .. }) if expires == "7d")
        );
        assert!(matches!(
            Cli::try_parse_from(["mucura", "credential-process"])
                .unwrap()
                .command,
            UserCommand::CredentialProcess
        ));
        assert!(Cli::try_parse_from(["mucura", "register", "--cert", "c.pem"]).is_err());
    }
}
