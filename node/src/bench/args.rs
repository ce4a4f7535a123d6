//! Command-line flags of `mucura bench` and the sizes they imply.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

/// One benchmark workload, named as on the command line and in the JSON report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
pub enum Workload {
    /// 16 concurrent PUTs of distinct 4 KiB objects.
    #[value(name = "put-4k")]
    Put4k,
    /// 16 concurrent GETs of 4 KiB objects.
    #[value(name = "get-4k")]
    Get4k,
    /// 16 concurrent HEADs of 4 KiB objects.
    #[value(name = "head")]
    Head,
    /// 4 concurrent ListObjectsV2 clients paging (1,000 keys a page) over a large prefix.
    #[value(name = "list")]
    List,
    /// 8 concurrent PUTs of 1 MiB objects.
    #[value(name = "put-1m")]
    Put1m,
    /// 8 concurrent GETs of 1 MiB objects.
    #[value(name = "get-1m")]
    Get1m,
    /// 2 concurrent PUTs of 64 MiB objects.
    #[value(name = "put-64m")]
    Put64m,
    /// 2 concurrent GETs of 64 MiB objects.
    #[value(name = "get-64m")]
    Get64m,
    /// One 1 GiB multipart upload: 8 MiB parts, 4 in flight.
    #[value(name = "multipart-1g")]
    Multipart1g,
    /// One 2 GiB single-request PUT, then a GET of it, watching the node's memory.
    #[value(name = "big-2g")]
    Big2g,
}

impl Workload {
    /// Every workload, in the order they run (GETs after the PUTs that fill them).
    pub const ALL: [Workload; 10] = [
        Workload::Put4k,
        Workload::Get4k,
        Workload::Head,
        Workload::List,
        Workload::Put1m,
        Workload::Get1m,
        Workload::Put64m,
        Workload::Get64m,
        Workload::Multipart1g,
        Workload::Big2g,
    ];

    /// The name used on the command line and in the report.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Put4k => "put-4k",
            Workload::Get4k => "get-4k",
            Workload::Head => "head",
            Workload::List => "list",
            Workload::Put1m => "put-1m",
            Workload::Get1m => "get-1m",
            Workload::Put64m => "put-64m",
            Workload::Get64m => "get-64m",
            Workload::Multipart1g => "multipart-1g",
            Workload::Big2g => "big-2g",
        }
    }
}

/// Flags of `mucura bench`: drive an S3 endpoint and print one JSON report on stdout.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// S3 endpoint to drive (path-style requests).
    #[arg(long, default_value = "http://127.0.0.1:9000")]
    pub endpoint: String,
    /// Access key id to sign with.
    #[arg(long, env = "MUCURA_ROOT_ACCESS_KEY")]
    pub access_key: String,
    /// Secret key to sign with.
    #[arg(long, env = "MUCURA_ROOT_SECRET_KEY", hide_env_values = true)]
    pub secret_key: String,
    /// Region in the signature's scope.
    #[arg(long, default_value = "us-east-1")]
    pub region: String,
    /// Bucket to write into (created if missing).
    #[arg(long, default_value = "mucura-bench")]
    pub bucket: String,
    /// Process id of the node: its resident memory is sampled during each workload.
    #[arg(long)]
    pub node_pid: Option<u32>,
    /// The node's data directory: metadata bytes per small object are measured from `DIR/meta`.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Workloads to run (comma-separated); they always run in the canonical order.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = Workload::ALL)]
    pub workloads: Vec<Workload>,
    /// Duration of each timed workload, in seconds.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Scale everything down for a smoke run of a few seconds.
    #[arg(long)]
    pub quick: bool,
}

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const GIB: u64 = 1024 * MIB;

/// The sizes and counts one run uses: the figures, or small ones with `--quick`.
#[derive(Debug, Clone)]
pub struct Scale {
    /// Duration of each timed workload.
    pub duration: Duration,
    /// Size of the small objects (put-4k, get-4k, head).
    pub small_object: u64,
    /// Size of the medium objects (put-1m, get-1m).
    pub medium_object: u64,
    /// Size of the large objects (put-64m, get-64m).
    pub large_object: u64,
    /// Objects under the listed prefix.
    pub list_objects: usize,
    /// Keys per ListObjectsV2 page.
    pub list_page: usize,
    /// Total size of the multipart upload.
    pub multipart_total: u64,
    /// Size of each multipart part.
    pub multipart_part: u64,
    /// Size of the single-request big object.
    pub big_object: u64,
}

impl Scale {
    /// The scale the flags ask for.
    pub fn from_args(args: &BenchArgs) -> Scale {
        if args.quick {
            Scale {
                duration: Duration::from_millis(500),
                small_object: 4 * KIB,
                medium_object: MIB,
                large_object: 8 * MIB,
                list_objects: 2_000,
                list_page: 1_000,
                multipart_total: 64 * MIB,
                multipart_part: 8 * MIB,
                big_object: 128 * MIB,
            }
        } else {
            Scale {
                duration: Duration::from_secs(args.seconds.max(1)),
                small_object: 4 * KIB,
                medium_object: MIB,
                large_object: 64 * MIB,
                list_objects: 10_000,
                list_page: 1_000,
                multipart_total: GIB,
                multipart_part: 8 * MIB,
                big_object: 2 * GIB,
            }
        }
    }
}
