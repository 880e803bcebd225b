//! Loopback addresses of a control plane: "the cluster's ingress" and the pod IPs.
//!
//! Pebble validates HTTP-01 on port 80 of whatever address the mock DNS answers, so every
//! control plane on the machine (one per test binary; `cargo test` may run several at once, and
//! a developer may run the demo beside them) needs an address of its own. Linux routes all of
//! 127.0.0.0/8 to the loopback interface, so each control plane takes a /24 in it: `.1` is its
//! ingress address, `.2`–`.254` are pod IPs. The /24 is derived from the process id and claimed
//! by holding a socket bound to `.1` on [`CLAIM_PORT`] for the control plane's lifetime, so two
//! live harnesses never share one; the first /24 after the derived one that is free is taken.

use std::collections::HashSet;
use std::io;
use std::net::{Ipv4Addr, TcpListener};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

/// The port of the socket that claims a /24 (see the module documentation).
pub(crate) const CLAIM_PORT: u16 = 47_999;
/// /24s in 127.1.0.0–127.254.255.255: 127.0.0.0/16 holds 127.0.0.1, systemd-resolved's
/// 127.0.0.53 and Debian's 127.0.1.1 for the host name, so it is left alone.
const BLOCKS: u32 = 254 * 256;
/// How many /24s are tried before giving up on a claim.
const ATTEMPTS: u32 = 256;

/// A claimed /24 of 127.0.0.0/8.
#[derive(Debug)]
pub(crate) struct Block {
    prefix: [u8; 3],
    /// Held for the claim; `None` if no claim could be made (the block is used anyway).
    _claim: Option<TcpListener>,
}

impl Block {
    /// Claims the first free /24, starting from one derived from the process id (and a counter,
    /// for a process that starts several control planes).
    pub(crate) fn claim() -> Block {
        static STARTED: AtomicU32 = AtomicU32::new(0);
        let start = std::process::id()
            .wrapping_mul(7)
            .wrapping_add(STARTED.fetch_add(1, Ordering::Relaxed) * 977);
        let mut first_unclaimed = None;
        for i in 0..ATTEMPTS {
            let prefix = block_prefix(start.wrapping_add(i));
            let ingress = Ipv4Addr::new(127, prefix[0], prefix[1], 1);
            match TcpListener::bind((ingress, CLAIM_PORT)) {
                Ok(claim) => {
                    return Block {
                        prefix,
                        _claim: Some(claim),
                    };
                }
                Err(e) if e.kind() == io::ErrorKind::AddrInUse => continue,
                Err(_) => {
                    first_unclaimed.get_or_insert(prefix);
                }
            }
        }
        let prefix = first_unclaimed.unwrap_or_else(|| block_prefix(start));
        eprintln!(
            "certsmith-e2e: could not claim a loopback /24; using 127.{}.{}.0/24 unclaimed",
            prefix[0], prefix[1]
        );
        Block {
            prefix,
            _claim: None,
        }
    }

    /// `.1`: the address the mock DNS answers for every name, where the ingress listens.
    pub(crate) fn ingress_ip(&self) -> Ipv4Addr {
        self.addr(1)
    }

    fn addr(&self, last: u8) -> Ipv4Addr {
        Ipv4Addr::new(127, self.prefix[0], self.prefix[1], last)
    }
}

fn block_prefix(n: u32) -> [u8; 3] {
    let n = n % BLOCKS;
    [(1 + n / 256) as u8, (n % 256) as u8, 0]
}

/// The pod IPs of a control plane, handed out round robin so that an address is reused as late
/// as possible (a process of a deleted Pod may still be closing its sockets).
#[derive(Debug)]
pub struct PodIps {
    prefix: [u8; 3],
    state: Mutex<PoolState>,
}

#[derive(Debug)]
struct PoolState {
    next: u8,
    in_use: HashSet<u8>,
}

const FIRST_POD: u8 = 2;
const LAST_POD: u8 = 254;

impl PodIps {
    pub(crate) fn new(block: &Block) -> Arc<PodIps> {
        Arc::new(PodIps {
            prefix: block.prefix,
            state: Mutex::new(PoolState {
                next: FIRST_POD,
                in_use: HashSet::new(),
            }),
        })
    }

    /// The first and last pod IP.
    pub fn range(&self) -> (Ipv4Addr, Ipv4Addr) {
        (self.addr(FIRST_POD), self.addr(LAST_POD))
    }

    fn addr(&self, last: u8) -> Ipv4Addr {
        Ipv4Addr::new(127, self.prefix[0], self.prefix[1], last)
    }

    /// A free pod IP, released when the returned lease is dropped; `None` when all are taken.
    pub fn allocate(self: &Arc<Self>) -> Option<PodIpLease> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        for _ in FIRST_POD..=LAST_POD {
            let candidate = state.next;
            state.next = if candidate == LAST_POD {
                FIRST_POD
            } else {
                candidate + 1
            };
            if state.in_use.insert(candidate) {
                return Some(PodIpLease {
                    pool: self.clone(),
                    last: candidate,
                });
            }
        }
        None
    }
}

/// A pod IP in use; returned to its pool on drop.
#[derive(Debug)]
pub struct PodIpLease {
    pool: Arc<PodIps>,
    last: u8,
}

impl PodIpLease {
    pub fn ip(&self) -> Ipv4Addr {
        self.pool.addr(self.last)
    }
}

impl Drop for PodIpLease {
    fn drop(&mut self) {
        let mut state = self.pool.state.lock().unwrap_or_else(|e| e.into_inner());
        state.in_use.remove(&self.last);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_stay_out_of_127_0() {
        for n in [0, 1, 255, 256, BLOCKS - 1, BLOCKS, u32::MAX] {
            let p = block_prefix(n);
            assert!(p[0] >= 1 && p[0] <= 254, "{n}: {p:?}");
        }
    }

    #[test]
    fn claims_are_exclusive_and_leases_recycle() {
        let a = Block::claim();
        let b = Block::claim();
        assert_ne!(a.ingress_ip(), b.ingress_ip());
        assert_ne!(a.ingress_ip(), Ipv4Addr::LOCALHOST);
        let pool = PodIps::new(&a);
        let first = pool.allocate().unwrap();
        assert_eq!(first.ip(), Ipv4Addr::new(127, a.prefix[0], a.prefix[1], 2));
        let leases: Vec<_> = std::iter::from_fn(|| pool.allocate()).collect();
        assert_eq!(leases.len(), 252);
        drop(first);
        let again = pool.allocate().unwrap();
        assert_eq!(again.ip().octets()[3], 2);
        assert!(pool.allocate().is_none());
    }
}
