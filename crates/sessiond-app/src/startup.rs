//! `serve`: builds the application from settings, binds it and runs it with its background
//! jobs (cleanup, the revocation feed).

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::middleware::{Condition, from_fn};
use actix_web::{App, HttpServer, web};
use anyhow::Context;
use secrecy::ExposeSecret;
use sessiond_domain::ErrorChain;
use sessiond_domain::activity::ActivityBuffer;
use sessiond_domain::feed::RevocationFeed;
use sessiond_domain::model::{Email, Password, Role};
use sessiond_domain::ports::{Heartbeats, SessionRepository};
use sessiond_domain::service::{AccountService, CleanupService, NewAccount};

use crate::config::Settings;
use crate::http::{self, AppState};
use crate::services::Services;
use crate::storage::Storage;

/// A bound, ready-to-run sessiond.
pub struct Application {
    port: u16,
    server: Server,
    /// The port of the metrics listener, and its server (stopped with the API's).
    metrics_port: u16,
    metrics_server: Server,
    services: Services,
    cleanup_every: Option<Duration>,
    revocation_poll: Duration,
    activity_flush: Duration,
    heartbeats: Option<Arc<dyn Heartbeats>>,
    /// Where the activity is written.
    durable_sessions: Arc<dyn SessionRepository>,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("port", &self.port)
            .field("metrics_port", &self.metrics_port)
            .finish_non_exhaustive()
    }
}

