//! ListObjectsV2 paging over a prefix that holds many small objects.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use http::Method;

use super::objects::setup_failed;
use super::Bench;
use crate::bench::client::{percent_encode, RequestError};
use crate::bench::report::{Target, WorkloadReport};
use crate::bench::runner::{run_ops, Until};
use crate::bench::stats::round3;

/// Concurrent listing clients, as the issue asks.
const LISTERS: usize = 4;

/// Concurrent writers filling the prefix before the timed phase.
const FILLERS: usize = 16;

/// Size of each object under the listed prefix: listing cost does not depend on it.
const TINY_OBJECT: u64 = 32;

/// Fills the prefix, then has each lister walk it page by page (starting over at the end) for
/// the configured duration. One operation is one page.
pub async fn run(bench: &Arc<Bench>, target: Target) -> WorkloadReport {
    let prefix = format!("{}/list/", bench.prefix);
    let total = bench.scale.list_objects as u64;
    let filling_started = Instant::now();
    let shared = Arc::clone(bench);
    let fill_prefix = prefix.clone();
    let filled = run_ops(FILLERS, Until::Count(total), move |_, sequence| {
        let bench = Arc::clone(&shared);
        let key = format!("{fill_prefix}{sequence:06}");
        async move {
            let body = bench.payload.body(TINY_OBJECT);
            bench
                .client
                .put(&key, "", body, TINY_OBJECT)
                .await
                .map(|_| 0)
        }
    })
    .await;
    let fill_seconds = round3(filling_started.elapsed().as_secs_f64());
    if let Some(err) = filled.first_error {
        let error = format!("filling the listed prefix: {err}");
        return setup_failed("list", LISTERS, None, target, error);
    }

    // Each lister's continuation token: where its walk over the prefix resumes.
    let resume_at: Arc<Vec<Mutex<Option<String>>>> =
        Arc::new((0..LISTERS).map(|_| Mutex::new(None)).collect());
    let page_size = bench.scale.list_page;
    let shared = Arc::clone(bench);
    let measured = run_ops(
        LISTERS,
        Until::Elapsed(bench.scale.duration),
        move |lister, _| {
            let bench = Arc::clone(&shared);
            let resume_at = Arc::clone(&resume_at);
            let prefix = prefix.clone();
            async move {
                let slot = &resume_at[lister];
                let token = slot.lock().unwrap_or_else(PoisonError::into_inner).take();
                let page = list_page(&bench, &prefix, page_size, token.as_deref()).await?;
                *slot.lock().unwrap_or_else(PoisonError::into_inner) = page.next_token;
                Ok(0)
            }
        },
    )
    .await;
    WorkloadReport::new("list", LISTERS, None, measured, target)
        .with("objects_under_prefix", total)
        .with("keys_per_page", page_size as u64)
        .with("fill_seconds", fill_seconds)
}

/// One page of a listing.
struct Page {
    /// Token for the next page, `None` at the end of the listing.
    next_token: Option<String>,
}

/// Fetches one page and checks that a truncated page is full.
async fn list_page(
    bench: &Bench,
    prefix: &str,
    page_size: usize,
    token: Option<&str>,
) -> Result<Page, RequestError> {
    let mut query = format!(
        "list-type=2&max-keys={page_size}&prefix={}",
        percent_encode(prefix, false)
    );
    if let Some(token) = token {
        query.push_str("&continuation-token=");
        query.push_str(&percent_encode(token, false));
    }
    let answer = bench.client.call(Method::GET, None, &query, None).await?;
    let xml = String::from_utf8_lossy(&answer.body);
    let keys = xml.matches("<Key>").count();
    let truncated = element_text(&xml, "IsTruncated").as_deref() == Some("true");
    let next_token = if truncated {
        let token = element_text(&xml, "NextContinuationToken").ok_or_else(|| {
            bench
                .client
                .unexpected(None, "truncated listing without a token")
        })?;
        Some(token)
    } else {
        None
    };
    if keys == 0 || (truncated && keys != page_size) {
        return Err(bench.client.unexpected(
            None,
            format!("listing page held {keys} keys (truncated: {truncated})"),
        ));
    }
    Ok(Page { next_token })
}

/// The text of the first `<name>` element, with XML entities resolved.
pub fn element_text(xml: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let start = xml.find(&open)? + open.len();
    let length = xml[start..].find(&close)?;
    Some(unescape_xml(&xml[start..start + length]))
}

fn unescape_xml(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn element_text_finds_and_unescapes() {
        let xml = "<R><IsTruncated>true</IsTruncated>\
                   <NextContinuationToken>a&amp;b+/=</NextContinuationToken></R>";
        assert_eq!(element_text(xml, "IsTruncated").as_deref(), Some("true"));
        assert_eq!(
            element_text(xml, "NextContinuationToken").as_deref(),
            Some("a&b+/=")
        );
        assert_eq!(element_text(xml, "Missing"), None);
    }
}
