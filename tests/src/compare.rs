//! Normalizing answers and comparing two servers' transcripts.
//!
//! Session and handle ids are random, so before two servers' answers are
//! compared every known id is replaced by a placeholder named after its role
//! and order of appearance (`<session1>`, `<handle2>`), in numbers and inside
//! strings ("No such session <session1>"). Members that legitimately differ
//! between implementations are dropped: most of `server_info` (only the
//! members a client relies on are kept), and whatever paths the test lists.

use std::fmt::Write as _;

use anyhow::{Result, bail};
use serde_json::{Map, Value};

use crate::api::Entry;

/// `server_info` members that are compared (all others differ legitimately:
/// versions, build details, local addresses, dependency and transport lists).
pub const SERVER_INFO_COMPARED: [&str; 9] = [
    "janus",
    "transaction",
    "session-timeout",
    "reclaim-session-timeout",
    "candidates-timeout",
    "accepting-new-sessions",
    "full-trickle",
    "api_secret",
    "plugins",
];

/// Known ids and their placeholders.
#[derive(Debug, Clone, Default)]
pub struct IdMap {
    entries: Vec<(u64, String)>,
}

impl IdMap {
    /// Give `id` the next placeholder for `role` (no-op if already known).
    pub fn register(&mut self, id: u64, role: &str) {
        if self.entries.iter().any(|(known, _)| *known == id) {
            return;
        }
        let n = self
            .entries
            .iter()
            .filter(|(_, p)| p.starts_with(&format!("<{role}")))
            .count()
            + 1;
        self.entries.push((id, format!("<{role}{n}>")));
    }

    /// The placeholder of `id`.
    pub fn placeholder(&self, id: u64) -> Option<&str> {
        self.entries
            .iter()
            .find(|(known, _)| *known == id)
            .map(|(_, p)| p.as_str())
    }

    fn replace_in(&self, text: &str) -> String {
        let mut ids: Vec<&(u64, String)> = self.entries.iter().collect();
        // Longer numbers first, so one id that contains another is replaced whole.
        ids.sort_by_key(|(id, _)| std::cmp::Reverse(id.to_string().len()));
        let mut out = text.to_owned();
        for (id, placeholder) in ids {
            out = out.replace(&id.to_string(), placeholder);
        }
        out
    }
}

/// `value` with ids replaced, `server_info` reduced and `drop` paths
/// (dotted member names, e.g. `error.reason` or `info.flags`) removed.
pub fn normalize(value: &Value, ids: &IdMap, drop: &[&str]) -> Value {
    let mut out = replace_ids(value, ids);
    if let Some(obj) = out.as_object_mut() {
        if obj.get("janus").and_then(Value::as_str) == Some("server_info") {
            obj.retain(|k, _| SERVER_INFO_COMPARED.contains(&k.as_str()));
        }
    }
    for path in drop {
        remove_path(&mut out, path);
    }
    out
}

fn replace_ids(value: &Value, ids: &IdMap) -> Value {
    match value {
        Value::Number(n) => match n.as_u64().and_then(|id| ids.placeholder(id)) {
            Some(p) => Value::String(p.to_owned()),
            None => value.clone(),
        },
        Value::String(s) => Value::String(ids.replace_in(s)),
        Value::Array(list) => Value::Array(list.iter().map(|v| replace_ids(v, ids)).collect()),
        Value::Object(obj) => {
            let mut out = Map::new();
            for (k, v) in obj {
                out.insert(ids.replace_in(k), replace_ids(v, ids));
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}

fn remove_path(value: &mut Value, path: &str) {
    let mut parts: Vec<&str> = path.split('.').collect();
    let Some(last) = parts.pop() else {
        return;
    };
    let mut at = value;
    for part in parts {
        match at.get_mut(part) {
            Some(next) => at = next,
            None => return,
        }
    }
    if let Some(obj) = at.as_object_mut() {
        obj.shift_remove(last);
    }
}

/// Every difference between two normalized values, one line each
/// (`path: left=... right=...`).
pub fn diff(left: &Value, right: &Value) -> Vec<String> {
    let mut out = Vec::new();
    diff_into("", left, right, &mut out);
    out
}

fn diff_into(path: &str, left: &Value, right: &Value, out: &mut Vec<String>) {
    match (left, right) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, va) in a {
                let p = format!("{path}.{k}");
                match b.get(k) {
                    Some(vb) => diff_into(&p, va, vb, out),
                    None => out.push(format!("{p}: only in the first: {va}")),
                }
            }
            for (k, vb) in b {
                if !a.contains_key(k) {
                    out.push(format!("{path}.{k}: only in the second: {vb}"));
                }
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (va, vb)) in a.iter().zip(b).enumerate() {
                diff_into(&format!("{path}[{i}]"), va, vb, out);
            }
        }
        (a, b) if a == b => {}
        (a, b) => out.push(format!(
            "{}: {a} vs {b}",
            if path.is_empty() { "." } else { path }
        )),
    }
}

