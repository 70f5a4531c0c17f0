//! IP allow/deny lists: CIDRs merged into sorted, non-overlapping ranges per address family and
//! matched by binary search, so tens of thousands of prefixes cost a few comparisons.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use ipnet::IpNet;
use portcullis_config::IpListSpec;
use portcullis_core::{Deny, RequestView};

use crate::RateLimitError;

/// A set of networks, matched in O(log n).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IpSet {
    v4: Vec<(u32, u32)>,
    v6: Vec<(u128, u128)>,
}

fn merge<T: Ord + Copy>(mut r: Vec<(T, T)>, next: impl Fn(T) -> Option<T>) -> Vec<(T, T)> {
    r.sort_unstable();
    let mut out: Vec<(T, T)> = Vec::with_capacity(r.len());
    for (s, e) in r {
        match out.last_mut() {
            Some(last) if next(last.1).is_none_or(|n| s <= n) => {
                if e > last.1 {
                    last.1 = e;
                }
            }
            _ => out.push((s, e)),
        }
    }
    out
}

fn find<T: Ord + Copy>(ranges: &[(T, T)], x: T) -> bool {
    let i = ranges.partition_point(|r| r.0 <= x);
    i.checked_sub(1)
        .and_then(|i| ranges.get(i))
        .is_some_and(|r| x <= r.1)
}

impl IpSet {
    /// Builds a set from networks.
    #[must_use]
    pub fn new(nets: &[IpNet]) -> Self {
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for n in nets {
            match n {
                IpNet::V4(n) => v4.push((u32::from(n.network()), u32::from(n.broadcast()))),
                IpNet::V6(n) => v6.push((u128::from(n.network()), u128::from(n.broadcast()))),
            }
        }
        Self {
            v4: merge(v4, |x: u32| x.checked_add(1)),
            v6: merge(v6, |x: u128| x.checked_add(1)),
        }
    }

    /// True when `ip` is inside one of the networks. IPv4-mapped IPv6 addresses match IPv4
    /// entries.
    #[must_use]
    pub fn contains(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(a) => find(&self.v4, u32::from(a)),
            IpAddr::V6(a) => match a.to_ipv4_mapped() {
                Some(v4) => find(&self.v4, u32::from(v4)),
                None => find(&self.v6, u128::from(a)),
            },
        }
    }

    /// True when the set has no network.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }

    /// Number of merged ranges.
    #[must_use]
    pub fn ranges(&self) -> usize {
        self.v4.len() + self.v6.len()
    }
}

/// Reads a list file: one address or CIDR per line; `#` starts a comment.
pub fn read_list_file(path: &Path) -> Result<Vec<IpNet>, RateLimitError> {
    let text = std::fs::read_to_string(path).map_err(|e| RateLimitError::ListFile {
        path: path.to_path_buf(),
        line: 0,
        message: e.to_string(),
    })?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let entry = line.split('#').next().unwrap_or("").trim();
        if entry.is_empty() {
            continue;
        }
        let net =
            portcullis_config::parse_net(entry).map_err(|message| RateLimitError::ListFile {
                path: path.to_path_buf(),
                line: i + 1,
                message,
            })?;
        out.push(net);
    }
    Ok(out)
}

#[derive(Debug)]
struct Sets {
    allow: IpSet,
    deny: IpSet,
}

#[derive(Debug)]
struct List {
    spec: IpListSpec,
    sets: ArcSwap<Sets>,
}

fn load(spec: &IpListSpec) -> Result<Sets, RateLimitError> {
    let mut allow = spec.allow.clone();
    for f in &spec.allow_files {
        allow.extend(read_list_file(f)?);
    }
    let mut deny = spec.deny.clone();
    for f in &spec.deny_files {
        deny.extend(read_list_file(f)?);
    }
    Ok(Sets {
        allow: IpSet::new(&allow),
        deny: IpSet::new(&deny),
    })
}

/// Every `ip_lists` entry, ready to check. A client is refused (403, reason `ip_denied`) by a
/// list that applies to the route when it is in the list's deny set, or when the list has an
/// allow set (in config or files, even if the files are empty) and the client is not in it. Deny
/// wins over allow.
#[derive(Debug, Clone, Default)]
pub struct IpLists {
    lists: Arc<Vec<List>>,
}

impl IpLists {
    /// Compiles the lists, reading their files.
    pub fn from_spec(specs: &[IpListSpec]) -> Result<Self, RateLimitError> {
        let lists = specs
            .iter()
            .map(|s| {
                Ok(List {
                    spec: s.clone(),
                    sets: ArcSwap::from_pointee(load(s)?),
                })
            })
            .collect::<Result<Vec<_>, RateLimitError>>()?;
        Ok(Self {
            lists: Arc::new(lists),
        })
    }

    /// Checks the request's client address against the lists that apply to its route.
    pub fn check(&self, req: &RequestView<'_>) -> Result<(), Deny> {
        self.check_ip(req.route, req.client_ip)
    }

    /// [`check`](Self::check) for a route name and an address.
    pub fn check_ip(&self, route: &str, ip: IpAddr) -> Result<(), Deny> {
        for l in self.lists.iter() {
            if !l.spec.routes.is_empty() && !l.spec.routes.iter().any(|r| r == route) {
                continue;
            }
            let sets = l.sets.load();
            // An allow list that is configured but empty (a feed file emptied by mistake) lets
            // nobody in: failing open would silently expose what the list protects.
            let has_allow = !l.spec.allow.is_empty() || !l.spec.allow_files.is_empty();
            let refused = sets.deny.contains(ip) || (has_allow && !sets.allow.contains(ip));
            if refused {
                return Err(Deny::new(403, "ip_denied", "access denied")
                    .with_log_detail(format!("ip_list={}", l.spec.name)));
            }
        }
        Ok(())
    }

    /// Re-reads every list file (e.g. a reputation feed updated in place). On an error the
    /// lists in use are kept and the error is returned.
    pub fn reload_files(&self) -> Result<(), RateLimitError> {
        let fresh = self
            .lists
            .iter()
            .map(|l| load(&l.spec))
            .collect::<Result<Vec<_>, _>>()?;
        for (l, s) in self.lists.iter().zip(fresh) {
            l.sets.store(Arc::new(s));
        }
        Ok(())
    }

    /// The files the lists read, for a watcher.
    #[must_use]
    pub fn files(&self) -> Vec<PathBuf> {
        self.lists
            .iter()
            .flat_map(|l| l.spec.allow_files.iter().chain(&l.spec.deny_files).cloned())
            .collect()
    }
}
