//! Assertions on Janus/Admin API messages (`serde_json::Value`s).
//!
//! Every check returns an error that quotes the whole message, so a failing
//! test shows what the server actually said.

use anyhow::{Result, bail};
use serde_json::Value;

/// Accessors and checks for one JSON message.
pub trait Reply {
    /// The `janus` member (empty when absent).
    fn kind(&self) -> &str;
    /// `error.code`.
    fn error_code(&self) -> Option<i64>;
    /// `error.reason`.
    fn error_reason(&self) -> Option<&str>;
    /// `data.id` (the new session/handle of `create`/`attach`).
    fn data_id(&self) -> Option<u64>;
    /// Fails unless `janus` is `kind`.
    fn expect_kind(&self, kind: &str) -> Result<&Self>;
    /// Fails unless this is an error with `code`.
    fn expect_error(&self, code: i64) -> Result<&Self>;
    /// Fails unless this is an error with `code` and exactly `reason`.
    fn expect_error_reason(&self, code: i64, reason: &str) -> Result<&Self>;
    /// Fails unless the member at JSON `pointer` (e.g. `/plugindata/data`) equals `expected`.
    fn expect_at(&self, pointer: &str, expected: &Value) -> Result<&Self>;
    /// Fails unless there is no member at `pointer`.
    fn expect_absent(&self, pointer: &str) -> Result<&Self>;
}

impl Reply for Value {
    fn kind(&self) -> &str {
        self.get("janus").and_then(Self::as_str).unwrap_or("")
    }

    fn error_code(&self) -> Option<i64> {
        self.pointer("/error/code").and_then(Self::as_i64)
    }

    fn error_reason(&self) -> Option<&str> {
        self.pointer("/error/reason").and_then(Self::as_str)
    }

    fn data_id(&self) -> Option<u64> {
        self.pointer("/data/id").and_then(Self::as_u64)
    }

    fn expect_kind(&self, kind: &str) -> Result<&Self> {
        if self.kind() != kind {
            bail!("expected janus={kind:?}, got {self}");
        }
        Ok(self)
    }

    fn expect_error(&self, code: i64) -> Result<&Self> {
        if self.kind() != "error" || self.error_code() != Some(code) {
            bail!("expected error {code}, got {self}");
        }
        Ok(self)
    }

    fn expect_error_reason(&self, code: i64, reason: &str) -> Result<&Self> {
        self.expect_error(code)?;
        if self.error_reason() != Some(reason) {
            bail!("expected error {code} reason {reason:?}, got {self}");
        }
        Ok(self)
    }

    fn expect_at(&self, pointer: &str, expected: &Value) -> Result<&Self> {
        match self.pointer(pointer) {
            Some(v) if v == expected => Ok(self),
            Some(v) => bail!("expected {pointer} = {expected}, got {v} in {self}"),
            None => bail!("expected {pointer} = {expected}, but it is absent in {self}"),
        }
    }

    fn expect_absent(&self, pointer: &str) -> Result<&Self> {
        if let Some(v) = self.pointer(pointer) {
            bail!("expected no {pointer}, got {v} in {self}");
        }
        Ok(self)
    }
}
