//! Client configuration: endpoint, region, addressing style, timeouts, retry policy.
//!
//! [`ClientBuilder`] takes by-value `with_*` setters that cannot fail; [`ClientBuilder::build`]
//! validates everything at once and returns the [`Client`]. The validated settings are a
//! [`Config`], which also knows how to turn a bucket and a key into a URL for the chosen
//! [`AddressingStyle`].
//!
//! ```no_run
//! # fn main() -> osspipe::Result<()> {
//! use osspipe::config::ClientBuilder;
//! use osspipe::Credentials;
//!
//! // Alibaba Cloud: only a region; https://<bucket>.oss-cn-hangzhou.aliyuncs.com/<key>.
//! let client = ClientBuilder::new()
//!     .with_region("cn-hangzhou")
//!     .with_credentials(Credentials::new("LTAI...", "secret"))
//!     .build()?;
//!
//! // The local server: path-style is chosen automatically for an IP endpoint.
//! let local = ClientBuilder::new()
//!     .with_endpoint("http://127.0.0.1:9000")
//!     .with_region("cn-hangzhou")
//!     .with_credentials(Credentials::new("id", "secret"))
//!     .build()?;
//! # Ok(()) }
//! ```

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::client::Client;
use crate::credentials::{Credentials, CredentialsProvider, EnvProvider, StaticProvider};
use crate::retry::RetryPolicy;
use crate::sign::{uri_encode, SignatureVersion};
use crate::{Error, ErrorKind, Result};

/// The scheme used when the endpoint names none.
pub const DEFAULT_SCHEME: &str = "https";

/// The public endpoint domain: a region `R` maps to `oss-R.aliyuncs.com`.
pub const ALIYUN_DOMAIN: &str = "aliyuncs.com";

/// How long establishing a connection (TCP and TLS) may take.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a request may make no progress (no body bytes accepted by the connection, no
/// response bytes received) before the attempt fails with [`ErrorKind::Timeout`] and is
/// retried. It is an *idle* timeout, so a 5 GiB part on a slow link is fine as long as it moves.
///
/// Progress on the way out is bytes handed to the operating system's socket, which buffers up
/// to a few MiB; the timeout must exceed the time that buffer takes to drain on the slowest
/// link (60 s covers links down to about 100 KB/s).
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// How long an idle pooled connection is kept for reuse. OSS closes idle connections after
/// about a minute, so a shorter value avoids reusing one it is closing.
pub const DEFAULT_POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(50);

/// The `User-Agent` of every request.
pub const DEFAULT_USER_AGENT: &str = concat!("osspipe/", env!("CARGO_PKG_VERSION"));

/// How the bucket appears in the URL (§1.2). The signature covers the bucket in every style.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddressingStyle {
    /// `https://<bucket>.<endpoint>/<key>`: the default for real OSS endpoints.
    VirtualHosted,
    /// `https://<endpoint>/<bucket>/<key>`: chosen automatically for IP and `localhost`
    /// endpoints, such as the local server.
    Path,
    /// `https://<cname>/<key>`: the endpoint is a custom domain bound to one bucket.
    Cname,
}

/// Builds a [`Client`]. Setters cannot fail; [`ClientBuilder::build`] checks everything.
#[derive(Clone)]
pub struct ClientBuilder {
    endpoint: Option<String>,
    region: Option<String>,
    addressing_style: Option<AddressingStyle>,
    signature_version: SignatureVersion,
    credentials: Option<Arc<dyn CredentialsProvider>>,
    connect_timeout: Duration,
    idle_timeout: Duration,
    pool_idle_timeout: Duration,
    retry_policy: RetryPolicy,
    user_agent: String,
}

