//! Authentication: argon2 password hashes, random bearer tokens with expiry
//! (kept in memory: a restart logs everyone out), login rate limiting per
//! user and client address, and the [`AuthUser`] extractor that turns a
//! token into a user and the [`Scope`] the store enforces.

use crate::error::ApiError;
use crate::{ApiConfig, AppState};
use anju_core::{Role, User};
use anju_store::{Scope, Store};
use argon2::password_hash::{rand_core::OsRng, PasswordHash, SaltString};
use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse as _, Response};
use rand::RngCore;
use serde::Deserialize;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Hashes a password with argon2id and a random salt (PHC string format),
/// for `anju user add`. Returns an empty string (which never verifies) only
/// if hashing itself fails, which the default parameters do not.
pub fn hash_password(password: &str) -> String {
    let salt = SaltString::generate(&mut OsRng);
    match Argon2::default().hash_password(password.as_bytes(), &salt) {
        Ok(h) => h.to_string(),
        Err(e) => {
            tracing::error!(error = %e, "password hashing failed");
            String::new()
        }
    }
}

/// Checks a password against a PHC hash made by [`hash_password`].
pub fn verify_password(password: &str, hash: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(h) => Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok(),
        Err(_) => false,
    }
}

/// A hash to verify against when the user does not exist, so that unknown
/// and known user names take the same time.
fn dummy_hash() -> &'static str {
    static H: OnceLock<String> = OnceLock::new();
    H.get_or_init(|| hash_password("anju-dummy-password"))
}

/// A session as this replica last read it from the store.
struct Session {
    /// The user name: role and scope are read from the store whenever its
    /// change counter moved (every user write moves it), so a demoted or
    /// deleted user's token loses its old rights at once.
    name: String,
    expires: Instant,
    /// When the store last confirmed it.
    checked: Instant,
}

/// How long this replica trusts its last reading of a session before it
/// asks the store again: a logout or revocation made through another
/// replica takes effect here within it (on this replica at once).
const SESSION_RECHECK: Duration = Duration::from_secs(5);

