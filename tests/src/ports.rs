//! Free loopback TCP ports.

use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::sync::{Mutex, PoisonError};

use anyhow::{Context, Result, bail};

/// `count` distinct free ports on 127.0.0.1.
///
/// Each port is found by binding port 0; all listeners are held until the
/// whole set is chosen (so the set has no duplicates), then released for the
/// server to bind. A port is never handed out twice by one test process, so
/// servers launched concurrently by parallel tests cannot collide with each
/// other; a collision with another process is still possible, which is why
/// server launches are retried with fresh ports.
pub fn free_ports(count: usize) -> Result<Vec<SocketAddr>> {
    static GIVEN: Mutex<Option<HashSet<u16>>> = Mutex::new(None);
    let mut given = GIVEN.lock().unwrap_or_else(PoisonError::into_inner);
    let given = given.get_or_insert_with(HashSet::new);
    let mut listeners = Vec::with_capacity(count);
    let mut addrs = Vec::with_capacity(count);
    let mut tries = 0;
    while addrs.len() < count {
        tries += 1;
        if tries > 200 {
            bail!("could not find {count} free loopback ports");
        }
        let listener =
            TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("binding 127.0.0.1:0")?;
        let addr = listener.local_addr().context("reading a bound address")?;
        if given.insert(addr.port()) {
            addrs.push(addr);
            listeners.push(listener);
        }
    }
    drop(listeners);
    Ok(addrs)
}
