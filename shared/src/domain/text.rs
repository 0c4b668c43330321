//! Rules every piece of text a client sends goes through: no control
//! characters (NUL would fail deep in PostgreSQL as a 500), Unicode in NFC so
//! equal names compare equal, trimmed, and bounded in characters.

use unicode_normalization::UnicodeNormalization;

use super::{invalid, Invalid};

/// Whether line breaks and tabs are part of the value (a bio, a description).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lines {
    One,
    Many,
}

/// The cleaned text, or why it is refused. `min` counts characters after trimming.
pub fn text(
    field: &'static str,
    value: &str,
    min: usize,
    max: usize,
    lines: Lines,
) -> Result<String, Invalid> {
    let allowed = |c: char| lines == Lines::Many && matches!(c, '\n' | '\t' | '\r');
    if value.chars().any(|c| (c.is_control() && !allowed(c)) || is_invisible_format(c)) {
        return Err(invalid(field, "must not contain control characters"));
    }
    if lines == Lines::One && value.chars().any(breaks_a_line) {
        return Err(invalid(field, "must be one line"));
    }
    if stray_tags(value) {
        return Err(invalid(field, "must not contain invisible tag characters"));
    }
    let normalised: String = value.trim().nfc().collect();
    let count = normalised.chars().count();
    if count < min || count > max {
        return Err(invalid(
            field,
            match min {
                0 => format!("must be at most {max} characters"),
                _ => format!("must be {min} to {max} characters"),
            },
        ));
    }
    Ok(normalised)
}

/// Optional text: absent stays absent, and an empty string clears the value.
pub fn optional_text(
    field: &'static str,
    value: Option<&str>,
    max: usize,
    lines: Lines,
) -> Result<Option<String>, Invalid> {
    match value {
        None => Ok(None),
        Some(v) => text(field, v, 0, max, lines).map(|s| Some(s).filter(|s| !s.is_empty())),
    }
}

/// Characters that render as nothing and exist to confuse: bidi overrides,
/// zero-width spaces and invisible operators, the byte-order mark. The
/// zero-width joiner and non-joiner stay (emoji and scripts need them).
fn is_invisible_format(c: char) -> bool {
    matches!(
        c,
        '\u{180E}'
            | '\u{200B}'
            | '\u{200E}'
            | '\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}'
            | '\u{FEFF}'
    )
}

/// Line and paragraph separators: a line break by another name.
fn breaks_a_line(c: char) -> bool {
    matches!(c, '\u{2028}' | '\u{2029}' | '\u{85}')
}

/// Tag characters (U+E0020–U+E007F) hide text from readers; the one use they
/// have is a subdivision flag: U+1F3F4, tags, then the cancel tag U+E007F.
fn stray_tags(value: &str) -> bool {
    let mut in_flag = false;
    let mut previous = None;
    for c in value.chars() {
        let tag = ('\u{E0020}'..='\u{E007F}').contains(&c) || c == '\u{E0001}';
        if tag && !(in_flag || previous == Some('\u{1F3F4}')) {
            return true;
        }
        in_flag = tag && c != '\u{E007F}';
        previous = Some(c);
    }
    in_flag
}

/// An `https://` URL of at most 2,000 characters that parses and has a host.
pub fn website(field: &'static str, value: Option<&str>) -> Result<Option<String>, Invalid> {
    let Some(raw) = optional_text(field, value, 2000, Lines::One)? else { return Ok(None) };
    // The scheme exactly as stored: `HTTPS://` parses, but the table's rule
    // (and every link checker) wants it in lower case.
    if !raw.starts_with("https://") {
        return Err(invalid(field, "must be an https:// address"));
    }
    match url::Url::parse(&raw) {
        Ok(u) if u.scheme() == "https" && u.host_str().is_some_and(|h| !h.is_empty()) => {
            Ok(Some(raw))
        }
        _ => Err(invalid(field, "must be an https:// address")),
    }
}

