//! The operator commands besides `serve`: `migrate`, `cleanup`, `user create` (SPEC §7).
//! They act on PostgreSQL; in-memory storage would forget their work at exit.

use std::io::BufRead;

use anyhow::{Context, bail};
use sessiond_domain::model::{Email, Password, Role, UserId};
use sessiond_domain::service::NewAccount;
use sessiond_postgres::{PgUserRepository, run_migrations};

use crate::config::Settings;
use crate::services::Services;
use crate::storage::{Storage, postgres_pool};

/// Storage for a command, which needs the durable store.
async fn durable_storage(settings: &Settings, command: &str) -> anyhow::Result<Storage> {
    if settings.database_url.is_none() {
        bail!("`sessiond {command}` needs DATABASE_URL: in-memory storage would forget its work");
    }
    Storage::connect(settings).await
}

/// `sessiond migrate`: applies pending migrations.
///
/// # Errors
/// Without `DATABASE_URL`, or when a migration fails.
pub async fn migrate(settings: &Settings) -> anyhow::Result<()> {
    let pool = postgres_pool(settings)
        .await?
        .context("`sessiond migrate` needs DATABASE_URL")?;
    let applied = run_migrations(&pool).await?;
    if applied.is_empty() {
        println!("migrate: the database is up to date");
    }
    for name in applied {
        println!("migrate: applied {name}");
    }
    let collisions = PgUserRepository::new(pool)
        .email_collisions()
        .await
        .context("reading email_normalisation_collisions")?;
    for line in collision_warning(&collisions) {
        eprintln!("{line}");
    }
    Ok(())
}

/// The warning about accounts whose addresses read the same once normalised (issue 15), one
/// line each; nothing when there are none. The migration leaves them as they were: which
/// of them owns the mailbox is a person's call.
fn collision_warning(groups: &[Vec<UserId>]) -> Vec<String> {
    if groups.is_empty() {
        return Vec::new();
    }
    let mut lines = vec![format!(
        "migrate: warning: {} group(s) of accounts have e-mail addresses that read the same \
         once normalised (NFKC, lower case, invisible characters dropped); they were left \
         unchanged and only an address already in its normal form can sign in. Keep one \
         account per group and rename or delete the others (SELECT * FROM \
         email_normalisation_collisions shows the addresses):",
        groups.len()
    )];
    for group in groups {
        let ids: Vec<String> = group.iter().map(ToString::to_string).collect();
        lines.push(format!("migrate: warning:   users {}", ids.join(", ")));
    }
    lines
}

/// `sessiond cleanup`: one pass, with a summary.
///
/// # Errors
/// Without `DATABASE_URL`, or when the pass fails.
pub async fn cleanup(settings: &Settings) -> anyhow::Result<()> {
    let storage = durable_storage(settings, "cleanup").await?;
    let services = Services::build(settings, &storage)?;
    let started = std::time::Instant::now();
    let report = services.cleanup.run_once().await?;
    crate::metrics::record_cleanup(&report);
    if report.skipped {
        println!("cleanup: another instance is running a pass; nothing done");
    } else {
        println!(
            "cleanup: ended {} expired session(s), purged {} ended session(s) in {} ms",
            report.expired,
            report.purged,
            started.elapsed().as_millis()
        );
    }
    Ok(())
}

/// `sessiond user create`.
///
/// # Errors
/// Without `DATABASE_URL`, for invalid input, or when the e-mail is taken.
pub async fn create_user(
    settings: &Settings,
    email: &str,
    role: Role,
    hotel_id: Option<i64>,
    password: Option<String>,
) -> anyhow::Result<()> {
    let email = Email::parse(email)?;
    let password = match password {
        Some(password) => password,
        None => {
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .context("reading the password from standard input")?;
            line.trim_end_matches(['\r', '\n']).to_owned()
        }
    };
    let password = Password::new_secret(password, "password")?;
    let storage = durable_storage(settings, "user create").await?;
    let services = Services::build(settings, &storage)?;
    let user = services
        .accounts
        .create(NewAccount {
            email,
            password,
            role,
            hotel_id,
        })
        .await?;
    println!("user create: {} ({}) id {}", user.email, user.role, user.id);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colliding_accounts_are_listed_by_id_and_none_say_nothing() {
        assert!(collision_warning(&[]).is_empty());
        let [a, b, c] = [1, 2, 3].map(|n| UserId::from_random_bytes([n; 16]));
        let lines = collision_warning(&[vec![a, b], vec![c, a]]);
        assert_eq!(lines.len(), 3);
        assert!(lines[0].contains("2 group(s)"), "{}", lines[0]);
        assert!(lines[0].contains("email_normalisation_collisions"));
        assert_eq!(lines[1], format!("migrate: warning:   users {a}, {b}"));
        assert_eq!(lines[2], format!("migrate: warning:   users {c}, {a}"));
    }
}
