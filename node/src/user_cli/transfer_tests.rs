use super::*;

fn url(text: &str) -> S3Url {
    S3Url::require(text).unwrap()
}

#[test]
fn upload_keys_follow_aws_cp() {
    let file = Path::new("/data/run/out.root");
    assert_eq!(upload_key(&url("s3://bkt"), file).unwrap(), "out.root");
    assert_eq!(
        upload_key(&url("s3://bkt/dir/"), file).unwrap(),
        "dir/out.root"
    );
    assert_eq!(
        upload_key(&url("s3://bkt/name.bin"), file).unwrap(),
        "name.bin"
    );
}

#[test]
fn recursive_uploads_map_the_tree_under_the_prefix() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
    std::fs::write(dir.path().join("top.txt"), b"1").unwrap();
    std::fs::write(dir.path().join("a/b/deep.txt"), b"22").unwrap();
    let jobs = upload_jobs(dir.path(), &url("s3://bkt/pre"), true).unwrap();
    let keys: Vec<_> = jobs
        .iter()
        .map(|job| (job.remote.key.as_str(), job.size))
        .collect();
    assert_eq!(keys, vec![("pre/a/b/deep.txt", 2), ("pre/top.txt", 1)]);
    let error = upload_jobs(dir.path(), &url("s3://bkt/pre"), false).unwrap_err();
    assert!(error.to_string().contains("use -r"));
    assert!(upload_jobs(&dir.path().join("missing"), &url("s3://bkt"), false).is_err());
}

#[test]
fn downloads_never_escape_the_target_directory() {
    let root = Path::new("/dst");
    assert_eq!(
        local_path_for(root, "p/", "p/a/b.txt"),
        Some(PathBuf::from("/dst/a/b.txt"))
    );
    assert_eq!(local_path_for(root, "", "x"), Some(PathBuf::from("/dst/x")));
    for bad in [
        "p/../etc/passwd",
        "p//x",
        "p/a/",
        "p/",
        "p/./x",
        "q/x",
        "p/a\\..\\b",
    ] {
        assert_eq!(local_path_for(root, "p/", bad), None, "{bad}");
    }
}

#[test]
fn part_sizes_respect_the_part_count_and_minimum() {
    const MIB: u64 = 1024 * 1024;
    assert_eq!(effective_part_size(20 * MIB, 5 * MIB), 5 * MIB);
    assert_eq!(effective_part_size(20 * MIB, MIB), MIN_PART_SIZE);
    let huge = 200_000 * MIB;
    assert_eq!(effective_part_size(huge, 16 * MIB), 20 * MIB);
    assert!(huge.div_ceil(effective_part_size(huge, 16 * MIB)) <= MAX_PARTS);
    assert_eq!(directory_prefix("a"), "a/");
    assert_eq!(directory_prefix(""), "");
    assert_eq!(
        partial_name(Path::new("/x/file.bin")),
        PathBuf::from("/x/.file.bin.mucura-partial")
    );
}
