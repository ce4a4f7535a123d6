use std::path::PathBuf;

use time::macros::datetime;

use super::super::cache::new_entry;
use super::super::sts::StsCredentials;
use super::*;

const NOW: OffsetDateTime = datetime!(2026-11-26 19:00 UTC);

fn files(config: &str, credentials: &str) -> AwsFiles {
    AwsFiles {
        config: (PathBuf::from("/h/.aws/config"), config.to_string()),
        credentials: (
            PathBuf::from("/h/.aws/credentials"),
            credentials.to_string(),
        ),
    }
}

fn cache(expiration: OffsetDateTime) -> CachedLogin {
    new_entry(
        &StsCredentials {
            access_key_id: "CACHEKEY".into(),
            secret_access_key: "cachesecret".into(),
            session_token: "cachetoken".into(),
            expiration,
        },
        Some("https://cache:9000".into()),
        PathBuf::from("/tmp/x509up_u1"),
        "ff".into(),
        "https://grid:8443".into(),
        None,
        None,
    )
}

fn keys_of(resolved: &Resolved) -> &Keys {
    match &resolved.credentials {
        CredentialSource::Keys(keys) => keys,
        CredentialSource::Process(command) => panic!("expected keys, got process {command}"),
    }
}

const CONFIG: &str = "[default]\nregion = eu-west-1\nendpoint_url = http://profile:9000\n\n[profile mucura]\ncredential_process = /bin/mucura credential-process\nendpoint_url = https://grid-s3:9000\n";
const CREDENTIALS: &str =
    "[default]\naws_access_key_id = PROFILEKEY\naws_secret_access_key = profilesecret\n";
const ENV_KEYS: [(&str, &str); 3] = [
    ("AWS_ACCESS_KEY_ID", "ENVKEY"),
    ("AWS_SECRET_ACCESS_KEY", "envsecret"),
    ("AWS_ENDPOINT_URL", "http://env:9000/"),
];

fn run(
    flags: &ResolveFlags,
    env: &[(&str, &str)],
    cached: Option<&CachedLogin>,
) -> Result<Resolved> {
    resolve(
        flags,
        &Env::from_pairs(env),
        &files(CONFIG, CREDENTIALS),
        cached,
        Path::new("/h/.cache/mucura/credentials.json"),
        NOW,
    )
}

#[test]
fn the_environment_wins_over_cache_and_profile() {
    let cached = cache(datetime!(2026-11-26 20:00 UTC));
    let resolved = run(&ResolveFlags::default(), &ENV_KEYS, Some(&cached)).unwrap();
    assert_eq!(keys_of(&resolved).access_key_id, "ENVKEY");
    assert_eq!(keys_of(&resolved).session_token, None);
    assert_eq!(resolved.endpoint, "http://env:9000");
    assert_eq!(resolved.origin, "environment");
    // The region still comes from the profile when the environment names none.
    assert_eq!(resolved.region, "eu-west-1");
}

#[test]
fn the_cache_wins_over_the_profile_until_it_expires() {
    let cached = cache(datetime!(2026-11-26 20:00 UTC));
    let resolved = run(&ResolveFlags::default(), &[], Some(&cached)).unwrap();
    assert_eq!(keys_of(&resolved).access_key_id, "CACHEKEY");
    assert_eq!(
        keys_of(&resolved).session_token.as_deref(),
        Some("cachetoken")
    );
    assert_eq!(resolved.endpoint, "https://cache:9000");

    let expired = cache(datetime!(2026-11-26 18:00 UTC));
    let resolved = run(&ResolveFlags::default(), &[], Some(&expired)).unwrap();
    assert_eq!(keys_of(&resolved).access_key_id, "PROFILEKEY");
    assert_eq!(resolved.endpoint, "http://profile:9000");
    assert_eq!(resolved.origin, "profile default");
}

