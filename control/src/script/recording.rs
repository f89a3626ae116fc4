//! `startRecording`'s file rules (spec/recording.md §2), confined to the
//! configured recordings folder and the allowed folders: relative folders are
//! resolved against the recordings folder, absolute ones must lie inside it
//! or inside one of the allowed folders, and `..` is refused, so that a
//! script cannot write anywhere else.

use std::fs::{self, File};
use std::path::{Component, Path, PathBuf};

use crate::config::RecordingConfig;

/// Codec names the recorder accepts (matched case-insensitively).
const KNOWN_CODECS: &[&str] = &[
    "opus",
    "multiopus",
    "g711",
    "pcmu",
    "pcma",
    "g722",
    "l16-48",
    "l16",
    "isac16",
    "isac32",
    "vp8",
    "vp9",
    "h264",
    "av1",
    "h265",
    "text",
    "binary",
];

/// Splits `name/fmtp=params` into the codec name and its parameters.
pub(crate) fn split_codec(codec: &str) -> (&str, Option<&str>) {
    match codec.find("/fmtp=") {
        Some(at) => (&codec[..at], Some(&codec[at + "/fmtp=".len()..])),
        None => (codec, None),
    }
}

/// Whether the recorder knows this codec name.
pub(crate) fn known_codec(name: &str) -> bool {
    KNOWN_CODECS.iter().any(|k| k.eq_ignore_ascii_case(name))
}

/// Lexically normalizes an absolute path (drops `.`); `None` if it has `..`.
fn normalize(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => return None,
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    Some(out)
}

/// The base folder as an absolute, normalized path.
fn absolute_base(dir: &Path) -> Result<PathBuf, String> {
    let abs = if dir.is_absolute() {
        dir.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|e| format!("cannot resolve the recordings folder: {e}"))?
            .join(dir)
    };
    // The configured folder itself may legitimately contain `..`; resolve it
    // through the file system when it exists.
    match abs.canonicalize() {
        Ok(c) => Ok(c),
        Err(_) => normalize(&abs).ok_or_else(|| "invalid recordings folder".to_owned()),
    }
}

/// The final `.mjr` path for a recorder (`folder`/`filename` as the script
/// gave them, or `None`), or why it is refused.
pub(crate) fn target_path(
    cfg: &RecordingConfig,
    folder: Option<&str>,
    filename: Option<&str>,
    random: u32,
) -> Result<PathBuf, String> {
    let base = absolute_base(&cfg.dir)?;
    let name = match filename {
        Some(f) if !f.is_empty() => f.to_owned(),
        _ => format!("janus-recording-{random}"),
    };
    let name = if name.ends_with(".mjr") {
        name
    } else {
        format!("{name}.mjr")
    };
    let joined = match folder {
        Some(folder) if !folder.is_empty() => {
            let folder = Path::new(folder);
            let folder = if folder.is_absolute() {
                folder.to_path_buf()
            } else {
                base.join(folder)
            };
            folder.join(name.trim_start_matches('/'))
        }
        _ => {
            let name = Path::new(&name);
            if name.is_absolute() {
                name.to_path_buf()
            } else {
                base.join(name)
            }
        }
    };
    let normalized = normalize(&joined).ok_or_else(|| {
        format!(
            "'..' is not allowed in recording paths ({})",
            joined.display()
        )
    })?;
    let inside = |root: &Path| normalized.starts_with(root) && normalized != root;
    let allowed = inside(&base)
        || cfg
            .allowed
            .iter()
            .any(|a| absolute_base(a).is_ok_and(|root| inside(&root)));
    if !allowed {
        return Err(format!(
            "{} is outside the recordings folder {} and the allowed folders",
            normalized.display(),
            base.display()
        ));
    }
    Ok(normalized)
}

/// A created recording file.
#[derive(Debug)]
pub(crate) struct CreatedFile {
    pub(crate) file: File,
    /// Where it is being written.
    pub(crate) path: PathBuf,
    /// Where it goes when closed, if written under a temporary name.
    pub(crate) final_path: Option<PathBuf>,
}