impl Application {
    /// Connects the configured storage and binds `settings.bind_addr` and
    /// `settings.metrics_addr` (port 0 picks a free port, see [`Self::port`] and
    /// [`Self::metrics_port`]).
    ///
    /// # Errors
    /// When storage cannot be set up or the address cannot be bound.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let storage = Storage::connect(&settings).await?;
        Self::build_with_storage(settings, storage).await
    }

    /// As [`Self::build`], with storage the caller wired (tests share one store between
    /// two instances this way).
    ///
    /// # Errors
    /// When the address cannot be bound or the settings are unusable.
    pub async fn build_with_storage(settings: Settings, storage: Storage) -> anyhow::Result<Self> {
        match settings.jwt.algorithm.asymmetric() {
            None if settings.is_dev() && settings.jwt.secret.is_none() => {
                tracing::warn!("dev mode: signing tokens with the built-in development JWT secret");
            }
            Some(algorithm) if settings.jwt.secret.is_some() => {
                tracing::warn!(%algorithm, "JWT_SECRET is set and unused: tokens are signed with the private key");
            }
            _ => {}
        }
        let services = Services::build(&settings, &storage)?;
        bootstrap_admin(&settings, &services.accounts).await?;
        if let Some(feed) = &services.feed {
            // Start-up loads what the log holds before the first request: every revocation
            // a token could still be presented for. A database that is down now is not
            // fatal; the feed keeps trying, and validation reads PostgreSQL meanwhile.
            match feed.catch_up().await {
                Ok(count) => tracing::info!(revocations = count, "revocation log loaded"),
                Err(error) => tracing::warn!(%error, "revocation log unreadable at start-up"),
            }
        }

        let listener = TcpListener::bind(settings.bind_addr)
            .with_context(|| format!("cannot bind {}", settings.bind_addr))?;
        let port = listener.local_addr()?.port();
        // `/metrics` on a listener of its own, never on the API's (SPEC §4).
        let metrics_listener = TcpListener::bind(settings.metrics_addr).with_context(|| {
            format!("cannot bind the metrics address {}", settings.metrics_addr)
        })?;
        let metrics_port = metrics_listener.local_addr()?.port();
        let json_limit = settings.http.json_limit;
        let body_rules = http::hardening::BodyRules {
            timeout: Duration::from_millis(settings.http.body_timeout_ms.max(1)),
            json_limit,
        };
        let cors_origins = settings.http.cors_allowed_origins.clone();
        let security_headers = http::hardening::SecurityHeaders {
            hsts: settings.http.hsts,
        };
        let limits = http::hardening::RequestLimits {
            max_url_bytes: settings.http.max_url_bytes,
            max_header_bytes: settings.http.max_header_bytes,
        };
        // Install the recorder before the first request.
        crate::metrics::handle();
        let state = web::Data::new(AppState::new(
            &services,
            settings.http.clone(),
            storage.probes(),
        ));
        let metrics_state = state.clone();
        let app = move || {
            App::new()
                .app_data(state.clone())
                .configure(|config| http::configure(config, json_limit))
                .app_data(web::Data::new(limits))
                .app_data(web::Data::new(security_headers))
                .app_data(web::Data::new(body_rules))
                .wrap(from_fn(http::hardening::body_deadline))
                .wrap(from_fn(http::hardening::head_as_get))
                .wrap(from_fn(http::hardening::enforce_limits))
                // No origins, no CORS work at all (the UI is same-origin).
                .wrap(Condition::new(
                    !cors_origins.is_empty(),
                    http::hardening::cors(&cors_origins),
                ))
                .wrap(from_fn(http::observe::observe))
        };
        let server = api_server(listener, settings.http.workers, app)?;
        // The URL to open, for whoever just ran it (the web UI is at `/`).
        let url = format!("http://{}:{port}/", settings.bind_addr.ip());
        tracing::info!(address = %settings.bind_addr, port, %url, "sessiond is listening");
        // One worker is plenty for a scraper; the API server's signals stop it too.
        let metrics_server = HttpServer::new(move || {
            App::new()
                .app_data(metrics_state.clone())
                .configure(http::configure_metrics)
        })
        .workers(1)
        .disable_signals()
        .shutdown_timeout(1)
        .listen(metrics_listener)?
        .run();
        tracing::info!(
            address = %settings.metrics_addr,
            port = metrics_port,
            "metrics are served at /metrics"
        );
        let cleanup_every = (settings.cleanup.interval > 0)
            .then(|| Duration::from_secs(u64::from(settings.cleanup.interval)));
        Ok(Self {
            port,
            server,
            metrics_port,
            metrics_server,
            services,
            cleanup_every,
            revocation_poll: settings.revocation_poll(),
            activity_flush: settings.activity_flush(),
            heartbeats: storage.heartbeats.clone(),
            durable_sessions: Arc::clone(&storage.sessions),
        })
    }

    /// The port actually bound.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port of the metrics listener (`GET /metrics`).
    pub fn metrics_port(&self) -> u16 {
        self.metrics_port
    }

    /// Stops the server from outside (tests; signals do this in production).
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Account management on this application's storage (tests create users with it).
    pub fn accounts(&self) -> AccountService {
        self.services.accounts.clone()
    }

    /// Serves until SIGINT/SIGTERM, then finishes in-flight requests (graceful shutdown).
    ///
    /// # Errors
    /// When the server fails.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let services = self.services;
        let cleanup = self
            .cleanup_every
            .map(|every| tokio::spawn(cleanup_job(services.cleanup.clone(), every)));
        let poll = self.revocation_poll;
        let feed = services.feed.clone().map(|feed| {
            let reads = Arc::clone(&feed);
            tokio::spawn(async move { reads.run(poll).await })
        });
        let beats = services.feed.clone().zip(self.heartbeats);
        let heartbeats = beats
            .clone()
            .map(|(feed, heartbeats)| tokio::spawn(heartbeat_job(feed, heartbeats, poll / 2)));
        let activity = tokio::spawn(activity_job(
            Arc::clone(&services.activity),
            Arc::clone(&self.durable_sessions),
            self.activity_flush,
        ));
        let metrics = self.metrics_server.handle();
        let metrics_served = tokio::spawn(self.metrics_server);
        let result = self.server.await;
        metrics.stop(false).await;
        let _ = metrics_served.await;
        for task in [cleanup, feed, heartbeats, Some(activity)]
            .into_iter()
            .flatten()
        {
            task.abort();
        }
        // In-flight requests are done: the other instances learn at once that this one
        // serves (and revokes) no more, before its silence could cost them their vouch;
        // then what the requests noted goes out before the process does.
        if let Some((feed, heartbeats)) = beats {
            feed.leave(heartbeats.as_ref(), heartbeats_kept_for(poll / 2))
                .await;
        }
        flush_activity(&services.activity, self.durable_sessions.as_ref()).await;
        result
    }

    /// The cleanup service on this application's storage (tests run passes with it).
    pub fn cleanup(&self) -> CleanupService {
        self.services.cleanup.clone()
    }
}

