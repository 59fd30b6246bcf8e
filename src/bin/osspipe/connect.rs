//! Where requests go: OSS (or any endpoint), or the embedded local server.
//!
//! The rule, decided before anything is sent:
//! - an endpoint (`--endpoint` or `OSS_ENDPOINT`) means that endpoint, signed with the
//!   credentials of the environment (both `OSS_ACCESS_KEY_ID` and `OSS_ACCESS_KEY_SECRET` must
//!   be set);
//! - no endpoint and no credentials at all means the embedded local server, started in this
//!   process over a data directory (`./oss-data`, or `--local-dir`);
//! - credentials but no endpoint is refused (exit 2): the user meant OSS, and a silent local
//!   write would lose their data.

use std::path::{Path, PathBuf};

use osspipe::client::Client;
use osspipe::config::ClientBuilder;
use osspipe::credentials::{ENV_ACCESS_KEY_ID, ENV_ACCESS_KEY_SECRET, ENV_SESSION_TOKEN};
use osspipe::server::LocalServer;

use crate::cli::{ConnectArgs, DEFAULT_LOCAL_DIR};
use crate::parse::shell_quote;
use crate::progress::eprintln_clean;
use crate::report::Failure;

/// What the environment says about credentials.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct EnvCredentials {
    /// `OSS_ACCESS_KEY_ID` is set (and not empty).
    pub(crate) id: bool,
    /// `OSS_ACCESS_KEY_SECRET` is set (and not empty).
    pub(crate) secret: bool,
    /// `OSS_SESSION_TOKEN` is set (and not empty).
    pub(crate) token: bool,
}

impl EnvCredentials {
    /// Reads the process environment.
    pub(crate) fn from_env() -> Self {
        let set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty());
        Self {
            id: set(ENV_ACCESS_KEY_ID),
            secret: set(ENV_ACCESS_KEY_SECRET),
            token: set(ENV_SESSION_TOKEN),
        }
    }

    fn any(self) -> bool {
        self.id || self.secret || self.token
    }
}

/// Where requests will go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Destination {
    /// A configured endpoint, with credentials from the environment.
    Endpoint {
        /// The endpoint URL.
        endpoint: String,
        /// The region, if given.
        region: Option<String>,
    },
    /// The embedded local server over a data directory.
    Embedded {
        /// The data directory.
        dir: PathBuf,
        /// Whether the directory was chosen with `--local-dir` (then printed commands repeat
        /// it).
        explicit_dir: bool,
        /// The region to sign for, if given.
        region: Option<String>,
    },
}

/// Decides where requests go (see the module docs); a refusal is a usage error.
pub(crate) fn destination(
    args: &ConnectArgs,
    credentials: EnvCredentials,
) -> Result<Destination, Failure> {
    match &args.endpoint {
        Some(endpoint) => {
            if args.local_dir.is_some() {
                return Err(Failure::usage(format!(
                    "--local-dir is the embedded local server's directory, but an endpoint is \
                     configured ({endpoint}): drop one of them"
                )));
            }
            if !(credentials.id && credentials.secret) {
                return Err(Failure::usage(format!(
                    "the endpoint {endpoint} needs credentials: set both {ENV_ACCESS_KEY_ID} \
                     and {ENV_ACCESS_KEY_SECRET} (and {ENV_SESSION_TOKEN} for STS)"
                )));
            }
            Ok(Destination::Endpoint {
                endpoint: endpoint.clone(),
                region: args.region.clone(),
            })
        }
        None if credentials.any() => {
            let example = match &args.region {
                Some(region) => format!("https://oss-{region}.aliyuncs.com"),
                None => "https://oss-cn-hangzhou.aliyuncs.com".to_owned(),
            };
            Err(Failure::usage(format!(
                "OSS credentials are set in the environment but no endpoint is: pass \
                 --endpoint {example} or set OSS_ENDPOINT"
            ))
            .note(format!(
                "hint: to use the embedded local server instead, unset {ENV_ACCESS_KEY_ID}, \
                 {ENV_ACCESS_KEY_SECRET} and {ENV_SESSION_TOKEN}"
            )))
        }
        None => Ok(Destination::Embedded {
            dir: args
                .local_dir
                .clone()
                .unwrap_or_else(|| PathBuf::from(DEFAULT_LOCAL_DIR)),
            explicit_dir: args.local_dir.is_some(),
            region: args.region.clone(),
        }),
    }
}

/// A client, and the embedded server behind it when there is one.
#[derive(Debug)]
pub(crate) struct Connection {
    /// The client every command uses.
    pub(crate) client: Client,
    /// The embedded server, stopped by [`Connection::close`].
    server: Option<LocalServer>,
    /// Flags to repeat in printed commands so they reach the same place (`--local-dir DIR`).
    repeat_flags: Vec<String>,
}

