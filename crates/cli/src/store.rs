//! `--store URL`: where trackers keep the shared tracked set and event log.

use std::sync::Arc;

use tasktrack_core::{FileStore, MemoryStore, TrackStore};
use tasktrack_redis::{redact_url, RedisStore};

use crate::error::CliError;

const FORMS: &str = "use file:./tasktrack.db, redis://host:6379/0 or rediss://host:6380/0";

/// [`open`] for an optional `--store`: none given, no store.
pub async fn open_if_given(url: Option<String>) -> Result<Option<Arc<dyn TrackStore>>, CliError> {
    match url {
        Some(url) => open(&url).await.map(Some),
        None => Ok(None),
    }
}

/// Opens `file:PATH`, `redis://…`, `rediss://…` or `memory` (schemes in any
/// case). An unusable value is never echoed beyond its redacted form.
pub async fn open(url: &str) -> Result<Arc<dyn TrackStore>, CliError> {
    let scheme_is = |scheme: &str| {
        url.get(..scheme.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(scheme))
    };
    if scheme_is("file:") {
        let path = &url["file:".len()..];
        if path.is_empty() {
            return Err(CliError::usage(
                "the file store needs a path",
                "e.g. file:./tasktrack.db",
            ));
        }
        return FileStore::open(path)
            .map(|s| Arc::new(s) as Arc<dyn TrackStore>)
            .map_err(|e| CliError::Usage {
                message: e.to_string(),
                hint: None,
            });
    }
    if url.eq_ignore_ascii_case("memory") {
        return Ok(Arc::new(MemoryStore::new()));
    }
    let parsed = url::Url::parse(url).ok();
    match parsed {
        Some(u) if matches!(u.scheme(), "redis" | "rediss") && u.has_host() => {
            // The parsed form: lower-case scheme and host, as redis expects.
            let normalized = u.to_string();
            let shown = redact_url(&normalized);
            RedisStore::connect(&normalized)
                .await
                .map(|s| Arc::new(s) as Arc<dyn TrackStore>)
                .map_err(|e| {
                    CliError::usage(
                        e.to_string().replace(&normalized, &shown),
                        "check the Redis URL and that the server is reachable",
                    )
                })
        }
        Some(u) if matches!(u.scheme(), "redis" | "rediss") => Err(CliError::usage(
            format!("store URL {} has no host", redact_url(url)),
            "write it as redis://[:PASSWORD@]HOST[:PORT]/DB",
        )),
        _ => Err(CliError::usage(
            format!("unknown store {}", redact_url(url)),
            FORMS,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_mistyped_url_never_shows_its_password() {
        for typo in [
            "redis:/:hunter2@127.0.0.1:6379",
            "redis:hunter2@localhost",
            "redls://:hunter2@127.0.0.1",
            "hunter2",
            "file",
        ] {
            let e = open(typo).await.err().expect(typo).to_string();
            assert!(!e.contains("hunter2"), "{typo}: {e}");
            assert!(e.starts_with("error: ") && !e.contains('\n'), "{e}");
        }
    }

    #[tokio::test]
    async fn schemes_are_case_insensitive() {
        assert!(open("MEMORY").await.is_ok());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        assert!(open(&format!("FILE:{}", path.display())).await.is_ok());
        // REDIS:// is a Redis URL (refused here only because nothing listens).
        let e = open("REDIS://:hunter2@127.0.0.1:1/0")
            .await
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("redis://:***@127.0.0.1:1/0"), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
    }
}