impl Default for ClientBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl ClientBuilder {
    /// A builder with every default: V4 signing, https, automatic addressing style,
    /// [`DEFAULT_CONNECT_TIMEOUT`], [`DEFAULT_IDLE_TIMEOUT`], [`RetryPolicy::default`],
    /// [`DEFAULT_USER_AGENT`], and credentials from the environment ([`EnvProvider`]) unless
    /// others are set.
    pub fn new() -> Self {
        Self {
            endpoint: None,
            region: None,
            addressing_style: None,
            signature_version: SignatureVersion::default(),
            credentials: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            pool_idle_timeout: DEFAULT_POOL_IDLE_TIMEOUT,
            retry_policy: RetryPolicy::default(),
            user_agent: DEFAULT_USER_AGENT.to_owned(),
        }
    }

    /// The endpoint: `https://oss-cn-hangzhou.aliyuncs.com`, `oss-cn-hangzhou.aliyuncs.com`
    /// (https is assumed) or `http://127.0.0.1:9000`. Without one, the region's public
    /// endpoint is used.
    pub fn with_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }

    /// The region id, e.g. `cn-hangzhou` (a leading `oss-` is stripped). Needed for V4
    /// signing; inferred from an `oss-<region>[-internal].aliyuncs.com` endpoint.
    pub fn with_region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// Overrides the automatic choice of addressing style.
    pub fn with_addressing_style(mut self, style: AddressingStyle) -> Self {
        self.addressing_style = Some(style);
        self
    }

    /// The signature version (V4 by default).
    pub fn with_signature_version(mut self, version: SignatureVersion) -> Self {
        self.signature_version = version;
        self
    }

    /// Signs with fixed credentials.
    pub fn with_credentials(self, credentials: Credentials) -> Self {
        self.with_credentials_provider(StaticProvider::new(credentials))
    }

    /// Signs with credentials from `provider`, asked before every attempt.
    pub fn with_credentials_provider(mut self, provider: impl CredentialsProvider) -> Self {
        self.credentials = Some(Arc::new(provider));
        self
    }

    /// Signs with credentials from a shared provider.
    pub fn with_shared_credentials_provider(
        mut self,
        provider: Arc<dyn CredentialsProvider>,
    ) -> Self {
        self.credentials = Some(provider);
        self
    }

    /// How long connecting may take.
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long a request may make no progress before the attempt fails and is retried.
    pub fn with_idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// How long an idle pooled connection is kept.
    pub fn with_pool_idle_timeout(mut self, timeout: Duration) -> Self {
        self.pool_idle_timeout = timeout;
        self
    }

    /// The retry policy of every request.
    pub fn with_retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry_policy = policy;
        self
    }

    /// The `User-Agent` header.
    pub fn with_user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = user_agent.into();
        self
    }

    /// Validates the settings into a [`Config`] without building an HTTP client.
    ///
    /// # Errors
    /// [`ErrorKind::Config`] when the endpoint does not parse (a scheme other than http or
    /// https, a path, an empty host), neither an endpoint nor a region is given, the region is
    /// not `[a-z0-9-]+`, V4 signing has no region to sign for, a timeout is zero, or the user
    /// agent is not a valid header value.
    pub fn build_config(self) -> Result<Config> {
        let region = match &self.region {
            Some(region) => Some(normalize_region(region)?),
            None => None,
        };
        let (scheme, host) =
            match &self.endpoint {
                Some(endpoint) => parse_endpoint(endpoint)?,
                None => match &region {
                    Some(region) => (
                        DEFAULT_SCHEME.to_owned(),
                        format!("oss-{region}.{ALIYUN_DOMAIN}"),
                    ),
                    None => return Err(config_error(
                        "an endpoint or a region is required (e.g. with_region(\"cn-hangzhou\"))",
                    )),
                },
            };
        let region = match region {
            Some(region) => region,
            None => region_from_host(&host).unwrap_or_default(),
        };
        if self.signature_version == SignatureVersion::V4 && region.is_empty() {
            return Err(config_error(format!(
                "V4 signing needs a region and none can be inferred from the endpoint {host:?}: \
                 set with_region(...)"
            )));
        }
        let addressing_style = self
            .addressing_style
            .unwrap_or_else(|| default_addressing_style(&host));
        for (name, value) in [
            ("connect timeout", self.connect_timeout),
            ("idle timeout", self.idle_timeout),
        ] {
            if value.is_zero() {
                return Err(config_error(format!(
                    "the {name} must be greater than zero"
                )));
            }
        }
        if http::HeaderValue::from_str(&self.user_agent).is_err() {
            return Err(config_error(format!(
                "the user agent {:?} is not a valid header value",
                self.user_agent
            )));
        }
        let credentials = self
            .credentials
            .unwrap_or_else(|| Arc::new(EnvProvider::new()));
        Ok(Config {
            scheme,
            host,
            region,
            addressing_style,
            signature_version: self.signature_version,
            credentials,
            connect_timeout: self.connect_timeout,
            idle_timeout: self.idle_timeout,
            pool_idle_timeout: self.pool_idle_timeout,
            retry_policy: self.retry_policy,
            user_agent: self.user_agent,
        })
    }

    /// Validates the settings and builds the [`Client`].
    ///
    /// # Errors
    /// [`ErrorKind::Config`] as for [`ClientBuilder::build_config`], or when the HTTP client
    /// cannot be created (no TLS backend).
    pub fn build(self) -> Result<Client> {
        Client::from_config(self.build_config()?)
    }
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Providers redact their own secrets; nothing else here is secret.
        f.debug_struct("ClientBuilder")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("addressing_style", &self.addressing_style)
            .field("signature_version", &self.signature_version)
            .field("credentials", &self.credentials)
            .field("connect_timeout", &self.connect_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .field("retry_policy", &self.retry_policy)
            .field("user_agent", &self.user_agent)
            .finish()
    }
}

