//! The `jsep` object handed to scripts' `handleMessage` (script-contract.md,
//! janus-api.md §4.8).

use serde_json::{Map, Value, json};

use super::remote::{RemoteInfo, RemoteMedia};
use super::syntax::MediaKind;

/// The request-level extras of a client JSEP that reach the script.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsepExtras<'a> {
    /// `jsep.svc` from the request (copied when well formed, see [`valid_svc`]).
    pub svc: Option<&'a Value>,
    /// The PC was already negotiated (renegotiation): adds `"update": true`.
    pub update: bool,
    /// `jsep.e2ee` was true (now or earlier for this PC): adds `"e2ee": true`.
    pub e2ee: bool,
}

/// Builds the jsep object for the script, members in order: `type`, `sdp`
/// (the stripped SDP text), then only when applicable `simulcast`
/// ([`simulcast_entries`]), `svc`, `update: true`, `e2ee: true`.
pub fn jsep_for_script(
    jsep_type: &str,
    stripped_sdp: &str,
    info: &RemoteInfo,
    extras: JsepExtras<'_>,
) -> Value {
    let mut jsep = Map::new();
    jsep.insert("type".to_owned(), Value::from(jsep_type));
    jsep.insert("sdp".to_owned(), Value::from(stripped_sdp));
    if let Some(simulcast) = simulcast_entries(info) {
        jsep.insert("simulcast".to_owned(), simulcast);
    }
    if let Some(svc) = extras.svc.filter(|svc| valid_svc(svc)) {
        jsep.insert("svc".to_owned(), svc.clone());
    }
    if extras.update {
        jsep.insert("update".to_owned(), Value::Bool(true));
    }
    if extras.e2ee {
        jsep.insert("e2ee".to_owned(), Value::Bool(true));
    }
    Value::Object(jsep)
}

/// The `simulcast` array: one entry per active video m-line where the client
/// simulcasts, `{"mindex", "mid", "rids" (highest quality first), "rid-ext"}`
/// for rid-based simulcast (`rid-ext` omitted when the rtp-stream-id
/// extension is not negotiated) or `{"mindex", "mid", "ssrcs" (lowest quality
/// first)}` for SSRC-based simulcast. `None` when no m-line simulcasts.
pub fn simulcast_entries(info: &RemoteInfo) -> Option<Value> {
    let pc_rid_ext = info.extensions().rid;
    let entries: Vec<Value> = info
        .media
        .iter()
        .filter(|m| m.kind == MediaKind::Video && m.port > 0)
        .filter(|m| m.has_rids() || m.has_ssrc_simulcast())
        .map(|m| simulcast_entry(m, pc_rid_ext))
        .collect();
    (!entries.is_empty()).then_some(Value::Array(entries))
}

fn simulcast_entry(m: &RemoteMedia, pc_rid_ext: Option<u8>) -> Value {
    let mut entry = Map::new();
    entry.insert("mindex".to_owned(), json!(m.mindex));
    if let Some(mid) = &m.mid {
        entry.insert("mid".to_owned(), Value::from(mid.as_str()));
    }
    if m.has_rids() {
        let rids: Vec<Value> = m
            .rids
            .iter()
            .rev()
            .flatten()
            .map(|r| Value::from(r.as_str()))
            .collect();
        entry.insert("rids".to_owned(), Value::Array(rids));
        if let Some(id) = m.extensions.rid.or(pc_rid_ext) {
            entry.insert("rid-ext".to_owned(), json!(id));
        }
    } else {
        let ssrcs: Vec<Value> = m
            .ssrcs
            .iter()
            .filter(|s| **s != 0)
            .map(|s| json!(s))
            .collect();
        entry.insert("ssrcs".to_owned(), Value::Array(ssrcs));
    }
    Value::Object(entry)
}

/// A well-formed `jsep.svc`: a non-empty array of objects, each with an
/// integer `mindex` or a string `mid` (at least one) and a string `svc`.
/// Anything else is dropped (with a warning in Janus).
pub fn valid_svc(svc: &Value) -> bool {
    let Some(items) = svc.as_array().filter(|a| !a.is_empty()) else {
        return false;
    };
    items.iter().all(|item| {
        let Some(o) = item.as_object() else {
            return false;
        };
        let mindex = o.get("mindex");
        let mid = o.get("mid");
        (mindex.is_some() || mid.is_some())
            && mindex.is_none_or(|v| v.is_i64() || v.is_u64())
            && mid.is_none_or(Value::is_string)
            && o.get("svc").is_some_and(Value::is_string)
    })
}