/// Sessions are stored by the SHA-256 of their token (hex), never the
/// token itself.
fn token_hash(token: &str) -> String {
    use sha2::Digest as _;
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut hex = String::with_capacity(64);
    for b in sha2::Sha256::digest(token.as_bytes()) {
        hex.push(char::from(HEX[usize::from(b >> 4)]));
        hex.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
    hex
}

/// A user's record as read when the store's change counter had `version`.
struct KnownUser {
    user: User,
    scope: Scope,
    version: i64,
}

/// Failed (or not yet verified) login attempts in the current window.
struct Failures {
    count: u32,
    first: Instant,
}

/// Sessions (in the store, shared by every replica, read through a short
/// cache) and login attempts (per replica, in memory).
pub(crate) struct Auth {
    store: Store,
    /// Token hash → session, as last read.
    sessions: Mutex<HashMap<String, Session>>,
    /// User name → the user as last read, with the change counter then.
    users: Mutex<HashMap<String, KnownUser>>,
    failures: Mutex<HashMap<String, Failures>>,
    ttl: Duration,
    max_per_user: u32,
    max_per_addr: u32,
    max_total: u32,
    window: Duration,
    /// Argon2 verifications running at once (each costs ~20 MB and tens of
    /// milliseconds of a core).
    pub(crate) verify_slots: Arc<tokio::sync::Semaphore>,
}

/// Why a login attempt is refused before its password is looked at.
pub(crate) struct Throttled {
    pub(crate) retry_after: u64,
    pub(crate) what: &'static str,
}

impl Auth {
    pub(crate) fn new(cfg: &ApiConfig, store: Store) -> Auth {
        Auth {
            store,
            sessions: Mutex::new(HashMap::new()),
            users: Mutex::new(HashMap::new()),
            failures: Mutex::new(HashMap::new()),
            ttl: cfg.token_ttl,
            max_per_user: cfg.login_max_failures.max(1),
            max_per_addr: cfg.login_max_failures_per_addr.max(1),
            max_total: cfg.login_max_failures_total.max(1),
            window: cfg.login_window,
            verify_slots: Arc::new(tokio::sync::Semaphore::new(cfg.login_max_concurrent.max(1))),
        }
    }

    /// A new session for `name`: stored (every replica accepts it), and
    /// its token, which is kept nowhere but the caller.
    async fn issue(&self, name: &str) -> Result<String, anju_store::StoreError> {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let hash = token_hash(&token);
        let wall = chrono::Utc::now();
        let expires = wall
            .checked_add_signed(
                chrono::Duration::from_std(self.ttl).unwrap_or(chrono::Duration::hours(12)),
            )
            .unwrap_or(wall);
        self.store.put_session(&hash, name, expires, wall).await?;
        let now = Instant::now();
        let mut s = self
            .sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        s.retain(|_, v| v.expires > now);
        s.insert(
            hash,
            Session {
                name: name.to_owned(),
                expires: now + self.ttl,
                checked: now,
            },
        );
        Ok(token)
    }

    /// The user name of a live token: from this replica's last reading
    /// while it is fresh, else from the store. While the store cannot be
    /// read, the last reading stands until the session expires.
    pub(crate) async fn lookup(&self, token: &str) -> Option<String> {
        let hash = token_hash(token);
        let now = Instant::now();
        let cached = {
            let s = self
                .sessions
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            s.get(&hash).filter(|v| v.expires > now).map(|v| {
                (
                    v.name.clone(),
                    now.duration_since(v.checked) < SESSION_RECHECK,
                )
            })
        };
        if let Some((name, true)) = &cached {
            return Some(name.clone());
        }
        let wall = chrono::Utc::now();
        match self.store.session(&hash, wall).await {
            Ok(Some((name, expires))) => {
                let left = (expires - wall).to_std().unwrap_or(Duration::ZERO);
                self.sessions
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .insert(
                        hash,
                        Session {
                            name: name.clone(),
                            expires: now + left,
                            checked: now,
                        },
                    );
                Some(name)
            }
            Ok(None) => {
                self.sessions
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .remove(&hash);
                None
            }
            Err(e) => {
                tracing::warn!(error = %e, "Sessions not readable from the store; the last reading stands.");
                cached.map(|(name, _)| name)
            }
        }
    }

    /// Ends one session (logout), on every replica.
    pub(crate) async fn revoke_token(&self, token: &str) -> bool {
        let hash = token_hash(token);
        let here = self
            .sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&hash)
            .is_some();
        match self.store.delete_session(&hash).await {
            Ok(stored) => stored || here,
            Err(e) => {
                tracing::error!(error = %e, "A session could not be ended in the store; it ends here only.");
                here
            }
        }
    }

    /// The user `name` as read when the store's change counter was
    /// `version`, if it still is.
    fn known_user(&self, name: &str, version: i64) -> Option<(User, Scope)> {
        let u = self
            .users
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        u.get(name)
            .filter(|k| k.version == version)
            .map(|k| (k.user.clone(), k.scope.clone()))
    }

    /// Keeps `user` as read at `version` (read before the user was).
    fn remember_user(&self, user: &User, scope: &Scope, version: i64) {
        let mut u = self
            .users
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Bounded by the users that exist; an old reading is replaced.
        u.insert(
            user.name.as_str().to_owned(),
            KnownUser {
                user: user.clone(),
                scope: scope.clone(),
                version,
            },
        );
    }

    /// Ends every session of a user, on every replica; returns how many.
    pub(crate) async fn revoke_user(&self, name: &str) -> usize {
        let here = {
            let mut s = self
                .sessions
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let before = s.len();
            s.retain(|_, v| v.name != name);
            before - s.len()
        };
        match self.store.delete_user_sessions(name).await {
            Ok(n) => usize::try_from(n).unwrap_or(usize::MAX).max(here),
            Err(e) => {
                tracing::error!(error = %e, user = name, "Sessions could not be ended in the store; they end here only.");
                here
            }
        }
    }

    /// Counts an attempt for `user`, `addr` and overall *before* its
    /// password is verified, unless one of them is over its limit in the
    /// window (then nothing is counted and the attempt is refused). A
    /// success takes the user's and the address's counts back.
    pub(crate) fn begin_attempt(&self, user: &str, addr: &str) -> Result<(), Throttled> {
        let mut f = self
            .failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        f.retain(|_, v| now.duration_since(v.first) < self.window);
        let keys = [
            (format!("u:{user}"), self.max_per_user, "this user"),
            (format!("a:{addr}"), self.max_per_addr, "this address"),
            ("*".to_owned(), self.max_total, "this server"),
        ];
        for (k, max, what) in &keys {
            if let Some(v) = f.get(k).filter(|v| v.count >= *max) {
                let retry_after = self
                    .window
                    .saturating_sub(now.duration_since(v.first))
                    .as_secs()
                    .max(1);
                return Err(Throttled { retry_after, what });
            }
        }
        for (k, _, _) in keys {
            let e = f.entry(k).or_insert(Failures {
                count: 0,
                first: now,
            });
            e.count = e.count.saturating_add(1);
        }
        Ok(())
    }

    /// A verified login: the user's count is cleared; the address's and
    /// the overall count take back this one attempt only (one valid
    /// account must not wipe an address's record of sprayed guesses).
    fn succeeded(&self, user: &str, addr: &str) {
        let mut f = self
            .failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f.remove(&format!("u:{user}"));
        for k in [format!("a:{addr}"), "*".to_owned()] {
            if let Some(t) = f.get_mut(&k) {
                t.count = t.count.saturating_sub(1);
            }
        }
    }
}

