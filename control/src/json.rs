//! JSON the way Janus writes it for scripts (`{"a": 1, "b": [1, 2]}`: `", "`
//! and `": "` separators, key order kept) and the way Janus's parser accepts
//! it from scripts (the top level must be an object or an array).

use serde::Serialize;
use serde_json::Value;
use serde_json::ser::Formatter;
use std::io;

/// A formatter writing `", "` between members and `": "` after keys.
#[derive(Debug, Default, Clone, Copy)]
struct JanusFormatter;

impl Formatter for JanusFormatter {
    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if first { Ok(()) } else { w.write_all(b", ") }
    }

    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if first { Ok(()) } else { w.write_all(b", ") }
    }

    fn begin_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }
}

/// Serializes `value` as Janus hands JSON to scripts.
pub fn to_janus_string(value: &Value) -> String {
    let mut out = Vec::with_capacity(128);
    let mut ser = serde_json::Serializer::with_formatter(&mut out, JanusFormatter);
    // Serializing a `Value` into a Vec cannot fail (no IO errors, string keys only).
    if value.serialize(&mut ser).is_err() {
        return String::from("{}");
    }
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// A parse failure, worded like Janus's (`JSON error: on line L: TEXT`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("JSON error: on line {line}: {text}")]
pub struct JsonError {
    /// 1-based line.
    pub line: usize,
    /// What went wrong.
    pub text: String,
}

/// Parses JSON as Janus's parser does for script output: the top level must
/// be an object or an array.
pub fn parse_container(text: &str) -> Result<Value, JsonError> {
    match serde_json::from_str::<Value>(text) {
        Ok(v @ (Value::Object(_) | Value::Array(_))) => Ok(v),
        Ok(other) => {
            let near: String = other.to_string().chars().take(20).collect();
            Err(JsonError {
                line: 1,
                text: format!("'[' or '{{' expected near '{near}'"),
            })
        }
        Err(e) => Err(JsonError {
            line: e.line().max(1),
            text: describe(&e, text),
        }),
    }
}

/// Parses any JSON value (for requests arriving over the transports).
pub fn parse_any(text: &str) -> Result<Value, JsonError> {
    serde_json::from_str::<Value>(text).map_err(|e| JsonError {
        line: e.line().max(1),
        text: describe(&e, text),
    })
}

/// Words a parse error the way Janus's parser (jansson) does:
/// `<what was expected> near '<token>'` or `... near end of file`.
fn describe(e: &serde_json::Error, text: &str) -> String {
    let msg = e.to_string();
    let cause = msg.split(" at line ").next().unwrap_or(&msg);
    let line = text.lines().nth(e.line().saturating_sub(1)).unwrap_or("");
    let col = e.column().saturating_sub(1);
    let rest: String = line.chars().skip(col).collect();
    let at_eof = e.is_eof() || (rest.trim().is_empty() && e.line() >= text.lines().count());
    let at_start = text.trim_start().len() == text.len() - line_offset(text, e.line(), col);
    let what = if cause.starts_with("key must be a string") {
        "string or '}' expected"
    } else if cause.starts_with("expected `:`") {
        "':' expected"
    } else if cause.starts_with("expected `,` or `}`") {
        "',' or '}' expected"
    } else if cause.starts_with("expected `,` or `]`") {
        "',' or ']' expected"
    } else if cause.starts_with("trailing characters") {
        "end of file expected"
    } else if cause.starts_with("EOF while parsing") {
        if at_start {
            "'[' or '{' expected"
        } else {
            "premature end of input"
        }
    } else if cause.starts_with("expected value") && at_start {
        "'[' or '{' expected"
    } else if cause.starts_with("expected value") {
        "unexpected token"
    } else {
        "invalid token"
    };
    if at_eof {
        format!("{what} near end of file")
    } else {
        format!("{what} near '{}'", token(&rest))
    }
}

/// Byte offset of (1-based line, 0-based char column) in `text`.
fn line_offset(text: &str, line: usize, col: usize) -> usize {
    let mut offset = 0;
    for (i, l) in text.split_inclusive('\n').enumerate() {
        if i + 1 == line {
            return offset + l.chars().take(col).map(char::len_utf8).sum::<usize>();
        }
        offset += l.len();
    }
    text.len()
}

/// The token at the start of `rest`, as jansson's lexer would save it.
fn token(rest: &str) -> String {
    let mut chars = rest.chars();
    let Some(first) = chars.next() else {
        return String::new();
    };
    if first.is_ascii_alphabetic() {
        rest.chars().take_while(char::is_ascii_alphabetic).collect()
    } else if first == '-' || first.is_ascii_digit() {
        rest.chars()
            .take_while(|c| c.is_ascii_digit() || matches!(c, '-' | '+' | '.' | 'e' | 'E'))
            .collect()
    } else if first == '"' {
        let mut out = String::from('"');
        for c in chars {
            out.push(c);
            if c == '"' {
                break;
            }
        }
        out
    } else {
        first.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn janus_separators_and_key_order() {
        let v: Value = serde_json::from_str(r#"{"z":1,"a":[1,2,{"b":null}],"m":"x"}"#).unwrap();
        assert_eq!(
            to_janus_string(&v),
            r#"{"z": 1, "a": [1, 2, {"b": null}], "m": "x"}"#
        );
    }

    #[test]
    fn scalars_are_refused_at_top_level() {
        assert!(parse_container("null").is_err());
        assert!(parse_container("123").is_err());
        assert!(parse_container("[1]").is_ok());
        let e = parse_container("{bad").unwrap_err();
        assert_eq!(e.line, 1);
        assert!(e.to_string().starts_with("JSON error: on line 1: "));
        assert_eq!(
            parse_container("{bad}").unwrap_err().text,
            "string or '}' expected near 'bad'"
        );
        assert_eq!(
            parse_container("null").unwrap_err().text,
            "'[' or '{' expected near 'null'"
        );
        assert_eq!(
            parse_container("{\"a\": 1").unwrap_err().text,
            "premature end of input near end of file"
        );
    }
}
