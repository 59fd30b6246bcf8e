//! Access keys and where they come from.
//!
//! [`Credentials`] is one access key id, its secret and an optional STS security token. Its
//! `Debug` never shows the secret or the token. Providers that produce credentials (static, from
//! the environment, refreshing temporary STS credentials) live beside it.

use std::fmt;
use std::time::SystemTime;

/// An access key id, its secret, and an optional STS security token.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    access_key_id: String,
    access_key_secret: String,
    security_token: Option<String>,
    expires_at: Option<SystemTime>,
}

impl Credentials {
    /// Long-lived credentials: an access key id and its secret.
    pub fn new(access_key_id: impl Into<String>, access_key_secret: impl Into<String>) -> Self {
        Self {
            access_key_id: access_key_id.into(),
            access_key_secret: access_key_secret.into(),
            security_token: None,
            expires_at: None,
        }
    }

    /// Adds an STS security token (sent as `x-oss-security-token`).
    pub fn with_security_token(mut self, token: impl Into<String>) -> Self {
        self.security_token = Some(token.into());
        self
    }

    /// Marks when temporary credentials stop working.
    pub fn with_expiry(mut self, expires_at: SystemTime) -> Self {
        self.expires_at = Some(expires_at);
        self
    }

    /// The access key id (not secret; it appears in every signature).
    pub fn access_key_id(&self) -> &str {
        &self.access_key_id
    }

    /// The access key secret. Never log it.
    pub fn access_key_secret(&self) -> &str {
        &self.access_key_secret
    }

    /// The STS security token, if these are temporary credentials. Never log it.
    pub fn security_token(&self) -> Option<&str> {
        self.security_token.as_deref()
    }

    /// When these credentials expire, if they do.
    pub fn expires_at(&self) -> Option<SystemTime> {
        self.expires_at
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("access_key_secret", &"<redacted>")
            .field(
                "security_token",
                &self.security_token.as_ref().map(|_| "<redacted>"),
            )
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

// ----- providers -------------------------------------------------------------------------------

use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;

use crate::{Error, ErrorKind, Result};

/// The environment variable holding the access key id.
pub const ENV_ACCESS_KEY_ID: &str = "OSS_ACCESS_KEY_ID";
/// The environment variable holding the access key secret.
pub const ENV_ACCESS_KEY_SECRET: &str = "OSS_ACCESS_KEY_SECRET";
/// The environment variable holding an optional STS security token.
pub const ENV_SESSION_TOKEN: &str = "OSS_SESSION_TOKEN";

/// How long before temporary credentials expire [`RefreshingProvider`] fetches new ones. STS
/// credentials last at least 15 minutes, so 5 minutes leaves room for a slow fetch and for a
/// request signed just before the refresh to reach OSS.
pub const DEFAULT_REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);

/// Something that hands out credentials for signing. The client asks before every attempt, so
/// an implementation should be cheap when nothing changed.
#[async_trait]
pub trait CredentialsProvider: Send + Sync + fmt::Debug + 'static {
    /// The credentials to sign the next request with.
    ///
    /// # Errors
    /// [`ErrorKind::Credentials`] when none can be obtained.
    async fn credentials(&self) -> Result<Credentials>;
}

#[async_trait]
impl<P: CredentialsProvider + ?Sized> CredentialsProvider for Arc<P> {
    async fn credentials(&self) -> Result<Credentials> {
        (**self).credentials().await
    }
}

/// Always the same credentials.
#[derive(Debug, Clone)]
pub struct StaticProvider {
    credentials: Credentials,
}

impl StaticProvider {
    /// A provider of `credentials`.
    pub fn new(credentials: Credentials) -> Self {
        Self { credentials }
    }
}

impl From<Credentials> for StaticProvider {
    fn from(credentials: Credentials) -> Self {
        Self::new(credentials)
    }
}

#[async_trait]
impl CredentialsProvider for StaticProvider {
    async fn credentials(&self) -> Result<Credentials> {
        Ok(self.credentials.clone())
    }
}

/// Credentials from [`ENV_ACCESS_KEY_ID`], [`ENV_ACCESS_KEY_SECRET`] and the optional
/// [`ENV_SESSION_TOKEN`], read at every call so a rotated environment is picked up.
#[derive(Debug, Clone, Copy, Default)]
pub struct EnvProvider;

impl EnvProvider {
    /// A provider reading the process environment.
    pub fn new() -> Self {
        Self
    }

    /// Reads the environment now.
    ///
    /// # Errors
    /// [`ErrorKind::Credentials`] naming the variables when the id or the secret is unset or
    /// empty (or not Unicode).
    pub fn load() -> Result<Credentials> {
        let read = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let (Some(id), Some(secret)) = (read(ENV_ACCESS_KEY_ID), read(ENV_ACCESS_KEY_SECRET))
        else {
            return Err(Error::new(
                ErrorKind::Credentials,
                format!(
                    "{ENV_ACCESS_KEY_ID} and {ENV_ACCESS_KEY_SECRET} must both be set to use \
                     credentials from the environment"
                ),
            ));
        };
        let credentials = Credentials::new(id, secret);
        Ok(match read(ENV_SESSION_TOKEN) {
            Some(token) => credentials.with_security_token(token),
            None => credentials,
        })
    }
}

