//! What a JSON body that does not fit its request type is told: the field and what it must
//! be, in words, never serde's wording ("invalid type: integer `5`, expected a string")
//! or Rust's type names (`i64`, `struct LoginRequest`).

use serde_json::error::Category;

/// The `detail` of a 400 for a body that failed to deserialize. `body` is the start of the
/// body as received, when the middleware kept it: the error's position in it names the
/// field.
pub(super) fn explain(error: &serde_json::Error, body: Option<&[u8]>) -> String {
    match error.classify() {
        Category::Syntax | Category::Eof | Category::Io => "the body is not valid JSON".to_owned(),
        Category::Data
            if body.is_some_and(|body| body.trim_ascii_start().first() != Some(&b'{')) =>
        {
            "the body must be a JSON object".to_owned()
        }
        Category::Data => {
            let field = body.and_then(|body| field_at(body, error.line(), error.column()));
            describe(&message_of(error), field.as_deref())
        }
    }
}

/// serde's message without serde_json's " at line L column C".
fn message_of(error: &serde_json::Error) -> String {
    let text = error.to_string();
    match text.rfind(" at line ") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}

/// A sentence from serde's message and the field it is about.
fn describe(message: &str, field: Option<&str>) -> String {
    if let Some(name) = quoted_after(message, "missing field ") {
        return format!("`{name}` is required");
    }
    if let Some(name) = quoted_after(message, "unknown field ") {
        return format!("`{name}` is not a field of this request");
    }
    let subject = field.map_or_else(|| "a field".to_owned(), |name| format!("`{name}`"));
    if message.starts_with("unknown variant ") {
        return match message.split_once(", expected ") {
            Some((_, expected)) => format!("{subject} must be {}", plain(expected)),
            None => format!("{subject} has a value that is not allowed"),
        };
    }
    if message.starts_with("invalid type: ")
        || message.starts_with("invalid value: ")
        || message.starts_with("invalid length ")
    {
        if field.is_none() && message.contains("expected struct ") {
            return "the body must be a JSON object".to_owned();
        }
        return match message.rsplit_once(", expected ") {
            Some((_, expected)) => format!("{subject} must be {}", plain(expected)),
            None => format!("{subject} has a value of the wrong type"),
        };
    }
    format!("{subject} is not valid")
}

/// The name in backquotes right after `prefix`, if `message` starts with it.
fn quoted_after<'m>(message: &'m str, prefix: &str) -> Option<&'m str> {
    let rest = message.strip_prefix(prefix)?.strip_prefix('`')?;
    rest.split_once('`').map(|(name, _)| name)
}

/// serde's "expected ..." in words a client understands.
fn plain(expected: &str) -> String {
    let expected = expected.trim();
    let integer = [
        "i8", "i16", "i32", "i64", "i128", "isize", "u8", "u16", "u32", "u64", "u128", "usize",
    ];
    if integer.contains(&expected) {
        return "an integer".to_owned();
    }
    if expected == "f32" || expected == "f64" {
        return "a number".to_owned();
    }
    if expected.starts_with("struct ") || expected == "a map" {
        return "an object".to_owned();
    }
    if expected == "a sequence" {
        return "an array".to_owned();
    }
    if expected == "a boolean" {
        return "true or false".to_owned();
    }
    if let Some(choices) = expected.strip_prefix("one of ") {
        return format!("one of {choices}");
    }
    if let Some(choice) = expected.strip_prefix("variant identifier") {
        return format!("a known value{choice}");
    }
    // "a string", "a valid …" and the like are already words.
    expected.to_owned()
}

/// The path (`role`, `device.name`) of the value at `line`/`column` (serde_json's 1-based
/// position, just past the value it refused) in `body`.
fn field_at(body: &[u8], line: usize, column: usize) -> Option<String> {
    let line_start = if line <= 1 {
        0
    } else {
        body.iter()
            .enumerate()
            .filter(|(_, byte)| **byte == b'\n')
            .nth(line - 2)
            .map(|(at, _)| at + 1)?
    };
    let end = (line_start + column).min(body.len());
    // The key each open container is at (`None` in arrays and before an object's first
    // colon), and the last string read: the key once a colon follows it.
    let mut keys: Vec<Option<String>> = Vec::new();
    let mut last_string = None;
    let mut at = 0;
    while at < end {
        match body[at] {
            b'"' => {
                let start = at + 1;
                at = start;
                while at < body.len() && body[at] != b'"' {
                    at += if body[at] == b'\\' { 2 } else { 1 };
                }
                let raw = &body[start..at.min(body.len())];
                last_string = Some(String::from_utf8_lossy(raw).into_owned());
            }
            b':' => {
                if let Some(key) = keys.last_mut() {
                    *key = last_string.take();
                }
            }
            b',' => {
                if let Some(key) = keys.last_mut() {
                    *key = None;
                }
            }
            b'{' | b'[' => keys.push(None),
            b'}' | b']' => {
                keys.pop();
            }
            _ => {}
        }
        at += 1;
    }
    let path: Vec<String> = keys.into_iter().flatten().collect();
    (!path.is_empty()).then(|| path.join("."))
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[expect(dead_code, reason = "only deserialized")]
    struct Request {
        email: String,
        hotel_id: Option<i64>,
        active: Option<bool>,
        role: Option<Kind>,
        device: Option<Device>,
    }

    #[derive(Debug, Deserialize)]
    #[expect(dead_code, reason = "only deserialized")]
    struct Device {
        name: String,
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "snake_case")]
    enum Kind {
        Guest,
        SystemAdmin,
    }

    fn detail(body: &str) -> String {
        let error = serde_json::from_str::<Request>(body).unwrap_err();
        explain(&error, Some(body.as_bytes()))
    }

    #[test]
    fn the_detail_names_the_field_and_what_it_must_be() {
        for (body, expected) in [
            (r#"{"email": 5}"#, "`email` must be a string"),
            (
                "{\n  \"email\": \"a@b.c\",\n  \"hotel_id\": \"x\"\n}",
                "`hotel_id` must be an integer",
            ),
            (
                r#"{"email":"a","active":"yes"}"#,
                "`active` must be true or false",
            ),
            (
                r#"{"email":"a","role":"root"}"#,
                "`role` must be `guest` or `system_admin`",
            ),
            (
                r#"{"email":"a","device":{"name":[1]}}"#,
                "`device.name` must be a string",
            ),
            (r#"{"email":"a","device":7}"#, "`device` must be an object"),
            (
                r#"{"password":"x"}"#,
                "`password` is not a field of this request",
            ),
            (r#"{}"#, "`email` is required"),
            ("[1, 2]", "the body must be a JSON object"),
            (r#"{"email": "a""#, "the body is not valid JSON"),
            ("nonsense", "the body is not valid JSON"),
        ] {
            let detail = detail(body);
            assert_eq!(detail, expected, "{body}");
            for serde_words in ["invalid type", "i64", "struct ", "line ", "expected"] {
                assert!(!detail.contains(serde_words), "{detail}");
            }
        }
    }

    #[test]
    fn without_the_body_the_detail_is_still_clean() {
        let error = serde_json::from_str::<Request>(r#"{"email": 5}"#).unwrap_err();
        assert_eq!(explain(&error, None), "a field must be a string");
    }
}
