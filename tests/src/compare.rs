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
pub const SERVER_INFO_COMPARED: [&str; 10] = [
    "janus",
    "transaction",
    "session-timeout",
    "reclaim-session-timeout",
    "candidates-timeout",
    "accepting-new-sessions",
    "ice-lite",
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
        let n = self.entries.iter().filter(|(_, p)| p.starts_with(&format!("<{role}"))).count() + 1;
        self.entries.push((id, format!("<{role}{n}>")));
    }

    /// The placeholder of `id`.
    pub fn placeholder(&self, id: u64) -> Option<&str> {
        self.entries.iter().find(|(known, _)| *known == id).map(|(_, p)| p.as_str())
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
        (a, b) => out.push(format!("{}: {a} vs {b}", if path.is_empty() { "." } else { path })),
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
        bail!("{left_label} and {right_label} answered differently (first = {left_label}):\n{report}");
    }
    Ok(())
}