/// The scope a user may see. Field staff see only the buildings of their
/// grids (and a field-staff account without grids sees nothing).
pub fn scope_for(user: &User) -> Scope {
    if user.role == Role::FieldStaff {
        let mut estates: Vec<_> = user.grids.iter().map(|(e, _)| e.clone()).collect();
        estates.sort();
        estates.dedup();
        return Scope {
            all_estates: false,
            estates,
            grids: user.grids.clone(),
        };
    }
    Scope {
        all_estates: user.all_estates,
        estates: user.estates.clone(),
        grids: Vec::new(),
    }
}

/// The authenticated caller: the user as the store has it now (role and
/// scope re-read on every request).
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub user: User,
    pub scope: Scope,
    /// The bearer token of this request (logout; live streams re-check it).
    pub(crate) token: String,
    /// The store's alert-page change counter, read as the request began
    /// (before anything the handler reads).
    pub(crate) version: i64,
}

impl AuthUser {
    pub fn role(&self) -> Role {
        self.user.role
    }

    /// 403 unless the caller has one of `roles`.
    pub fn require(&self, roles: &[Role], what: &str) -> Result<(), ApiError> {
        if roles.contains(&self.user.role) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "role {} may not {what}",
                self.user.role.as_str()
            )))
        }
    }
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let h = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or_else(|| ApiError::unauthorized("missing Authorization: Bearer token"))?;
        let token = h
            .to_str()
            .ok()
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .ok_or_else(|| ApiError::unauthorized("Authorization must be `Bearer TOKEN`"))?;
        let name = state
            .auth
            .lookup(token)
            .await
            .ok_or_else(|| ApiError::unauthorized("invalid or expired token"))?;
        // The user's role and scope as of the store's change counter, which
        // every user write moves (migration 0016): read again only when it
        // moved, so a demotion or deletion by any process takes effect at
        // the next request without a read of the user on every request.
        let version = state.store.alerts_version().await?;
        let (user, scope) = match state.auth.known_user(&name, version) {
            Some(known) => known,
            None => {
                let Some(stored) = state.store.get_user(&name).await? else {
                    state.auth.revoke_user(&name).await;
                    return Err(ApiError::unauthorized("the token's user no longer exists"));
                };
                let user = stored.user;
                let scope = scope_for(&user);
                state.auth.remember_user(&user, &scope, version);
                (user, scope)
            }
        };
        Ok(AuthUser {
            user,
            scope,
            token: token.to_owned(),
            version,
        })
    }
}

/// The client's address: the connection's peer; or, when the peer is one
/// of the configured trusted proxies, the last address of the configured
/// header (e.g. `X-Forwarded-For`). A header from anyone else is ignored,
/// so a client cannot pick the address its login failures count against.
/// ("local" under tests that call the router directly.)
pub struct ClientAddr(pub String);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        let Some(peer) = peer else {
            return Ok(ClientAddr("local".to_owned()));
        };
        let cfg = &state.config;
        if let Some(h) = cfg.client_ip_header.as_deref() {
            if cfg.trusted_proxies.contains(&peer) {
                let forwarded = parts
                    .headers
                    .get_all(h)
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .flat_map(|v| v.split(','))
                    .filter_map(|a| a.trim().parse::<std::net::IpAddr>().ok())
                    .next_back();
                if let Some(ip) = forwarded {
                    return Ok(ClientAddr(ip.to_string()));
                }
            }
        }
        Ok(ClientAddr(peer.to_string()))
    }
}