/// Validated client settings.
#[derive(Clone)]
pub struct Config {
    scheme: String,
    host: String,
    region: String,
    addressing_style: AddressingStyle,
    signature_version: SignatureVersion,
    credentials: Arc<dyn CredentialsProvider>,
    connect_timeout: Duration,
    idle_timeout: Duration,
    pool_idle_timeout: Duration,
    retry_policy: RetryPolicy,
    user_agent: String,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("endpoint", &self.endpoint())
            .field("region", &self.region)
            .field("addressing_style", &self.addressing_style)
            .field("signature_version", &self.signature_version)
            .field("credentials", &self.credentials)
            .field("connect_timeout", &self.connect_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .field("retry_policy", &self.retry_policy)
            .field("user_agent", &self.user_agent)
            .finish()
    }
}

impl Config {
    /// `http` or `https`.
    pub fn scheme(&self) -> &str {
        &self.scheme
    }

    /// The endpoint's host, with its port if one was given.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// `scheme://host[:port]`.
    pub fn endpoint(&self) -> String {
        format!("{}://{}", self.scheme, self.host)
    }

    /// The bare region id (empty for V1 with an endpoint that names none).
    pub fn region(&self) -> &str {
        &self.region
    }

    /// The addressing style in use.
    pub fn addressing_style(&self) -> AddressingStyle {
        self.addressing_style
    }

    /// The signature version in use.
    pub fn signature_version(&self) -> SignatureVersion {
        self.signature_version
    }

    /// The credentials provider.
    pub fn credentials_provider(&self) -> &Arc<dyn CredentialsProvider> {
        &self.credentials
    }

    /// The connect timeout.
    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    /// The idle (no-progress) timeout of one attempt.
    pub fn idle_timeout(&self) -> Duration {
        self.idle_timeout
    }

    /// How long an idle pooled connection is kept.
    pub fn pool_idle_timeout(&self) -> Duration {
        self.pool_idle_timeout
    }

