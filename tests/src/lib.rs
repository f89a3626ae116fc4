//! End-to-end test harness for jsfu.
//!
//! It starts the server under test as a real process and talks to it the way
//! real clients do:
//!
//! * [`Server`] launches `jsfu` ([`Server::jsfu`]) or, when installed, Debian's
//!   Janus as the reference ([`Server::janus`]), on free loopback ports, with
//!   the same [`ServerOptions`] (script, modules folder, `init` config,
//!   secrets, session timeout). Logs go to a file in a work folder under
//!   `<target>/<profile>/jsfu-tests/`; servers stop when dropped or when the
//!   test process exits.
//! * [`Api`] is a Janus API client over [`Transport::Http`] or
//!   [`Transport::Ws`], so one test body covers both; it records a transcript
//!   of every reply and event. [`HttpClient`] and [`WsClient`] are the raw
//!   clients underneath (status codes, headers, malformed payloads).
//!   [`AdminClient`] speaks the Admin API over either transport.
//! * [`Case`] runs one async body for each server flavor and transport and
//!   compares jsfu's transcript with Janus's after [`normalize`]-ation
//!   (random ids replaced by placeholders, implementation details dropped),
//!   printing a field-by-field [`diff`]. [`Servers`] holds a test file's
//!   servers so they start once per test binary.
//! * [`Reply`] adds accessors and assertions to `serde_json::Value`.
//!
//! `jsfu` is looked up at `JSFU_BIN`, else next to the test binary
//! (`<target>/debug/jsfu`; build it with `cargo build -p jsfu` first). Janus
//! at `JANUS_BIN`, else `/usr/bin/janus`; `JSFU_TEST_SERVERS=jsfu` or
//! `=janus` restricts the flavors tested.

pub mod admin;
pub mod api;
pub mod compare;
pub mod http;
mod janus_conf;
pub mod ports;
pub mod reply;
pub mod runner;
pub mod server;
pub mod ws;

pub use admin::AdminClient;
pub use api::{Api, Entry, REPLY_TIMEOUT, Transport};
pub use compare::{IdMap, compare_transcripts, diff, normalize};
pub use http::{HttpClient, RawResponse};
pub use reply::Reply;
pub use runner::{Case, Servers, selected_flavors};
pub use server::{
    DUKTAPE_MODULES, ECHOTEST_PACKAGE, ECHOTEST_SCRIPT, Endpoints, Flavor, Server, ServerOptions,
};
pub use ws::{ADMIN_PROTOCOL, JANUS_PROTOCOL, WsClient, WsIncoming};
