//! The TCP ports the workspace listens on, for previews: read from
//! `/proc/net/tcp{,6}`, kept to sockets owned by the agent's descendants
//! (or every listener, in a container of its own).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use axum::extract::State;
use axum::Json;
use serde::Serialize;

use crate::Shared;

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Port {
    pub port: u16,
}

/// Listening sockets in a `/proc/net/tcp` table: inode → port.
pub fn parse_listeners(table: &str) -> BTreeMap<u64, u16> {
    let mut out = BTreeMap::new();
    for line in table.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 10 || f[3] != "0A" {
            continue;
        }
        let Some((_, port)) = f[1].rsplit_once(':') else {
            continue;
        };
        if let (Ok(port), Ok(inode)) = (u16::from_str_radix(port, 16), f[9].parse::<u64>()) {
            out.insert(inode, port);
        }
    }
    out
}

fn descendants_of(root: u32) -> BTreeSet<u32> {
    let mut parent: HashMap<u32, u32> = HashMap::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            if let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) {
                // The command may contain spaces: the fields after ')' count.
                if let Some((_, rest)) = stat.rsplit_once(')') {
                    if let Some(ppid) = rest.split_whitespace().nth(1).and_then(|p| p.parse().ok())
                    {
                        parent.insert(pid, ppid);
                    }
                }
            }
        }
    }
    parent
        .keys()
        .copied()
        .filter(|&pid| {
            let mut p = pid;
            for _ in 0..64 {
                match parent.get(&p) {
                    Some(&pp) if pp == root => return true,
                    Some(&pp) if pp > 1 => p = pp,
                    _ => return false,
                }
            }
            false
        })
        .collect()
}

pub fn listening(all: bool) -> Vec<u16> {
    let mut sockets = BTreeMap::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        if let Ok(text) = std::fs::read_to_string(table) {
            sockets.extend(parse_listeners(&text));
        }
    }
    let mut ports = BTreeSet::new();
    if all {
        ports.extend(sockets.values().copied());
    } else {
        for pid in descendants_of(std::process::id()) {
            let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
                continue;
            };
            for fd in fds.flatten() {
                let Ok(link) = std::fs::read_link(fd.path()) else {
                    continue;
                };
                let link = link.to_string_lossy();
                if let Some(inode) = link
                    .strip_prefix("socket:[")
                    .and_then(|s| s.strip_suffix(']'))
                    .and_then(|s| s.parse::<u64>().ok())
                {
                    if let Some(port) = sockets.get(&inode) {
                        ports.insert(*port);
                    }
                }
            }
        }
    }
    ports.into_iter().collect()
}

pub async fn list(State(agent): State<Shared>) -> Json<Vec<Port>> {
    let all = agent.all_ports;
    let ports = tokio::task::spawn_blocking(move || listening(all))
        .await
        .unwrap_or_default();
    Json(ports.into_iter().map(|port| Port { port }).collect())
}

#[cfg(test)]
mod tests {
    #[test]
    fn listeners_are_read_from_the_table() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 12345 1 0000000000000000 100 0 0 10 0\n   1: 0100007F:1F91 0100007F:9999 01 00000000:00000000 00:00000000 00000000     0        0 777 1 0000000000000000 100 0 0 10 0\n";
        let map = super::parse_listeners(table);
        assert_eq!(map.get(&12345), Some(&8080));
        assert!(!map.contains_key(&777));
    }
}
