//! Dashboard users (password hashes are made by the caller; the store keeps
//! them opaque).

use crate::{Result, Store, StoreError};
use anju_core::{Role, User};
use sqlx::Row as _;

/// A user with their password hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredUser {
    pub user: User,
    pub password_hash: String,
}

impl Store {
    /// Creates or replaces a user.
    ///
    /// # Errors
    /// Database errors.
    pub async fn put_user(&self, u: &User, password_hash: &str) -> Result<()> {
        let estates = serde_json::to_string(&u.estates).unwrap_or_else(|_| "[]".into());
        let grids = serde_json::to_string(&u.grids).unwrap_or_else(|_| "[]".into());
        sqlx::query(
            "INSERT INTO users (name, password_hash, role, all_estates, estates, grids, created_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (name) DO UPDATE SET \
             password_hash = excluded.password_hash, role = excluded.role, \
             all_estates = excluded.all_estates, estates = excluded.estates, grids = excluded.grids",
        )
        .bind(u.name.as_str())
        .bind(password_hash)
        .bind(u.role.as_str())
        .bind(i64::from(u.all_estates))
        .bind(estates)
        .bind(grids)
        .bind(chrono::Utc::now().timestamp_millis())
        .execute(&self.pool)
        .await?;
        // Users move the alert pages' counter (migration 0016): this
        // store's readers see the change at once.
        self.raise_feed().await;
        Ok(())
    }

    /// A user by name.
    ///
    /// # Errors
    /// Database errors or a corrupt row.
    pub async fn get_user(&self, name: &str) -> Result<Option<StoredUser>> {
        let row = sqlx::query(
            "SELECT name, password_hash, role, all_estates, estates, grids FROM users WHERE name = $1",
        )
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else { return Ok(None) };
        let role: String = r.try_get(2)?;
        let estates: String = r.try_get(4)?;
        let grids: String = r.try_get(5)?;
        Ok(Some(StoredUser {
            user: User {
                name: r.try_get::<String, _>(0)?.into(),
                role: Role::parse(&role)
                    .ok_or_else(|| StoreError::Corrupt(format!("role {role:?}")))?,
                all_estates: r.try_get::<i64, _>(3)? != 0,
                estates: serde_json::from_str(&estates)
                    .map_err(|e| StoreError::Corrupt(format!("user estates: {e}")))?,
                grids: serde_json::from_str(&grids)
                    .map_err(|e| StoreError::Corrupt(format!("user grids: {e}")))?,
            },
            password_hash: r.try_get(1)?,
        }))
    }
}

/// A user with the version of their row (the API's ETag).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VersionedUser {
    #[serde(flatten)]
    pub user: User,
    pub version: i64,
}

/// What an administrator changes about a user; `None` leaves it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserPatch {
    pub role: Option<Role>,
    pub all_estates: Option<bool>,
    pub estates: Option<Vec<anju_core::EstateCode>>,
    pub grids: Option<Vec<(anju_core::EstateCode, anju_core::GridCode)>>,
    /// A new password's hash.
    pub password_hash: Option<String>,
}

impl UserPatch {
    /// `u` with this patch's changes (the password aside).
    pub fn applied_to(&self, u: &User) -> User {
        let mut after = u.clone();
        if let Some(r) = self.role {
            after.role = r;
        }
        if let Some(a) = self.all_estates {
            after.all_estates = a;
        }
        if let Some(e) = &self.estates {
            after.estates.clone_from(e);
        }
        if let Some(g) = &self.grids {
            after.grids.clone_from(g);
        }
        after
    }
}

fn user_json(u: &User) -> serde_json::Value {
    serde_json::json!({
        "role": u.role.as_str(), "all_estates": u.all_estates,
        "estates": u.estates, "grids": u.grids,
    })
}