    /// The retry policy.
    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.retry_policy
    }

    /// The `User-Agent` header value.
    pub fn user_agent(&self) -> &str {
        &self.user_agent
    }

    /// The host a request for `bucket` goes to (the `Host` header).
    pub fn host_for(&self, bucket: &str) -> String {
        match self.addressing_style {
            AddressingStyle::VirtualHosted => format!("{bucket}.{}", self.host),
            AddressingStyle::Path | AddressingStyle::Cname => self.host.clone(),
        }
    }

    /// The URL of `key` in `bucket` (or of the bucket itself when `key` is `None`), without a
    /// query. The key is percent-encoded byte by byte except `A-Z a-z 0-9 - _ . ~` and `/`
    /// (§1.4): a space is `%20`, `+` is `%2B`.
    pub fn url(&self, bucket: &str, key: Option<&str>) -> String {
        let key = key.map(|k| uri_encode(k, true)).unwrap_or_default();
        match self.addressing_style {
            AddressingStyle::VirtualHosted => {
                format!("{}://{bucket}.{}/{key}", self.scheme, self.host)
            }
            AddressingStyle::Path => format!("{}://{}/{bucket}/{key}", self.scheme, self.host),
            AddressingStyle::Cname => format!("{}://{}/{key}", self.scheme, self.host),
        }
    }

    /// [`Config::url`] with a query: names and values are encoded with `/` as `%2F`, and an
    /// empty value is sent as the bare name (`?uploads`).
    pub fn url_with_query(
        &self,
        bucket: &str,
        key: Option<&str>,
        query: &[(String, String)],
    ) -> String {
        let mut url = self.url(bucket, key);
        for (index, (name, value)) in query.iter().enumerate() {
            url.push(if index == 0 { '?' } else { '&' });
            url.push_str(&uri_encode(name, false));
            if !value.is_empty() {
                url.push('=');
                url.push_str(&uri_encode(value, false));
            }
        }
        url
    }
}

fn config_error(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::Config, message)
}

/// `oss-cn-hangzhou` → `cn-hangzhou`, then checks `[a-z0-9-]+`.
fn normalize_region(region: &str) -> Result<String> {
    let region = region.trim();
    let region = region.strip_prefix("oss-").unwrap_or(region);
    if region.is_empty()
        || !region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(config_error(format!(
            "a region must be a non-empty id of a-z, 0-9 and '-' such as cn-hangzhou: got \
             {region:?}"
        )));
    }
    Ok(region.to_owned())
}

/// Splits `[scheme://]host[:port][/]` into the scheme and `host[:port]`.
fn parse_endpoint(endpoint: &str) -> Result<(String, String)> {
    let endpoint = endpoint.trim();
    let (scheme, rest) = match endpoint.split_once("://") {
        Some((scheme, rest)) => (scheme.to_ascii_lowercase(), rest),
        None => (DEFAULT_SCHEME.to_owned(), endpoint),
    };
    if scheme != "http" && scheme != "https" {
        return Err(config_error(format!(
            "the endpoint's scheme must be http or https: got {endpoint:?}"
        )));
    }
    let host = rest.strip_suffix('/').unwrap_or(rest);
    if host.is_empty() || host.contains(['/', '?', '#', '@', ' ']) {
        return Err(config_error(format!(
            "the endpoint must be [http(s)://]host[:port] with no path: got {endpoint:?}"
        )));
    }
    // Let the URL parser judge the host and port.
    reqwest::Url::parse(&format!("{scheme}://{host}/")).map_err(|e| {
        config_error(format!("the endpoint {endpoint:?} is not a valid host")).with_source(e)
    })?;
    Ok((scheme, host.to_ascii_lowercase()))
}

/// The host without its port (and without IPv6 brackets).
fn host_name(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    host.rsplit_once(':').map_or(host, |(name, _)| name)
}

