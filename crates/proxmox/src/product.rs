//! [`ProxmoxProduct`]: Proxmox VE or Proxmox Backup Server, which share the
//! task API (`/api2/json/nodes/{node}/tasks/...`) but not every detail of it.

/// Which Proxmox server a client speaks to. The task endpoints, the UPID
/// handle and the `running` / `stopped` + `exitstatus` states are the same;
/// what differs is written here, from each server's code:
///
/// | | Proxmox VE (pve-manager) | Proxmox Backup Server (proxmox-backup) |
/// |---|---|---|
/// | port | 8006 | 8007 |
/// | API token | `PVEAPIToken=USER@REALM!ID=SECRET` | `PBSAPIToken=USER@REALM!ID:SECRET` |
/// | ticket cookie | `PVEAuthCookie` | `PBSAuthCookie` |
/// | node in task paths | the UPID's node (a cluster proxies to it) | `localhost` (one host; the handlers never read it) |
/// | log `start` | lines skipped (0-based) | first line number wanted (`count < start` is skipped) |
/// | task list | `source=active\|archive\|all`, `vmid` | active and archived by default, `running=1`, no `vmid` |
/// | recent tasks | `GET /cluster/tasks` | `GET /nodes/localhost/tasks` |
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProxmoxProduct {
    /// Proxmox VE.
    #[default]
    VirtualEnvironment,
    /// Proxmox Backup Server.
    BackupServer,
}

impl ProxmoxProduct {
    /// The provider name errors and spans use: `proxmox` or `pbs`.
    pub fn provider_name(self) -> &'static str {
        match self {
            ProxmoxProduct::VirtualEnvironment => "proxmox",
            ProxmoxProduct::BackupServer => "pbs",
        }
    }

    /// The port the server listens on by default.
    pub fn default_port(self) -> u16 {
        match self {
            ProxmoxProduct::VirtualEnvironment => 8006,
            ProxmoxProduct::BackupServer => 8007,
        }
    }

    /// The product's name for people.
    pub fn display_name(self) -> &'static str {
        match self {
            ProxmoxProduct::VirtualEnvironment => "Proxmox VE",
            ProxmoxProduct::BackupServer => "Proxmox Backup Server",
        }
    }

    /// The `Authorization` value of an API token: PVE separates id and
    /// secret with `=`, PBS with `:` (pbs-client's `http_client.rs` sends
    /// `PBSAPIToken ID:SECRET`; its server takes `=` or a space after the
    /// prefix, and its documentation writes `=`).
    pub(crate) fn token_header(self, token_id: &str, secret: &str) -> String {
        match self {
            ProxmoxProduct::VirtualEnvironment => format!("PVEAPIToken={token_id}={secret}"),
            ProxmoxProduct::BackupServer => format!("PBSAPIToken={token_id}:{secret}"),
        }
    }

    /// What separates an API token's id from its secret.
    pub(crate) fn token_separator(self) -> char {
        match self {
            ProxmoxProduct::VirtualEnvironment => '=',
            ProxmoxProduct::BackupServer => ':',
        }
    }

    /// The cookie a login ticket travels in.
    pub(crate) fn cookie_name(self) -> &'static str {
        match self {
            ProxmoxProduct::VirtualEnvironment => "PVEAuthCookie",
            ProxmoxProduct::BackupServer => "PBSAuthCookie",
        }
    }

    /// The node segment of a task path for a task of `upid_node`.
    pub(crate) fn path_node(self, upid_node: &str) -> &str {
        match self {
            ProxmoxProduct::VirtualEnvironment => upid_node,
            ProxmoxProduct::BackupServer => "localhost",
        }
    }

    /// The log's `start` parameter for "skip `skipped` lines".
    pub(crate) fn log_start(self, skipped: u64) -> u64 {
        match self {
            ProxmoxProduct::VirtualEnvironment => skipped,
            ProxmoxProduct::BackupServer => skipped.saturating_add(1),
        }
    }
}