impl Store {
    /// Every user with their version, by name.
    ///
    /// # Errors
    /// Database errors or a corrupt row.
    pub async fn list_users(&self) -> Result<Vec<VersionedUser>> {
        let names: Vec<String> = sqlx::query("SELECT name FROM users ORDER BY name")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| r.try_get::<String, _>(0))
            .collect::<std::result::Result<_, _>>()?;
        let mut out = Vec::with_capacity(names.len());
        for n in names {
            if let Some(u) = self.versioned_user(&n).await? {
                out.push(u);
            }
        }
        Ok(out)
    }

    /// A user with their version.
    ///
    /// # Errors
    /// Database errors or a corrupt row.
    pub async fn versioned_user(&self, name: &str) -> Result<Option<VersionedUser>> {
        let Some(u) = self.get_user(name).await? else {
            return Ok(None);
        };
        let v: i64 = sqlx::query("SELECT version FROM users WHERE name = $1")
            .bind(name)
            .fetch_one(&self.pool)
            .await?
            .try_get(0)?;
        Ok(Some(VersionedUser {
            user: u.user,
            version: v,
        }))
    }

    /// Creates a user (audited).
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when the name is taken; database errors.
    pub async fn create_user(
        &self,
        u: &User,
        password_hash: &str,
        change: crate::Change<'_>,
    ) -> Result<VersionedUser> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "INSERT INTO users (name, password_hash, role, all_estates, estates, grids, created_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (name) DO NOTHING",
        )
        .bind(u.name.as_str().to_owned())
        .bind(password_hash.to_owned())
        .bind(u.role.as_str())
        .bind(i64::from(u.all_estates))
        .bind(serde_json::to_string(&u.estates).unwrap_or_else(|_| "[]".into()))
        .bind(serde_json::to_string(&u.grids).unwrap_or_else(|_| "[]".into()))
        .bind(crate::ms(change.at))
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict(format!("user {} exists", u.name)));
        }
        crate::admin::audit_tx(
            &mut tx,
            change,
            "user_created",
            &format!("user:{}", u.name),
            None,
            serde_json::json!({"before": null, "after": user_json(u)}),
        )
        .await?;
        tx.commit().await?;
        self.raise_feed().await;
        Ok(VersionedUser {
            user: u.clone(),
            version: 1,
        })
    }

    /// Changes a user if their version is still `if_version` (audited; a
    /// new password is noted, never its hash).
    ///
    /// # Errors
    /// [`StoreError::Stale`], [`StoreError::NotFound`], database errors.
    pub async fn update_user(
        &self,
        name: &str,
        patch: &UserPatch,
        if_version: i64,
        change: crate::Change<'_>,
    ) -> Result<VersionedUser> {
        let Some(before) = self.get_user(name).await? else {
            return Err(StoreError::NotFound);
        };
        let after = patch.applied_to(&before.user);
        let hash = patch
            .password_hash
            .clone()
            .unwrap_or(before.password_hash.clone());
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE users SET role = $1, all_estates = $2, estates = $3, grids = $4, \
             password_hash = $5, version = version + 1 WHERE name = $6 AND version = $7",
        )
        .bind(after.role.as_str())
        .bind(i64::from(after.all_estates))
        .bind(serde_json::to_string(&after.estates).unwrap_or_else(|_| "[]".into()))
        .bind(serde_json::to_string(&after.grids).unwrap_or_else(|_| "[]".into()))
        .bind(hash)
        .bind(name.to_owned())
        .bind(if_version)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Stale);
        }
        crate::admin::audit_tx(
            &mut tx,
            change,
            "user_changed",
            &format!("user:{name}"),
            None,
            serde_json::json!({
                "before": user_json(&before.user),
                "after": user_json(&after),
                "password_changed": patch.password_hash.is_some(),
            }),
        )
        .await?;
        tx.commit().await?;
        self.raise_feed().await;
        Ok(VersionedUser {
            user: after,
            version: if_version + 1,
        })
    }

    /// Deletes a user if their version is still `if_version` (audited).
    ///
    /// # Errors
    /// [`StoreError::Stale`], [`StoreError::NotFound`], database errors.
    pub async fn delete_user(
        &self,
        name: &str,
        if_version: i64,
        change: crate::Change<'_>,
    ) -> Result<()> {
        let Some(before) = self.get_user(name).await? else {
            return Err(StoreError::NotFound);
        };
        let mut tx = self.begin_write().await?;
        let done = sqlx::query("DELETE FROM users WHERE name = $1 AND version = $2")
            .bind(name.to_owned())
            .bind(if_version)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Stale);
        }
        crate::admin::audit_tx(
            &mut tx,
            change,
            "user_deleted",
            &format!("user:{name}"),
            None,
            serde_json::json!({"before": user_json(&before.user), "after": null}),
        )
        .await?;
        tx.commit().await?;
        self.raise_feed().await;
        Ok(())
    }

    /// Whether the estate has the grid.
    ///
    /// # Errors
    /// Database errors.
    pub async fn grid_exists(&self, estate: &str, grid: &str) -> Result<bool> {
        Ok(
            sqlx::query("SELECT 1 FROM grids WHERE estate = $1 AND code = $2")
                .bind(estate.to_owned())
                .bind(grid.to_owned())
                .fetch_optional(&self.pool)
                .await?
                .is_some(),
        )
    }
}

impl Store {
    /// Stores a login session (by the hash of its token); sessions past
    /// their expiry are pruned on the way.
    ///
    /// # Errors
    /// Database errors.
    pub async fn put_session(
        &self,
        token_hash: &str,
        user: &str,
        expires: anju_core::Timestamp,
        now: anju_core::Timestamp,
    ) -> Result<()> {
        sqlx::query("DELETE FROM sessions WHERE expires_ms <= $1")
            .bind(crate::ms(now))
            .execute(&self.pool)
            .await?;
        sqlx::query(
            "INSERT INTO sessions (token_hash, user_name, expires_ms, created_ms) VALUES ($1, $2, $3, $4)",
        )
        .bind(token_hash.to_owned())
        .bind(user.to_owned())
        .bind(crate::ms(expires))
        .bind(crate::ms(now))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The user of a live session and when it expires.
    ///
    /// # Errors
    /// Database errors.
    pub async fn session(
        &self,
        token_hash: &str,
        now: anju_core::Timestamp,
    ) -> Result<Option<(String, anju_core::Timestamp)>> {
        sqlx::query(
            "SELECT user_name, expires_ms FROM sessions WHERE token_hash = $1 AND expires_ms > $2",
        )
        .bind(token_hash.to_owned())
        .bind(crate::ms(now))
        .fetch_optional(&self.pool)
        .await?
        .map(|r| Ok((r.try_get(0)?, crate::from_ms(r.try_get(1)?)?)))
        .transpose()
    }

    /// Ends one session.
    ///
    /// # Errors
    /// Database errors.
    pub async fn delete_session(&self, token_hash: &str) -> Result<bool> {
        Ok(sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
            .bind(token_hash.to_owned())
            .execute(&self.pool)
            .await?
            .rows_affected()
            > 0)
    }

    /// Ends every session of a user; how many.
    ///
    /// # Errors
    /// Database errors.
    pub async fn delete_user_sessions(&self, user: &str) -> Result<u64> {
        Ok(sqlx::query("DELETE FROM sessions WHERE user_name = $1")
            .bind(user.to_owned())
            .execute(&self.pool)
            .await?
            .rows_affected())
    }
}
