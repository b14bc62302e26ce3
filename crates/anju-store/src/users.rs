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
