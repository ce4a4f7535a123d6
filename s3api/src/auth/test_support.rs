//! Fixtures shared by the authentication tests: AWS's example credentials and request builders.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, SystemTime};

use super::{Credential, CredentialProvider, SecretKey};
use crate::error::S3Result;

/// The access key of AWS's documentation examples.
pub const EXAMPLE_ACCESS_KEY: &str = "AKIAIOSFODNN7EXAMPLE";
/// The secret of AWS's documentation examples.
pub const EXAMPLE_SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
/// The user our example key belongs to.
pub const EXAMPLE_USER: &str = "example-user";

/// A fixed table of credentials, and the users grants may name: every key's user, plus
/// those added by [`StaticCredentials::knowing`].
pub struct StaticCredentials {
    keys: HashMap<String, Credential>,
    users: HashSet<String>,
}

impl StaticCredentials {
    /// A table with one key.
    pub fn with(access_key: &str, secret: &str, user: &str) -> Self {
        let mut table = HashMap::new();
        table.insert(
            access_key.to_string(),
            Credential {
                access_key: access_key.to_string(),
                secret: SecretKey::new(secret),
                user: user.to_string(),
            },
        );
        StaticCredentials {
            keys: table,
            users: HashSet::from([user.to_string()]),
        }
    }

    /// The same table, also knowing these users (who have no key here).
    pub fn knowing(mut self, users: &[&str]) -> Self {
        self.users.extend(users.iter().map(|user| user.to_string()));
        self
    }
}

impl CredentialProvider for StaticCredentials {
    fn lookup(&self, access_key: &str) -> Option<Credential> {
        self.keys.get(access_key).cloned()
    }

    fn knows_user(&self, id: &str) -> S3Result<bool> {
        Ok(self.users.contains(id))
    }
}

/// The AWS example key, known as [`EXAMPLE_USER`].
pub fn example_creds() -> StaticCredentials {
    StaticCredentials::with(EXAMPLE_ACCESS_KEY, EXAMPLE_SECRET, EXAMPLE_USER)
}

/// 2013-05-24T00:00:00Z, the time of AWS's SigV4 examples.
pub fn example_now() -> SystemTime {
    unix(1_369_353_600)
}

/// A time given in seconds since the epoch.
pub fn unix(seconds: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(seconds)
}

/// The head of a request with these headers (appended in order, so names may repeat).
pub fn request(method: &str, uri: &str, headers: &[(&str, &str)]) -> http::request::Parts {
    let mut builder = http::Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(()).unwrap().into_parts().0
}