impl Connection {
    /// Connects to `destination`: builds the client, or starts the embedded server first.
    ///
    /// # Errors
    /// A usage failure for a bad endpoint or region; a failure when the embedded server cannot
    /// open its directory or listen.
    pub(crate) async fn open(destination: Destination, quiet: bool) -> Result<Self, Failure> {
        match destination {
            Destination::Endpoint { endpoint, region } => {
                let mut builder = ClientBuilder::new().with_endpoint(endpoint);
                if let Some(region) = region {
                    builder = builder.with_region(region);
                }
                Ok(Self {
                    client: builder.build()?,
                    server: None,
                    repeat_flags: Vec::new(),
                })
            }
            Destination::Embedded {
                dir,
                explicit_dir,
                region,
            } => {
                let mut builder = LocalServer::builder().directory(&dir);
                if let Some(region) = &region {
                    builder = builder.region(region.clone());
                }
                let server = builder.start().await.map_err(|error| {
                    Failure::from_error(&error).first_note(format!(
                        "note: the embedded local server could not start over {}",
                        dir.display()
                    ))
                })?;
                if !quiet {
                    eprintln_clean(&format!(
                        "osspipe: no endpoint configured: using the embedded local server over \
                         {} (set OSS_ENDPOINT or --endpoint to reach OSS)",
                        display_dir(&dir)
                    ));
                }
                let client = ClientBuilder::new()
                    .with_endpoint(server.endpoint())
                    .with_region(server.region())
                    .with_credentials(server.credentials().clone())
                    .build()?;
                let repeat_flags = if explicit_dir {
                    vec![
                        "--local-dir".to_owned(),
                        shell_quote(&dir.display().to_string()),
                    ]
                } else {
                    Vec::new()
                };
                Ok(Self {
                    client,
                    server: Some(server),
                    repeat_flags,
                })
            }
        }
    }

    /// Flags that make a printed `osspipe ...` command reach the same place, with a leading
    /// space (empty for OSS: the environment already says where).
    pub(crate) fn repeat_flags(&self) -> String {
        self.repeat_flags
            .iter()
            .map(|flag| format!(" {flag}"))
            .collect()
    }

    /// Stops the embedded server, letting requests in flight finish.
    pub(crate) async fn close(self) {
        if let Some(server) = self.server {
            server.shutdown().await;
        }
    }
}

/// `./oss-data` for a relative directory, so people see where it is.
fn display_dir(dir: &Path) -> String {
    if dir.is_relative() && !dir.starts_with(".") {
        format!("./{}", dir.display())
    } else {
        dir.display().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(endpoint: Option<&str>, local_dir: Option<&str>) -> ConnectArgs {
        ConnectArgs {
            endpoint: endpoint.map(str::to_owned),
            region: None,
            local_dir: local_dir.map(PathBuf::from),
        }
    }

    const BOTH: EnvCredentials = EnvCredentials {
        id: true,
        secret: true,
        token: false,
    };

    #[test]
    fn nothing_configured_means_the_embedded_server() {
        let destination = destination(&args(None, None), EnvCredentials::default()).unwrap();
        assert_eq!(
            destination,
            Destination::Embedded {
                dir: PathBuf::from("oss-data"),
                explicit_dir: false,
                region: None
            }
        );
        let custom = destination_of(&args(None, Some("/tmp/x")), EnvCredentials::default());
        assert!(matches!(
            custom,
            Ok(Destination::Embedded {
                explicit_dir: true,
                ..
            })
        ));
    }

    fn destination_of(
        args: &ConnectArgs,
        credentials: EnvCredentials,
    ) -> Result<Destination, Failure> {
        destination(args, credentials)
    }

    #[test]
    fn credentials_without_an_endpoint_are_refused() {
        for credentials in [
            BOTH,
            EnvCredentials {
                id: true,
                ..EnvCredentials::default()
            },
            EnvCredentials {
                token: true,
                ..EnvCredentials::default()
            },
        ] {
            let failure = destination(&args(None, None), credentials).unwrap_err();
            assert_eq!(failure.code, 2);
            assert!(
                failure.lines()[0].contains("no endpoint"),
                "{:?}",
                failure.lines()
            );
        }
    }

    #[test]
    fn an_endpoint_needs_both_credentials_and_no_local_dir() {
        let ok = destination(&args(Some("http://127.0.0.1:9000"), None), BOTH).unwrap();
        assert!(matches!(ok, Destination::Endpoint { .. }));
        let missing = destination(
            &args(Some("http://127.0.0.1:9000"), None),
            EnvCredentials {
                id: true,
                ..EnvCredentials::default()
            },
        )
        .unwrap_err();
        assert!(missing.lines()[0].contains("OSS_ACCESS_KEY_SECRET"));
        let both = destination(&args(Some("http://127.0.0.1:9000"), Some("d")), BOTH).unwrap_err();
        assert!(both.lines()[0].contains("--local-dir"));
    }

    #[test]
    fn directories_are_shown_as_paths() {
        assert_eq!(display_dir(Path::new("oss-data")), "./oss-data");
        assert_eq!(display_dir(Path::new("/tmp/x")), "/tmp/x");
        assert_eq!(display_dir(Path::new("./x")), "./x");
    }
}
