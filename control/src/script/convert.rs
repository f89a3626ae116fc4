//! Conversions between JavaScript values and what the host needs: Duktape
//! type names for argument errors, C-style number conversion
//! (script-contract.md §4) and the byte-string rules of §7.

use rquickjs::{Ctx, Function, Value};

/// The Duktape type name of a value, as argument errors print it
/// (`DUK_TYPE_<name>`). Every QuickJS value that Duktape does not have is an
/// `OBJECT`.
pub(crate) fn duk_type(value: &Value<'_>) -> &'static str {
    if value.is_undefined() {
        "UNDEFINED"
    } else if value.is_null() {
        "NULL"
    } else if value.is_bool() {
        "BOOLEAN"
    } else if value.is_number() {
        "NUMBER"
    } else if value.is_string() {
        "STRING"
    } else {
        "OBJECT"
    }
}

/// The message of a type failure, trailing newline included (decision 7).
pub(crate) fn invalid_argument(expected: &str, got: &str) -> String {
    format!("Invalid argument (expected DUK_TYPE_{expected}, got DUK_TYPE_{got})\n")
}

/// Truncates toward zero and wraps modulo 2^32 (`ToUint32`); NaN and the
/// infinities become 0.
pub(crate) fn to_u32(n: f64) -> u32 {
    if !n.is_finite() {
        return 0;
    }
    let t = n.trunc() % 4_294_967_296.0;
    let t = if t < 0.0 { t + 4_294_967_296.0 } else { t };
    // In range [0, 2^32) by construction.
    t as u32
}

/// Truncates toward zero and wraps modulo 2^16; NaN and the infinities become 0.
pub(crate) fn to_u16(n: f64) -> u16 {
    (to_u32(n) & 0xffff) as u16
}

/// Truncates toward zero and wraps like `ToInt32` (a C `int` argument).
pub(crate) fn to_i32(n: f64) -> i32 {
    to_u32(n) as i32
}

/// A C `(int)` cast of a callback's numeric result: NaN and values out of
/// `i32` range give `i32::MIN`, as the x86 conversion does.
pub(crate) fn c_int(n: f64) -> i32 {
    if n.is_nan() {
        return i32::MIN;
    }
    let t = n.trunc();
    if t >= f64::from(i32::MIN) && t <= f64::from(i32::MAX) {
        t as i32
    } else {
        i32::MIN
    }
}

/// Bytes as a byte string: each byte one code unit 0–255 (Latin-1).
pub(crate) fn latin1_string(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

/// Reads a JavaScript string as Rust text. Lone surrogates (which QuickJS
/// would hand over as invalid UTF-8) become U+FFFD.
pub(crate) fn js_text<'js>(ctx: &Ctx<'js>, value: &Value<'js>) -> rquickjs::Result<String> {
    let Some(s) = value.as_string() else {
        let coerced: rquickjs::Coerced<String> = value.get()?;
        return Ok(coerced.0);
    };
    match s.to_string() {
        Ok(text) => Ok(text),
        Err(rquickjs::Error::Utf8(_)) => {
            let proto: rquickjs::Object = ctx.globals().get("String")?;
            let proto: rquickjs::Object = proto.get("prototype")?;
            let well_formed: Function = proto.get("toWellFormed")?;
            let fixed: rquickjs::String =
                well_formed.call((rquickjs::function::This(s.clone()),))?;
            fixed.to_string()
        }
        Err(e) => Err(e),
    }
}

/// The bytes of a string given as binary output (§7): one byte per code unit
/// when every code unit is at most 0xFF, UTF-8 otherwise.
pub(crate) fn binary_bytes_of_text(text: String) -> Vec<u8> {
    if text.chars().all(|c| u32::from(c) <= 0xff) {
        // Every char fits in a byte (checked above).
        text.chars().map(|c| u32::from(c) as u8).collect()
    } else {
        text.into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_convert_like_c() {
        assert_eq!(to_u32(f64::NAN), 0);
        assert_eq!(to_u32(-1.0), u32::MAX);
        assert_eq!(to_u32(3_047_711_552.9), 3_047_711_552);
        assert_eq!(to_u32(4_294_967_297.0), 1);
        assert_eq!(to_u16(65_537.0), 1);
        assert_eq!(to_u16(-0.5), 0);
        assert_eq!(to_i32(4_294_967_295.0), -1);
        assert_eq!(c_int(0.5), 0);
        assert_eq!(c_int(-0.5), 0);
        assert_eq!(c_int(-1.0), -1);
        assert_eq!(c_int(f64::NAN), i32::MIN);
        assert_eq!(c_int(3e9), i32::MIN);
    }

    #[test]
    fn byte_strings_round_trip() {
        let bytes: Vec<u8> = (0..=255).collect();
        let s = latin1_string(&bytes);
        assert_eq!(s.chars().count(), 256);
        assert_eq!(binary_bytes_of_text(s), bytes);
        assert_eq!(binary_bytes_of_text("é€".to_owned()), "é€".as_bytes());
    }
}
