use std::fs;
use std::time::Duration;

use super::*;

fn counters() -> AccessLogCounters {
    AccessLogCounters {
        dropped: IntCounter::new("dropped_total", "test").unwrap(),
        write_errors: IntCounter::new("write_errors_total", "test").unwrap(),
    }
}

fn record(n: usize) -> RequestRecord {
    let mut record = RequestRecord::arriving(
        format!("REQ{n:04}"),
        http::Method::PUT,
        Some("127.0.0.1:40000".parse().unwrap()),
    );
    record.operation = Some("PutObject");
    record.bucket = Some("photos".into());
    record.key = Some(format!("dir/\"quoted\" {n:02}.jpg"));
    record.access_key = Some("AKROOT".into());
    record.user = Some("root".into());
    record.status = 200;
    record.bytes_in = 1000 + n as u64;
    record.bytes_out = 0;
    record.duration = Duration::from_micros(1500);
    record
}

fn config(dir: &Path) -> AccessLogConfig {
    AccessLogConfig {
        flush_interval: Duration::from_millis(20),
        ..AccessLogConfig::new(dir)
    }
}

fn lines_of(path: &Path) -> Vec<serde_json::Value> {
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

#[test]
fn writes_one_valid_json_line_per_request() {
    let dir = tempfile::tempdir().unwrap();
    let (log, writer) = start(config(dir.path()), "7", counters()).unwrap();
    log.record(&record(1));
    let mut failed = record(2);
    failed.operation = None;
    failed.access_key = None;
    failed.user = None;
    failed.status = 403;
    failed.error_code = Some("AccessDenied");
    log.record(&failed);
    writer.close_blocking();

    let lines = lines_of(&dir.path().join("logs/access.log"));
    assert_eq!(lines.len(), 2);
    let first = &lines[0];
    assert_eq!(first["request_id"], "REQ0001");
    assert_eq!(first["node"], "7");
    assert_eq!(first["user"], "root");
    assert_eq!(first["access_key"], "AKROOT");
    assert_eq!(first["remote_addr"], "127.0.0.1:40000");
    assert_eq!(first["method"], "PUT");
    assert_eq!(first["operation"], "PutObject");
    assert_eq!(first["bucket"], "photos");
    assert_eq!(first["key"], "dir/\"quoted\" 01.jpg");
    assert_eq!(first["status"], 200);
    assert_eq!(first["error_code"], serde_json::Value::Null);
    assert_eq!(first["bytes_in"], 1001);
    assert_eq!(first["bytes_out"], 0);
    assert_eq!(first["duration_ms"], 1.5);
    let time = first["time"].as_str().unwrap();
    assert_eq!(time.len(), "2026-11-02T10:11:12.345Z".len(), "{time}");
    assert!(time.ends_with('Z') && time.as_bytes()[19] == b'.', "{time}");
    let second = &lines[1];
    assert_eq!(second["operation"], serde_json::Value::Null);
    assert_eq!(second["error_code"], "AccessDenied");
    assert_eq!(second["status"], 403);
}

#[test]
fn lines_reach_the_file_within_the_flush_interval() {
    let dir = tempfile::tempdir().unwrap();
    let (log, writer) = start(config(dir.path()), "1", counters()).unwrap();
    log.record(&record(1));
    let path = dir.path().join("logs/access.log");
    let deadline = Instant::now() + Duration::from_secs(5);
    while fs::read_to_string(&path).map_or(true, |text| text.is_empty()) {
        assert!(
            Instant::now() < deadline,
            "line not flushed while the writer runs"
        );
        thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(lines_of(&path).len(), 1);
    writer.close_blocking();
}

#[test]
fn rotates_by_size_keeping_the_configured_number_of_files() {
    let dir = tempfile::tempdir().unwrap();
    let line_len = format_line("1", &record(1)).unwrap().len() as u64;
    let config = AccessLogConfig {
        max_file_bytes: line_len * 4,
        keep_files: 3,
        ..config(dir.path())
    };
    let (log, writer) = start(config, "1", counters()).unwrap();
    for n in 0..30 {
        log.record(&record(n));
    }
    writer.close_blocking();

    let logs = dir.path().join("logs");
    let mut names: Vec<String> = fs::read_dir(&logs)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["access.log", "access.log.1", "access.log.2", "access.log.3"]
    );
    // 30 lines, 4 per file: the current file holds the last 2, each rotated one 4.
    let ids = |name: &str| -> Vec<String> {
        lines_of(&logs.join(name))
            .iter()
            .map(|line| line["request_id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids("access.log"), ["REQ0028", "REQ0029"]);
    assert_eq!(ids("access.log.1").len(), 4);
    assert_eq!(ids("access.log.1")[0], "REQ0024");
    assert_eq!(ids("access.log.3")[0], "REQ0016");
}

#[test]
fn survives_a_log_dir_that_cannot_be_written() {
    let dir = tempfile::tempdir().unwrap();
    // A file where the log directory should be: every open fails.
    fs::write(dir.path().join("logs"), "in the way").unwrap();
    let counters = counters();
    let (log, writer) = start(config(dir.path()), "1", counters.clone()).unwrap();
    for n in 0..5 {
        log.record(&record(n));
    }
    writer.close_blocking();
    assert_eq!(counters.write_errors.get(), 5);
    assert_eq!(counters.dropped.get(), 0);
}

#[test]
fn a_full_queue_drops_and_counts_instead_of_blocking() {
    let (sender, _receiver) = mpsc::sync_channel(2);
    let dropped = IntCounter::new("dropped_total", "test").unwrap();
    let log = AccessLog {
        sender,
        node: Arc::from("1"),
        dropped: dropped.clone(),
    };
    for n in 0..5 {
        log.record(&record(n));
    }
    assert_eq!(dropped.get(), 3);
}

#[test]
fn admin_actions_are_lines_of_the_same_log() {
    let dir = tempfile::tempdir().unwrap();
    let (log, writer) = start(config(dir.path()), "3", counters()).unwrap();
    log.record(&record(1));
    log.record_admin(&AdminRecord {
        operation: "admin.key.rotate",
        actor: ADMIN_TOKEN_ACTOR,
        target: "MKABCDEFGHIJKLMNOPQR",
        user: Some("alice"),
        status: 200,
        error_code: None,
    });
    log.record_admin(&AdminRecord {
        operation: "admin.user.create",
        actor: ADMIN_TOKEN_ACTOR,
        target: "alice",
        user: Some("alice"),
        status: 409,
        error_code: Some("conflict"),
    });
    writer.close_blocking();

    let lines = lines_of(&dir.path().join("logs/access.log"));
    assert_eq!(lines.len(), 3);
    let rotate = &lines[1];
    assert_eq!(rotate["operation"], "admin.key.rotate");
    assert_eq!(rotate["actor"], "admin-token");
    assert_eq!(rotate["target"], "MKABCDEFGHIJKLMNOPQR");
    assert_eq!(rotate["user"], "alice");
    assert_eq!(rotate["node"], "3");
    assert_eq!(rotate["status"], 200);
    assert_eq!(rotate["request_id"].as_str().unwrap().len(), 32);
    assert!(rotate["time"].as_str().unwrap().ends_with('Z'));
    assert_eq!(lines[2]["error_code"], "conflict");
    assert_eq!(lines[2]["status"], 409);
}