#[test]
fn flags_win_over_everything() {
    let cached = cache(datetime!(2026-11-26 20:00 UTC));
    let flags = ResolveFlags {
        endpoint: Some("http://flag:1".into()),
        profile: Some("mucura".into()),
    };
    let resolved = run(&flags, &ENV_KEYS, Some(&cached)).unwrap();
    assert_eq!(
        resolved.credentials,
        CredentialSource::Process("/bin/mucura credential-process".into())
    );
    assert_eq!(resolved.endpoint, "http://flag:1");
    // Without --endpoint, the chosen profile's endpoint beats the cache but not the env.
    let profile_only = ResolveFlags {
        endpoint: None,
        profile: Some("mucura".into()),
    };
    assert_eq!(
        run(&profile_only, &[], Some(&cached)).unwrap().endpoint,
        "https://grid-s3:9000"
    );
    assert_eq!(
        run(&profile_only, &ENV_KEYS, None).unwrap().endpoint,
        "http://env:9000"
    );
}

#[test]
fn aws_profile_and_region_variables_are_honoured() {
    let resolved = run(
        &ResolveFlags::default(),
        &[("AWS_PROFILE", "mucura"), ("AWS_REGION", "x-1")],
        None,
    )
    .unwrap();
    assert!(matches!(resolved.credentials, CredentialSource::Process(_)));
    assert_eq!(resolved.region, "x-1");
    assert_eq!(resolved.endpoint, "https://grid-s3:9000");
}

#[test]
fn missing_configuration_is_explained() {
    let nothing = resolve(
        &ResolveFlags::default(),
        &Env::from_pairs(&[]),
        &files("", ""),
        None,
        Path::new("/h/.cache/mucura/credentials.json"),
        NOW,
    )
    .unwrap_err()
    .to_string();
    assert!(nothing.contains("no S3 credentials"), "{nothing}");
    assert!(nothing.contains("mucura login"), "{nothing}");
    assert!(nothing.contains("no login cache at /h/.cache/mucura/credentials.json"));

    let expired = cache(datetime!(2026-11-26 18:00 UTC));
    let stale = resolve(
        &ResolveFlags::default(),
        &Env::from_pairs(&[]),
        &files("", ""),
        Some(&expired),
        Path::new("/c.json"),
        NOW,
    )
    .unwrap_err()
    .to_string();
    assert!(stale.contains("the login cache /c.json expired at 2026-11-26T18:00:00Z"));

    let no_endpoint = resolve(
        &ResolveFlags::default(),
        &Env::from_pairs(&[("AWS_ACCESS_KEY_ID", "a"), ("AWS_SECRET_ACCESS_KEY", "b")]),
        &files("", ""),
        None,
        Path::new("/c.json"),
        NOW,
    )
    .unwrap_err()
    .to_string();
    assert!(
        no_endpoint.contains("no S3 endpoint configured"),
        "{no_endpoint}"
    );

    let half = run(
        &ResolveFlags::default(),
        &[("AWS_ACCESS_KEY_ID", "a")],
        None,
    )
    .unwrap_err()
    .to_string();
    assert_eq!(
        half,
        "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not"
    );

    let unknown = run(
        &ResolveFlags {
            endpoint: None,
            profile: Some("nope".into()),
        },
        &ENV_KEYS,
        None,
    )
    .unwrap_err()
    .to_string();
    assert!(
        unknown.contains("profile \"nope\" is in neither"),
        "{unknown}"
    );

    let bad_scheme = run(
        &ResolveFlags {
            endpoint: Some("s3.example:9000".into()),
            profile: None,
        },
        &ENV_KEYS,
        None,
    )
    .unwrap_err()
    .to_string();
    assert!(
        bad_scheme.contains("must start with http://"),
        "{bad_scheme}"
    );
}

#[test]
fn session_tokens_come_from_the_environment_too() {
    let mut env = ENV_KEYS.to_vec();
    env.push(("AWS_SESSION_TOKEN", "envtoken"));
    let resolved = run(&ResolveFlags::default(), &env, None).unwrap();
    assert_eq!(
        keys_of(&resolved).session_token.as_deref(),
        Some("envtoken")
    );
    assert!(!format!("{:?}", keys_of(&resolved)).contains("envsecret"));
}
