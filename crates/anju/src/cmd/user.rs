//! `anju user add NAME --role ROLE [--estates A,B | --all-estates] [--grid E:G]`.

use crate::config::Config;
use anju_core::{Role, User};
use anyhow::{bail, Context};
use std::io::BufRead;
use std::process::ExitCode;

#[derive(clap::Subcommand, Debug)]
pub enum UserCmd {
    /// Create or update a dashboard user; the password is read from stdin
    /// (one line) or $ANJU_PASSWORD.
    Add {
        name: String,
        /// admin, supervisor, operator or field_staff.
        #[arg(long)]
        role: String,
        /// Estates the user may see (comma-separated codes).
        #[arg(long, value_delimiter = ',')]
        estates: Vec<String>,
        /// May see every estate.
        #[arg(long)]
        all_estates: bool,
        /// Field staff: grids as ESTATE:GRID (repeatable).
        #[arg(long)]
        grid: Vec<String>,
        #[arg(long)]
        db: Option<String>,
    },
}

pub async fn run(cfg: &Config, c: UserCmd) -> anyhow::Result<ExitCode> {
    let UserCmd::Add {
        name,
        role,
        estates,
        all_estates,
        grid,
        db,
    } = c;
    let Some(role) = Role::parse(&role) else {
        bail!("unknown role {role:?}: use admin, supervisor, operator or field_staff");
    };
    let mut grids = Vec::new();
    for g in &grid {
        let Some((e, g)) = g.split_once(':') else {
            bail!("--grid {g:?} must be ESTATE:GRID");
        };
        grids.push((e.into(), g.into()));
    }
    if role == Role::FieldStaff && grids.is_empty() {
        bail!("field_staff users need at least one --grid ESTATE:GRID");
    }
    if !all_estates && estates.is_empty() && grids.is_empty() {
        bail!("give --estates CODES or --all-estates (users see only their estates)");
    }
    let mut est: Vec<anju_core::EstateCode> = estates.into_iter().map(Into::into).collect();
    for (e, _) in &grids {
        if !est.contains(e) {
            est.push(e.clone());
        }
    }
    let password = match std::env::var("ANJU_PASSWORD") {
        Ok(p) => p,
        Err(_) => {
            eprintln!("password for {name} (one line on stdin):");
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line)?;
            line.trim_end_matches(['\r', '\n']).to_owned()
        }
    };
    if password.chars().count() < 8 {
        bail!("the password must have at least 8 characters");
    }
    let url = cfg.db_url(db.as_deref());
    let store = anju_store::Store::connect(&url)
        .await
        .with_context(|| format!("cannot open the store {}", anju_store::redact_url(&url)))?;
    let user = User {
        name: name.as_str().into(),
        role,
        all_estates,
        estates: est,
        grids,
    };
    let hash = tokio::task::spawn_blocking(move || anju_api::hash_password(&password)).await?;
    store.put_user(&user, &hash).await?;
    println!("{}", serde_json::to_string(&user)?);
    Ok(ExitCode::SUCCESS)
}
