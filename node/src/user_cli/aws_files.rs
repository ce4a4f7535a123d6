//! The AWS shared files (`~/.aws/config`, `~/.aws/credentials`): reading a profile's keys and
//! setting keys in one section while leaving every other line of the file as it was (other
//! profiles, comments, nested `s3 =` blocks), so `mucura login` never clobbers a user's setup.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};

/// The section header a profile has in `config` (`[default]`, `[profile NAME]`).
pub fn config_section(profile: &str) -> String {
    if profile == "default" {
        "default".to_string()
    } else {
        format!("profile {profile}")
    }
}

fn section_name(line: &str) -> Option<String> {
    let trimmed = line.trim();
    let inner = trimmed.strip_prefix('[')?.strip_suffix(']')?;
    // `[ profile  x ]` is the same section as `[profile x]` for the AWS tools.
    Some(inner.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// The top-level `key = value` pairs of one section (keys lower-cased; nested sub-section
/// lines, those indented under a key with an empty value, are skipped).
pub fn read_section(text: &str, section: &str) -> Option<BTreeMap<String, String>> {
    let mut found = None;
    let mut inside = false;
    for line in text.lines() {
        if let Some(name) = section_name(line) {
            inside = name == section;
            if inside && found.is_none() {
                found = Some(BTreeMap::new());
            }
            continue;
        }
        if !inside || line.starts_with([' ', '\t']) {
            continue;
        }
        let trimmed = line.trim();
        if trimmed.starts_with(['#', ';']) {
            continue;
        }
        if let (Some(values), Some((key, value))) = (found.as_mut(), trimmed.split_once('=')) {
            values.insert(key.trim().to_ascii_lowercase(), value.trim().to_string());
        }
    }
    found
}

/// `text` with `values` set in `section` (keys replaced in place, missing ones appended at the
/// end of the section, the section appended when absent); every other line is kept verbatim.
pub fn set_in_section(text: &str, section: &str, values: &[(&str, &str)]) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines
        .iter()
        .position(|line| section_name(line).as_deref() == Some(section));
    let Some(start) = start else {
        let mut out = text.to_string();
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&format!("[{section}]\n"));
        for (key, value) in values {
            out.push_str(&format!("{key} = {value}\n"));
        }
        return out;
    };
    let end = lines[start + 1..]
        .iter()
        .position(|line| section_name(line).is_some())
        .map_or(lines.len(), |offset| start + 1 + offset);
    let mut body: Vec<String> = lines[start + 1..end]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for (key, value) in values {
        let existing = body.iter().position(|line| {
            !line.starts_with([' ', '\t'])
                && line
                    .split_once('=')
                    .is_some_and(|(name, _)| name.trim().eq_ignore_ascii_case(key))
        });
        let new_line = format!("{key} = {value}");
        match existing {
            Some(index) => body[index] = new_line,
            None => {
                // Before the blank lines that separate this section from the next.
                let insert_at = body
                    .iter()
                    .rposition(|line| !line.trim().is_empty())
                    .map_or(0, |last| last + 1);
                body.insert(insert_at, new_line);
            }
        }
    }
    let mut out: Vec<String> = lines[..=start].iter().map(|s| s.to_string()).collect();
    out.extend(body);
    out.extend(lines[end..].iter().map(|s| s.to_string()));
    let mut joined = out.join("\n");
    joined.push('\n');
    joined
}

/// Reads a file that may not exist yet (as empty).
pub fn read_or_empty(path: &Path) -> Result<String> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(err) => Err(err).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Sets `values` in `section` of the file at `path`, creating it (and its directory) when
/// needed; with `private`, the file is (re)written with mode 0600 as it holds secrets.
pub fn update_file(
    path: &Path,
    section: &str,
    values: &[(&str, &str)],
    private: bool,
) -> Result<()> {
    let text = read_or_empty(path)?;
    let updated = set_in_section(&text, section, values);
    write_file(path, updated.as_bytes(), private)
}