/// A plausible email address: one `@`, a dotted domain, no spaces; at most 320 characters.
pub fn email(field: &'static str, value: &str) -> Result<String, Invalid> {
    let value = text(field, value, 3, 320, Lines::One)?;
    let ok = value.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty()
            && !domain.contains('@')
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !value.chars().any(char::is_whitespace)
    });
    if ok {
        Ok(value)
    } else {
        Err(invalid(field, "must be an email address"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn control_characters_are_refused_and_named() {
        for bad in ["a\u{0}b", "a\u{7}", "x\u{202E}y", "\u{FEFF}x", "tab\there"] {
            let e = text("title", bad, 1, 10, Lines::One).unwrap_err();
            assert_eq!(e.field, "title");
            assert!(e.message.contains("control"), "{bad:?}");
        }
        assert_eq!(
            text("bio", "line 1\nline 2\ttab", 0, 100, Lines::Many).unwrap(),
            "line 1\nline 2\ttab"
        );
        assert!(text("bio", "nul\u{0}", 0, 100, Lines::Many).is_err());
    }

    #[test]
    fn invisible_and_line_breaking_characters_are_refused_on_one_line() {
        for bad in
            ["a\u{200B}b", "a\u{2060}b", "a\u{2028}b", "a\u{2029}b", "x\u{E0041}y", "\u{E0001}"]
        {
            assert!(text("name", bad, 1, 10, Lines::One).is_err(), "{bad:?}");
        }
        assert!(text("bio", "a\u{2028}b", 0, 10, Lines::Many).is_ok(), "a bio may break lines");
        // A subdivision flag (Scotland) and joined emoji stay.
        let scotland = "\u{1F3F4}\u{E0067}\u{E0062}\u{E0073}\u{E0063}\u{E0074}\u{E007F}";
        assert_eq!(text("name", scotland, 1, 10, Lines::One).unwrap(), scotland);
        assert!(text("name", "\u{1F469}\u{200D}\u{1F3A8}", 1, 10, Lines::One).is_ok());
        assert!(
            text("name", &scotland[..scotland.len() - 4], 1, 10, Lines::One).is_err(),
            "unterminated"
        );
    }

    #[test]
    fn text_is_normalised_to_nfc_and_trimmed() {
        let decomposed = "Cafe\u{301} ";
        assert_eq!(text("name", decomposed, 1, 10, Lines::One).unwrap(), "Café");
        assert_eq!(
            text("name", "Café", 1, 10, Lines::One).unwrap(),
            text("name", decomposed, 1, 10, Lines::One).unwrap()
        );
    }

    #[test]
    fn lengths_count_characters() {
        assert!(text("t", &"é".repeat(10), 1, 10, Lines::One).is_ok());
        assert!(text("t", &"é".repeat(11), 1, 10, Lines::One).is_err());
        assert!(text("t", "   ", 1, 10, Lines::One).is_err());
        assert_eq!(optional_text("m", Some("  "), 10, Lines::One).unwrap(), None);
    }

    #[test]
    fn websites_and_emails() {
        assert!(website("website", Some("https://ada.example/prints")).unwrap().is_some());
        for bad in [
            "http://ada.example",
            "javascript:alert(1)",
            "https://",
            "ada.example",
            "HTTPS://a.example",
        ] {
            assert!(website("website", Some(bad)).is_err(), "{bad}");
        }
        assert!(email("email", "ada@copper.example").is_ok());
        for bad in ["ada", "a@b", "a b@c.example", "a@@c.example", "@c.example", "a@.example"] {
            assert!(email("email", bad).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn accepted_text_has_no_controls_and_fits(s in "\\PC{0,40}") {
            if let Ok(t) = text("t", &s, 0, 40, Lines::One) {
                prop_assert!(!t.chars().any(char::is_control));
                prop_assert!(t.chars().count() <= 40);
                prop_assert_eq!(text("t", &t, 0, 40, Lines::One).unwrap(), t.clone());
            }
        }
    }
}
