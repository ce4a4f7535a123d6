//! Which rule answers a cross-origin request, and the headers it answers with.

use http::header::{HeaderMap, HeaderName, HeaderValue};

use super::config::{CorsConfiguration, CorsRule};

/// The `Vary` value of every CORS answer: caches must key on what the rule matched.
const VARY: &str = "Origin, Access-Control-Request-Headers, Access-Control-Request-Method";

/// Response headers a matching rule adds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CorsHeaders(Vec<(HeaderName, HeaderValue)>);

impl CorsHeaders {
    /// Sets these headers on a response (replacing any of the same name).
    pub fn apply(&self, headers: &mut HeaderMap) {
        for (name, value) in &self.0 {
            headers.insert(name.clone(), value.clone());
        }
    }

    /// The value set for `name`, if any (for tests and logs).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n.as_str() == name)
            .and_then(|(_, v)| v.to_str().ok())
    }

    fn push(&mut self, name: &'static str, value: &str) {
        // Values come from validated configurations and request headers that were already
        // valid header values; one that is not is left out rather than failing the request.
        if let Ok(value) = HeaderValue::from_str(value) {
            self.0.push((HeaderName::from_static(name), value));
        }
    }
}

impl CorsConfiguration {
    /// The first rule allowing `origin` to use `method` with every header in
    /// `request_headers` (header names compare case-insensitively, origins exactly).
    pub fn find(&self, origin: &str, method: &str, request_headers: &[&str]) -> Option<&CorsRule> {
        self.rules.iter().find(|rule| {
            rule.matching_origin(origin).is_some()
                && rule.allowed_methods.iter().any(|m| m == method)
                && request_headers.iter().all(|header| {
                    rule.allowed_headers
                        .iter()
                        .any(|pattern| wildcard_match(pattern, header, true))
                })
        })
    }

    /// The answer to a preflight, `None` when no rule allows it. `request_headers` is the
    /// raw `Access-Control-Request-Headers` value (comma-separated).
    pub fn preflight(
        &self,
        origin: &str,
        method: &str,
        request_headers: Option<&str>,
    ) -> Option<CorsHeaders> {
        let requested: Vec<&str> = request_headers
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .collect();
        let rule = self.find(origin, method, &requested)?;
        let mut headers = rule.answer(origin);
        if !requested.is_empty() {
            headers.push("access-control-allow-headers", &requested.join(", "));
        }
        Some(headers)
    }

    /// The headers an actual request from `origin` with `method` gets, `None` when no rule
    /// allows it (request headers are not checked: only preflights announce them).
    pub fn actual_headers(&self, origin: &str, method: &str) -> Option<CorsHeaders> {
        self.find(origin, method, &[])
            .map(|rule| rule.answer(origin))
    }
}

impl CorsRule {
    /// The allowed origin pattern matching `origin`, if any.
    fn matching_origin(&self, origin: &str) -> Option<&str> {
        self.allowed_origins
            .iter()
            .find(|pattern| wildcard_match(pattern, origin, false))
            .map(String::as_str)
    }

    /// What this rule answers `origin` with, preflight or actual request alike. A rule
    /// allowing every origin (`*`) answers `*` without credentials, as AWS does; otherwise
    /// the origin is echoed and credentials are allowed.
    fn answer(&self, origin: &str) -> CorsHeaders {
        let mut headers = CorsHeaders::default();
        if self.matching_origin(origin) == Some("*") {
            headers.push("access-control-allow-origin", "*");
        } else {
            headers.push("access-control-allow-origin", origin);
            headers.push("access-control-allow-credentials", "true");
        }
        headers.push(
            "access-control-allow-methods",
            &self.allowed_methods.join(", "),
        );
        if !self.expose_headers.is_empty() {
            headers.push(
                "access-control-expose-headers",
                &self.expose_headers.join(", "),
            );
        }
        if let Some(max_age) = self.max_age_seconds {
            headers.push("access-control-max-age", &max_age.to_string());
        }
        headers.push("vary", VARY);
        headers
    }
}

/// The CORS headers for an actual (non-preflight) request: `None` without an `Origin`
/// header, without a configuration, or when no rule allows origin and method. A stored
/// document that cannot be read is logged and treated as absent.
pub fn actual_response_headers(
    request: &HeaderMap,
    method: &http::Method,
    stored: Option<&str>,
) -> Option<CorsHeaders> {
    let origin = request.get(http::header::ORIGIN)?.to_str().ok()?;
    let configuration = match CorsConfiguration::from_stored(stored?) {
        Ok(configuration) => configuration,
        Err(err) => {
            tracing::error!("{err}");
            return None;
        }
    };
    configuration.actual_headers(origin, method.as_str())
}

/// Whether `value` matches `pattern`, which holds at most one `*` standing for any
/// (possibly empty) run of characters.
pub(super) fn wildcard_match(pattern: &str, value: &str, ignore_case: bool) -> bool {
    let (pattern, value) = if ignore_case {
        (pattern.to_ascii_lowercase(), value.to_ascii_lowercase())
    } else {
        (pattern.to_owned(), value.to_owned())
    };
    match pattern.split_once('*') {
        None => pattern == value,
        Some((prefix, suffix)) => {
            value.len() >= prefix.len() + suffix.len()
                && value.starts_with(prefix)
                && value.ends_with(suffix)
        }
    }
}
