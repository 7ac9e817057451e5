//! A bound on the requests of a client's life, shared by its clones.

/// A bound on the requests of a client's life.
#[derive(Debug)]
pub(crate) struct Budget {
    pub(crate) max: u64,
    used: std::sync::atomic::AtomicU64,
}

impl Budget {
    pub(crate) fn new(max: u64) -> Self {
        Budget {
            max,
            used: std::sync::atomic::AtomicU64::new(0),
        }
    }

    pub(crate) fn take(&self) -> bool {
        self.used.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < self.max
    }
}
