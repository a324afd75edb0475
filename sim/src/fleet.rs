//! Two simulated controller fleets on loopback, one per path, and a scratch directory for the
//! files a proxy in front of them needs (rules, records). This is the fixture the demo, the
//! benchmarks and the end-to-end tests put a switchyard in front of.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::config::SimConfig;
use crate::server::{SimHandle, Simulator};

pub struct SimFleet {
    pub legacy: SimHandle,
    pub scheduler: SimHandle,
    /// Removed with the fleet.
    pub dir: PathBuf,
}

impl SimFleet {
    /// Starts both simulators on free loopback ports and creates a fresh scratch directory.
    pub fn start(legacy: SimConfig, scheduler: SimConfig) -> std::io::Result<SimFleet> {
        let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
        let legacy = Simulator::start(legacy, loopback)?;
        let scheduler = Simulator::start(scheduler, loopback)?;
        let dir = std::env::temp_dir().join(format!("switchyard-{}-{:08x}", std::process::id(), rand::random::<u32>()));
        std::fs::create_dir_all(&dir)?;
        Ok(SimFleet { legacy, scheduler, dir })
    }

    /// Writes a file into the scratch directory and returns its path.
    pub fn write(&self, name: &str, content: &str) -> std::io::Result<PathBuf> {
        let path = self.dir.join(name);
        std::fs::write(&path, content)?;
        Ok(path)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for SimFleet {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
