//! Requests from the [`crate::ShardHandle`] that are not part of the
//! control → shard contract (they never leave this crate).

use crate::stats::ShardStats;

/// A request on a shard's private control queue.
#[derive(Debug)]
pub(crate) enum Control {
    /// Answer with a counter snapshot.
    Stats(flume::Sender<ShardStats>),
    /// Stop the executor.
    Shutdown,
}