/// Writes a file atomically (temporary file + rename in the same directory), 0600 when
/// `private`, so a crash never leaves a half-written credentials file.
pub fn write_file(path: &Path, contents: &[u8], private: bool) -> Result<()> {
    let dir = path
        .parent()
        .filter(|dir| !dir.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let file_name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temporary = dir.join(format!(".{file_name}.mucura-{}", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(if private { 0o600 } else { 0o644 });
    }
    let result = (|| -> Result<()> {
        let mut file = options
            .open(&temporary)
            .with_context(|| format!("cannot create {}", temporary.display()))?;
        file.write_all(contents)
            .and_then(|()| file.sync_all())
            .with_context(|| format!("cannot write {}", temporary.display()))?;
        std::fs::rename(&temporary, path)
            .with_context(|| format!("cannot replace {}", path.display()))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    result
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const CONFIG: &str = "# my setup\n[default]\nregion = eu-west-1\ns3 =\n    addressing_style = path\n\n[profile work]\nregion = us-east-2\noutput = json\n\n[profile other]\nregion = ap-south-1\n";

    #[test]
    fn reads_a_profile_without_nested_blocks() {
        let default = read_section(CONFIG, "default").unwrap();
        assert_eq!(default.get("region").unwrap(), "eu-west-1");
        assert_eq!(default.get("s3").unwrap(), "");
        assert!(!default.contains_key("addressing_style"));
        assert_eq!(
            read_section(CONFIG, "profile work")
                .unwrap()
                .get("output")
                .unwrap(),
            "json"
        );
        assert!(read_section(CONFIG, "profile missing").is_none());
        assert_eq!(config_section("default"), "default");
        assert_eq!(config_section("mucura"), "profile mucura");
    }

    #[test]
    fn appending_a_section_keeps_the_rest_verbatim() {
        let updated = set_in_section(
            CONFIG,
            "profile mucura",
            &[
                ("credential_process", "/usr/bin/mucura credential-process"),
                ("endpoint_url", "https://s3.example:9000"),
            ],
        );
        assert!(updated.starts_with(CONFIG));
        assert!(updated.ends_with("\n[profile mucura]\ncredential_process = /usr/bin/mucura credential-process\nendpoint_url = https://s3.example:9000\n"));
        let section = read_section(&updated, "profile mucura").unwrap();
        assert_eq!(
            section.get("endpoint_url").unwrap(),
            "https://s3.example:9000"
        );
    }

    #[test]
    fn updating_a_section_replaces_keys_in_place() {
        let once = set_in_section(
            CONFIG,
            "profile work",
            &[("region", "x-1"), ("new_key", "v")],
        );
        assert_eq!(
            once,
            "# my setup\n[default]\nregion = eu-west-1\ns3 =\n    addressing_style = path\n\n[profile work]\nregion = x-1\noutput = json\nnew_key = v\n\n[profile other]\nregion = ap-south-1\n"
        );
        // Idempotent: setting the same values again changes nothing.
        assert_eq!(
            set_in_section(
                &once,
                "profile work",
                &[("region", "x-1"), ("new_key", "v")]
            ),
            once
        );
        // The nested `addressing_style` is not a key of [default] and is never touched.
        let nested = set_in_section(CONFIG, "default", &[("addressing_style", "virtual")]);
        assert!(nested.contains("    addressing_style = path\n"));
        assert!(nested.contains("addressing_style = virtual\n"));
    }

    #[test]
    fn empty_files_get_just_the_section() {
        assert_eq!(
            set_in_section("", "mucura", &[("aws_access_key_id", "AK")]),
            "[mucura]\naws_access_key_id = AK\n"
        );
    }

    #[test]
    fn private_files_are_written_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("credentials");
        update_file(&path, "mucura", &[("aws_access_key_id", "AK")], true).unwrap();
        update_file(&path, "mucura", &[("aws_secret_access_key", "SK")], true).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let values = read_section(&std::fs::read_to_string(&path).unwrap(), "mucura").unwrap();
        assert_eq!(values.get("aws_access_key_id").unwrap(), "AK");
        assert_eq!(values.get("aws_secret_access_key").unwrap(), "SK");
    }
}