/// The API's server: what `HttpServer::new(app).listen(listener)` builds, with the same
/// timeouts and graceful shutdown, assembled here only to put [`http::wire::ProblemWire`]
/// between each connection and the HTTP/1 parser (whose own error answers have no body).
fn api_server<F, A, B>(listener: TcpListener, workers: usize, app: F) -> std::io::Result<Server>
where
    F: Fn() -> App<A> + Send + Clone + 'static,
    A: actix_service::ServiceFactory<
            actix_web::dev::ServiceRequest,
            Config = (),
            Response = actix_web::dev::ServiceResponse<B>,
            Error = actix_web::Error,
            InitError = (),
        > + 'static,
    B: actix_web::body::MessageBody + 'static,
{
    use actix_http::{HttpService, KeepAlive};
    use actix_service::{IntoServiceFactory as _, ServiceFactoryExt as _, fn_service, map_config};
    use actix_web::dev::AppConfig;

    let local = listener.local_addr()?;
    let builder = Server::build();
    let shutdown = builder.graceful_shutdown_signal();
    let mut builder = builder.shutdown_timeout(10);
    if workers > 0 {
        builder = builder.workers(workers);
    }
    Ok(builder
        .listen("sessiond-api", listener, move || {
            let shutdown = shutdown.clone();
            let http = HttpService::build()
                .graceful_shutdown_signal(move || {
                    let shutdown = shutdown.clone();
                    async move { shutdown.notified().await }
                })
                .keep_alive(KeepAlive::default())
                .client_request_timeout(Duration::from_secs(5))
                .client_disconnect_timeout(Duration::from_secs(1))
                .h1_allow_half_closed(true)
                .local_addr(local)
                .h1(map_config(
                    app().into_factory().map_err(|error| error.error_response()),
                    // The host name stands in only for requests without a `Host` header
                    // (HTTP/1.0); the app reads the peer from the connection itself.
                    |()| AppConfig::default(),
                ));
            fn_service(|io: actix_rt::net::TcpStream| {
                let peer = io.peer_addr().ok();
                std::future::ready(Ok((http::wire::ProblemWire::new(io), peer)))
            })
            .and_then(http)
        })?
        .run())
}

/// Exchanges heartbeats every `every` (an eighth of the revocation bound).
async fn heartbeat_job(
    feed: Arc<RevocationFeed>,
    heartbeats: Arc<dyn Heartbeats>,
    every: Duration,
) {
    let keep_for = heartbeats_kept_for(every);
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        feed.beat(heartbeats.as_ref(), keep_for).await;
    }
}

/// How long Redis keeps a heartbeat that is no longer renewed: a few seconds, however
/// short the bound, so that the others see an instance fall silent (and count it against
/// their vouch) before its entry goes.
fn heartbeats_kept_for(every: Duration) -> Duration {
    (every * 20).max(Duration::from_secs(2))
}

/// Writes the activity validation noted, every `every`, in one batch.
async fn activity_job(
    activity: Arc<ActivityBuffer>,
    store: Arc<dyn SessionRepository>,
    every: Duration,
) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        flush_activity(&activity, store.as_ref()).await;
    }
}

async fn flush_activity(activity: &ActivityBuffer, store: &dyn SessionRepository) {
    if let Err(error) = activity.flush(store).await {
        // Kept for the next flush (bounded): PostgreSQL is away, the requests are not.
        tracing::warn!(
            error = %ErrorChain(&error),
            waiting = activity.len(),
            "activity not written; retrying at the next flush"
        );
    }
}

/// Runs a cleanup pass every `every`, after a random delay of up to a tenth of it so that
/// instances started together do not all try at once (the store lets one through anyway).
async fn cleanup_job(cleanup: CleanupService, every: Duration) {
    let jitter = every.mul_f64(rand::random::<f64>() / 10.0);
    tokio::time::sleep(jitter).await;
    let mut ticks = tokio::time::interval(every);
    loop {
        ticks.tick().await;
        let started = std::time::Instant::now();
        match cleanup.run_once().await {
            Ok(report) if report.skipped => {
                tracing::info!("cleanup: another instance is running a pass");
            }
            Ok(report) => {
                crate::metrics::record_cleanup(&report);
                tracing::info!(
                    expired = report.expired,
                    purged = report.purged,
                    duration_ms = started.elapsed().as_millis(),
                    "cleanup pass done"
                );
            }
            Err(error) => tracing::warn!(%error, "cleanup pass failed; next one in an interval"),
        }
    }
}

/// Creates the `SESSIOND_ADMIN_EMAIL` system admin if it does not exist yet.
async fn bootstrap_admin(settings: &Settings, accounts: &AccountService) -> anyhow::Result<()> {
    let (Some(email), Some(password)) = (&settings.admin_email, &settings.admin_password) else {
        return Ok(());
    };
    let email = Email::parse(email).context("SESSIOND_ADMIN_EMAIL")?;
    let password = Password::new_secret(password.expose_secret().to_owned(), "password")
        .context("SESSIOND_ADMIN_PASSWORD")?;
    let created = accounts
        .ensure(NewAccount {
            email: email.clone(),
            password,
            role: Role::SystemAdmin,
            hotel_id: None,
        })
        .await?;
    if created {
        tracing::info!(user.email = %email, "created the bootstrap system_admin");
    }
    Ok(())
}