/// Creates (truncating) the file for `final_path`, under a temporary
/// extension if configured, creating missing folders.
pub(crate) fn create(final_path: &Path, tmp_ext: Option<&str>) -> Result<CreatedFile, String> {
    if let Some(parent) = final_path.parent() {
        fs::create_dir_all(parent)
            .map_err(|e| format!("cannot create folder {}: {e}", parent.display()))?;
    }
    let (path, renamed) = match tmp_ext.filter(|e| !e.is_empty()) {
        Some(ext) => {
            let mut p = final_path.as_os_str().to_owned();
            p.push(".");
            p.push(ext.trim_start_matches('.'));
            (PathBuf::from(p), Some(final_path.to_path_buf()))
        }
        None => (final_path.to_path_buf(), None),
    };
    let file = File::create(&path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    Ok(CreatedFile {
        file,
        path,
        final_path: renamed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codec_parameters_are_split() {
        assert_eq!(
            split_codec("vp9/fmtp=profile-id=2"),
            ("vp9", Some("profile-id=2"))
        );
        assert_eq!(split_codec("opus"), ("opus", None));
        assert!(known_codec("VP8"));
        assert!(!known_codec("mp3"));
    }

    #[test]
    fn paths_stay_inside_the_recordings_folder() {
        let dir = std::env::temp_dir();
        let base = absolute_base(&dir).unwrap();
        let dir = RecordingConfig {
            dir,
            tmp_ext: None,
            allowed: Vec::new(),
        };
        assert_eq!(
            target_path(&dir, Some("sub"), Some("a"), 1).unwrap(),
            base.join("sub/a.mjr")
        );
        assert_eq!(
            target_path(&dir, None, Some("x/b.mjr"), 1).unwrap(),
            base.join("x/b.mjr")
        );
        assert_eq!(
            target_path(&dir, None, None, 7).unwrap(),
            base.join("janus-recording-7.mjr")
        );
        let inside = format!("{}/deep", base.display());
        assert_eq!(
            target_path(&dir, Some(&inside), Some("c"), 1).unwrap(),
            base.join("deep/c.mjr")
        );
        assert!(target_path(&dir, Some("/etc"), Some("passwd"), 1).is_err());
        assert!(target_path(&dir, Some("../up"), Some("a"), 1).is_err());
        assert!(target_path(&dir, None, Some("/etc/a"), 1).is_err());
    }

    #[test]
    fn allowed_folders_take_absolute_paths() {
        let scratch = std::env::temp_dir().join(format!("jsfu-rec-allowed-{}", std::process::id()));
        let rec = scratch.join("rec");
        let extra = scratch.join("extra");
        fs::create_dir_all(&rec).unwrap();
        fs::create_dir_all(&extra).unwrap();
        let extra_abs = extra.canonicalize().unwrap();
        let cfg = RecordingConfig {
            dir: rec.clone(),
            tmp_ext: None,
            allowed: vec![extra.clone()],
        };
        let inside = format!("{}", extra_abs.display());
        assert_eq!(
            target_path(&cfg, Some(&inside), Some("a"), 1).unwrap(),
            extra_abs.join("a.mjr")
        );
        assert_eq!(
            target_path(&cfg, None, Some(&format!("{inside}/b/c")), 1).unwrap(),
            extra_abs.join("b/c.mjr")
        );
        // The allowed folder itself is not a file name; others stay refused.
        assert!(target_path(&cfg, Some(&scratch.display().to_string()), Some("x"), 1).is_err());
        assert!(target_path(&cfg, Some("/etc"), Some("x"), 1).is_err());
        assert!(target_path(&cfg, Some(&format!("{inside}/../rec2")), Some("x"), 1).is_err());
        let none = RecordingConfig {
            allowed: Vec::new(),
            ..cfg
        };
        assert!(target_path(&none, Some(&inside), Some("a"), 1).is_err());
        let _ = fs::remove_dir_all(&scratch);
    }
}
