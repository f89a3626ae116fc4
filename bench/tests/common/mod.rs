//! What the harness's smoke tests share: finding the jsfu binary and running
//! `jsfu-bench` against it.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// The jsfu binary: `JSFU_BIN`, else `target/debug/jsfu`, else
/// `target/release/jsfu`; `None` when there is none.
pub(crate) fn jsfu_bin() -> Option<PathBuf> {
    if let Some(bin) = std::env::var_os("JSFU_BIN") {
        return Some(PathBuf::from(bin));
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    ["debug", "release"]
        .iter()
        .map(|profile| target.join(profile).join("jsfu"))
        .find(|bin| bin.is_file())
}

/// Run the harness with `args` (unpinned, against `jsfu`, writing its
/// report as `name`.json/.svg in a temporary folder); asserts it succeeded
/// and returns its JSON report and its standard output.
pub(crate) fn bench(name: &str, args: &[&str], jsfu: &Path) -> (Value, String) {
    let dir = std::env::temp_dir().join(format!("jsfu-bench-smoke-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("creating a temporary folder");
    let json = dir.join(format!("{name}.json"));
    let out = Command::new(env!("CARGO_BIN_EXE_jsfu-bench"))
        .args(args)
        .arg("--jsfu-bin")
        .arg(jsfu)
        .arg("--json")
        .arg(&json)
        .arg("--svg")
        .arg(dir.join(format!("{name}.svg")))
        .arg("--no-pin")
        .output()
        .expect("running jsfu-bench");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "jsfu-bench {args:?} failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let text = std::fs::read_to_string(&json).expect("the JSON report was written");
    let report = serde_json::from_str(&text).expect("the JSON report parses");
    (report, stdout)
}