#[async_trait]
impl CredentialsProvider for EnvProvider {
    async fn credentials(&self) -> Result<Credentials> {
        Self::load()
    }
}

/// Fetches temporary credentials (from STS, an instance metadata service, a file, ...).
#[async_trait]
pub trait CredentialsFetcher: Send + Sync + 'static {
    /// Fetches a fresh set; temporary credentials carry [`Credentials::expires_at`].
    ///
    /// # Errors
    /// Whatever prevented the fetch.
    async fn fetch(&self) -> Result<Credentials>;
}

#[async_trait]
impl<F, Fut> CredentialsFetcher for F
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Credentials>> + Send + 'static,
{
    async fn fetch(&self) -> Result<Credentials> {
        self().await
    }
}

/// Caches credentials from a [`CredentialsFetcher`] and fetches new ones a margin before they
/// expire.
///
/// Refreshes are single-flight: when many requests find the credentials stale at once, one
/// fetches and the others wait for its result. If a refresh fails while the cached credentials
/// have not expired yet, those are returned (and the failure logged), so a brief STS outage
/// inside the margin costs nothing.
pub struct RefreshingProvider<F> {
    fetcher: F,
    margin: Duration,
    cached: RwLock<Option<Credentials>>,
    refresh: tokio::sync::Mutex<()>,
}

impl<F: CredentialsFetcher> RefreshingProvider<F> {
    /// A provider over `fetcher` with [`DEFAULT_REFRESH_MARGIN`]. Nothing is fetched until the
    /// first call.
    pub fn new(fetcher: F) -> Self {
        Self {
            fetcher,
            margin: DEFAULT_REFRESH_MARGIN,
            cached: RwLock::new(None),
            refresh: tokio::sync::Mutex::new(()),
        }
    }

    /// Sets how long before expiry a refresh happens.
    pub fn with_margin(mut self, margin: Duration) -> Self {
        self.margin = margin;
        self
    }

    /// The cached credentials if they are not within the margin of their expiry.
    fn fresh(&self) -> Option<Credentials> {
        let cached = self.cached.read().unwrap_or_else(|e| e.into_inner());
        cached.as_ref().filter(|c| !self.is_stale(c)).cloned()
    }

    fn is_stale(&self, credentials: &Credentials) -> bool {
        credentials
            .expires_at()
            .is_some_and(|at| SystemTime::now() + self.margin >= at)
    }
}