#[cfg(test)]
mod tests {
    use super::super::remote::{RidOrder, check_remote};
    use super::super::{fixtures, parse, strip};
    use super::*;

    fn learn(text: &str, order: RidOrder) -> RemoteInfo {
        check_remote(&parse(text).expect("parses"), order).expect("checks")
    }

    #[test]
    fn sdp_jsep_plain_offer() {
        let offer = parse(&fixtures::browser_offer(false)).expect("parses");
        let stripped = strip(&offer).serialize();
        let info = check_remote(&offer, RidOrder::HighToLow).expect("checks");
        let jsep = jsep_for_script("offer", &stripped, &info, JsepExtras::default());
        let keys: Vec<&str> = jsep
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, vec!["type", "sdp"]);
        assert_eq!(jsep["sdp"], Value::from(stripped));
    }

    #[test]
    fn sdp_jsep_rid_simulcast_and_extras() {
        let info = learn(&fixtures::simulcast_offer(), RidOrder::HighToLow);
        let svc = json!([{"mindex": 1, "svc": "L1T3"}]);
        let extras = JsepExtras {
            svc: Some(&svc),
            update: true,
            e2ee: true,
        };
        let jsep = jsep_for_script("offer", "v=0\r\n", &info, extras);
        let keys: Vec<&str> = jsep
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            vec!["type", "sdp", "simulcast", "svc", "update", "e2ee"]
        );
        assert_eq!(
            serde_json::to_string(&jsep["simulcast"]).expect("serializes"),
            r#"[{"mindex":1,"mid":"1","rids":["h","m","l"],"rid-ext":10}]"#
        );
        assert_eq!(jsep["svc"], svc);
        // lmh: the rids are still listed highest quality first.
        let lmh = info_lmh();
        assert_eq!(
            serde_json::to_string(&simulcast_entries(&lmh).expect("simulcast"))
                .expect("serializes"),
            r#"[{"mindex":1,"mid":"1","rids":["l","m","h"],"rid-ext":10}]"#
        );
        // Without the rid extension there is no rid-ext.
        let no_ext = fixtures::simulcast_offer().replace(
            "a=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id\r\n",
            "",
        );
        let no_ext = learn(&no_ext, RidOrder::HighToLow);
        assert_eq!(
            serde_json::to_string(&simulcast_entries(&no_ext).expect("simulcast"))
                .expect("serializes"),
            r#"[{"mindex":1,"mid":"1","rids":["h","m","l"]}]"#
        );
    }

    fn info_lmh() -> RemoteInfo {
        learn(&fixtures::simulcast_offer(), RidOrder::LowToHigh)
    }

    #[test]
    fn sdp_jsep_ssrc_simulcast() {
        let text = fixtures::browser_offer(false).replace(
            "a=ssrc-group:FID 2222 3333\r\n",
            "a=ssrc-group:SIM 2222 4444 6666\r\n",
        );
        let jsep = jsep_for_script(
            "answer",
            "v=0\r\n",
            &learn(&text, RidOrder::HighToLow),
            JsepExtras::default(),
        );
        assert_eq!(
            serde_json::to_string(&jsep).expect("serializes"),
            r#"{"type":"answer","sdp":"v=0\r\n","simulcast":[{"mindex":1,"mid":"1","ssrcs":[2222,4444,6666]}]}"#
        );
    }

    #[test]
    fn sdp_jsep_svc_validation() {
        assert!(valid_svc(&json!([{"mid": "1", "svc": "L3T3"}])));
        assert!(!valid_svc(&json!([])));
        assert!(!valid_svc(&json!({"mid": "1", "svc": "L3T3"})));
        assert!(!valid_svc(&json!([{"svc": "L3T3"}])));
        assert!(!valid_svc(&json!([{"mindex": "1", "svc": "L3T3"}])));
        assert!(!valid_svc(&json!([{"mindex": 1, "svc": 3}])));
        let info = learn(&fixtures::browser_offer(false), RidOrder::HighToLow);
        let bad = json!("L1T3");
        let jsep = jsep_for_script(
            "offer",
            "",
            &info,
            JsepExtras {
                svc: Some(&bad),
                ..JsepExtras::default()
            },
        );
        assert!(jsep.get("svc").is_none());
    }
}