/// Compare two transcripts entry by entry after normalization; the error
/// lists every difference with both normalized messages.
pub fn compare_transcripts(
    (left_label, left, left_ids): (&str, &[Entry], &IdMap),
    (right_label, right, right_ids): (&str, &[Entry], &IdMap),
    drop: &[&str],
) -> Result<()> {
    let mut report = String::new();
    let n = left.len().max(right.len());
    for i in 0..n {
        match (left.get(i), right.get(i)) {
            (Some(a), Some(b)) => {
                let na = normalize(&a.message, left_ids, drop);
                let nb = normalize(&b.message, right_ids, drop);
                let lines = diff(&na, &nb);
                if a.what != b.what || !lines.is_empty() {
                    let _ = writeln!(report, "#{i} {} / {}:", a.what, b.what);
                    for line in lines {
                        let _ = writeln!(report, "    {line}");
                    }
                    let _ = writeln!(report, "    {left_label}:  {na}\n    {right_label}: {nb}");
                }
            }
            (Some(a), None) => {
                let _ = writeln!(
                    report,
                    "#{i} only {left_label} has {}: {}",
                    a.what,
                    normalize(&a.message, left_ids, drop)
                );
            }
            (None, Some(b)) => {
                let _ = writeln!(
                    report,
                    "#{i} only {right_label} has {}: {}",
                    b.what,
                    normalize(&b.message, right_ids, drop)
                );
            }
            (None, None) => {}
        }
    }
    if !report.is_empty() {
        bail!(
            "{left_label} and {right_label} answered differently (first = {left_label}):\n{report}"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn entry(what: &str, message: Value) -> Entry {
        Entry {
            what: what.to_owned(),
            message,
        }
    }

    #[test]
    fn ids_become_placeholders_in_numbers_and_strings() {
        let mut ids = IdMap::default();
        ids.register(8146286150302813, "session");
        ids.register(2915467213541121, "handle");
        ids.register(8146286150302813, "handle");
        let reply = json!({"janus": "error", "session_id": 8146286150302813u64,
            "error": {"code": 459, "reason": "No such handle 2915467213541121 in session 8146286150302813"}});
        let normalized = normalize(&reply, &ids, &[]);
        assert_eq!(
            normalized,
            json!({"janus": "error", "session_id": "<session1>",
                "error": {"code": 459, "reason": "No such handle <handle1> in session <session1>"}})
        );
    }

    #[test]
    fn server_info_is_reduced_and_paths_dropped() {
        let ids = IdMap::default();
        let info = json!({"janus": "server_info", "transaction": "t", "name": "x", "version": 1,
            "session-timeout": 60, "plugins": {"p": {}}, "local-ip": "203.0.113.5"});
        assert_eq!(
            normalize(&info, &ids, &[]),
            json!({"janus": "server_info", "transaction": "t", "session-timeout": 60, "plugins": {"p": {}}})
        );
        let error = json!({"janus": "error", "error": {"code": 454, "reason": "parser text"}});
        assert_eq!(
            normalize(&error, &ids, &["error.reason", "no.such.path"]),
            json!({"janus": "error", "error": {"code": 454}})
        );
    }

    #[test]
    fn diff_lists_each_difference() {
        let a = json!({"janus": "ack", "session_id": 1, "list": [1, 2], "only_a": true});
        let b = json!({"janus": "success", "session_id": 1, "list": [1, 3]});
        let lines = diff(&a, &b);
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert!(lines[0].starts_with(".janus:"), "{lines:?}");
        assert!(
            lines.iter().any(|l| l.starts_with(".list[1]:")),
            "{lines:?}"
        );
        assert!(
            lines.iter().any(|l| l.contains("only in the first")),
            "{lines:?}"
        );
        assert!(diff(&a, &a).is_empty());
    }

    #[test]
    fn transcripts_compare_after_normalization() {
        let mut left_ids = IdMap::default();
        left_ids.register(111, "session");
        let mut right_ids = IdMap::default();
        right_ids.register(999, "session");
        let left = [entry(
            "reply to create",
            json!({"janus": "success", "data": {"id": 111}}),
        )];
        let right = [entry(
            "reply to create",
            json!({"janus": "success", "data": {"id": 999}}),
        )];
        assert!(
            compare_transcripts(("a", &left, &left_ids), ("b", &right, &right_ids), &[]).is_ok()
        );

        let extra = [
            entry(
                "reply to create",
                json!({"janus": "success", "data": {"id": 999}}),
            ),
            entry("event", json!({"janus": "detached"})),
        ];
        let err = compare_transcripts(("a", &left, &left_ids), ("b", &extra, &right_ids), &[])
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("only b has event"), "{err}");
    }
}
