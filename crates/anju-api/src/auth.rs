//! Authentication: argon2 password hashes, random bearer tokens with expiry
//! (kept in memory: a restart logs everyone out), login rate limiting per
//! user and client address, and the [`AuthUser`] extractor that turns a
//! token into a user and the [`Scope`] the store enforces.

use crate::error::ApiError;
use crate::{ApiConfig, AppState};
use anju_core::{Role, User};
use anju_store::Scope;
use argon2::password_hash::{rand_core::OsRng, PasswordHash, SaltString};
use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::Response;
use rand::RngCore;
use serde::Deserialize;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Mutex, OnceLock};
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

struct Session {
    user: User,
    expires: Instant,
}

struct Failures {
    count: u32,
    first: Instant,
}

/// Sessions and login attempts.
pub(crate) struct Auth {
    sessions: Mutex<HashMap<String, Session>>,
    failures: Mutex<HashMap<(String, String), Failures>>,
    ttl: Duration,
    max_failures: u32,
    window: Duration,
}

impl Auth {
    pub(crate) fn new(cfg: &ApiConfig) -> Auth {
        Auth {
            sessions: Mutex::new(HashMap::new()),
            failures: Mutex::new(HashMap::new()),
            ttl: cfg.token_ttl,
            max_failures: cfg.login_max_failures.max(1),
            window: cfg.login_window,
        }
    }

    fn issue(&self, user: User) -> String {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let now = Instant::now();
        let mut s = self
            .sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        s.retain(|_, v| v.expires > now);
        s.insert(
            token.clone(),
            Session {
                user,
                expires: now + self.ttl,
            },
        );
        token
    }

    fn lookup(&self, token: &str) -> Option<User> {
        let s = self
            .sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        s.get(token)
            .filter(|v| v.expires > Instant::now())
            .map(|v| v.user.clone())
    }

    /// Seconds until this user+address may try again, if it is blocked.
    fn blocked(&self, key: &(String, String)) -> Option<u64> {
        let mut f = self
            .failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        f.retain(|_, v| now.duration_since(v.first) < self.window);
        f.get(key)
            .filter(|v| v.count >= self.max_failures)
            .map(|v| {
                self.window
                    .saturating_sub(now.duration_since(v.first))
                    .as_secs()
                    .max(1)
            })
    }

    fn failed(&self, key: (String, String)) {
        let mut f = self
            .failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let e = f.entry(key).or_insert(Failures {
            count: 0,
            first: Instant::now(),
        });
        e.count += 1;
    }

    fn succeeded(&self, key: &(String, String)) {
        self.failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(key);
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

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub user: User,
    pub scope: Scope,
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
        let user = state
            .auth
            .lookup(token)
            .ok_or_else(|| ApiError::unauthorized("invalid or expired token"))?;
        let scope = scope_for(&user);
        Ok(AuthUser { user, scope })
    }
}

/// The client's address (from the connection; "local" under tests that call
/// the router directly).
pub struct ClientAddr(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map_or_else(|| "local".to_owned(), |c| c.0.ip().to_string()),
        ))
    }
}

#[derive(Deserialize, Default)]
pub struct LoginBody {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
}

/// `POST /auth/login {"username","password"}` → `{"token"}`.
pub async fn login(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    crate::extract::Body(body): crate::extract::Body<LoginBody>,
) -> Result<Response, ApiError> {
    if body.username.is_empty() || body.password.is_empty() {
        return Err(ApiError::bad_request("username and password are required"));
    }
    let key = (body.username.clone(), addr);
    if let Some(secs) = state.auth.blocked(&key) {
        let mut e = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_attempts",
            format!("too many failed logins; try again in {secs} s"),
        );
        e.retry_after = Some(secs);
        return Err(e);
    }
    let stored = state.store.get_user(&body.username).await?;
    let (hash, user) = match stored {
        Some(s) => (s.password_hash, Some(s.user)),
        None => (dummy_hash().to_owned(), None),
    };
    let password = body.password;
    let ok = tokio::task::spawn_blocking(move || verify_password(&password, &hash))
        .await
        .map_err(|e| ApiError::internal(format!("password check failed: {e}")))?;
    match user {
        Some(u) if ok => {
            state.auth.succeeded(&key);
            state.metrics.inc_login(true);
            let ttl = state.config.token_ttl.as_secs();
            let token = state.auth.issue(u);
            Ok(crate::json(
                serde_json::json!({"token": token, "expires_in": ttl}),
            ))
        }
        _ => {
            state.auth.failed(key);
            state.metrics.inc_login(false);
            Err(ApiError::unauthorized("wrong user name or password"))
        }
    }
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
