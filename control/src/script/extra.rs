//! "Extra" native functions (script-contract.md §10): integrators register
//! additional globals here; they are defined after the standard host
//! functions and behave like them (argument errors are plain `Error`s with
//! the Duktape wording).

/// A value crossing between a script and an extra function.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ScriptValue {
    /// `undefined` (also a missing argument).
    Undefined,
    /// `null`.
    Null,
    /// A boolean.
    Boolean(bool),
    /// A number.
    Number(f64),
    /// A string (UTF-8; lone surrogates replaced).
    String(String),
    /// Any object (arrays, functions, typed arrays, ...); its contents are not passed.
    Object,
}

impl ScriptValue {
    /// The Duktape type name used in argument errors (`NUMBER`, `STRING`, ...).
    pub fn duk_type(&self) -> &'static str {
        match self {
            Self::Undefined => "UNDEFINED",
            Self::Null => "NULL",
            Self::Boolean(_) => "BOOLEAN",
            Self::Number(_) => "NUMBER",
            Self::String(_) => "STRING",
            Self::Object => "OBJECT",
        }
    }

    /// The number, or the standard argument error.
    pub fn expect_number(&self) -> Result<f64, ExtraError> {
        match self {
            Self::Number(n) => Ok(*n),
            other => Err(ExtraError::InvalidArgument {
                expected: "NUMBER",
                got: other.duk_type(),
            }),
        }
    }

    /// The string, or the standard argument error.
    pub fn expect_string(&self) -> Result<&str, ExtraError> {
        match self {
            Self::String(s) => Ok(s),
            other => Err(ExtraError::InvalidArgument {
                expected: "STRING",
                got: other.duk_type(),
            }),
        }
    }

    /// The boolean, or the standard argument error.
    pub fn expect_boolean(&self) -> Result<bool, ExtraError> {
        match self {
            Self::Boolean(b) => Ok(*b),
            other => Err(ExtraError::InvalidArgument {
                expected: "BOOLEAN",
                got: other.duk_type(),
            }),
        }
    }
}

/// Why an extra function failed; thrown to the script as a plain `Error`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExtraError {
    /// Wrong argument type (`Invalid argument (expected DUK_TYPE_X, got DUK_TYPE_Y)` + newline).
    #[error("Invalid argument (expected DUK_TYPE_{expected}, got DUK_TYPE_{got})\n")]
    InvalidArgument {
        /// Expected Duktape type name.
        expected: &'static str,
        /// Actual Duktape type name.
        got: &'static str,
    },
    /// Any other failure; the text is the error's message.
    #[error("{0}")]
    Message(String),
}

/// One extra global function.
#[derive(Debug, Clone, Copy)]
pub struct ExtraFunction {
    /// The global's name.
    pub name: &'static str,
    /// Its `.length`; arguments beyond it are not passed (missing ones are `Undefined`).
    pub length: usize,
    /// The implementation.
    pub call: fn(&[ScriptValue]) -> Result<ScriptValue, ExtraError>,
}

/// The stock registration: only `testExtraFunction()`, which returns 1234.
pub fn default_extra_functions() -> Vec<ExtraFunction> {
    vec![ExtraFunction {
        name: "testExtraFunction",
        length: 0,
        call: test_extra_function,
    }]
}

fn test_extra_function(_args: &[ScriptValue]) -> Result<ScriptValue, ExtraError> {
    Ok(ScriptValue::Number(1234.0))
}