/// `oss-cn-hangzhou.aliyuncs.com` and `oss-cn-hangzhou-internal.aliyuncs.com` name their
/// region; other hosts do not.
fn region_from_host(host: &str) -> Option<String> {
    let name = host_name(host);
    let label = name.strip_suffix(&format!(".{ALIYUN_DOMAIN}"))?;
    let region = label.strip_prefix("oss-")?;
    let region = region.strip_suffix("-internal").unwrap_or(region);
    (!region.contains('.') && !region.starts_with("accelerate")).then(|| region.to_owned())
}

/// Path style for IP addresses and `localhost` (as Py-v2 and oss2 do), virtual-hosted
/// otherwise.
fn default_addressing_style(host: &str) -> AddressingStyle {
    let name = host_name(host);
    if name.parse::<IpAddr>().is_ok() || name == "localhost" {
        AddressingStyle::Path
    } else {
        AddressingStyle::VirtualHosted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(builder: ClientBuilder) -> Config {
        builder
            .with_credentials(Credentials::new("id", "secret"))
            .build_config()
            .unwrap()
    }

    fn config_error_of(builder: ClientBuilder) -> String {
        let error = builder.build_config().unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Config);
        error.to_string()
    }

    #[test]
    fn region_only_gives_the_public_endpoint() {
        let c = config(ClientBuilder::new().with_region("oss-cn-hangzhou"));
        assert_eq!(c.endpoint(), "https://oss-cn-hangzhou.aliyuncs.com");
        assert_eq!(c.region(), "cn-hangzhou");
        assert_eq!(c.addressing_style(), AddressingStyle::VirtualHosted);
        assert_eq!(c.signature_version(), SignatureVersion::V4);
        assert_eq!(
            c.url("examplebucket", Some("docs/hello world.txt")),
            "https://examplebucket.oss-cn-hangzhou.aliyuncs.com/docs/hello%20world.txt"
        );
        assert_eq!(c.host_for("b"), "b.oss-cn-hangzhou.aliyuncs.com");
    }

    #[test]
    fn host_only_endpoint_is_https_and_names_its_region() {
        let c = config(ClientBuilder::new().with_endpoint("oss-cn-shanghai-internal.aliyuncs.com"));
        assert_eq!(c.scheme(), "https");
        assert_eq!(c.region(), "cn-shanghai");
        let c = config(ClientBuilder::new().with_endpoint("HTTP://OSS-us-west-1.aliyuncs.com/"));
        assert_eq!(c.endpoint(), "http://oss-us-west-1.aliyuncs.com");
        assert_eq!(c.region(), "us-west-1");
    }

    #[test]
    fn local_endpoints_use_path_style() {
        let c = config(
            ClientBuilder::new()
                .with_endpoint("http://127.0.0.1:9000")
                .with_region("cn-hangzhou"),
        );
        assert_eq!(c.addressing_style(), AddressingStyle::Path);
        assert_eq!(
            c.url("bucket", Some("backups/a+b=c.tar.gz")),
            "http://127.0.0.1:9000/bucket/backups/a%2Bb%3Dc.tar.gz"
        );
        assert_eq!(c.url("bucket", None), "http://127.0.0.1:9000/bucket/");
        assert_eq!(c.host_for("bucket"), "127.0.0.1:9000");
        for endpoint in ["http://localhost:1", "http://[::1]:8080", "10.0.0.1"] {
            let c = config(
                ClientBuilder::new()
                    .with_endpoint(endpoint)
                    .with_region("r"),
            );
            assert_eq!(c.addressing_style(), AddressingStyle::Path, "{endpoint}");
        }
        // An explicit choice wins.
        let c = config(
            ClientBuilder::new()
                .with_endpoint("http://127.0.0.1:9000")
                .with_region("r")
                .with_addressing_style(AddressingStyle::VirtualHosted),
        );
        assert_eq!(c.url("b", Some("k")), "http://b.127.0.0.1:9000/k");
    }

    #[test]
    fn cname_leaves_the_bucket_out_of_the_url() {
        let c = config(
            ClientBuilder::new()
                .with_endpoint("https://static.example.com")
                .with_region("cn-hangzhou")
                .with_addressing_style(AddressingStyle::Cname),
        );
        assert_eq!(
            c.url("bucket", Some("a/b")),
            "https://static.example.com/a/b"
        );
        assert_eq!(c.host_for("bucket"), "static.example.com");
    }

    #[test]
    fn keys_and_queries_are_encoded() {
        let c = config(ClientBuilder::new().with_region("cn-hangzhou"));
        assert_eq!(
            c.url("b", Some("数据/报告 2025.csv")),
            "https://b.oss-cn-hangzhou.aliyuncs.com/%E6%95%B0%E6%8D%AE/%E6%8A%A5%E5%91%8A%202025.csv"
        );
        assert_eq!(
            c.url("b", Some("a%b?c#d=e+f")),
            "https://b.oss-cn-hangzhou.aliyuncs.com/a%25b%3Fc%23d%3De%2Bf"
        );
        let query = vec![
            ("uploads".to_owned(), String::new()),
            ("prefix".to_owned(), "a/b c".to_owned()),
        ];
        assert_eq!(
            c.url_with_query("b", None, &query),
            "https://b.oss-cn-hangzhou.aliyuncs.com/?uploads&prefix=a%2Fb%20c"
        );
    }

    #[test]
    fn invalid_settings_are_refused_at_build() {
        assert!(config_error_of(ClientBuilder::new()).contains("an endpoint or a region"));
        assert!(
            config_error_of(ClientBuilder::new().with_region("CN_hangzhou"))
                .contains("a region must be")
        );
        assert!(config_error_of(ClientBuilder::new().with_endpoint("ftp://x")).contains("scheme"));
        assert!(
            config_error_of(ClientBuilder::new().with_endpoint("http://h/path"))
                .contains("no path")
        );
        assert!(config_error_of(ClientBuilder::new().with_endpoint("http://")).contains("no path"));
        assert!(
            config_error_of(ClientBuilder::new().with_endpoint("http://127.0.0.1:1"))
                .contains("V4 signing needs a region")
        );
        assert!(config_error_of(
            ClientBuilder::new()
                .with_region("r")
                .with_idle_timeout(Duration::ZERO)
        )
        .contains("idle timeout"));
        assert!(config_error_of(
            ClientBuilder::new()
                .with_region("r")
                .with_user_agent("a\nb")
        )
        .contains("user agent"));
        // V1 needs no region.
        let c = config(
            ClientBuilder::new()
                .with_endpoint("http://127.0.0.1:1")
                .with_signature_version(SignatureVersion::V1),
        );
        assert_eq!(c.region(), "");
    }

    #[test]
    fn defaults_are_the_named_consts_and_debug_hides_secrets() {
        let c = ClientBuilder::new()
            .with_region("cn-hangzhou")
            .with_credentials(Credentials::new("AKID", "s3cr3t").with_security_token("t0k3n"))
            .build_config()
            .unwrap();
        assert_eq!(c.connect_timeout(), DEFAULT_CONNECT_TIMEOUT);
        assert_eq!(c.idle_timeout(), DEFAULT_IDLE_TIMEOUT);
        assert_eq!(c.user_agent(), DEFAULT_USER_AGENT);
        assert!(DEFAULT_USER_AGENT.starts_with("osspipe/"));
        let text = format!("{c:?}");
        assert!(text.contains("AKID"), "{text}");
        assert!(
            !text.contains("s3cr3t") && !text.contains("t0k3n"),
            "{text}"
        );
        let builder = ClientBuilder::new()
            .with_credentials(Credentials::new("AKID", "s3cr3t").with_security_token("t0k3n"));
        let text = format!("{builder:?}");
        assert!(
            !text.contains("s3cr3t") && !text.contains("t0k3n"),
            "{text}"
        );
    }
}
