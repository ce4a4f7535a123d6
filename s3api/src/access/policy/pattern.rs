//! The wildcards of policy documents: `*` matches any run of characters (including none and
//! including `/`), `?` matches exactly one character. There is no escape: a policy cannot
//! match a literal `*` other than with a wildcard, as in AWS.

/// Whether `text` matches `pattern`, comparing characters exactly.
pub(crate) fn wildcard_match(pattern: &str, text: &str) -> bool {
    matches(pattern, text, |p, t| p == t)
}

/// Whether `text` matches `pattern`, ignoring case (used for action names).
pub(crate) fn wildcard_match_ignore_case(pattern: &str, text: &str) -> bool {
    matches(pattern, text, |p, t| {
        p == t || p.to_lowercase().eq(t.to_lowercase())
    })
}

/// Whether the pattern contains a wildcard at all.
pub(crate) fn has_wildcard(pattern: &str) -> bool {
    pattern.contains(['*', '?'])
}

/// Greedy matching with a single backtrack point: on a mismatch after a `*`, the `*` absorbs
/// one more character and matching resumes. Linear memory, O(pattern × text) time at worst,
/// so a hostile policy cannot make evaluation explode.
fn matches(pattern: &str, text: &str, same: impl Fn(char, char) -> bool) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    let (mut p, mut t) = (0, 0);
    // Position of the last `*` seen and the text position it is currently matched up to.
    let mut backtrack: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some('*') => {
                backtrack = Some((p, t));
                p += 1;
            }
            Some(&c) if c == '?' || same(c, text[t]) => {
                p += 1;
                t += 1;
            }
            _ => match backtrack {
                Some((star, absorbed)) => {
                    p = star + 1;
                    t = absorbed + 1;
                    backtrack = Some((star, absorbed + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_cases() {
        let cases: &[(&str, &str, bool)] = &[
            ("", "", true),
            ("", "a", false),
            ("*", "", true),
            ("*", "anything/at/all", true),
            ("**", "x", true),
            ("?", "", false),
            ("?", "a", true),
            ("?", "ab", false),
            ("a?c", "abc", true),
            ("a?c", "a/c", true),
            ("a?c", "ac", false),
            ("bucket/*", "bucket/", true),
            ("bucket/*", "bucket/a/b/c", true),
            ("bucket/*", "bucket", false),
            ("bucket/*", "bucket2/x", false),
            ("bucket*", "bucket2/x", true),
            ("*.jpg", "a/b.jpg", true),
            ("*.jpg", "a/b.jpg.png", false),
            ("a*b*c", "a-b-b-c", true),
            ("a*b*c", "a-c-b", false),
            (
                "*a*a*a*b",
                "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                false,
            ),
            ("home/${x}/*", "home/${x}/f", true),
            ("é?", "éß", true),
            ("Exact", "exact", false),
        ];
        for &(pattern, text, expected) in cases {
            assert_eq!(
                wildcard_match(pattern, text),
                expected,
                "{pattern:?} vs {text:?}"
            );
        }
    }

    #[test]
    fn case_insensitive_matching() {
        assert!(wildcard_match_ignore_case("s3:get*", "s3:GetObject"));
        assert!(wildcard_match_ignore_case("S3:GETOBJECT", "s3:GetObject"));
        assert!(wildcard_match_ignore_case("s3:?etObject", "s3:GetObject"));
        assert!(!wildcard_match_ignore_case("s3:Put*", "s3:GetObject"));
    }

    #[test]
    fn detects_wildcards() {
        assert!(has_wildcard("a*"));
        assert!(has_wildcard("a?"));
        assert!(!has_wildcard("plain"));
    }
}
