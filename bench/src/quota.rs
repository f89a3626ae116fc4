//! `--cpu-quota`: run the launched server in a cgroup limited to a fraction
//! of one core, so that a ramp finds the server's capacity before the
//! generator (on the other core of a two-core machine) runs out.
//!
//! The cgroup gets a short period ([`PERIOD_US`]) so that the server is
//! throttled in slices of a few milliseconds rather than the kernel's
//! default 100 ms. Both servers run under the same quota in a `--compare`
//! run, so their capacities compare directly; dividing by the quota gives
//! an estimate for a whole core (a lower bound: a server that has a whole
//! core batches more per wake-up).
//!
//! cgroup v2 (`cpu.max`) is used where the unified hierarchy offers the
//! `cpu` controller, else cgroup v1 (`cpu.cfs_quota_us`).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::{Context, Result, bail};

/// Scheduling period of the cgroup: the server runs at most
/// `quota × PERIOD_US` in every period.
pub(crate) const PERIOD_US: u64 = 10_000;

/// Where the cgroup hierarchies live.
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// The smallest and largest quota accepted (a fraction of one core).
pub(crate) const MIN_FRACTION: f64 = 0.02;
pub(crate) const MAX_FRACTION: f64 = 1.0;

/// A cgroup holding one server process, removed when dropped (after the
/// process is gone).
#[derive(Debug)]
pub(crate) struct CpuQuota {
    dir: PathBuf,
    fraction: f64,
}

/// Which interface a hierarchy offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Version {
    V1,
    V2,
}

impl CpuQuota {
    /// A new cgroup limited to `fraction` of one core.
    pub(crate) fn create(fraction: f64) -> Result<Self> {
        if !(MIN_FRACTION..=MAX_FRACTION).contains(&fraction) {
            bail!("--cpu-quota must be between {MIN_FRACTION} and {MAX_FRACTION} of a core");
        }
        let (parent, version) = hierarchy(Path::new(CGROUP_ROOT)).context(
            "no cgroup hierarchy with the cpu controller under /sys/fs/cgroup (--cpu-quota needs one, and root)",
        )?;
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "jsfu-bench-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let dir = parent.join(name);
        std::fs::create_dir(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let quota = Self { dir, fraction };
        let quota_us = quota_us(fraction);
        match version {
            Version::V2 => quota.write("cpu.max", &format!("{quota_us} {PERIOD_US}"))?,
            Version::V1 => {
                quota.write("cpu.cfs_period_us", &PERIOD_US.to_string())?;
                quota.write("cpu.cfs_quota_us", &quota_us.to_string())?;
            }
        }
        Ok(quota)
    }

    /// Moves process `pid` (all its threads) into the cgroup.
    pub(crate) fn add(&self, pid: u32) -> Result<()> {
        self.write("cgroup.procs", &pid.to_string())
    }

    /// The fraction of one core the cgroup may use.
    pub(crate) fn fraction(&self) -> f64 {
        self.fraction
    }

    fn write(&self, file: &str, value: &str) -> Result<()> {
        let path = self.dir.join(file);
        std::fs::write(&path, value)
            .with_context(|| format!("writing {value} to {}", path.display()))
    }
}

impl Drop for CpuQuota {
    fn drop(&mut self) {
        // Empty once the server has exited; a cgroup directory is removed
        // with rmdir (its files are the kernel's).
        for _ in 0..50 {
            if std::fs::remove_dir(&self.dir).is_ok() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

/// The quota in microseconds per [`PERIOD_US`] (at least the kernel's
/// minimum of 1 ms).
fn quota_us(fraction: f64) -> u64 {
    // In range: fraction is at most MAX_FRACTION (checked by the caller).
    ((fraction * PERIOD_US as f64).round() as u64).max(1_000)
}

/// The hierarchy to create the cgroup in: the unified one (v2) when it
/// offers the cpu controller to its children, else the v1 `cpu` one.
fn hierarchy(root: &Path) -> Option<(PathBuf, Version)> {
    for v2 in [root.to_path_buf(), root.join("unified")] {
        let offers_cpu = std::fs::read_to_string(v2.join("cgroup.subtree_control"))
            .is_ok_and(|s| s.split_whitespace().any(|c| c == "cpu"));
        if offers_cpu {
            return Some((v2, Version::V2));
        }
    }
    let v1 = root.join("cpu");
    v1.join("cpu.cfs_quota_us")
        .exists()
        .then_some((v1, Version::V1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_is_a_share_of_the_period_with_a_floor() {
        assert_eq!(quota_us(0.25), 2_500);
        assert_eq!(quota_us(1.0), PERIOD_US);
        assert_eq!(quota_us(0.05), 1_000);
    }

    #[test]
    fn hierarchies_are_recognised() {
        let root = std::env::temp_dir().join(format!("jsfu-quota-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("cpu")).expect("temp dir");
        assert_eq!(hierarchy(&root), None);
        std::fs::write(root.join("cpu/cpu.cfs_quota_us"), "-1").expect("temp file");
        assert_eq!(hierarchy(&root), Some((root.join("cpu"), Version::V1)));
        std::fs::create_dir_all(root.join("unified")).expect("temp dir");
        std::fs::write(root.join("unified/cgroup.subtree_control"), "memory pids")
            .expect("temp file");
        assert_eq!(hierarchy(&root), Some((root.join("cpu"), Version::V1)));
        std::fs::write(root.join("cgroup.subtree_control"), "cpuset cpu io").expect("temp file");
        assert_eq!(hierarchy(&root), Some((root.clone(), Version::V2)));
        std::fs::remove_dir_all(&root).expect("cleanup");
    }

    #[test]
    fn out_of_range_quotas_are_refused() {
        assert!(CpuQuota::create(0.0).is_err());
        assert!(CpuQuota::create(1.5).is_err());
        assert!(CpuQuota::create(f64::NAN).is_err());
    }
}