#[derive(Deserialize, Default)]
pub struct LoginBody {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
}

/// Longest user name accepted at login.
pub const MAX_USERNAME: usize = 64;
/// Longest password accepted at login (argon2 takes any length; this keeps
/// a request from making it hash megabytes).
pub const MAX_PASSWORD: usize = 1024;

/// `POST /auth/login {"username","password"}` → `{"token"}`.
///
/// The attempt is counted (per user, per client address, overall) before
/// the password is verified, and refused with 429 once any of them is over
/// its limit in the window; at most `login_max_concurrent` verifications run
/// at once (429 `busy` beyond).
pub async fn login(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    crate::extract::Body(body): crate::extract::Body<LoginBody>,
) -> Result<Response, ApiError> {
    if body.username.is_empty() || body.password.is_empty() {
        return Err(ApiError::bad_request("username and password are required"));
    }
    if body.username.chars().count() > MAX_USERNAME || body.password.len() > MAX_PASSWORD {
        return Err(ApiError::bad_request(format!(
            "username is at most {MAX_USERNAME} characters, password at most {MAX_PASSWORD} bytes"
        )));
    }
    if let Err(t) = state.auth.begin_attempt(&body.username, &addr) {
        state.metrics.inc_login(false);
        let mut e = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_attempts",
            format!(
                "too many failed logins for {}; try again in {} s",
                t.what, t.retry_after
            ),
        );
        e.retry_after = Some(t.retry_after);
        return Err(e);
    }
    let Ok(permit) = state.auth.verify_slots.clone().try_acquire_owned() else {
        state.metrics.inc_login(false);
        let mut e = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "busy",
            "too many logins being checked at once; try again in a second",
        );
        e.retry_after = Some(1);
        return Err(e);
    };
    let stored = state.store.get_user(&body.username).await?;
    let (hash, user) = match stored {
        Some(s) => (s.password_hash, Some(s.user)),
        None => (dummy_hash().to_owned(), None),
    };
    let password = body.password;
    let ok = tokio::task::spawn_blocking(move || {
        let ok = verify_password(&password, &hash);
        drop(permit);
        ok
    })
    .await
    .map_err(|e| ApiError::internal(format!("password check failed: {e}")))?;
    match user {
        Some(u) if ok => {
            state.auth.succeeded(&body.username, &addr);
            state.metrics.inc_login(true);
            let ttl = state.config.token_ttl.as_secs();
            let token = state.auth.issue(u.name.as_str()).await?;
            Ok(crate::json(
                serde_json::json!({"token": token, "expires_in": ttl}),
            ))
        }
        _ => {
            state.metrics.inc_login(false);
            Err(ApiError::unauthorized("wrong user name or password"))
        }
    }
}

/// `POST /auth/logout`: ends the caller's session (204).
pub async fn logout(State(state): State<AppState>, auth: AuthUser) -> Response {
    state.auth.revoke_token(&auth.token).await;
    crate::alerts::audit(
        &state,
        &auth,
        "logout",
        format!("user:{}", auth.user.name),
        None,
    )
    .await;
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Deserialize, Default)]
pub struct RevokeBody {
    #[serde(default)]
    username: String,
}

/// `POST /auth/revoke {"username"}` (administrators): ends every session of
/// a user, e.g. after a role change or a lost phone.
pub async fn revoke(
    State(state): State<AppState>,
    auth: AuthUser,
    crate::extract::Body(body): crate::extract::Body<RevokeBody>,
) -> Result<Response, ApiError> {
    auth.require(&[Role::Admin], "revoke sessions")?;
    if body.username.is_empty() {
        return Err(ApiError::bad_request("username is required"));
    }
    let n = state.auth.revoke_user(&body.username).await;
    crate::alerts::audit(
        &state,
        &auth,
        "revoke_sessions",
        format!("user:{}", body.username),
        Some(format!("{n} sessions")),
    )
    .await;
    Ok(crate::json(serde_json::json!({ "revoked": n })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_and_verify() {
        let h = hash_password("s3cret");
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("s3cret", &h));
        assert!(!verify_password("other", &h));
        assert!(!verify_password("s3cret", "not a hash"));
    }
}