impl<F> fmt::Debug for RefreshingProvider<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cached = self.cached.read().unwrap_or_else(|e| e.into_inner());
        f.debug_struct("RefreshingProvider")
            .field("margin", &self.margin)
            .field("cached", &*cached)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl<F: CredentialsFetcher> CredentialsProvider for RefreshingProvider<F> {
    async fn credentials(&self) -> Result<Credentials> {
        if let Some(credentials) = self.fresh() {
            return Ok(credentials);
        }
        // Single flight: whoever holds the lock fetches; the others wait, then find the cache
        // fresh on the second look.
        let _guard = self.refresh.lock().await;
        if let Some(credentials) = self.fresh() {
            return Ok(credentials);
        }
        match self.fetcher.fetch().await {
            Ok(credentials) => {
                *self.cached.write().unwrap_or_else(|e| e.into_inner()) = Some(credentials.clone());
                Ok(credentials)
            }
            Err(error) => {
                let cached = self
                    .cached
                    .read()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone();
                if let Some(still_valid) =
                    cached.filter(|c| c.expires_at().is_none_or(|at| SystemTime::now() < at))
                {
                    tracing::warn!(
                        "refreshing temporary credentials failed, using the cached ones until \
                         they expire: {error}"
                    );
                    return Ok(still_valid);
                }
                Err(if error.kind() == ErrorKind::Credentials {
                    error
                } else {
                    Error::new(
                        ErrorKind::Credentials,
                        "could not fetch temporary credentials",
                    )
                    .with_source(error)
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn debug_redacts_secret_and_token() {
        let credentials = Credentials::new("AKID", "s3cr3t").with_security_token("t0ken");
        let text = format!("{credentials:?}");
        assert!(text.contains("AKID"));
        assert!(
            !text.contains("s3cr3t") && !text.contains("t0ken"),
            "{text}"
        );
        let provider = StaticProvider::new(credentials.clone());
        let text = format!("{provider:?}");
        assert!(
            !text.contains("s3cr3t") && !text.contains("t0ken"),
            "{text}"
        );
        let refreshing = RefreshingProvider::new(move || {
            let c = credentials.clone();
            async move { Ok(c) }
        });
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(refreshing.credentials()).unwrap();
        let text = format!("{refreshing:?}");
        assert!(text.contains("AKID"), "{text}");
        assert!(
            !text.contains("s3cr3t") && !text.contains("t0ken"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn static_provider_returns_its_credentials() {
        let provider = StaticProvider::from(Credentials::new("a", "b"));
        assert_eq!(provider.credentials().await.unwrap().access_key_id(), "a");
    }

    // The environment is process-wide; this is the only test in the crate that touches these
    // variables.
    #[tokio::test]
    async fn env_provider_reads_the_environment() {
        std::env::remove_var(ENV_ACCESS_KEY_ID);
        std::env::remove_var(ENV_ACCESS_KEY_SECRET);
        std::env::remove_var(ENV_SESSION_TOKEN);
        let error = EnvProvider::new().credentials().await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Credentials);
        assert!(error.to_string().contains("OSS_ACCESS_KEY_ID"), "{error}");
        std::env::set_var(ENV_ACCESS_KEY_ID, "id");
        std::env::set_var(ENV_ACCESS_KEY_SECRET, "secret");
        let credentials = EnvProvider::new().credentials().await.unwrap();
        assert_eq!(credentials.access_key_secret(), "secret");
        assert_eq!(credentials.security_token(), None);
        std::env::set_var(ENV_SESSION_TOKEN, "token");
        let credentials = EnvProvider::new().credentials().await.unwrap();
        assert_eq!(credentials.security_token(), Some("token"));
        std::env::remove_var(ENV_ACCESS_KEY_ID);
        std::env::remove_var(ENV_ACCESS_KEY_SECRET);
        std::env::remove_var(ENV_SESSION_TOKEN);
    }

    fn counting_fetcher(
        count: Arc<AtomicUsize>,
        lifetime: Duration,
    ) -> impl Fn() -> std::pin::Pin<Box<dyn Future<Output = Result<Credentials>> + Send>>
           + Send
           + Sync
           + 'static {
        move || {
            let count = count.clone();
            Box::pin(async move {
                let n = count.fetch_add(1, Ordering::SeqCst) + 1;
                // Slow enough that every concurrent caller arrives while it runs.
                tokio::time::sleep(Duration::from_millis(50)).await;
                Ok(Credentials::new(format!("id-{n}"), "secret")
                    .with_security_token(format!("token-{n}"))
                    .with_expiry(SystemTime::now() + lifetime))
            })
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn fifty_concurrent_callers_cause_one_fetch() {
        let count = Arc::new(AtomicUsize::new(0));
        let provider = Arc::new(RefreshingProvider::new(counting_fetcher(
            count.clone(),
            Duration::from_secs(3600),
        )));
        let tasks: Vec<_> = (0..50)
            .map(|_| {
                let provider = provider.clone();
                tokio::spawn(async move { provider.credentials().await })
            })
            .collect();
        for task in tasks {
            assert_eq!(task.await.unwrap().unwrap().access_key_id(), "id-1");
        }
        assert_eq!(count.load(Ordering::SeqCst), 1);
        // Fresh credentials are served from the cache.
        provider.credentials().await.unwrap();
        assert_eq!(count.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn refreshes_before_expiry() {
        let count = Arc::new(AtomicUsize::new(0));
        // Credentials that live 2 minutes are inside the 5-minute margin at once: every call
        // refreshes.
        let provider =
            RefreshingProvider::new(counting_fetcher(count.clone(), Duration::from_secs(120)));
        assert_eq!(
            provider.credentials().await.unwrap().access_key_id(),
            "id-1"
        );
        assert_eq!(
            provider.credentials().await.unwrap().access_key_id(),
            "id-2"
        );
        // With a 1-minute margin they are fresh.
        let count = Arc::new(AtomicUsize::new(0));
        let provider =
            RefreshingProvider::new(counting_fetcher(count.clone(), Duration::from_secs(120)))
                .with_margin(Duration::from_secs(60));
        provider.credentials().await.unwrap();
        provider.credentials().await.unwrap();
        assert_eq!(count.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn failed_refresh_falls_back_to_unexpired_credentials() {
        let count = Arc::new(AtomicUsize::new(0));
        let fetches = count.clone();
        let provider = RefreshingProvider::new(move || {
            let n = fetches.fetch_add(1, Ordering::SeqCst);
            async move {
                if n == 0 {
                    // Valid for 2 more minutes: stale (inside the margin) but not expired.
                    Ok(Credentials::new("first", "s")
                        .with_expiry(SystemTime::now() + Duration::from_secs(120)))
                } else {
                    Err(Error::new(ErrorKind::Network, "sts unreachable"))
                }
            }
        });
        assert_eq!(
            provider.credentials().await.unwrap().access_key_id(),
            "first"
        );
        assert_eq!(
            provider.credentials().await.unwrap().access_key_id(),
            "first"
        );
        assert_eq!(count.load(Ordering::SeqCst), 2);

        let failing = RefreshingProvider::new(|| async {
            Err::<Credentials, _>(Error::new(ErrorKind::Network, "sts unreachable"))
        });
        let error = failing.credentials().await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Credentials);
        assert_eq!(error.to_string(), "could not fetch temporary credentials");
        assert!(std::error::Error::source(&error).is_some());
    }
}
